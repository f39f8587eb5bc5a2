//! sipd as a library: the command line, the routing pipeline and `route-test`, so tests start it
//! in-process and `main` stays thin.
//!
//! - [`cli`]: argument parsing and the binary's error edge.
//! - [`exports`]: the one place that names the crates with exports and builds the table.
//! - [`router`]: one worker's script engine and the callbacks it runs per message.
//! - [`route_test`]: offline routing of one message, reported as JSON.
//! - [`api`]: the API listing; [`stubs`]: typed editor stubs of the API.
//! - [`endpoint`]: `proto:ip:port` parsing.
//! - [`config`]: the server configuration (TOML file and command-line overrides).
//! - [`server`]: the stateless proxy server (`sipd run`): workers, pipeline, replies, forwards.
//! - [`tm`]: the transaction layer: stateful proxying for `KSR.tm` (RFC 3261 16, 17).
//! - [`transport`]: UDP and TCP sockets, stream framing, the connection table.
//! - [`reload`]: script reload without restart (staging, generations, per-worker switch).
//! - [`metrics`]: per-worker counters and the Prometheus exposition.
//! - [`rpc`]: the JSON-RPC control socket, its methods and the `sipd rpc` client.
//! - [`notify`]: systemd readiness (`sd_notify`).
//! - [`script_scan`]: `sipd check`'s scan for `KSR.*` names sipd cannot call.
//! - [`trace`]: `sipd trace`, a live view of the HEP copies `siptrace` sends.

/// The version with the git revision it was built from (`sipd --version`, `core.version`).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (git ",
    env!("SIPD_GIT_REVISION"),
    ")"
);

pub mod admin;
pub mod api;
pub mod cli;
pub mod config;
pub mod endpoint;
pub mod exports;
pub mod metrics;
pub mod modsetup;
pub mod notify;
pub mod reload;
pub mod route_test;
pub mod router;
pub mod rpc;
pub mod script_scan;
pub mod server;
pub mod stubs;
pub mod tm;
pub mod trace;
pub mod transport;
