//! `KSR.siputils.*`: message tests, string classifiers, R-URI parameters and comparisons on
//! real messages through the export table.

use kemi_runtime::msg::Proto;
use kemi_runtime::Arg;

use crate::common::{i, msg, msg_from, pv, request, s, INVITE, RINGING};

#[test]
fn message_kind_and_to_tag() {
    let mut inv = msg(INVITE);
    assert_eq!(i(&mut inv, "siputils", "is_request", &[]), 1);
    assert_eq!(i(&mut inv, "siputils", "is_reply", &[]), -1);
    assert_eq!(i(&mut inv, "siputils", "has_totag", &[]), -1);
    assert_eq!(i(&mut inv, "siputils", "is_sip", &[]), 1);
    assert_eq!(i(&mut inv, "siputils", "is_http", &[]), -1);
    let mut ringing = msg(RINGING);
    assert_eq!(i(&mut ringing, "siputils", "is_reply", &[]), 1);
    assert_eq!(i(&mut ringing, "siputils", "has_totag", &[]), 1);
}

#[test]
fn first_hop() {
    // INVITE carries two Via values: not from the first hop.
    assert_eq!(i(&mut msg(INVITE), "siputils", "is_first_hop", &[]), -1);
    assert_eq!(
        i(
            &mut msg(&request("OPTIONS", "")),
            "siputils",
            "is_first_hop",
            &[]
        ),
        1
    );
    // A reply without Record-Route is from the first hop; one whose top Record-Route is this
    // proxy is too, unless it came from the proxy's own address.
    assert_eq!(i(&mut msg(RINGING), "siputils", "is_first_hop", &[]), 1);
    let rr = RINGING.replace(
        "Content-Length",
        "Record-Route: <sip:198.51.100.1;lr>\r\nContent-Length",
    );
    assert_eq!(i(&mut msg(&rr), "siputils", "is_first_hop", &[]), 1);
    let mut looped = msg_from(&rr, Proto::Udp, "198.51.100.1:5060");
    assert_eq!(i(&mut looped, "siputils", "is_first_hop", &[]), -1);
    let other = rr.replace("198.51.100.1;lr", "203.0.113.7;lr");
    assert_eq!(i(&mut msg(&other), "siputils", "is_first_hop", &[]), -1);
}

#[test]
fn classifiers() {
    let mut m = msg(INVITE);
    let mut one = |name: &str, v: &str| i(&mut m, "siputils", name, &[Arg::Str(v)]);
    assert_eq!(one("is_numeric", "0123"), 1);
    assert_eq!(one("is_numeric", "12a"), -2);
    assert_eq!(one("is_numeric", ""), -2);
    assert_eq!(one("is_tel_number", "+4930123"), 1);
    assert_eq!(one("is_tel_number", "+0123"), -2);
    assert_eq!(one("is_tel_number", "030123"), 1);
    assert_eq!(one("is_tel_number", "+"), -2);
    assert_eq!(one("is_alphanum", "abC9"), 1);
    assert_eq!(one("is_alphanum", "ab-9"), -3);
    assert_eq!(one("is_alphanum", ""), -2);
    assert_eq!(one("is_uri", "sip:bob@example.com;lr"), 1);
    assert_eq!(one("is_uri", "tel:+1555"), 1);
    assert_eq!(one("is_uri", "http://example.com"), -1);
    assert_eq!(one("is_uri", "bob@example.com"), -1);
    let mut m = msg(INVITE);
    let ex = |m: &mut _, v: &str, set: &str| {
        i(
            m,
            "siputils",
            "is_alphanumex",
            &[Arg::Str(v), Arg::Str(set)],
        )
    };
    assert_eq!(ex(&mut m, "ab-9_x", "-_"), 1);
    assert_eq!(ex(&mut m, "ab-9.x", "-_"), -3);
}

