//! Transaction facts for failure and onreply callbacks (`t_is_canceled`, `t_branch_timeout`,
//! `t_check_status`, ...), the final-response timers (`t_set_fr`, `t_reset_fr`) and
//! `t_drop_replies`. The host fills the facts in `msg.tm` before the callback runs.

use kemi_runtime::msg::{LogLevel, TmRoute};
use kemi_runtime::{kemi, SipMsg};

use super::truth;
use crate::textops::regex_cache::{self, Flavor};

/// 1 when the transaction was canceled (a CANCEL arrived), else -1.
#[kemi(module = "tm")]
pub fn t_is_canceled(msg: &mut SipMsg) -> i32 {
    truth(msg.tm.canceled)
}

/// In a failure callback: 1 when the failed branch timed out, else -1.
#[kemi(module = "tm")]
pub fn t_branch_timeout(msg: &mut SipMsg) -> i32 {
    truth(msg.tm.branch_timeout)
}

/// In a failure callback: 1 when the failed branch received a reply, else -1.
#[kemi(module = "tm")]
pub fn t_branch_replied(msg: &mut SipMsg) -> i32 {
    truth(msg.tm.branch_replied)
}

/// 1 when any branch of the transaction timed out, else -1.
#[kemi(module = "tm")]
pub fn t_any_timeout(msg: &mut SipMsg) -> i32 {
    truth(msg.tm.any_timeout)
}

/// 1 when any branch of the transaction received a reply, else -1.
#[kemi(module = "tm")]
pub fn t_any_replied(msg: &mut SipMsg) -> i32 {
    truth(msg.tm.any_replied)
}

/// The status code in question: the reply's in an onreply callback, the winning reply's in a
/// failure callback, the one sent upstream otherwise.
fn current_status(msg: &SipMsg) -> Option<u16> {
    match msg.tm.route {
        TmRoute::Reply => msg.message.status(),
        TmRoute::Failure | TmRoute::BranchFailure => msg.tm.reply_code,
        _ => msg
            .message
            .status()
            .or((msg.tm.status != 0).then_some(msg.tm.status)),
    }
}

/// 1 when the status code (see `current_status`) matches the regular expression `expr`
/// (`"4[0-9][0-9]"`), else -1.
#[kemi(module = "tm")]
pub fn t_check_status(msg: &mut SipMsg, expr: &str) -> i32 {
    let Some(code) = current_status(msg) else {
        return -1;
    };
    match regex_cache::compile(expr, Flavor::PLAIN) {
        Ok(re) => truth(re.is_match(code.to_string().as_bytes())),
        Err(e) => {
            msg.log(
                LogLevel::Err,
                &format!("t_check_status: bad regex [{expr}]: {e}"),
            );
            -1
        }
    }
}

/// The status code the transaction sent upstream (in failure callbacks: the winning reply's),
/// or -1 when there is no transaction.
#[kemi(module = "tm")]
pub fn t_get_status_code(msg: &mut SipMsg) -> i32 {
    match msg.tm.route {
        TmRoute::Failure | TmRoute::BranchFailure => msg.tm.reply_code.map_or(-1, i32::from),
        _ if msg.tm.exists => i32::from(msg.tm.status),
        _ => -1,
    }
}

/// The index of the branch a branch/onreply/branch-failure callback runs for, else -1.
#[kemi(module = "tm")]
pub fn t_get_branch_index(msg: &mut SipMsg) -> i32 {
    msg.tm
        .branch_index
        .and_then(|i| i32::try_from(i).ok())
        .unwrap_or(-1)
}

fn ms(v: i32) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

/// Set the final-response timeouts of this transaction, in ms: `fr_inv` for INVITE branches
/// after a provisional reply, `fr` until then and for other methods; 0 keeps the default.
#[kemi(module = "tm")]
pub fn t_set_fr(msg: &mut SipMsg, fr_inv: i32, fr: i32) -> i32 {
    msg.tm.fr_ms = Some((ms(fr_inv), ms(fr)));
    1
}

/// Set only the INVITE final-response timeout (ms), as `t_set_fr(fr_inv, 0)`.
#[kemi(module = "tm")]
pub fn t_set_fr_inv(msg: &mut SipMsg, fr_inv: i32) -> i32 {
    let fr = msg.tm.fr_ms.map_or(0, |(_, fr)| fr);
    msg.tm.fr_ms = Some((ms(fr_inv), fr));
    1
}

/// Back to the configured final-response timeouts.
#[kemi(module = "tm")]
pub fn t_reset_fr(msg: &mut SipMsg) -> i32 {
    msg.tm.fr_ms = None;
    msg.tm.fr_reset = true;
    1
}

/// In a failure callback: forget the replies received so far, so a later `t_reply` or new
/// branch decides alone. `mode` is accepted as Kamailio's (all modes drop everything here).
#[kemi(module = "tm")]
pub fn t_drop_replies(msg: &mut SipMsg, mode: &str) -> i32 {
    let _ = mode;
    msg.tm.drop_replies = true;
    1
}

/// `t_drop_replies("a")`.
#[kemi(module = "tm")]
pub fn t_drop_replies_all(msg: &mut SipMsg) -> i32 {
    msg.tm.drop_replies = true;
    1
}

/// Keep the header edits made so far for branches created later. sipd builds every branch
/// from the request route's edits plus the failure callback's own, so this only returns 1.
#[kemi(module = "tm")]
pub fn t_save_lumps(msg: &mut SipMsg) -> i32 {
    let _ = msg;
    1
}
