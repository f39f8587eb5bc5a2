//! Locally generated replies (RFC 3261 8.2.6, 16.7; RFC 3581): [`build`] and the stable
//! [`ToTag`] a stateless server uses so retransmissions get the same To tag.

use std::net::SocketAddr;

use super::edit::push_line;
use super::header::HeaderKind;
use super::message::{Message, ViaReplyParams};
use super::name_addr::tag_of;
use super::params::{find_outside_quotes, is_lws, trim_lws_end, trim_lws_start};
use super::text::{Decimal, IpText};
use super::via::Via;

/// Write a reply to `req` into `out`: status line, every Via (the top one gets `received` and a
/// filled-in `rport`), From, To (with a tag added when the request's To has none and
/// `code > 100`: `to_tag`, else [`ToTag::for_request`]), Call-ID, CSeq, `extra_headers` (full
/// lines; CRLF added when missing), `Content-Length: 0`.
///
/// The top Via gets `received=<source ip>` when the source address differs from the sent-by
/// host, or always when it carries an empty `rport` (RFC 3581 4), which is filled with the
/// source port. CR and LF are removed from `reason`.
///
/// `rcv_src` is the source address, or a [`ReplySource`] saying that the script called
/// `force_rport()`: then a top Via without `rport` gets `;rport=<source port>` (and `received`
/// only when the source address differs from the sent-by host), as Kamailio does.
///
/// ```
/// use kemi_runtime::sip::{reply, Message};
/// let req = Message::parse("OPTIONS sip:b SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;rport;branch=z9hG4bK1\r\n\
///     From: <sip:a@x>;tag=1\r\nTo: <sip:b@y>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n".into()).unwrap();
/// let mut out = Vec::new();
/// let src: std::net::SocketAddr = "192.0.2.1:5062".parse().unwrap();
/// reply::build(&req, 200, "OK", Some("t"), &[], src, &mut out);
/// assert_eq!(String::from_utf8(out).unwrap(), "SIP/2.0 200 OK\r\n\
///     Via: SIP/2.0/UDP 10.0.0.1;rport=5062;branch=z9hG4bK1;received=192.0.2.1\r\n\
///     From: <sip:a@x>;tag=1\r\nTo: <sip:b@y>;tag=t\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n");
/// ```
pub fn build(
    req: &Message,
    code: u16,
    reason: &str,
    to_tag: Option<&str>,
    extra_headers: &[String],
    rcv_src: impl Into<ReplySource>,
    out: &mut Vec<u8>,
) {
    let rcv_src = rcv_src.into();
    out.reserve(512);
    out.extend_from_slice(b"SIP/2.0 ");
    out.extend_from_slice(Decimal::new(u64::from(code)).as_bytes());
    out.push(b' ');
    if reason.bytes().any(|c| c == b'\r' || c == b'\n') {
        out.extend(reason.bytes().filter(|c| *c != b'\r' && *c != b'\n'));
    } else {
        out.extend_from_slice(reason.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    let mut first_via = true;
    // Whether the (first) To header has a tag: parsed once, when the first To is written.
    let mut to_has_tag = None;
    // Straight from the index: only the copied kinds need their text.
    for h in &req.index().headers {
        let kind = h.kind;
        if !matches!(
            kind,
            HeaderKind::Via
                | HeaderKind::From
                | HeaderKind::To
                | HeaderKind::CallId
                | HeaderKind::CSeq
        ) {
            continue;
        }
        let value = req.span_text(h.value);
        match kind {
            HeaderKind::Via if first_via => {
                first_via = false;
                out.extend_from_slice(b"Via: ");
                // Where parsing split the first value off (the same `,` as searching for
                // it here), else search.
                let split = req
                    .top_via_elem_end()
                    .and_then(|end| end.checked_sub(req.offset_of(value)?));
                let split = match split.filter(|&at| at <= value.len()) {
                    Some(at) if at == value.len() => None,
                    Some(at) => Some(at),
                    None => find_outside_quotes(value, b','),
                };
                let (top, rest) = match split {
                    Some(c) => (
                        value.get(..c).unwrap_or_default(),
                        value.get(c..).unwrap_or_default(),
                    ),
                    None => (value, ""),
                };
                match cached_top_via(req, top) {
                    Some((via, params)) => write_via(req, out, &via, params, rcv_src),
                    None => write_top_via(req, out, trim_lws_end(top), rcv_src),
                }
                out.extend_from_slice(req.wire(rest));
                out.extend_from_slice(b"\r\n");
            }
            HeaderKind::Via | HeaderKind::From | HeaderKind::CallId | HeaderKind::CSeq => {
                out.extend_from_slice(kind.name().as_bytes());
                out.extend_from_slice(b": ");
                out.extend_from_slice(req.wire(value));
                out.extend_from_slice(b"\r\n");
            }
            HeaderKind::To => {
                out.extend_from_slice(b"To: ");
                out.extend_from_slice(req.wire(value));
                // The first To is this one: what `req.to_hdr()` would parse.
                let has_tag = *to_has_tag.get_or_insert_with(|| tag_of(value).is_some());
                if code > 100 && !has_tag {
                    out.extend_from_slice(b";tag=");
                    match to_tag {
                        Some(t) => out.extend_from_slice(t.as_bytes()),
                        None => out.extend_from_slice(ToTag::for_request(req).as_str().as_bytes()),
                    }
                }
                out.extend_from_slice(b"\r\n");
            }
            _ => {}
        }
    }
    for line in extra_headers {
        push_line(out, line);
    }
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
}

/// Where a request came from, as a reply's top Via stamp needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplySource {
    /// The source address of the request.
    pub addr: SocketAddr,
    /// `force_rport()` was called: add `rport=<source port>` even when the Via has no `rport`.
    pub force_rport: bool,
}

impl From<SocketAddr> for ReplySource {
    fn from(addr: SocketAddr) -> ReplySource {
        ReplySource {
            addr,
            force_rport: false,
        }
    }
}

/// The message's cached top Via when it is exactly what parsing `trim_lws_end(top)` gives: it
/// parsed, and `top` ends with its value plus LWS only. Only SIP's LWS (space, tab, CR, LF) is
/// trimmed, as the parser does: another byte (a form feed, a Unicode space) is part of the
/// value and must come back in the reply.
fn cached_top_via<'m>(req: &'m Message, top: &str) -> Option<(Via<'m>, ViaReplyParams)> {
    let via = req.top_via()?.ok()?;
    let params = req.top_via_reply_params()?;
    let end = (via.raw.as_ptr() as usize + via.raw.len()).checked_sub(top.as_ptr() as usize)?;
    let tail = top.as_bytes().get(end..)?;
    tail.iter().all(|c| is_lws(*c)).then_some((via, params))
}

