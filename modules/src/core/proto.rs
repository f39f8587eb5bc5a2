//! Tests on how the message arrived: transport (`is_UDP` ... `is_proto`), address family of the
//! receiving socket (`is_IPv4`/`is_IPv6`), ports (`is_src_port`/`is_dst_port`),
//! `force_rport`, and the connection flags of replies and forwards (`set_reply_no_connect`,
//! `set_reply_close`, `set_forward_no_connect`, `set_forward_close`).

use kemi_runtime::msg::Proto;
use kemi_runtime::{kemi, SipMsg};

fn arrived_on(msg: &SipMsg, protos: &[Proto]) -> bool {
    protos.contains(&msg.rcv.proto)
}

/// True when the message arrived over UDP.
#[kemi]
#[allow(non_snake_case)]
pub fn is_UDP(msg: &mut SipMsg) -> bool {
    arrived_on(msg, &[Proto::Udp])
}

/// True when the message arrived over TCP (not TLS).
#[kemi]
#[allow(non_snake_case)]
pub fn is_TCP(msg: &mut SipMsg) -> bool {
    arrived_on(msg, &[Proto::Tcp])
}

/// True when the message arrived over a TCP-based transport: TCP, TLS, WS or WSS.
#[kemi]
#[allow(non_snake_case)]
pub fn is_TCPX(msg: &mut SipMsg) -> bool {
    arrived_on(msg, &[Proto::Tcp, Proto::Tls, Proto::Ws, Proto::Wss])
}

/// True when the message arrived over TLS.
#[kemi]
#[allow(non_snake_case)]
pub fn is_TLS(msg: &mut SipMsg) -> bool {
    arrived_on(msg, &[Proto::Tls])
}

/// True when the message arrived over WebSocket (not secure).
#[kemi]
#[allow(non_snake_case)]
pub fn is_WS(msg: &mut SipMsg) -> bool {
    arrived_on(msg, &[Proto::Ws])
}

/// True when the message arrived over secure WebSocket.
#[kemi]
#[allow(non_snake_case)]
pub fn is_WSS(msg: &mut SipMsg) -> bool {
    arrived_on(msg, &[Proto::Wss])
}

/// True when the message arrived over WebSocket, secure or not.
#[kemi]
#[allow(non_snake_case)]
pub fn is_WSX(msg: &mut SipMsg) -> bool {
    arrived_on(msg, &[Proto::Ws, Proto::Wss])
}

/// True when the message arrived over SCTP.
#[kemi]
#[allow(non_snake_case)]
pub fn is_SCTP(msg: &mut SipMsg) -> bool {
    arrived_on(msg, &[Proto::Sctp])
}

/// True when the transport is one of those coded by `letters`: u=UDP, t=TCP, e=TLS, s=SCTP,
/// v=WS, w=WSS (case ignored). `is_proto("ut")` is true for UDP or TCP.
#[kemi]
pub fn is_proto(msg: &mut SipMsg, letters: &str) -> bool {
    letters.bytes().any(|l| {
        let proto = match l.to_ascii_lowercase() {
            b'u' => Proto::Udp,
            b't' => Proto::Tcp,
            b'e' => Proto::Tls,
            b's' => Proto::Sctp,
            b'v' => Proto::Ws,
            b'w' => Proto::Wss,
            _ => return false,
        };
        msg.rcv.proto == proto
    })
}

/// True when the message was received on an IPv4 socket.
#[kemi]
#[allow(non_snake_case)]
pub fn is_IPv4(msg: &mut SipMsg) -> bool {
    msg.rcv.dst.is_ipv4()
}

/// True when the message was received on an IPv6 socket.
#[kemi]
#[allow(non_snake_case)]
pub fn is_IPv6(msg: &mut SipMsg) -> bool {
    msg.rcv.dst.is_ipv6()
}

/// True when the message came from source port `port`.
#[kemi]
pub fn is_src_port(msg: &mut SipMsg, port: i32) -> bool {
    i32::from(msg.rcv.src.port()) == port
}

/// True when the message was received on local port `port`.
#[kemi]
pub fn is_dst_port(msg: &mut SipMsg, port: i32) -> bool {
    i32::from(msg.rcv.dst.port()) == port
}

/// Reply to the source port the request came from, whatever its top Via says (adds `rport`
/// handling as if the client had asked for it, RFC 3581). Always returns true.
#[kemi]
pub fn force_rport(msg: &mut SipMsg) -> bool {
    msg.route.force_rport = true;
    true
}

/// Send replies to this request only over the connection it came on: when that connection is
/// gone, the reply is dropped (with a log line) instead of opening a new one. Always true.
#[kemi]
pub fn set_reply_no_connect(msg: &mut SipMsg) -> bool {
    msg.route.reply_send.no_connect = true;
    true
}

/// Close the connection once a reply to this request has been written. Always true.
#[kemi]
pub fn set_reply_close(msg: &mut SipMsg) -> bool {
    msg.route.reply_send.close = true;
    true
}

/// Forward this message only over an already open connection; never open a new one (the
/// send is dropped with a log line instead). Always true.
#[kemi]
pub fn set_forward_no_connect(msg: &mut SipMsg) -> bool {
    msg.route.forward_send.no_connect = true;
    true
}

/// Close the connection once this message has been forwarded over it. Always true.
#[kemi]
pub fn set_forward_close(msg: &mut SipMsg) -> bool {
    msg.route.forward_send.close = true;
    true
}
