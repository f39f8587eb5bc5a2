//! The `websocket` sub-module (`KSR.websocket.*`), Kamailio's names where they mean something
//! in sipd.
//!
//! sipd answers the WebSocket upgrade itself (`ws:`/`wss:` listeners, RFC 6455/7118): there is
//! no `xhttp` event route, and [`handle_handshake`] only says whether the current message came
//! over a WebSocket, for scripts written for Kamailio that call it. [`close`] and
//! [`close_reason`] close the connection the current message came on once what the message
//! produced (a reply) is sent; the close frame carries code 1000 whatever the script asks.
//! Kamailio's `close_conid` (a connection by id), `connect` and `send` (sipd as a WebSocket
//! client) are not offered: scripts see no connection ids, and sipd opens no WebSocket
//! connections.

use kemi_runtime::msg::{LogLevel, Proto};
use kemi_runtime::{kemi, SipMsg};

fn over_websocket(msg: &SipMsg) -> bool {
    matches!(msg.rcv.proto, Proto::Ws | Proto::Wss)
}

/// `KSR.websocket.handle_handshake()`: 1 when the message came over `ws:`/`wss:` (sipd made
/// the handshake before the first frame), else -1. Kamailio calls it on the HTTP upgrade in
/// `event_route[xhttp:request]`, which sipd never runs.
#[kemi(module = "websocket")]
pub fn handle_handshake(msg: &mut SipMsg) -> i32 {
    if over_websocket(msg) {
        1
    } else {
        -1
    }
}

/// Mark the connection for closing, or log why not.
fn close_impl(msg: &mut SipMsg, what: &str) -> i32 {
    if !over_websocket(msg) {
        msg.log(
            LogLevel::Err,
            &format!("websocket.{what}: the message did not come over a WebSocket"),
        );
        return -1;
    }
    msg.route.close_connection = true;
    1
}

/// `KSR.websocket.close()`: close the connection the message came on (after its reply).
#[kemi(module = "websocket")]
pub fn close(msg: &mut SipMsg) -> i32 {
    close_impl(msg, "close")
}

/// `KSR.websocket.close_reason(code, reason)`: as [`close`]; the close frame sipd sends
/// carries 1000 and no reason.
#[kemi(module = "websocket")]
pub fn close_reason(msg: &mut SipMsg, _code: i32, _reason: &str) -> i32 {
    close_impl(msg, "close_reason")
}
