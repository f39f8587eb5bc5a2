//! The `tm` sub-module (`KSR.tm.*`): transaction-stateful relaying and its callbacks.
//!
//! Like every export these do no I/O and keep no transaction table: they read what the host's
//! transaction layer put in [`SipMsg::tm`](kemi_runtime::SipMsg) before the callback ran (the
//! lookup result, the failure facts) and record what the script asks for (a relay, stateful
//! replies, callback names, timeouts); the host (`sipd::tm`) carries it out once the callback
//! returns.
//!
//! - [`relay`]: `t_relay` and its `t_relay_to_*` variants.
//! - [`reply`]: `t_reply`, `t_send_reply`, `t_reply_error`.
//! - [`lookup`]: `t_check_trans`, `t_newtran`, `t_lookup_*`, `t_exists`, `t_release`,
//!   `t_retransmit_reply`.
//! - [`callbacks`]: `t_on_branch`, `t_on_reply`, `t_on_failure`, `t_on_branch_failure`,
//!   `t_is_set`.
//! - [`status`]: failure-route facts (`t_is_canceled`, `t_branch_timeout`, `t_check_status`,
//!   `t_get_status_code`, ...), timers (`t_set_fr`, `t_reset_fr`) and `t_drop_replies`.
//! - [`branch`]: `corex.append_branch*` (extra branches for parallel forking).

pub mod branch;
pub mod callbacks;
pub mod lookup;
pub mod relay;
pub mod reply;
pub mod status;

/// The Kamailio convention for an int result: 1 for true, -1 for false.
pub(crate) fn truth(b: bool) -> i32 {
    if b {
        1
    } else {
        -1
    }
}