/// The top Via value with `rport` filled in and `received` added as RFC 3261 18.2.1 and
/// RFC 3581 4 ask. A Via that does not parse is copied unchanged.
fn write_top_via(req: &Message, out: &mut Vec<u8>, top: &str, src: ReplySource) {
    let Ok(via) = Via::parse(top) else {
        out.extend_from_slice(req.wire(trim_lws_start(top)));
        return;
    };
    let raw = via.raw;
    let mut params = ViaReplyParams {
        empty_rport_end: None,
        has_received: false,
    };
    for p in via.params.iter() {
        if params.empty_rport_end.is_none()
            && p.value.is_none()
            && p.name.eq_ignore_ascii_case("rport")
        {
            // Offset of the param name inside `raw`: both borrow from the same string.
            params.empty_rport_end = Some(
                (p.name.as_ptr() as usize).saturating_sub(raw.as_ptr() as usize) + p.name.len(),
            );
        }
        if !params.has_received && p.name.eq_ignore_ascii_case("received") {
            params.has_received = true;
        }
    }
    write_via(req, out, &via, params, src);
}

/// A parsed top Via with `rport` filled in and `received` added, given what its params say.
/// With `force_rport` and no `rport` param, `;rport=<port>` is appended (before `received`).
/// The Via's text is `req`'s, written as received ([`Message::wire`]).
fn write_via(
    req: &Message,
    out: &mut Vec<u8>,
    via: &Via<'_>,
    params: ViaReplyParams,
    src: ReplySource,
) {
    let ReplySource {
        addr: src,
        force_rport,
    } = src;
    let raw = via.raw;
    let ip = IpText::new(src.ip());
    let add_received = !params.has_received
        && (params.empty_rport_end.is_some() || !ip.is_host(src.ip(), via.host_unbracketed()));
    let append_rport = force_rport && params.empty_rport_end.is_none() && via.rport().is_none();
    match params.empty_rport_end {
        Some(at) => {
            let (head, tail) = (
                raw.get(..at).unwrap_or(raw),
                raw.get(at..).unwrap_or_default(),
            );
            out.extend_from_slice(req.wire(head));
            out.push(b'=');
            out.extend_from_slice(Decimal::new(u64::from(src.port())).as_bytes());
            out.extend_from_slice(req.wire(tail));
        }
        None => out.extend_from_slice(req.wire(raw)),
    }
    if append_rport {
        out.extend_from_slice(b";rport=");
        out.extend_from_slice(Decimal::new(u64::from(src.port())).as_bytes());
    }
    if add_received {
        out.extend_from_slice(b";received=");
        out.extend_from_slice(ip.as_bytes());
    }
}

