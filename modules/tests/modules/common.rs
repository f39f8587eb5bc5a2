//! Shared fixtures: real SIP messages, a routing context with a known environment, and calls
//! through the export table.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use kemi_runtime::msg::{Proto, RecvInfo, RouteEnv};
use kemi_runtime::sip::Message;
use kemi_runtime::table::Enabled;
use kemi_runtime::{Arg, ExportTable, KemiRet, SipMsg, Xval};

/// The proxy's own address in every test.
pub const PROXY: &str = "198.51.100.1:5060";
/// Where test requests come from.
pub const CLIENT: &str = "192.0.2.10:5062";

/// An INVITE with the usual headers, two Vias and two X-Multi headers.
pub const INVITE: &str = "INVITE sip:bob@example.com:5080;transport=udp SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.5:5062;rport;branch=z9hG4bK776asdhds\r\n\
Via: SIP/2.0/UDP 10.0.0.4;branch=z9hG4bKold\r\n\
Max-Forwards: 70\r\n\
From: \"Alice\" <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
To: Bob <sip:bob@example.com>\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@10.0.0.5:5062>\r\n\
User-Agent: softphone/1.0\r\n\
X-Multi: one\r\n\
X-Multi: two\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\
\r\n\
v=0\n";

/// A 180 reply to an INVITE.
pub const RINGING: &str = "SIP/2.0 180 Ringing\r\n\
Via: SIP/2.0/UDP 198.51.100.1;branch=z9hG4bKp1\r\n\
From: <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
To: <sip:bob@example.com>;tag=a6c85cf\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Content-Length: 0\r\n\
\r\n";

/// A minimal request with the given method and extra header lines (each ending in CRLF).
pub fn request(method: &str, extra: &str) -> String {
    format!(
        "{method} sip:proxy.example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bK{method}\r\n\
         From: <sip:alice@atlanta.example.com>;tag=1\r\n\
         To: <sip:bob@example.com>\r\n\
         Call-ID: c-{method}\r\n\
         CSeq: 1 {method}\r\n\
         {extra}Content-Length: 0\r\n\r\n"
    )
}

fn env() -> Arc<RouteEnv> {
    static ENV: OnceLock<Arc<RouteEnv>> = OnceLock::new();
    ENV.get_or_init(|| {
        Arc::new(RouteEnv {
            listen: vec![
                (Proto::Udp, PROXY.parse().unwrap_or_else(|_| unreachable!())),
                (Proto::Tcp, PROXY.parse().unwrap_or_else(|_| unreachable!())),
            ],
            aliases: vec!["proxy.example.com".into(), "alias.example.net:5080".into()],
            server_header: Some("sipd test".into()),
            ..RouteEnv::default()
        })
    })
    .clone()
}

/// The test environment with the stateful modules' `services` (set up by the test).
#[allow(dead_code)] // used by the stateful modules' tests as they arrive
pub fn env_with(services: kemi_runtime::services::Services) -> Arc<RouteEnv> {
    let mut e = (*env()).clone();
    e.services = services;
    Arc::new(e)
}

/// A routing context for `text`, received over UDP from [`CLIENT`] on [`PROXY`], logs captured.
pub fn msg(text: &str) -> SipMsg {
    msg_from(text, Proto::Udp, CLIENT)
}

/// A routing context for `text` received over `proto` from `src`.
pub fn msg_from(text: &str, proto: Proto, src: &str) -> SipMsg {
    msg_bytes(text.as_bytes(), proto, src)
}

/// A routing context for a message given as bytes (a head that need not be UTF-8).
pub fn msg_bytes(text: &[u8], proto: Proto, src: &str) -> SipMsg {
    let message = Message::parse(Bytes::copy_from_slice(text))
        .unwrap_or_else(|e| panic!("test message does not parse: {e}"));
    let src: SocketAddr = src
        .parse()
        .unwrap_or_else(|e| panic!("bad address {src}: {e}"));
    let dst: SocketAddr = PROXY.parse().unwrap_or_else(|e| panic!("bad address: {e}"));
    let mut m = SipMsg::new(message, RecvInfo { proto, src, dst }, env());
    m.captured_logs = Some(Vec::new());
    m
}

/// The table of every export of this crate.
pub fn table() -> &'static ExportTable {
    static TABLE: OnceLock<ExportTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        ExportTable::build(
            kemi_runtime::linked_exports(),
            &[&modules::MODULES],
            &Enabled::All,
        )
        .unwrap_or_else(|e| panic!("table does not build: {e}"))
    })
}

/// Call `module.name` through the table.
pub fn call(m: &mut SipMsg, module: &str, name: &str, args: &[Arg<'_>]) -> KemiRet {
    let t = table();
    let slot = t
        .lookup(module, name)
        .unwrap_or_else(|| panic!("no export {module}.{name}"));
    t.call(slot, m, args)
        .unwrap_or_else(|e| panic!("{module}.{name}: {e}"))
}

/// Call a bool export.
pub fn b(m: &mut SipMsg, module: &str, name: &str, args: &[Arg<'_>]) -> bool {
    match call(m, module, name, args) {
        KemiRet::Bool(v) => v,
        other => panic!("{module}.{name} returned {other:?}, not a bool"),
    }
}

/// Call an int export.
pub fn i(m: &mut SipMsg, module: &str, name: &str, args: &[Arg<'_>]) -> i32 {
    match call(m, module, name, args) {
        KemiRet::Int(v) => v,
        other => panic!("{module}.{name} returned {other:?}, not an int"),
    }
}

/// Call an xval export.
pub fn x(m: &mut SipMsg, module: &str, name: &str, args: &[Arg<'_>]) -> Xval {
    match call(m, module, name, args) {
        KemiRet::Xval(v) => v,
        other => panic!("{module}.{name} returned {other:?}, not an xval"),
    }
}

/// `pv.get(name)`.
pub fn pv(m: &mut SipMsg, name: &str) -> Xval {
    x(m, "pv", "get", &[Arg::Str(name)])
}

/// A string xval.
pub fn s(v: &str) -> Xval {
    Xval::Str(v.to_string())
}
