//! Message flags (`setflag`), branch flags (`setbflag`, `setbiflag`) and script flags
//! (`setsflag`). Flags are bits 0..63; any other number gives `false` and logs an error.
//!
//! Only branch 0 (the R-URI branch) exists until branching lands: the `*biflag` functions
//! return `false` for any other branch.

use kemi_runtime::msg::LogLevel;
use kemi_runtime::{kemi, SipMsg};

/// The bit of `flag`, or `None` (after logging) when it is outside 0..63.
fn bit(msg: &mut SipMsg, flag: i32) -> Option<u64> {
    match u32::try_from(flag) {
        Ok(f) if f < 64 => Some(1u64 << f),
        _ => {
            msg.log(LogLevel::Err, &format!("invalid flag parameter {flag}"));
            None
        }
    }
}

/// The branch-flag word of `branch`, or `None` when that branch does not exist.
fn branch_flags(msg: &mut SipMsg, branch: i32) -> Option<&mut u64> {
    (branch == 0).then_some(&mut msg.route.bflags)
}

/// Set message flag `flag` (0..63). Returns false for a flag out of range.
#[kemi]
pub fn setflag(msg: &mut SipMsg, flag: i32) -> bool {
    bit(msg, flag).map(|b| msg.route.flags |= b).is_some()
}

/// Clear message flag `flag` (0..63). Returns false for a flag out of range.
#[kemi]
pub fn resetflag(msg: &mut SipMsg, flag: i32) -> bool {
    bit(msg, flag).map(|b| msg.route.flags &= !b).is_some()
}

/// True when message flag `flag` (0..63) is set.
#[kemi]
pub fn isflagset(msg: &mut SipMsg, flag: i32) -> bool {
    bit(msg, flag).is_some_and(|b| msg.route.flags & b != 0)
}

/// Set branch flag `flag` (0..63) of branch `branch`. Returns false for a flag out of range or
/// a branch that does not exist (only branch 0 exists for now).
#[kemi]
pub fn setbiflag(msg: &mut SipMsg, flag: i32, branch: i32) -> bool {
    let Some(b) = bit(msg, flag) else {
        return false;
    };
    branch_flags(msg, branch).map(|f| *f |= b).is_some()
}

/// Clear branch flag `flag` (0..63) of branch `branch`. Returns false for a flag out of range
/// or a branch that does not exist (only branch 0 exists for now).
#[kemi]
pub fn resetbiflag(msg: &mut SipMsg, flag: i32, branch: i32) -> bool {
    let Some(b) = bit(msg, flag) else {
        return false;
    };
    branch_flags(msg, branch).map(|f| *f &= !b).is_some()
}

/// True when branch flag `flag` (0..63) of branch `branch` is set (only branch 0 exists for
/// now).
#[kemi]
pub fn isbiflagset(msg: &mut SipMsg, flag: i32, branch: i32) -> bool {
    let Some(b) = bit(msg, flag) else {
        return false;
    };
    branch_flags(msg, branch).is_some_and(|f| *f & b != 0)
}

/// Set branch flag `flag` (0..63) of branch 0. Returns false for a flag out of range.
#[kemi]
pub fn setbflag(msg: &mut SipMsg, flag: i32) -> bool {
    setbiflag(msg, flag, 0)
}

/// Clear branch flag `flag` (0..63) of branch 0. Returns false for a flag out of range.
#[kemi]
pub fn resetbflag(msg: &mut SipMsg, flag: i32) -> bool {
    resetbiflag(msg, flag, 0)
}

/// True when branch flag `flag` (0..63) of branch 0 is set.
#[kemi]
pub fn isbflagset(msg: &mut SipMsg, flag: i32) -> bool {
    isbiflagset(msg, flag, 0)
}

/// Set script flag `flag` (0..63). Script flags start cleared in every callback. Returns false
/// for a flag out of range.
#[kemi]
pub fn setsflag(msg: &mut SipMsg, flag: i32) -> bool {
    bit(msg, flag).map(|b| msg.route.sflags |= b).is_some()
}

/// Clear script flag `flag` (0..63). Returns false for a flag out of range.
#[kemi]
pub fn resetsflag(msg: &mut SipMsg, flag: i32) -> bool {
    bit(msg, flag).map(|b| msg.route.sflags &= !b).is_some()
}

/// True when script flag `flag` (0..63) is set.
#[kemi]
pub fn issflagset(msg: &mut SipMsg, flag: i32) -> bool {
    bit(msg, flag).is_some_and(|b| msg.route.sflags & b != 0)
}
