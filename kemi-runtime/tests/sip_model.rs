//! Unit-level tests of the SIP message model through its public API: framing rules, folding,
//! compact names, IPv6, edits serialized byte-exact, replies, and the allocation budget of a
//! parse. The `#[ignore]`d `parse_speed` prints parse timings:
//! `cargo test -p kemi-runtime --release --test sip_model -- --ignored --nocapture`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::SocketAddr;

use bytes::Bytes;
use kemi_runtime::sip::{
    frame_len, percent_decode, reply, reply::ToTag, HeaderEdit, HeaderKind, Message, Method,
    ParseErrorKind as K,
};

/// Counts allocations made by the current thread, so parallel tests do not disturb each other.
struct CountingAlloc;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

fn allocations<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = ALLOCS.with(Cell::get);
    let out = f();
    (out, ALLOCS.with(Cell::get) - before)
}

const INVITE: &str = "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@pc33.atlanta.example.com>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\
\r\n\
v=0\n";

const OPTIONS: &str = "OPTIONS sip:carol@chicago.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKhjhs8ass877\r\n\
Max-Forwards: 70\r\n\
To: <sip:carol@chicago.example.com>\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710\r\n\
CSeq: 63104 OPTIONS\r\n\
Contact: <sip:alice@pc33.atlanta.example.com>\r\n\
Accept: application/sdp\r\n\
Content-Length: 0\r\n\
\r\n";

fn msg(s: &str) -> Message {
    Message::parse(Bytes::copy_from_slice(s.as_bytes())).unwrap_or_else(|e| panic!("{e:?}: {s}"))
}

fn err(s: &str) -> kemi_runtime::sip::ParseError {
    Message::parse(Bytes::copy_from_slice(s.as_bytes()))
        .map(|_| ())
        .expect_err(s)
}

fn src() -> SocketAddr {
    "192.0.2.7:5062".parse().expect("addr")
}

#[test]
fn parse_allocates_only_the_header_index() {
    for text in [INVITE, OPTIONS] {
        let buf = Bytes::from_static(text.as_bytes());
        let (m, n) = allocations(|| Message::parse(buf.clone()));
        let m = m.expect("parse");
        assert_eq!(n, 1, "one Vec of header indexes");
        let (_, n) = allocations(|| {
            let _ = (
                m.call_id(),
                m.cseq(),
                m.from_tag(),
                m.to_hdr(),
                m.max_forwards(),
            );
            m.vias()
                .filter_map(Result::ok)
                .filter_map(|v| v.branch())
                .count()
        });
        assert_eq!(n, 0, "lazy accessors borrow");
    }
}

#[test]
fn accessors_on_a_typical_invite() {
    let m = msg(INVITE);
    assert!(m.is_request());
    assert_eq!(
        (m.method(), m.ruri(), m.version()),
        (
            Some(Method::Invite),
            Some("sip:bob@biloxi.example.com"),
            "SIP/2.0"
        )
    );
    assert_eq!(m.header_count(), 9);
    assert_eq!(
        m.header(1).map(|h| (h.kind, h.value)),
        Some((HeaderKind::MaxForwards, "70"))
    );
    assert_eq!(m.max_forwards(), Some(Ok(70)));
    let cseq = m.cseq().and_then(Result::ok).expect("cseq");
    assert_eq!((cseq.number, cseq.method), (314159, Method::Invite));
    assert_eq!(m.from_tag(), Some("1928301774"));
    assert_eq!(m.to_tag(), None);
    assert_eq!(
        m.to_hdr().and_then(Result::ok).and_then(|t| t.display),
        Some("Bob")
    );
    assert_eq!(m.content_type(), Some("application/sdp"));
    assert_eq!((m.content_length(), m.body()), (Some(4), &b"v=0\n"[..]));
    assert_eq!(
        m.top_via().and_then(Result::ok).and_then(|v| v.rport()),
        Some("")
    );
    assert!(m.check_required().is_ok());
    assert_eq!(
        m.header(2).map(|h| h.line),
        Some("To: Bob <sip:bob@biloxi.example.com>\r\n")
    );
}

