//! Stateful replies: `t_reply`, `t_send_reply`, `t_reply_error`. The reply is built here like a
//! stateless one (RFC 3261 8.2.6, with a To tag stable across retransmissions) and queued in
//! `msg.tm.replies`; the host sends it through the server transaction, which keeps it for
//! retransmissions and runs the transaction's timers.

use kemi_runtime::msg::{LogLevel, Reply, TmRoute};
use kemi_runtime::{kemi, SipMsg};

use crate::view;

/// Why no reply was queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TReplyError {
    /// The message is a reply, or an ACK.
    #[error("cannot reply to a reply or an ACK")]
    NotReplyable,
    /// The code is outside 100..=699.
    #[error("invalid reply code {0}")]
    BadCode(i32),
    /// No transaction exists (t_reply needs one: t_newtran or t_relay first).
    #[error("no transaction for this request")]
    NoTransaction,
    /// Branch and onreply callbacks cannot reply.
    #[error("not allowed in this callback")]
    WrongRoute,
}

/// Build and queue the reply (`create`: start a transaction when none exists).
pub(crate) fn queue(
    msg: &mut SipMsg,
    code: i32,
    reason: &str,
    create: bool,
) -> Result<(), TReplyError> {
    if !msg.message.is_request() || view::method(&msg.message) == Some("ACK") {
        return Err(TReplyError::NotReplyable);
    }
    if matches!(msg.tm.route, TmRoute::Branch | TmRoute::Reply) {
        return Err(TReplyError::WrongRoute);
    }
    let code = u16::try_from(code)
        .ok()
        .filter(|c| (100..=699).contains(c))
        .ok_or(TReplyError::BadCode(code))?;
    if !msg.tm.exists {
        if !create {
            return Err(TReplyError::NoTransaction);
        }
        msg.tm.exists = true;
        msg.tm.new_tran = true;
    }
    let wire = msg.local_reply_wire(code, reason);
    msg.tm.replies.push(Reply {
        code,
        reason: reason.replace(['\r', '\n'], ""),
        wire,
    });
    Ok(())
}

fn send(msg: &mut SipMsg, code: i32, reason: &str, create: bool) -> i32 {
    match queue(msg, code, reason, create) {
        Ok(()) => 1,
        Err(e) => {
            msg.log(LogLevel::Err, &format!("t_reply: {e}"));
            -1
        }
    }
}

/// Reply `code` `reason` through the transaction (created by `t_newtran`/`t_relay`, or the one
/// a failure callback runs for). Returns 1, or -1 when there is no transaction, the message is
/// an ACK or a reply, or the code is outside 100..699.
#[kemi(module = "tm")]
pub fn t_reply(msg: &mut SipMsg, code: i32, reason: &str) -> i32 {
    send(msg, code, reason, false)
}

/// Like `t_reply`, creating the transaction first when there is none.
#[kemi(module = "tm")]
pub fn t_send_reply(msg: &mut SipMsg, code: i32, reason: &str) -> i32 {
    send(msg, code, reason, true)
}

/// Reply `500 Server Internal Error` through the transaction. Returns 1 or -1 as `t_reply`.
#[kemi(module = "tm")]
pub fn t_reply_error(msg: &mut SipMsg) -> i32 {
    send(msg, 500, "Server Internal Error", false)
}