/// A To tag derived from (Call-ID, From tag, top Via branch) by a fast 64-bit hash: the same
/// request and its retransmissions get the same tag, without keeping state. Not cryptographic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ToTag([u8; 16]);

impl ToTag {
    /// Derive a tag from the three transaction identifiers: a 64-bit multiply-xor hash over
    /// 8-byte words (each part's length mixed in, so ("ab","c") and ("a","bc") differ), a
    /// final avalanche, 16 hex digits by table.
    pub fn new(call_id: &str, from_tag: &str, branch: &str) -> ToTag {
        ToTag::from_bytes(call_id.as_bytes(), from_tag.as_bytes(), branch.as_bytes())
    }

    /// [`ToTag::new`] over bytes.
    fn from_bytes(call_id: &[u8], from_tag: &[u8], branch: &[u8]) -> ToTag {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in [call_id, from_tag, branch] {
            h = mix(h, b.len() as u64);
            let mut words = b.chunks_exact(8);
            for w in &mut words {
                h = mix(
                    h,
                    u64::from_le_bytes(<[u8; 8]>::try_from(w).unwrap_or_default()),
                );
            }
            let rem = words.remainder();
            if !rem.is_empty() {
                h = mix(h, rem.iter().fold(0u64, |w, &c| w << 8 | u64::from(c)));
            }
        }
        // fmix64 (MurmurHash3): every input bit reaches every output digit.
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^= h >> 33;
        let mut tag = [0u8; 16];
        for (i, t) in tag.iter_mut().enumerate() {
            *t = HEX[((h >> (60 - 4 * i)) & 0xf) as usize];
        }
        ToTag(tag)
    }

    /// The tag for a request: missing parts hash as empty. The parts hash as received
    /// ([`Message::wire`]), so two requests that differ only in octets a lossy view shows as
    /// the same substitute get different tags.
    pub fn for_request(req: &Message) -> ToTag {
        ToTag::from_bytes(
            req.wire(req.call_id().unwrap_or("")),
            req.wire(req.from_tag().unwrap_or("")),
            req.wire(req.top_via_branch().unwrap_or("")),
        )
    }

    /// The tag text (16 lower-case hex digits).
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("0")
    }
}

