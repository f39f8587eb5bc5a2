//! The SIP message parser and every accessor a route reaches: `Message::parse`, the start line,
//! each header (and its unfolded value), top Via, From/To (and their URIs and tags), CSeq,
//! Call-ID, Contact, Max-Forwards, Content-Length, the R-URI parsed as a URI, the RFC 3261
//! required-header check, serialization with edits, and a stateless reply built from it.
#![no_main]

use bytes::Bytes;
use kemi_runtime::sip::{reply, HeaderEdit, HeaderKind, Message, Via};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(m) = Message::parse(Bytes::copy_from_slice(data)) else {
        return;
    };
    let _ = (m.is_request(), m.is_response(), m.start_line(), m.version());
    let _ = (m.method_str(), m.method(), m.status(), m.reason());
    if let Some(Ok(uri)) = m.request_uri() {
        let _ = (uri.kind(), uri.host_unbracketed(), uri.param("transport"));
        let _ = uri.params.iter().count();
        let _ = kemi_runtime::sip::percent_decode(uri.user.unwrap_or_default());
    }
    for h in m.headers() {
        assert!(
            h.line.len() >= h.value.len(),
            "a value lies inside its line"
        );
        let _ = (h.unfolded(), h.is("via"), h.is_folded());
    }
    let _ = m.header(m.header_count());
    let _ = (
        m.first("v"),
        m.header_value("X-Unknown"),
        m.find("to").count(),
    );
    let _ = m.call_id();
    if let Some(Ok(cseq)) = m.cseq() {
        let _ = cseq;
    }
    for na in [m.from_hdr(), m.to_hdr()].into_iter().flatten().flatten() {
        let _ = (
            na.display_unquoted(),
            na.parsed_uri(),
            na.tag(),
            na.is_star(),
        );
        let _ = na.param("expires");
    }
    // The one-pass tag lookup gives what the full name-addr parse gives.
    assert_eq!(
        m.from_tag(),
        m.from_hdr().and_then(|f| f.ok()?.tag()),
        "From tag"
    );
    assert_eq!(m.to_tag(), m.to_hdr().and_then(|t| t.ok()?.tag()), "To tag");

    for c in m.contacts().flatten() {
        let _ = (c.parsed_uri(), c.param("expires"));
    }
    if let Some(Ok(v)) = m.top_via() {
        let _ = (
            v.branch(),
            v.received(),
            v.rport(),
            v.host_unbracketed(),
            v.param("maddr"),
        );
    }
    let _ = m.vias().count();
    let _ = (m.top_via_branch(), m.top_via_rport());
    // The params the one-pass Via check accepted are what the param walk sees.
    for v in m.vias().flatten() {
        assert!(!v.params.has_empty(), "a parsed Via has no empty param");
    }
    if let Some(Ok(v)) = m.top_via() {
        assert_eq!(m.top_via_branch(), v.branch(), "cached branch");
        assert_eq!(m.top_via_rport(), v.rport(), "cached rport");
    }
    let _ = m.list(HeaderKind::Supported).count();
    let _ = (
        m.max_forwards(),
        m.content_length(),
        m.content_type(),
        m.user_agent(),
    );
    let _ = (m.body().len(), m.body_bytes().len(), m.check_required());

    let last = m.header_count().saturating_sub(1);
    let edits = [
        HeaderEdit::Remove(0),
        HeaderEdit::InsertBefore(last, "X-A: 1".into()),
        HeaderEdit::AppendAfter(last, "X-B: 2\r\n".into()),
        HeaderEdit::Prepend("X-C: 3".into()),
        HeaderEdit::Append("X-D: 4".into()),
        HeaderEdit::Remove(last + 5),
    ];
    // Documented equivalences: the Via facts looked up at parse time are the parsed Via's.
    if let Some(Ok(v)) = m.top_via() {
        assert_eq!(m.top_via_branch(), v.branch(), "top_via_branch");
        assert_eq!(m.top_via_rport(), v.rport(), "top_via_rport");
        let first = m.list(HeaderKind::Via).next().map(Via::parse);
        assert_eq!(
            first,
            Some(Ok(v)),
            "the cached top Via is the first Via value parsed"
        );
    }

    // Forwarding without edits keeps the message: it parses again with the same headers.
    let mut out = Vec::new();
    if m.is_request() {
        m.write_request(&mut out, None, &[], None);
    } else {
        m.write_response(&mut out, &[], false);
    }
    let again = Message::parse(Bytes::from(std::mem::take(&mut out)))
        .expect("a message written without edits parses again");
    assert_eq!(again.header_count(), m.header_count());
    for (a, b) in again.headers().zip(m.headers()) {
        assert_eq!((a.name, a.value), (b.name, b.value));
    }
    assert_eq!(again.body(), m.body());

    if m.is_request() {
        // A stateless reply sipd sends parses, and names the request's transaction.
        let src: std::net::SocketAddr = ([192, 0, 2, 1], 5062).into();
        reply::build(&m, 480, "Unavailable", None, &[], src, &mut out);
        let r = Message::parse(Bytes::from(std::mem::take(&mut out)))
            .expect("a stateless reply parses");
        assert_eq!(r.status(), Some(480));
        assert_eq!(r.call_id(), m.call_id());
        assert_eq!(
            r.list(HeaderKind::Via).count(),
            m.list(HeaderKind::Via).count()
        );
        if let Some(Ok(v)) = m.top_via() {
            assert_eq!(r.top_via_branch(), m.top_via_branch(), "reply branch");
            let rv = r
                .top_via()
                .and_then(Result::ok)
                .expect("the reply's top Via parses");
            // A `received` the request already carries stays (sipd's choice); else the
            // source address is added unless the sent-by host is that address.
            if v.received().is_none() {
                assert!(matches!(rv.received(), None | Some("192.0.2.1")));
            }
        }
    }

    if m.is_request() {
        m.write_request(
            &mut out,
            Some("sip:x@example.com"),
            &edits,
            Some("Via: SIP/2.0/UDP p"),
        );
        out.clear();
        let src: std::net::SocketAddr = ([192, 0, 2, 1], 5062).into();
        let extra = ["X-E: 5".to_string()];
        reply::build(&m, 486, "Busy\r\nHere", Some("t1"), &extra, src, &mut out);
        out.clear();
        let _ = reply::ToTag::for_request(&m);
    } else {
        m.write_response(&mut out, &edits, true);
    }
});
