//! sipd as a library: the command line, the routing pipeline and `route-test`, so tests start it
//! in-process and `main` stays thin.
//!
//! - [`cli`]: argument parsing and the binary's error edge.
//! - [`exports`]: the one place that names the crates with exports and builds the table.
//! - [`router`]: one worker's script engine and the callbacks it runs per message.
//! - [`route_test`]: offline routing of one message, reported as JSON.
//! - [`api`]: the API listing.
//! - [`endpoint`]: `proto:ip:port` parsing.

pub mod api;
pub mod cli;
pub mod endpoint;
pub mod exports;
pub mod route_test;
pub mod router;
