//! Sample SIP messages for the engine test binaries. Kept apart from the test exports, so a
//! binary with exports of its own (`lua_alloc.rs`) can include just this file.
#![allow(dead_code)] // each test binary uses its own part

use kemi_runtime::SipMsg;

/// An `OPTIONS` request.
pub const OPTIONS: &[u8] = b"OPTIONS sip:alice@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK1\r\nFrom: <sip:b@127.0.0.1>;tag=1\r\nTo: <sip:alice@127.0.0.1>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";

/// A `486 Busy Here` reply.
pub const BUSY_REPLY: &[u8] = b"SIP/2.0 486 Busy Here\r\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK1\r\nFrom: <sip:b@127.0.0.1>;tag=1\r\nTo: <sip:alice@127.0.0.1>;tag=2\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";

/// `raw` parsed into a message, logs not captured.
pub fn parse(raw: &'static [u8]) -> SipMsg {
    let message = kemi_runtime::sip::Message::parse(bytes::Bytes::from_static(raw)).expect("parse");
    SipMsg::new(message, Default::default(), Default::default())
}
