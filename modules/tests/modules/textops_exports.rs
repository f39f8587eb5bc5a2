//! `KSR.textops.*`: searches see the message as received, changes become header lumps that show
//! up when the message is serialized, regexes are compiled once per worker, and what would
//! touch the body is refused without changing anything.

use kemi_runtime::sip::Message;
use kemi_runtime::{Arg, SipMsg};
use modules::textops::regex_cache::{self, Flavor};

use crate::common::{i, msg, pv, request, s, INVITE, RINGING};

/// The request as it would be forwarded with the recorded edits applied, re-parsed.
fn forwarded(m: &SipMsg) -> (String, Message) {
    let mut out = Vec::new();
    m.message
        .write_request(&mut out, m.route.new_ruri.as_deref(), &m.route.edits, None);
    let text = String::from_utf8(out).unwrap_or_default();
    let parsed = Message::parse(text.clone().into()).unwrap_or_else(|e| panic!("{e}: {text}"));
    (text, parsed)
}

fn t(m: &mut SipMsg, name: &str, args: &[Arg<'_>]) -> i32 {
    i(m, "textops", name, args)
}

#[test]
fn searches() {
    let mut m = msg(INVITE);
    assert_eq!(t(&mut m, "search", &[Arg::Str("^user-agent: soft")]), 1);
    assert_eq!(t(&mut m, "search", &[Arg::Str("^INVITE sip:bob")]), 1);
    assert_eq!(t(&mut m, "search", &[Arg::Str("^X-Absent:")]), -1);
    assert_eq!(t(&mut m, "search", &[Arg::Str("(unclosed")]), -1);
    assert_eq!(t(&mut m, "search_body", &[Arg::Str("^v=0$")]), 1);
    assert_eq!(t(&mut m, "search_body", &[Arg::Str("Via")]), -1);
    let hf = |m: &mut SipMsg, re: &str, flags: &str| {
        t(
            m,
            "search_hf",
            &[Arg::Str("X-Multi"), Arg::Str(re), Arg::Str(flags)],
        )
    };
    assert_eq!(hf(&mut m, "^two$", ""), 1);
    assert_eq!(hf(&mut m, "^two$", "f"), -1);
    assert_eq!(hf(&mut m, "^two$", "l"), 1);
    assert_eq!(hf(&mut m, "^one$", "l"), -1);
    assert_eq!(
        t(
            &mut m,
            "search_hf",
            &[Arg::Str("v"), Arg::Str("z9hG4bKold"), Arg::Str("")]
        ),
        1,
        "compact name finds Via"
    );
    assert_eq!(t(&mut m, "is_present_hf", &[Arg::Str("user-agent")]), 1);
    assert_eq!(t(&mut m, "is_present_hf", &[Arg::Str("i")]), 1);
    assert_eq!(t(&mut m, "is_present_hf", &[Arg::Str("X-Absent")]), -1);
    assert_eq!(t(&mut m, "is_present_hf", &[Arg::Str("bad name")]), -1);
    assert_eq!(t(&mut m, "is_present_hf_re", &[Arg::Str("^x-mul")]), 1);
    assert_eq!(t(&mut m, "is_present_hf_re", &[Arg::Str("^P-")]), -1);
    assert_eq!(
        t(
            &mut m,
            "search_str",
            &[Arg::Str("Hello World"), Arg::Str("o w")]
        ),
        1
    );
    assert_eq!(
        t(&mut m, "search_str", &[Arg::Str("Hello"), Arg::Str("^w")]),
        -1
    );
}

#[test]
fn regexes_are_compiled_once_and_reused() {
    let pattern = "^CSeq: [0-9]+ INVITE( cache test)?$";
    assert!(!regex_cache::is_cached(pattern, Flavor::TEXTOPS));
    let mut m = msg(INVITE);
    assert_eq!(t(&mut m, "search", &[Arg::Str(pattern)]), 1);
    assert!(regex_cache::is_cached(pattern, Flavor::TEXTOPS));
    let first = regex_cache::compile(pattern, Flavor::TEXTOPS).unwrap_or_else(|e| panic!("{e}"));
    // Same regex, another message: same compiled object, still matching correctly.
    let mut r = msg(RINGING);
    assert_eq!(t(&mut r, "search", &[Arg::Str(pattern)]), 1);
    let mut o = msg(&request("OPTIONS", ""));
    assert_eq!(t(&mut o, "search", &[Arg::Str(pattern)]), -1);
    let again = regex_cache::compile(pattern, Flavor::TEXTOPS).unwrap_or_else(|e| panic!("{e}"));
    assert!(std::rc::Rc::ptr_eq(&first, &again));
}

#[test]
fn removals_are_lumps() {
    let mut m = msg(INVITE);
    assert_eq!(t(&mut m, "remove_hf", &[Arg::Str("User-Agent")]), 1);
    assert_eq!(t(&mut m, "remove_hf_re", &[Arg::Str("^x-")]), 1);
    assert_eq!(t(&mut m, "remove_hf_re", &[Arg::Str("^P-")]), -1);
    // Reads still see the received message.
    assert_eq!(t(&mut m, "is_present_hf", &[Arg::Str("User-Agent")]), 1);
    let (text, fwd) = forwarded(&m);
    assert!(!text.contains("User-Agent"), "{text}");
    assert_eq!(fwd.find("X-Multi").count(), 0);
    assert_eq!(fwd.header_value("Call-ID"), m.message.call_id());
    assert_eq!(fwd.body(), b"v=0\n");
}

#[test]
fn indexed_matched_and_filtered_removals() {
    let extra = "X-A: 1\r\nX-A: 2\r\nX-A: 3\r\nX-Keep: k\r\n";
    let mut m = msg(&request("OPTIONS", extra));
    assert_eq!(
        t(&mut m, "remove_hf_idx", &[Arg::Str("X-A"), Arg::Int(-1)]),
        1
    );
    assert_eq!(
        t(&mut m, "remove_hf_idx", &[Arg::Str("X-A"), Arg::Int(0)]),
        1
    );
    assert_eq!(
        t(&mut m, "remove_hf_idx", &[Arg::Str("X-A"), Arg::Int(7)]),
        2
    );
    let (_, fwd) = forwarded(&m);
    let left: Vec<&str> = fwd.find("X-A").map(|h| h.value).collect();
    assert_eq!(left, ["2"]);

    let mut m = msg(&request("OPTIONS", extra));
    let rm = |m: &mut SipMsg, op: &str, e: &str| {
        t(
            m,
            "remove_hf_match",
            &[Arg::Str("X-A"), Arg::Str(op), Arg::Str(e)],
        )
    };
    assert_eq!(rm(&mut m, "eq", "2"), 1);
    assert_eq!(rm(&mut m, "re", "^[3]$"), 1);
    assert_eq!(rm(&mut m, "in", "9"), -2);
    assert_eq!(rm(&mut m, "xx", "9"), -1);
    let (_, fwd) = forwarded(&m);
    let left: Vec<&str> = fwd.find("X-A").map(|h| h.value).collect();
    assert_eq!(left, ["1"]);

    let mut m = msg(&request("OPTIONS", extra));
    assert_eq!(
        t(
            &mut m,
            "remove_hf_exp",
            &[Arg::Str("^X-"), Arg::Str("^X-Keep$")]
        ),
        1
    );
    let (_, fwd) = forwarded(&m);
    assert_eq!(fwd.find("X-A").count(), 0);
    assert_eq!(fwd.header_value("X-Keep"), Some("k"));
}

#[test]
fn subst_and_replace_rewrite_headers() {
    let mut m = msg(INVITE);
    assert_eq!(
        t(
            &mut m,
            "subst",
            &[Arg::Str("/^(User-Agent: ).*$/\\1proxied-$rU/")]
        ),
        1
    );
    assert_eq!(
        t(
            &mut m,
            "subst_hf",
            &[Arg::Str("X-Multi"), Arg::Str("/o/0/g"), Arg::Str("l")]
        ),
        1
    );
    assert_eq!(
        t(
            &mut m,
            "replace",
            &[Arg::Str("Max-Forwards: 70"), Arg::Str("Max-Forwards: 69")]
        ),
        1
    );
    // Not visible to reads in the same route.
    assert_eq!(pv(&mut m, "$hdr(User-Agent)"), s("softphone/1.0"));
    let (text, fwd) = forwarded(&m);
    assert_eq!(
        fwd.header_value("User-Agent"),
        Some("proxied-bob"),
        "{text}"
    );
    let multi: Vec<&str> = fwd.find("X-Multi").map(|h| h.value).collect();
    assert_eq!(multi, ["one", "tw0"]);
    assert_eq!(fwd.header_value("Max-Forwards"), Some("69"));
    assert_eq!(fwd.header_count(), m.message.header_count());
    // Header order is kept.
    assert_eq!(fwd.header(2).map(|h| h.name), Some("Max-Forwards"));
    assert_eq!(fwd.body(), b"v=0\n");
}

#[test]
fn replace_all_and_plain_strings() {
    let mut m = msg(INVITE);
    assert_eq!(
        t(
            &mut m,
            "replace_all",
            &[Arg::Str("atlanta\\.example\\.com"), Arg::Str("a.example")]
        ),
        1
    );
    let (text, fwd) = forwarded(&m);
    assert!(!text.contains("atlanta.example.com"), "{text}");
    assert_eq!(fwd.call_id(), Some("a84b4c76e66710@pc33.a.example"));
    assert_eq!(
        fwd.header_value("From"),
        Some("\"Alice\" <sip:alice@a.example>;tag=1928301774")
    );

    let mut m = msg(INVITE);
    assert_eq!(
        t(
            &mut m,
            "replace_hdrs_str",
            &[Arg::Str("bob"), Arg::Str("rob"), Arg::Str("a")]
        ),
        1
    );
    let (text, fwd) = forwarded(&m);
    assert!(
        text.starts_with("INVITE sip:bob@"),
        "start line untouched: {text}"
    );
    assert_eq!(fwd.header_value("To"), Some("Bob <sip:rob@example.com>"));
    assert_eq!(
        t(
            &mut m,
            "replace_str",
            &[Arg::Str("not-there"), Arg::Str("x"), Arg::Str("f")]
        ),
        1
    );

    let mut m = msg(INVITE);
    assert_eq!(
        t(
            &mut m,
            "replace_hdrs",
            &[Arg::Str("^X-Multi: one"), Arg::Str("X-Multi: uno")]
        ),
        1
    );
    let (_, fwd) = forwarded(&m);
    let multi: Vec<&str> = fwd.find("X-Multi").map(|h| h.value).collect();
    assert_eq!(multi, ["uno", "two"]);
}

#[test]
fn search_append_inserts_after_the_match() {
    let mut m = msg(INVITE);
    assert_eq!(
        t(
            &mut m,
            "search_append",
            &[
                Arg::Str("^Call-ID: [^\r\n]*\r\n"),
                Arg::Str("X-After-Callid: 1\r\n")
            ]
        ),
        1
    );
    let (_, fwd) = forwarded(&m);
    let ci = fwd.first("Call-ID").map(|h| h.index);
    let after = fwd.first("X-After-Callid").map(|h| h.index);
    assert_eq!(after, ci.map(|c| c + 1));
}

#[test]
fn body_changes_are_refused_whole() {
    let mut m = msg(INVITE);
    // The second match is in the body: nothing is recorded.
    assert_eq!(
        t(&mut m, "replace_all", &[Arg::Str("v"), Arg::Str("w")]),
        -1
    );
    assert!(m.route.edits.is_empty());
    assert_eq!(t(&mut m, "subst", &[Arg::Str("/^v=0/v=1/")]), -1);
    assert!(m.route.edits.is_empty());
    assert_eq!(t(&mut m, "subst", &[Arg::Str("/nomatch-anywhere/x/")]), -1);
    assert_eq!(t(&mut m, "subst", &[Arg::Str("/bad/flags/q")]), -1);
}

#[test]
fn uri_and_variable_substitutions() {
    let mut m = msg(INVITE);
    assert_eq!(
        t(
            &mut m,
            "subst_uri",
            &[Arg::Str(
                "/^sip:([a-z]+)@example\\.com:5080/sip:\\1@gw.example.net/"
            )]
        ),
        1
    );
    assert_eq!(pv(&mut m, "$ru"), s("sip:bob@gw.example.net;transport=udp"));
    assert_eq!(t(&mut m, "subst_user", &[Arg::Str("/^bob$/robert/")]), 1);
    assert_eq!(
        pv(&mut m, "$ru"),
        s("sip:robert@gw.example.net;transport=udp")
    );
    assert_eq!(t(&mut m, "subst_user", &[Arg::Str("/^nobody$/x/")]), -1);
    let (text, _) = forwarded(&m);
    assert!(text.starts_with("INVITE sip:robert@gw.example.net;transport=udp SIP/2.0\r\n"));

    assert_eq!(
        t(
            &mut m,
            "subst_v",
            &[
                Arg::Str("+49-30-1234"),
                Arg::Str("/-//g"),
                Arg::Str("$var(num)")
            ]
        ),
        1
    );
    assert_eq!(pv(&mut m, "$var(num)"), s("+49301234"));
    assert_eq!(
        t(
            &mut m,
            "subst_v",
            &[Arg::Str("abc"), Arg::Str("/x/y/"), Arg::Str("$var(num)")]
        ),
        -1
    );
    assert_eq!(
        t(
            &mut m,
            "regex_substring",
            &[
                Arg::Str("user=alice;dom=a.example"),
                Arg::Str("dom=([a-z.]+)"),
                Arg::Int(1),
                Arg::Int(2),
                Arg::Str("$var(dom)")
            ]
        ),
        1
    );
    assert_eq!(pv(&mut m, "$var(dom)"), s("a.example"));
    assert_eq!(
        t(
            &mut m,
            "regex_substring",
            &[
                Arg::Str("abc"),
                Arg::Str("z+"),
                Arg::Int(0),
                Arg::Int(1),
                Arg::Str("$var(dom)")
            ]
        ),
        -2
    );
    assert_eq!(
        t(
            &mut m,
            "regex_substring",
            &[
                Arg::Str("abc"),
                Arg::Str("b"),
                Arg::Int(1),
                Arg::Int(1),
                Arg::Str("$var(dom)")
            ]
        ),
        -1
    );
}

#[test]
fn body_and_privacy_tests() {
    let mut m = msg(INVITE);
    assert_eq!(t(&mut m, "has_body", &[]), 1);
    assert_eq!(
        t(&mut m, "has_body_type", &[Arg::Str("application/SDP")]),
        1
    );
    assert_eq!(t(&mut m, "has_body_type", &[Arg::Str("text/plain")]), -1);
    assert_eq!(t(&mut m, "has_body_type", &[Arg::Str("garbage")]), -1);
    let mut o = msg(&request("OPTIONS", "Privacy: id; user\r\n"));
    assert_eq!(t(&mut o, "has_body", &[]), -1);
    assert_eq!(t(&mut o, "is_privacy", &[Arg::Str("id")]), 1);
    assert_eq!(t(&mut o, "is_privacy", &[Arg::Str("header")]), -1);
    assert_eq!(t(&mut o, "is_privacy", &[Arg::Str("bogus")]), -1);
}

#[test]
fn string_tests() {
    let mut m = msg(INVITE);
    let mut two = |name: &str, a: &str, b: &str| t(&mut m, name, &[Arg::Str(a), Arg::Str(b)]);
    assert_eq!(two("cmp_str", "abc", "abc"), 1);
    assert_eq!(two("cmp_str", "abd", "abc"), -1);
    assert_eq!(two("cmp_str", "ab", "abc"), -2);
    assert_eq!(two("cmp_istr", "ABC", "abc"), 1);
    assert_eq!(two("starts_with", "+4930", "+49"), 1);
    assert_eq!(two("starts_with", "+33", "+49"), -2);
    assert_eq!(two("starts_with", "+4", "+49"), -1);
    assert_eq!(two("ends_with", "alice@example.com", ".com"), 1);
    assert_eq!(two("ends_with", "alice@example.net", ".com"), -1);
    assert_eq!(two("str_find", "hello world", "world"), 7);
    assert_eq!(two("str_find", "hello", "xyz"), -1);
    assert_eq!(two("str_ifind", "Hello World", "WORLD"), 7);
    assert_eq!(two("str_any_in", "abc", "xyc"), 1);
    assert_eq!(two("str_any_in", "abc", "xyz"), -1);
    assert_eq!(two("str_all_in", "abc", "cab"), 1);
    assert_eq!(two("str_all_in", "abc", "abz"), -1);
    let mut three = |name: &str, a: &str, b: &str, c: &str| {
        t(&mut m, name, &[Arg::Str(a), Arg::Str(b), Arg::Str(c)])
    };
    assert_eq!(three("in_list", "b", " a , b ,c", ","), 1);
    assert_eq!(three("in_list", "bb", "a,b,c", ","), -1);
    assert_eq!(three("in_list", "b", "a;b", ""), -1);
    assert_eq!(three("in_list_prefix", "+4930123", "+33, +49", ","), 1);
    assert_eq!(three("in_list_prefix", "+4930123", "+33,,+1", ","), -1);
}

/// On a head that is not UTF-8 (read through its lossy view), textops still finds its lines at
/// the received offsets: a substitution rewrites the right header and every other line goes
/// out as received.
#[test]
fn subst_on_a_latin1_head_rewrites_the_right_line() {
    let raw: &[u8] = b"OPTIONS sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bK1\r\n\
From: \"Jos\xe9\" <sip:jose@example.com>;tag=1\r\n\
To: <sip:bob@example.com>\r\n\
Call-ID: latin1-textops\r\n\
CSeq: 1 OPTIONS\r\n\
User-Agent: T\xe9l\xe9phone\r\n\
Content-Length: 0\r\n\r\n";
    let mut m = crate::common::msg_bytes(raw, kemi_runtime::msg::Proto::Udp, crate::common::CLIENT);
    assert!(m.message.is_lossy());
    assert_eq!(
        t(
            &mut m,
            "subst_hf",
            &[
                Arg::Str("Call-ID"),
                Arg::Str("/textops/moved/"),
                Arg::Str("f")
            ]
        ),
        1
    );
    let mut out = Vec::new();
    m.message
        .write_request(&mut out, None, &m.route.edits, None);
    let want: Vec<u8> = String::from_utf8_lossy(raw)
        .replace("latin1-textops", "latin1-moved")
        .into_bytes();
    // Every octet but the rewritten Call-ID is as received (the lossy rendering of `want`
    // differs from `raw` only in the Latin-1 octets, which `out` keeps).
    let rewritten = b"Call-ID: latin1-moved\r\n";
    assert!(
        out.windows(rewritten.len()).any(|w| w == rewritten),
        "{}",
        String::from_utf8_lossy(&out)
    );
    assert_eq!(out.len(), raw.len() - "textops".len() + "moved".len());
    assert!(out.starts_with(
        &raw[..raw
            .windows(8)
            .position(|w| w == b"Call-ID:")
            .expect("Call-ID")]
    ));
    assert!(out.ends_with(b"User-Agent: T\xe9l\xe9phone\r\nContent-Length: 0\r\n\r\n"));
    assert_eq!(
        String::from_utf8_lossy(&out),
        String::from_utf8_lossy(&want)
    );
}