#[test]
fn ruri_params() {
    let mut m = msg(INVITE); // R-URI: sip:bob@example.com:5080;transport=udp
    let p = |m: &mut _, f: &str, a: &[Arg<'_>]| i(m, "siputils", f, a);
    assert_eq!(
        p(
            &mut m,
            "uri_param_value",
            &[Arg::Str("TRANSPORT"), Arg::Str("udp")]
        ),
        1
    );
    assert_eq!(
        p(
            &mut m,
            "uri_param_value",
            &[Arg::Str("transport"), Arg::Str("tcp")]
        ),
        -1
    );
    assert_eq!(
        p(&mut m, "uri_param", &[Arg::Str("transport")]),
        -1,
        "it has a value"
    );
    assert_eq!(p(&mut m, "uri_param_any", &[Arg::Str("transport")]), 1);
    assert_eq!(p(&mut m, "add_uri_param", &[Arg::Str("lr")]), 1);
    assert_eq!(
        pv(&mut m, "$ru"),
        s("sip:bob@example.com:5080;transport=udp;lr")
    );
    assert_eq!(p(&mut m, "uri_param", &[Arg::Str("lr")]), 1);
    assert_eq!(p(&mut m, "uri_param_rm", &[Arg::Str("transport")]), 1);
    assert_eq!(pv(&mut m, "$ru"), s("sip:bob@example.com:5080;lr"));
    assert_eq!(p(&mut m, "uri_param_rm", &[Arg::Str("nothere")]), 1);
    assert_eq!(p(&mut m, "is_gruu", &[]), -1);
    assert_eq!(
        p(&mut m, "add_uri_param", &[Arg::Str("gr=urn:uuid:f81d4fae")]),
        1
    );
    assert_eq!(p(&mut m, "is_gruu", &[]), 1);
    // Replies have no R-URI.
    assert_eq!(p(&mut msg(RINGING), "uri_param_any", &[Arg::Str("lr")]), -1);
}

#[test]
fn add_uri_param_goes_before_headers() {
    let text = request("OPTIONS", "").replace("sip:proxy.example.com", "sip:a@b.example?subject=x");
    let mut m = msg(&text);
    assert_eq!(i(&mut m, "siputils", "add_uri_param", &[Arg::Str("gr")]), 1);
    assert_eq!(pv(&mut m, "$ru"), s("sip:a@b.example;gr?subject=x"));
    assert_eq!(i(&mut m, "siputils", "is_gruu", &[]), 2);
}

#[test]
fn comparisons() {
    let mut m = msg(INVITE);
    let mut cmp = |f: &str, a: &str, b: &str| i(&mut m, "siputils", f, &[Arg::Str(a), Arg::Str(b)]);
    // RFC 3261 19.1.4 examples.
    assert_eq!(
        cmp(
            "cmp_uri",
            "sip:%61lice@atlanta.com;transport=TCP",
            "sip:alice@AtLanTa.CoM;Transport=tcp"
        ),
        1
    );
    assert_eq!(
        cmp(
            "cmp_uri",
            "sip:carol@chicago.com",
            "sip:carol@chicago.com;newparam=5"
        ),
        1
    );
    assert_eq!(
        cmp(
            "cmp_uri",
            "sip:ALICE@AtLanTa.CoM;Transport=udp",
            "sip:alice@AtLanTa.CoM;Transport=UDP"
        ),
        -1
    );
    assert_eq!(
        cmp("cmp_uri", "sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
        -1
    );
    assert_eq!(
        cmp(
            "cmp_uri",
            "sip:bob@biloxi.com",
            "sip:bob@biloxi.com;transport=udp"
        ),
        -1
    );
    assert_eq!(
        cmp(
            "cmp_uri",
            "sip:carol@chicago.com;security=on",
            "sip:carol@chicago.com;security=off"
        ),
        -1
    );
    assert_eq!(cmp("cmp_uri", "sip:bob@biloxi.com", "nonsense"), -2);
    assert_eq!(
        cmp(
            "cmp_aor",
            "sip:bob@biloxi.com",
            "sip:bob@BILOXI.com:5060;transport=tcp"
        ),
        1
    );
    assert_eq!(
        cmp("cmp_aor", "sip:bob@biloxi.com", "sips:bob@biloxi.com"),
        -1
    );
    assert_eq!(
        cmp("cmp_aor", "sip:bob@biloxi.com", "sip:Bob@biloxi.com"),
        -1
    );
    assert_eq!(cmp("cmp_hdr_name", "v", "VIA"), 1);
    assert_eq!(cmp("cmp_hdr_name", "X-Foo", "x-foo"), 1);
    assert_eq!(cmp("cmp_hdr_name", "f", "To"), -1);
    assert_eq!(cmp("cmp_hdr_name", "", "To"), -2);
}

#[test]
fn parse_headers() {
    assert_eq!(i(&mut msg(INVITE), "siputils", "sip_parse_headers", &[]), 1);
    let bad = request("REGISTER", "Contact: <sip:a@b>;;;\r\n");
    let mut m = msg(&bad);
    assert_eq!(i(&mut m, "siputils", "sip_parse_headers", &[]), -1);
    let logs = m.captured_logs.unwrap_or_default();
    assert!(logs.iter().any(|l| l.text.contains("Contact")), "{logs:?}");
}
