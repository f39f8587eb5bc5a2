//! sipd integration tests: one binary, one module per area (links far faster than many binaries).

mod dashboard;
mod engines;
mod events;
mod route_test;
mod stubs;
mod support;

mod dialog;
mod dispatcher;
mod latin1;
mod limits_watchdog;
mod lua_modules;
mod ops;
mod overload;
mod probes;
mod redis_cluster;
mod registrar;
mod rport;
mod rtpengine;
mod server;
mod sipp;
mod siptrace;
mod tls;
mod tm;
mod ws;
mod ws_sipjs;