/// One step of the To-tag hash: xor the word in, multiply by an odd constant, fold the high
/// half down.
#[inline]
fn mix(h: u64, w: u64) -> u64 {
    let m = (h ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    m ^ (m >> 29)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(via: &str, src: &str, force_rport: bool) -> String {
        let text = format!(
            "OPTIONS sip:b SIP/2.0\r\nVia: {via}\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@y>\r\n\
             Call-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n"
        );
        let req = Message::parse(text.into_bytes().into()).unwrap();
        let src = ReplySource {
            addr: src.parse().unwrap(),
            force_rport,
        };
        let mut out = Vec::new();
        build(&req, 299, "x", Some("t"), &[], src, &mut out);
        let out = String::from_utf8(out).unwrap();
        out.lines()
            .find(|l| l.starts_with("Via: "))
            .unwrap()
            .to_string()
    }

    #[test]
    fn force_rport_adds_rport_with_the_source_port() {
        // Same IP as sent-by: rport only (Kamailio adds received only when the IP differs).
        assert_eq!(
            reply(
                "SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK1",
                "127.0.0.1:4000",
                true
            ),
            "Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK1;rport=4000"
        );
        // Another IP: rport, then received.
        assert_eq!(
            reply(
                "SIP/2.0/UDP 10.0.0.1:5999;branch=z9hG4bK1",
                "127.0.0.8:4000",
                true
            ),
            "Via: SIP/2.0/UDP 10.0.0.1:5999;branch=z9hG4bK1;rport=4000;received=127.0.0.8"
        );
        // An empty rport is filled in place, never twice.
        assert_eq!(
            reply(
                "SIP/2.0/UDP 127.0.0.1;rport;branch=z9hG4bK1",
                "127.0.0.1:4000",
                true
            ),
            "Via: SIP/2.0/UDP 127.0.0.1;rport=4000;branch=z9hG4bK1;received=127.0.0.1"
        );
        // Second Via values are left alone.
        assert_eq!(
            reply(
                "SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK1, SIP/2.0/UDP h",
                "127.0.0.1:4000",
                true
            ),
            "Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK1;rport=4000, SIP/2.0/UDP h"
        );
    }

    #[test]
    fn without_force_rport_nothing_is_added() {
        assert_eq!(
            reply(
                "SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK1",
                "127.0.0.1:4000",
                false
            ),
            "Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK1"
        );
    }
    /// Found by fuzzing (fuzz/fuzz_targets/sip_message.rs): a top Via ending in a byte that
    /// Rust counts as whitespace but SIP does not (form feed) lost it in the reply, so the
    /// reply's branch was not the request's and the client could not match it.
    #[test]
    fn reply_via_keeps_trailing_bytes_that_are_not_lws() {
        let text = "OPTIONS sip:b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bKx\x0c\r\n\
                    From: <sip:a@x>;tag=1\r\nTo: <sip:b@y>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n";
        let req = Message::parse(text.into()).unwrap();
        assert_eq!(req.top_via_branch(), Some("z9hG4bKx\x0c"));
        let mut out = Vec::new();
        let src: SocketAddr = "192.0.2.1:5062".parse().unwrap();
        build(&req, 480, "x", None, &[], src, &mut out);
        let rep = Message::parse(out.into()).unwrap();
        assert_eq!(rep.top_via_branch(), req.top_via_branch());
        assert_eq!(
            rep.first("via").map(|h| h.value),
            Some("SIP/2.0/TCP h;branch=z9hG4bKx\x0c;received=192.0.2.1")
        );
    }
    /// Found by fuzzing: a top Via with an open quoted string took the reply's `;received`
    /// into its branch. Such a Via does not parse now, and a reply copies it unchanged.
    #[test]
    fn reply_via_with_an_open_quote_is_copied_unchanged() {
        let text = "OPTIONS sip:b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK\"x\r\n\
                    From: <sip:a@x>;tag=1\r\nTo: <sip:b@y>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n";
        let req = Message::parse(text.into()).unwrap();
        let mut out = Vec::new();
        let src: SocketAddr = "192.0.2.1:5062".parse().unwrap();
        build(&req, 480, "x", None, &[], src, &mut out);
        let rep = Message::parse(out.into()).unwrap();
        assert_eq!(
            rep.first("via").map(|h| h.value),
            Some("SIP/2.0/UDP h;branch=z9hG4bK\"x")
        );
    }
}
