//! Callback names: `t_on_branch`, `t_on_reply`, `t_on_failure`, `t_on_branch_failure` store a
//! global function name (kemi-reference 7.2: resolved by name in whichever worker runs it, an
//! empty name resets), and `t_is_set` tests them by the first letter of its argument.

use kemi_runtime::{kemi, SipMsg};

use super::truth;

/// Which callback slot.
#[derive(Clone, Copy)]
enum Slot {
    Branch,
    Reply,
    Failure,
    BranchFailure,
}

fn set(msg: &mut SipMsg, slot: Slot, name: &str) -> i32 {
    let v = Some(name.to_string());
    match slot {
        Slot::Branch => msg.tm.on_branch = v,
        Slot::Reply => msg.tm.on_reply = v,
        Slot::Failure => msg.tm.on_failure = v,
        Slot::BranchFailure => msg.tm.on_branch_failure = v,
    }
    1
}

/// Run the global function `name` for every branch sent, with the branch request in context.
#[kemi(module = "tm")]
pub fn t_on_branch(msg: &mut SipMsg, name: &str) -> i32 {
    set(msg, Slot::Branch, name)
}

/// Run the global function `name` for every reply received for the transaction.
#[kemi(module = "tm")]
pub fn t_on_reply(msg: &mut SipMsg, name: &str) -> i32 {
    set(msg, Slot::Reply, name)
}

/// Run the global function `name` when every branch failed (negative reply or timeout), with
/// the request in context and `$T_reply_code` set; it may relay again (serial forking).
#[kemi(module = "tm")]
pub fn t_on_failure(msg: &mut SipMsg, name: &str) -> i32 {
    set(msg, Slot::Failure, name)
}

/// Run the global function `name` for each branch that fails.
#[kemi(module = "tm")]
pub fn t_on_branch_failure(msg: &mut SipMsg, name: &str) -> i32 {
    set(msg, Slot::BranchFailure, name)
}

/// 1 when the callback named by `target`'s first letter is set (`b`ranch_route,
/// `f`ailure_route, `o`nreply_route), else -1.
#[kemi(module = "tm")]
pub fn t_is_set(msg: &mut SipMsg, target: &str) -> i32 {
    let slot = match target.as_bytes().first().map(u8::to_ascii_lowercase) {
        Some(b'b') => &msg.tm.on_branch,
        Some(b'f') => &msg.tm.on_failure,
        Some(b'o') => &msg.tm.on_reply,
        _ => return -1,
    };
    truth(slot.as_deref().is_some_and(|n| !n.is_empty()))
}