#[test]
fn folded_values_span_continuations() {
    let m = msg("OPTIONS sip:a@b SIP/2.0\r\nSubject: one\r\n two\r\n\tthree  \r\nTO :\r\n sip:x@y ;tag = 7\r\n\r\n");
    let s = m.first("Subject").expect("subject");
    assert_eq!(s.value, "one\r\n two\r\n\tthree");
    assert!(s.is_folded());
    assert_eq!(s.unfolded(), "one two three");
    assert_eq!(s.line, "Subject: one\r\n two\r\n\tthree  \r\n");
    let to = m.to_hdr().and_then(Result::ok).expect("to");
    assert_eq!((to.uri, to.tag()), ("sip:x@y", Some("7")));
    assert!(!m.first("to").expect("to").unfolded().contains('\n'));
}

#[test]
fn compact_and_long_names_find_each_other() {
    let m = msg("OPTIONS sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP h1\r\nVIA: SIP/2.0/UDP h2, SIP/2.0/TCP h3\r\ni: c1\r\nX-Foo: 1\r\nx-foo: 2\r\n\r\n");
    assert_eq!(m.find("Via").count(), 2);
    assert_eq!(m.find("v").count(), 2);
    assert_eq!(
        m.vias().map(|v| v.expect("via").host).collect::<Vec<_>>(),
        ["h1", "h2", "h3"]
    );
    assert_eq!(m.call_id(), Some("c1"));
    assert_eq!(m.header_value("call-id"), Some("c1"));
    assert_eq!(
        m.find("X-FOO").map(|h| h.value).collect::<Vec<_>>(),
        ["1", "2"]
    );
    assert!(m.first("x").is_none(), "x is Session-Expires, not X-Foo");
}

#[test]
fn content_length_framing_by_datagram() {
    let head = "MESSAGE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n";
    assert_eq!(
        msg(&format!("{head}l: 3\r\n\r\nabcdef")).body(),
        b"abc",
        "extra bytes ignored"
    );
    assert_eq!(
        msg(&format!("{head}\r\nabcdef")).body(),
        b"abcdef",
        "no CL: rest of datagram"
    );
    assert_eq!(
        msg(&format!("{head}l: 3\r\nContent-Length: 003\r\n\r\nabc")).body(),
        b"abc",
        "equal repeats"
    );
    for bad in [
        "l: 7",
        "l: -1",
        "l: five",
        "l: 3\r\nl: 4",
        "l:",
        "l: 99999999999",
    ] {
        let e = err(&format!("{head}{bad}\r\n\r\nabc"));
        assert_eq!(
            (e.kind(), e.status()),
            (K::ContentLength, Some(400)),
            "{bad}"
        );
    }
}

