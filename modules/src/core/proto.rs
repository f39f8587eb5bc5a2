//! Tests on how the message arrived: transport (`is_UDP` ... `is_proto`), address family of the
//! receiving socket (`is_IPv4`/`is_IPv6`), ports (`is_src_port`/`is_dst_port`), and
//! `force_rport`.

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
