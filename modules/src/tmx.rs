//! The `tmx` sub-module (`KSR.tmx.*`): which kind of callback is running, and the
//! retransmission pre-check. Everything comes from `msg.tm`, filled by the host.

use kemi_runtime::msg::{TmRoute, TxnMatch};
use kemi_runtime::{kemi, SipMsg};

use crate::tm::truth;

/// 1 when the request is a retransmission of one whose transaction exists (another worker may
/// still be processing it), else -1. ACKs are never retransmissions here.
#[kemi(module = "tmx")]
pub fn t_precheck_trans(msg: &mut SipMsg) -> i32 {
    truth(msg.message.is_request() && msg.tm.lookup == TxnMatch::Retransmission)
}

/// 1 in the request route, else -1.
#[kemi(module = "tmx")]
pub fn t_is_request_route(msg: &mut SipMsg) -> i32 {
    truth(msg.tm.route == TmRoute::Request && msg.message.is_request())
}

/// 1 in an onreply callback (or the core reply route), else -1.
#[kemi(module = "tmx")]
pub fn t_is_reply_route(msg: &mut SipMsg) -> i32 {
    truth(msg.tm.route == TmRoute::Reply || msg.message.is_response())
}

/// 1 in a failure callback, else -1.
#[kemi(module = "tmx")]
pub fn t_is_failure_route(msg: &mut SipMsg) -> i32 {
    truth(msg.tm.route == TmRoute::Failure)
}

/// 1 in a branch callback, else -1.
#[kemi(module = "tmx")]
pub fn t_is_branch_route(msg: &mut SipMsg) -> i32 {
    truth(msg.tm.route == TmRoute::Branch)
}