#[test]
fn start_line_faults() {
    assert_eq!(err("OPTIONS sip:a@b SIP/2.1\r\n\r\n").status(), Some(505));
    assert_eq!(err("OPTIONS sip:a@b SIP/2\r\n\r\n").kind(), K::BadStartLine);
    assert_eq!(err("GET / HTTP/1.1\r\n\r\n").status(), None);
    assert_eq!(err("\x16\x03\x01\x02\x00garbage").status(), None);
    assert_eq!(err("").status(), None);
    assert_eq!(err("\r\n\r\n").status(), None);
    for code in ["099", "700", "20", "2000", "abc"] {
        let e = err(&format!("SIP/2.0 {code} X\r\n\r\n"));
        assert_eq!((e.kind(), e.status()), (K::BadStatusCode, None), "{code}");
    }
    assert_eq!(
        err("SIP/2.0 200 OK\r\nl: x\r\n\r\n").status(),
        None,
        "malformed responses are dropped"
    );
    assert_eq!(
        err("OPTIONS sip:a@b SIP/2.0\r\nNoColon\r\n\r\n").kind(),
        K::BadHeader
    );
    assert_eq!(
        err("OPTIONS sip:a@b SIP/2.0\r\n continued\r\n\r\n").kind(),
        K::BadHeader
    );
    assert_eq!(
        err("OPTIONS sip:a@b SIP/2.0\r\nBad Name: x\r\n\r\n").kind(),
        K::BadHeader
    );
    // Latin-1 in a header value parses (a lossy view, see `non_utf8_heads`); in the request
    // line it is a 400.
    let latin1 = Message::parse(Bytes::from_static(
        b"OPTIONS sip:a@b SIP/2.0\r\nX: \xe9\r\n\r\n",
    ));
    assert!(latin1.is_ok_and(|m| m.is_lossy()));
    // A method that is not a token is not SIP at all (dropped); a bad version is a 400 too.
    for line in [
        &b"OPTIONS sip:jos\xe9@b SIP/2.0"[..],
        b"OPTIONS\xe9 sip:a@b SIP/2.0",
        b"OPTIONS sip:a@b SIP/2.0\xe9",
    ] {
        let mut msg = line.to_vec();
        msg.extend_from_slice(b"\r\nX: 1\r\n\r\n");
        assert!(Message::parse(msg.into()).is_err());
    }
    assert_eq!(
        Message::parse(Bytes::from_static(b"OPTIONS sip:jos\xe9@b SIP/2.0\r\n\r\n"))
            .map(|_| ())
            .map_err(|e| (e.kind(), e.status())),
        Err((K::BadStartLine, Some(400)))
    );
    assert_eq!(
        Message::parse(Bytes::from_static(
            b"OPTIONS sip:a@b SIP/2.0\r\nX\xe9: 1\r\n\r\n"
        ))
        .map(|_| ())
        .map_err(|e| e.kind()),
        Err(K::BadHeader)
    );
    assert_eq!(
        err("OPTIONS sip:a@b SIP/2.0\r\nX: 1\r\n").kind(),
        K::Truncated
    );
    let m = msg("\r\n\r\nSIP/2.0 180\r\nl: 0\r\n\r\n");
    assert_eq!(
        (m.status(), m.reason(), m.start_line()),
        (Some(180), Some(""), "SIP/2.0 180")
    );
    let m = Message::parse(Bytes::from_static(
        b"MESSAGE sip:a@b SIP/2.0\nl: 2\n\n\xff\x00",
    ))
    .expect("bare LF, binary body");
    assert_eq!(m.body(), b"\xff\x00");
}

#[test]
fn uris_ipv6_and_escapes() {
    let m = msg("OPTIONS sip:[2001:db8::10:5070] SIP/2.0\r\n\r\n");
    let u = m.request_uri().and_then(Result::ok).expect("uri");
    assert_eq!(
        (u.host, u.host_unbracketed(), u.port),
        ("[2001:db8::10:5070]", "2001:db8::10:5070", None)
    );
    let m = msg("REGISTER sips:%75se%72@example.com;transport=tcp SIP/2.0\r\n\r\n");
    let u = m.request_uri().and_then(Result::ok).expect("uri");
    assert_eq!(u.user, Some("%75se%72"), "escapes kept as written");
    assert_eq!(&*percent_decode(u.user.unwrap_or_default()), b"user");
    assert_eq!(
        &*percent_decode("n%61me=v%61lue%25%34%31"),
        b"name=value%41",
        "decode once"
    );
}

#[test]
fn edits_serialize_byte_exact() {
    let m = msg("BYE sip:a@b SIP/2.0\r\nA: 1\r\nB: folded\r\n  on\r\nC: 3\r\nl: 2\r\n\r\nhi-extra");
    let mut out = Vec::new();
    let edits = [
        HeaderEdit::Append("Z: last".into()),
        HeaderEdit::InsertBefore(1, "X1: a\r\n".into()),
        HeaderEdit::Remove(2),
        HeaderEdit::Prepend("P: first".into()),
        HeaderEdit::InsertBefore(1, "X2: b".into()),
        HeaderEdit::AppendAfter(2, "C2: replaced".into()),
        HeaderEdit::AppendAfter(3, "L2: after-l".into()),
        HeaderEdit::Remove(42),
    ];
    m.write_request(
        &mut out,
        Some("sip:a@[2001:db8::1]:5070"),
        &edits,
        Some("Via: SIP/2.0/UDP p;branch=z9hG4bKx"),
    );
    let want = "BYE sip:a@[2001:db8::1]:5070 SIP/2.0\r\nVia: SIP/2.0/UDP p;branch=z9hG4bKx\r\nP: first\r\nA: 1\r\n\
X1: a\r\nX2: b\r\nB: folded\r\n  on\r\nC2: replaced\r\nl: 2\r\nL2: after-l\r\nZ: last\r\n\r\nhi";
    assert_eq!(String::from_utf8_lossy(&out), want);

    out.clear();
    m.write_request(&mut out, None, &[], None);
    assert_eq!(
        out,
        m.as_bytes().strip_suffix(b"-extra").expect("suffix"),
        "untouched = verbatim"
    );
}

