//! `KSR.kx.*` getters of transport facts: where the message came from (`get_srcip`,
//! `get_srcport`, `get_srcuri`, `get_srcaddr_sock`), the local socket that received it
//! (`get_rcvip`, `get_rcvport`, `get_rcvaddr_sock`, `get_rcvadv*`) and the protocol.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use kemi_runtime::msg::Proto;
use kemi_runtime::{kemi, SipMsg, Xval};

/// `host:port` with IPv6 addresses in brackets.
fn push_hostport(out: &mut String, addr: SocketAddr) {
    let _ = match addr.ip() {
        IpAddr::V4(ip) => write!(out, "{ip}:{}", addr.port()),
        IpAddr::V6(ip) => write!(out, "[{ip}]:{}", addr.port()),
    };
}

/// `proto:host:port`, Kamailio's socket string.
fn sock_str(proto: Proto, addr: SocketAddr) -> String {
    let mut out = String::with_capacity(48);
    out.push_str(proto.as_str());
    out.push(':');
    push_hostport(&mut out, addr);
    out
}

/// The source IP address (`$si`), IPv6 without brackets.
#[kemi(module = "kx")]
pub fn get_srcip(msg: &mut SipMsg) -> Xval {
    Xval::Str(msg.rcv.src.ip().to_string())
}

/// The source port (`$sp`), an integer.
#[kemi(module = "kx")]
pub fn get_srcport(msg: &mut SipMsg) -> Xval {
    Xval::Int(msg.rcv.src.port().into())
}

/// The source as a SIP URI (`$su`): `sip:192.0.2.1:5060`, with `;transport=tcp` (`tls`,
/// `sctp`, `ws`) when not UDP.
#[kemi(module = "kx")]
pub fn get_srcuri(msg: &mut SipMsg) -> Xval {
    let mut out = String::with_capacity(64);
    out.push_str("sip:");
    push_hostport(&mut out, msg.rcv.src);
    let transport = match msg.rcv.proto {
        Proto::Udp => None,
        Proto::Ws | Proto::Wss => Some("ws"),
        p => Some(p.as_str()),
    };
    if let Some(t) = transport {
        out.push_str(";transport=");
        out.push_str(t);
    }
    Xval::Str(out)
}

/// The source as a socket string (`$sas`): `udp:192.0.2.1:5060`.
#[kemi(module = "kx")]
pub fn get_srcaddr_sock(msg: &mut SipMsg) -> Xval {
    Xval::Str(sock_str(msg.rcv.proto, msg.rcv.src))
}

/// The IP address of the socket that received the message (`$Ri`).
#[kemi(module = "kx")]
pub fn get_rcvip(msg: &mut SipMsg) -> Xval {
    Xval::Str(msg.rcv.dst.ip().to_string())
}

/// The port of the socket that received the message (`$Rp`), an integer.
#[kemi(module = "kx")]
pub fn get_rcvport(msg: &mut SipMsg) -> Xval {
    Xval::Int(msg.rcv.dst.port().into())
}

/// The advertised IP address of the receiving socket. sipd has no advertised addresses, so
/// this is the socket's own address, as in Kamailio when none is configured.
#[kemi(module = "kx")]
pub fn get_rcvadvip(msg: &mut SipMsg) -> Xval {
    get_rcvip(msg)
}

/// The advertised port of the receiving socket: the socket's own port (see `get_rcvadvip`).
#[kemi(module = "kx")]
pub fn get_rcvadvport(msg: &mut SipMsg) -> Xval {
    get_rcvport(msg)
}

/// The receiving socket as a socket string: `udp:198.51.100.1:5060`.
#[kemi(module = "kx")]
pub fn get_rcvaddr_sock(msg: &mut SipMsg) -> Xval {
    Xval::Str(sock_str(msg.rcv.proto, msg.rcv.dst))
}

/// The transport the message came over, lower case (`$pr`): `udp`, `tcp`, `tls`, `sctp`, `ws`,
/// `wss`.
#[kemi(module = "kx")]
pub fn get_proto(msg: &mut SipMsg) -> Xval {
    Xval::str(msg.rcv.proto.as_str())
}

/// The transport as Kamailio's number: 1 UDP, 2 TCP, 3 TLS, 4 SCTP, 5 WS, 6 WSS.
#[kemi(module = "kx")]
pub fn get_protoid(msg: &mut SipMsg) -> i32 {
    i32::from(msg.rcv.proto.number())
}
