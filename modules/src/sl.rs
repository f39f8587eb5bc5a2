//! The `sl` sub-module (`KSR.sl.*`): stateless replies.
//!
//! A reply is built from the request as RFC 3261 §8.2.6 says (Vias with `received`/`rport` from
//! where the request came, From, To with a local tag, Call-ID, CSeq, the lines added by
//! `hdr.append_to_reply`, `Server`, `Content-Length: 0`) and queued in `msg.outbox` as an
//! [`Action::Reply`]; the host sends it back over the socket the request arrived on.

use kemi_runtime::msg::{Action, LogLevel, Reply};
use kemi_runtime::{kemi, SipMsg};

use crate::view;

/// Why no reply was queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// The message is a reply, which is never answered.
    #[error("cannot reply to a reply")]
    NotARequest,
    /// ACKs are never answered.
    #[error("cannot reply to an ACK")]
    Ack,
    /// The status code is outside 100..=699.
    #[error("invalid reply code {0}")]
    BadCode(i32),
}

/// Build the reply and queue it.
fn queue_reply(msg: &mut SipMsg, code: i32, reason: &str) -> Result<(), ReplyError> {
    if !msg.message.is_request() {
        return Err(ReplyError::NotARequest);
    }
    if view::method(&msg.message) == Some("ACK") {
        return Err(ReplyError::Ack);
    }
    let code = u16::try_from(code)
        .ok()
        .filter(|c| (100..=699).contains(c))
        .ok_or(ReplyError::BadCode(code))?;
    let wire = msg.local_reply_wire(code, reason);
    let reason = if reason.bytes().any(|c| c == b'\r' || c == b'\n') {
        reason.replace(['\r', '\n'], "")
    } else {
        reason.to_owned()
    };
    msg.outbox.push(Action::Reply(Reply { code, reason, wire }));
    Ok(())
}

/// Queue the reply, logging and mapping a failure to -1.
fn send(msg: &mut SipMsg, code: i32, reason: &str) -> i32 {
    match queue_reply(msg, code, reason) {
        Ok(()) => 1,
        Err(e) => {
            msg.log(LogLevel::Err, &format!("stateless reply failed: {e}"));
            -1
        }
    }
}

/// Send a stateless reply `code` `reason` (`KSR.sl.sl_send_reply(404, "Not Found")`). Returns 1,
/// or -1 when the message is an ACK or a reply, or `code` is outside 100..699.
#[kemi(module = "sl")]
pub fn sl_send_reply(msg: &mut SipMsg, code: i32, reason: &str) -> i32 {
    send(msg, code, reason)
}

/// Send a reply `code` `reason`: through the transaction when one exists (`t_newtran`,
/// `t_relay`, a matched retransmission), else statelessly, as Kamailio's `sl.send_reply`.
/// Returns 1, or -1 when the message is an ACK or a reply, or `code` is outside 100..699.
#[kemi(module = "sl")]
pub fn send_reply(msg: &mut SipMsg, code: i32, reason: &str) -> i32 {
    if msg.tm.exists {
        return match crate::tm::reply::queue(msg, code, reason, false) {
            Ok(()) => 1,
            Err(e) => {
                msg.log(LogLevel::Err, &format!("send_reply: {e}"));
                -1
            }
        };
    }
    send(msg, code, reason)
}

/// Whether a final reply to this request is already queued (by a module that answers itself,
/// such as `registrar.save` or `auth_challenge`).
fn final_reply_queued(msg: &SipMsg) -> bool {
    let queued = |r: &Reply| r.code >= 200;
    msg.outbox
        .iter()
        .any(|a| matches!(a, Action::Reply(r) if queued(r)))
        || msg.tm.replies.iter().any(queued)
}

/// Like `send_reply`, with `mode` flags for the connection (1: do not open a new connection,
/// 2: close the connection after sending). The flags are accepted but not yet applied: sipd
/// does not manage stream connections per reply yet.
#[kemi(module = "sl")]
pub fn send_reply_mode(msg: &mut SipMsg, code: i32, reason: &str, mode: i32) -> i32 {
    let _ = mode;
    send(msg, code, reason)
}

/// Reply with the error of the last failed internal operation: `500 Server Internal Error`,
/// unless the failed function already answered (a failed `registrar.save` sends its own 400 or
/// 500, `auth_challenge` its 401/407): a request never gets two final replies. Returns 1, as
/// Kamailio does, even when no reply is sent (ACK).
#[kemi(module = "sl")]
pub fn sl_reply_error(msg: &mut SipMsg) -> i32 {
    if !final_reply_queued(msg) {
        send(msg, 500, "Server Internal Error");
    }
    1
}

/// Like `sl_reply_error`, through the transaction when one exists. Returns 1.
#[kemi(module = "sl")]
pub fn send_reply_error(msg: &mut SipMsg) -> i32 {
    if !final_reply_queued(msg) {
        send_reply(msg, 500, "Server Internal Error");
    }
    1
}