#[test]
fn responses_drop_the_top_via() {
    let m = msg("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP proxy;branch=z9hG4bK1\r\nv: SIP/2.0/UDP ua;branch=z9hG4bK0\r\nl: 0\r\n\r\n");
    let mut out = Vec::new();
    m.write_response(&mut out, &[], true);
    assert_eq!(
        out,
        b"SIP/2.0 200 OK\r\nv: SIP/2.0/UDP ua;branch=z9hG4bK0\r\nl: 0\r\n\r\n"
    );
    out.clear();
    m.write_response(&mut out, &[HeaderEdit::Append("X: 1".into())], false);
    assert_eq!(out, b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP proxy;branch=z9hG4bK1\r\nv: SIP/2.0/UDP ua;branch=z9hG4bK0\r\nl: 0\r\nX: 1\r\n\r\n");
}

fn build(req: &Message, code: u16, src: SocketAddr) -> String {
    let mut out = Vec::new();
    reply::build(
        req,
        code,
        "Reason\r\nInjected: x",
        Some("tt"),
        &["Server: sipd".into()],
        src,
        &mut out,
    );
    String::from_utf8(out).expect("utf8")
}

#[test]
fn replies_follow_rfc3261_and_rfc3581() {
    let req = |via: &str, to: &str| {
        msg(&format!(
            "INVITE sip:b@y SIP/2.0\r\nv: {via}\r\nVia: SIP/2.0/TCP lower;branch=z9hG4bK0\r\nFrom: <sip:a@x>;tag=f\r\n\
t: {to}\r\ni: cid\r\nCSeq: 1 INVITE\r\nContact: <sip:a@h>\r\nl: 0\r\n\r\n"
        ))
    };
    let r = build(
        &req("SIP/2.0/UDP 192.0.2.7:5062;branch=z9hG4bK1", "<sip:b@y>"),
        180,
        src(),
    );
    assert_eq!(
        r,
        "SIP/2.0 180 ReasonInjected: x\r\nVia: SIP/2.0/UDP 192.0.2.7:5062;branch=z9hG4bK1\r\n\
Via: SIP/2.0/TCP lower;branch=z9hG4bK0\r\nFrom: <sip:a@x>;tag=f\r\nTo: <sip:b@y>;tag=tt\r\nCall-ID: cid\r\n\
CSeq: 1 INVITE\r\nServer: sipd\r\nContent-Length: 0\r\n\r\n"
    );
    // Hostname sent-by: received added; To already tagged: kept as is; 100: no tag added.
    let r = build(
        &req(
            "SIP/2.0/UDP pc33.example.com;branch=z9hG4bK1, SIP/2.0/UDP second",
            "<sip:b@y>;tag=old",
        ),
        486,
        src(),
    );
    assert!(r.contains("Via: SIP/2.0/UDP pc33.example.com;branch=z9hG4bK1;received=192.0.2.7, SIP/2.0/UDP second\r\n"), "{r}");
    assert!(r.contains("To: <sip:b@y>;tag=old\r\n"), "{r}");
    assert!(build(&req("SIP/2.0/UDP h", "<sip:b@y>"), 100, src()).contains("To: <sip:b@y>\r\n"));
    // Empty rport: filled in, and received added even though the address matches.
    let r = build(
        &req("SIP/2.0/UDP 192.0.2.7 ;rport ;branch=z9hG4bK1", "<sip:b@y>"),
        200,
        src(),
    );
    assert!(
        r.contains(
            "Via: SIP/2.0/UDP 192.0.2.7 ;rport=5062 ;branch=z9hG4bK1;received=192.0.2.7\r\n"
        ),
        "{r}"
    );
    // IPv6 source: received without brackets; a bracketed sent-by equal to the source gets none.
    let v6: SocketAddr = "[2001:db8::9]:5060".parse().expect("addr");
    let r = build(
        &req(
            "SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK1",
            "<sip:b@y>",
        ),
        200,
        v6,
    );
    assert!(
        r.contains(";branch=z9hG4bK1;received=2001:db8::9\r\n"),
        "{r}"
    );
    let r = build(
        &req(
            "SIP/2.0/UDP [2001:db8::9]:5060;branch=z9hG4bK1",
            "<sip:b@y>",
        ),
        200,
        v6,
    );
    assert!(
        r.contains("Via: SIP/2.0/UDP [2001:db8::9]:5060;branch=z9hG4bK1\r\n"),
        "{r}"
    );
    // The reply parses back.
    let back = msg(&r);
    assert_eq!(
        (back.status(), back.to_tag(), back.vias().count()),
        (Some(200), Some("tt"), 2)
    );
}

#[test]
fn derived_to_tags_are_stable_per_transaction() {
    let a = msg(OPTIONS);
    let b = msg(OPTIONS);
    assert_eq!(ToTag::for_request(&a), ToTag::for_request(&b));
    assert_eq!(ToTag::for_request(&a).as_str().len(), 16);
    assert_ne!(
        ToTag::new("c", "f", "z9hG4bK1"),
        ToTag::new("c", "f", "z9hG4bK2")
    );
    assert_ne!(
        ToTag::new("ab", "c", ""),
        ToTag::new("a", "bc", ""),
        "parts are separated"
    );
    let mut out = Vec::new();
    reply::build(&a, 404, "Not Found", None, &[], src(), &mut out);
    let r = msg(std::str::from_utf8(&out).expect("utf8"));
    assert_eq!(r.to_tag(), Some(ToTag::for_request(&a).as_str()));
}

#[test]
fn stream_framing() {
    let two = format!("{INVITE}{OPTIONS}");
    let first = frame_len(two.as_bytes())
        .expect("frame")
        .expect("complete head");
    assert_eq!(first, INVITE.len());
    assert_eq!(frame_len(&two.as_bytes()[first..]), Ok(Some(OPTIONS.len())));
    assert_eq!(frame_len(&INVITE.as_bytes()[..INVITE.len() - 10]), Ok(None));
    assert_eq!(
        frame_len(&INVITE.as_bytes()[..INVITE.len() - 2]),
        Ok(Some(INVITE.len())),
        "head known, body pending"
    );
    assert_eq!(
        frame_len(b"OPTIONS sip:a@b SIP/2.0\r\n\r\n").map_err(|e| e.kind()),
        Err(K::MissingContentLength)
    );
    assert_eq!(
        frame_len(b"OPTIONS sip:a@b SIP/2.0\r\nl: -1\r\n\r\n").map_err(|e| e.kind()),
        Err(K::ContentLength)
    );
    assert_eq!(
        frame_len(b"\x16\x03\x01 garbage\r\n")
            .map(|_| ())
            .map_err(|e| e.status()),
        Err(None)
    );
    assert_eq!(
        frame_len(b"\r\n\r\nOPTIONS sip:a@b SIP/2.0\r\nl: 0\r\n\r\n"),
        Ok(Some(4 + 33))
    );
}

#[test]
#[ignore = "timing figure, run in release with --nocapture"]
fn parse_speed() {
    use std::time::Instant;
    for (name, text) in [
        ("OPTIONS", OPTIONS.as_bytes()),
        ("INVITE", INVITE.as_bytes()),
        ("Latin-1 INVITE (lossy view)", LATIN1_INVITE),
    ] {
        let buf = Bytes::from_static(text);
        let n = 1_000_000;
        let t = Instant::now();
        for _ in 0..n {
            let m = Message::parse(std::hint::black_box(buf.clone())).expect("parse");
            std::hint::black_box(&m);
        }
        let parse_ns = t.elapsed().as_nanos() / n;
        let t = Instant::now();
        for _ in 0..n {
            let m = Message::parse(std::hint::black_box(buf.clone())).expect("parse");
            let via = m.top_via().and_then(Result::ok).and_then(|v| v.branch());
            std::hint::black_box((via, m.call_id(), m.cseq(), m.from_tag(), m.max_forwards()));
        }
        let read_ns = t.elapsed().as_nanos() / n;
        let mut out = Vec::with_capacity(1024);
        let m = Message::parse(buf.clone()).expect("parse");
        let edits = [
            HeaderEdit::Remove(1),
            HeaderEdit::InsertBefore(1, "Max-Forwards: 69\r\n".into()),
        ];
        let t = Instant::now();
        for _ in 0..n {
            out.clear();
            m.write_request(
                &mut out,
                Some("sip:bob@192.0.2.4"),
                &edits,
                Some("Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKabc\r\n"),
            );
            std::hint::black_box(&out);
        }
        let write_ns = t.elapsed().as_nanos() / n;
        println!(
            "{name} ({} bytes): parse {parse_ns} ns, parse + Via branch/Call-ID/CSeq/From tag/Max-Forwards {read_ns} ns, forward serialize {write_ns} ns",
            text.len()
        );
    }
}

/// An INVITE as a phone that writes Latin-1 sends it: display names, Subject and a quoted
/// Contact param in ISO-8859-1 (not UTF-8), with a UTF-8 `ü` in the same head.
const LATIN1_INVITE: &[u8] = b"INVITE sip:bob@b.example SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK.l1;rport\r\n\
Max-Forwards: 70\r\n\
From: \"Jos\xe9 M\xfcller\" <sip:jose@a.example>;tag=f1\r\n\
To: \"Ren\xe9e\" <sip:bob@b.example>\r\n\
Call-ID: latin1@192.0.2.1\r\n\
CSeq: 1 INVITE\r\n\
Contact: \"Jos\xe9\" <sip:jose@192.0.2.1>;x=\"\xe0 la\"\r\n\
Subject: caf\xc3\xa9 \xe0 \xfc\xe9\x80\r\n\
Content-Length: 0\r\n\r\n";

#[test]
fn non_utf8_heads_parse_into_a_lossy_view_and_go_out_as_received() {
    let m = Message::parse(Bytes::from_static(LATIN1_INVITE)).expect("parses");
    assert!(m.is_lossy());
    assert!(!msg(OPTIONS).is_lossy());
    // The view: each invalid octet is one U+001A, valid UTF-8 stays.
    let from = m.from_hdr().expect("From").expect("parses");
    assert_eq!(from.display, Some("\"Jos\u{1a} M\u{1a}ller\""));
    assert_eq!(from.uri, "sip:jose@a.example");
    assert_eq!(from.tag(), Some("f1"));
    let to = m.to_hdr().expect("To").expect("parses");
    assert_eq!(to.display, Some("\"Ren\u{1a}e\""));
    assert_eq!(
        m.header_value("s"),
        Some("caf\u{e9} \u{1a} \u{1a}\u{1a}\u{1a}")
    );
    assert_eq!(m.call_id(), Some("latin1@192.0.2.1"));
    assert_eq!(m.top_via_branch(), Some("z9hG4bK.l1"));
    let contact = m.contacts().next().expect("Contact").expect("parses");
    assert_eq!(contact.params.get("x"), Some("\"\u{1a} la\""));
    // Offsets are those of the received buffer; `wire` gives the received octets back.
    let value = m.header_value("From").expect("From");
    let at = m.offset_of(value).expect("inside");
    assert_eq!(&LATIN1_INVITE[at..at + value.len()], m.wire(value));
    assert_eq!(
        m.wire(value),
        b"\"Jos\xe9 M\xfcller\" <sip:jose@a.example>;tag=f1"
    );
    // Forwarded untouched: byte for byte; with edits: every untouched line byte for byte.
    let mut out = Vec::new();
    m.write_request(&mut out, None, &[], None);
    assert_eq!(out, LATIN1_INVITE);
    out.clear();
    let edits = [
        HeaderEdit::Remove(1),
        HeaderEdit::InsertBefore(1, "Max-Forwards: 69".into()),
    ];
    m.write_request(
        &mut out,
        Some("sip:bob@192.0.2.9"),
        &edits,
        Some("Via: SIP/2.0/UDP p;branch=z9hG4bK2\r\n"),
    );
    let mut want =
        b"INVITE sip:bob@192.0.2.9 SIP/2.0\r\nVia: SIP/2.0/UDP p;branch=z9hG4bK2\r\n".to_vec();
    let first_line = LATIN1_INVITE
        .iter()
        .position(|c| *c == b'\n')
        .expect("line")
        + 1;
    let rest = &LATIN1_INVITE[first_line..];
    let via_end = rest.iter().position(|c| *c == b'\n').expect("line") + 1;
    want.extend_from_slice(&rest[..via_end]);
    want.extend_from_slice(b"Max-Forwards: 69\r\n");
    let mf_end = via_end
        + rest[via_end..]
            .iter()
            .position(|c| *c == b'\n')
            .expect("line")
        + 1;
    want.extend_from_slice(&rest[mf_end..]);
    assert_eq!(out, want);
    // A local reply copies From and To as received, adds the To tag, keeps the branch.
    out.clear();
    reply::build(&m, 486, "Busy Here", None, &[], src(), &mut out);
    let r = Message::parse(out.clone().into()).expect("reply parses");
    assert!(r.is_lossy());
    assert!(out
        .windows(60)
        .any(|w| w.starts_with(b"From: \"Jos\xe9 M\xfcller\" <sip:jose@a.example>;tag=f1\r\n")));
    let tag = ToTag::for_request(&m);
    let mut to_want = b"To: \"Ren\xe9e\" <sip:bob@b.example>;tag=".to_vec();
    to_want.extend_from_slice(tag.as_str().as_bytes());
    assert!(out.windows(to_want.len()).any(|w| w == to_want));
    assert_eq!(r.top_via_branch(), Some("z9hG4bK.l1"));
    // The To tag hashes the received octets: stable, and two tags that differ only in octets
    // the view shows alike do not collide.
    let tagged = |t: &[u8]| {
        let mut b = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=".to_vec();
        b.extend_from_slice(t);
        b.extend_from_slice(b"\r\nTo: <sip:b@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n");
        ToTag::for_request(&Message::parse(b.into()).expect("parses"))
    };
    assert_eq!(tagged(b"t\xe9"), tagged(b"t\xe9"));
    assert_ne!(tagged(b"t\xe9"), tagged(b"t\xe8"));
    // A URI never holds a substitute: lossy text is not an identifier.
    let u = Message::parse(Bytes::from_static(
        b"OPTIONS sip:a@b SIP/2.0\r\nFrom: <sip:jos\xe9@a>;tag=1\r\n\r\n",
    ))
    .expect("parses");
    let from = u.from_hdr().expect("From").expect("name-addr parses");
    assert!(kemi_runtime::sip::Uri::parse(from.uri).is_err());
}

#[test]
fn non_utf8_reason_phrases_are_forwarded_as_received() {
    let raw: &[u8] = b"SIP/2.0 486 Occup\xe9\r\nVia: SIP/2.0/UDP p;branch=z9hG4bK1\r\nv: SIP/2.0/UDP ua;branch=z9hG4bK0\r\nFrom: \"Jos\xe9\" <sip:j@a>;tag=1\r\nl: 0\r\n\r\n";
    let m = Message::parse(Bytes::from_static(raw)).expect("parses");
    assert_eq!(m.status(), Some(486));
    assert_eq!(m.reason(), Some("Occup\u{1a}"));
    let mut out = Vec::new();
    m.write_response(&mut out, &[], true);
    assert_eq!(
        out,
        b"SIP/2.0 486 Occup\xe9\r\nv: SIP/2.0/UDP ua;branch=z9hG4bK0\r\nFrom: \"Jos\xe9\" <sip:j@a>;tag=1\r\nl: 0\r\n\r\n"
    );
}
