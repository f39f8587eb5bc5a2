//! Transaction lookups: `t_check_trans`, `t_newtran`, `t_lookup_request`, `t_lookup_cancel*`,
//! `t_retransmit_reply`, `t_exists`, `t_release`. The host looked the request up before the
//! route ran (`msg.tm.lookup`); these report it with Kamailio's return codes and mark a
//! retransmission for absorption (the host then resends the last reply).

use kemi_runtime::msg::{TmRoute, TxnMatch};
use kemi_runtime::{kemi, SipMsg};

use super::truth;
use crate::view;

/// In the request route: 1 when the request belongs to a transaction that is to be processed
/// further (a CANCEL whose INVITE is known), 0 for a retransmission or an ACK to a negative
/// reply (absorbed: the script should stop), -1 when there is none. In tm callbacks: 1.
#[kemi(module = "tm")]
pub fn t_check_trans(msg: &mut SipMsg) -> i32 {
    if !msg.message.is_request() {
        return -1;
    }
    if msg.tm.route != TmRoute::Request {
        return 1;
    }
    match msg.tm.lookup {
        TxnMatch::Retransmission | TxnMatch::AckToNegative => {
            msg.tm.absorb = true;
            0
        }
        TxnMatch::CancelOfInvite => 1,
        TxnMatch::CancelUnmatched => -1,
        TxnMatch::None => truth(msg.tm.exists),
    }
}

/// Create the transaction for this request without relaying it (replies then go through it).
/// 1 when created, 0 for a retransmission (absorbed), -1 for an ACK or a reply.
#[kemi(module = "tm")]
pub fn t_newtran(msg: &mut SipMsg) -> i32 {
    if !msg.message.is_request() || view::method(&msg.message) == Some("ACK") {
        return -1;
    }
    if msg.tm.route == TmRoute::Request && msg.tm.lookup == TxnMatch::Retransmission {
        msg.tm.absorb = true;
        return 0;
    }
    if !msg.tm.exists {
        msg.tm.exists = true;
        msg.tm.new_tran = true;
    }
    1
}

/// 1 when the request matches an existing transaction (a retransmission), else -1.
#[kemi(module = "tm")]
pub fn t_lookup_request(msg: &mut SipMsg) -> i32 {
    truth(msg.tm.lookup == TxnMatch::Retransmission)
}

/// 1 when the request is a CANCEL whose INVITE transaction exists, else -1.
#[kemi(module = "tm")]
pub fn t_lookup_cancel(msg: &mut SipMsg) -> i32 {
    truth(msg.tm.lookup == TxnMatch::CancelOfInvite)
}

/// `t_lookup_cancel`; `flags` are accepted and ignored.
#[kemi(module = "tm")]
pub fn t_lookup_cancel_flags(msg: &mut SipMsg, flags: i32) -> i32 {
    let _ = flags;
    t_lookup_cancel(msg)
}

/// Resend the last reply of the matching transaction (a retransmission): 1, or -1 when none.
#[kemi(module = "tm")]
pub fn t_retransmit_reply(msg: &mut SipMsg) -> i32 {
    if msg.tm.lookup == TxnMatch::Retransmission {
        msg.tm.absorb = true;
        1
    } else {
        -1
    }
}

/// 1 when a transaction exists for this message (looked up, created, or the callback's own).
#[kemi(module = "tm")]
pub fn t_exists(msg: &mut SipMsg) -> i32 {
    truth(msg.tm.exists || msg.tm.lookup == TxnMatch::Retransmission)
}

/// Release the transaction early. sipd's transactions end on their own timers, so this only
/// reports whether one exists: 1, or -1.
#[kemi(module = "tm")]
pub fn t_release(msg: &mut SipMsg) -> i32 {
    t_exists(msg)
}
