//! `KSR.websocket.*`: the handshake is sipd's (handle_handshake only says whether the message
//! came over a WebSocket); close marks the connection of the message, and only a WebSocket one.

use kemi_runtime::msg::Proto;
use kemi_runtime::Arg;

use crate::common::{i, msg_from, INVITE};

#[test]
fn handle_handshake_says_whether_the_message_came_over_a_websocket() {
    let mut ws = msg_from(INVITE, Proto::Ws, "192.0.2.10:40000");
    assert_eq!(i(&mut ws, "websocket", "handle_handshake", &[]), 1);
    let mut wss = msg_from(INVITE, Proto::Wss, "192.0.2.10:40000");
    assert_eq!(i(&mut wss, "websocket", "handle_handshake", &[]), 1);
    let mut udp = msg_from(INVITE, Proto::Udp, "192.0.2.10:5060");
    assert_eq!(i(&mut udp, "websocket", "handle_handshake", &[]), -1);
}

#[test]
fn close_marks_only_a_websocket_connection() {
    let mut ws = msg_from(INVITE, Proto::Wss, "192.0.2.10:40000");
    assert!(!ws.route.close_connection);
    assert_eq!(i(&mut ws, "websocket", "close", &[]), 1);
    assert!(ws.route.close_connection);
    let mut ws = msg_from(INVITE, Proto::Ws, "192.0.2.10:40000");
    let args = [Arg::Int(1001), Arg::Str("going away")];
    assert_eq!(i(&mut ws, "websocket", "close_reason", &args), 1);
    assert!(ws.route.close_connection);
    let mut tcp = msg_from(INVITE, Proto::Tcp, "192.0.2.10:40000");
    assert_eq!(i(&mut tcp, "websocket", "close", &[]), -1);
    assert!(!tcp.route.close_connection);
}
