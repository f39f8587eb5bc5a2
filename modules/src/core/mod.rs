//! The core sub-module (`KSR.<fn>`, module name `""`).
//!
//! Split by job: [`log`] (log lines, `set_drop`, `get_debug`), [`flags`] (message, branch and
//! script flags), [`method`] (`is_method*`, `is_<METHOD>`), [`proto`] (transport, address family
//! and port tests, `force_rport`), [`uri`] (R-URI and destination URI setters) and [`myself`]
//! (`is_myself*`). What needs the network or transactions (`forward*`, `to_*`,
//! `set_advertised_*`, tcp aliases, `route`) is not here.

pub mod flags;
pub mod forward;
pub mod log;
pub mod method;
pub mod myself;
pub mod proto;
pub mod uri;
