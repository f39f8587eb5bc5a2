//! `KSR.hdr.*`: edits are recorded as lumps, are not visible to reads in the same route, and
//! produce the right message once applied.

use kemi_runtime::sip::{HeaderEdit, Message};
use kemi_runtime::{Arg, Xval};

use crate::common::{b, i, msg, pv, s, x, INVITE};

/// The request as it would be forwarded with the recorded edits applied.
fn forwarded(m: &kemi_runtime::SipMsg) -> String {
    let mut out = Vec::new();
    m.message
        .write_request(&mut out, m.route.new_ruri.as_deref(), &m.route.edits, None);
    String::from_utf8(out).unwrap_or_default()
}

#[test]
fn edits_are_lumps_not_visible_to_reads() {
    let mut m = msg(INVITE);
    assert_eq!(i(&mut m, "hdr", "append", &[Arg::Str("X-Added: 1\r\n")]), 1);
    assert_eq!(
        i(&mut m, "hdr", "insert", &[Arg::Str("X-First: 0")]),
        1,
        "CRLF optional"
    );
    assert_eq!(i(&mut m, "hdr", "remove", &[Arg::Str("X-Multi")]), 1);
    assert_eq!(i(&mut m, "hdr", "is_present", &[Arg::Str("X-Added")]), -1);
    assert_eq!(i(&mut m, "hdr", "is_present", &[Arg::Str("X-Multi")]), 1);
    assert_eq!(x(&mut m, "hdr", "get", &[Arg::Str("X-Multi")]), s("one"));
    assert_eq!(pv(&mut m, "$hdr(X-Added)"), Xval::Null);
    assert_eq!(
        m.route.edits,
        [
            HeaderEdit::Append("X-Added: 1\r\n".into()),
            HeaderEdit::Prepend("X-First: 0\r\n".into()),
            HeaderEdit::Remove(9),
            HeaderEdit::Remove(10),
        ]
    );

    let out = forwarded(&m);
    let fwd = Message::parse(out.clone().into()).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(fwd.header(0).map(|h| h.name), Some("X-First"));
    assert_eq!(fwd.header_value("X-Added"), Some("1"));
    assert_eq!(fwd.find("X-Multi").count(), 0);
    assert_eq!(fwd.body(), b"v=0\n");
}

#[test]
fn positional_inserts() {
    let mut m = msg(INVITE);
    assert_eq!(
        i(
            &mut m,
            "hdr",
            "append_after",
            &[Arg::Str("X-After: a\r\n"), Arg::Str("t")]
        ),
        1
    );
    assert_eq!(
        i(
            &mut m,
            "hdr",
            "insert_before",
            &[Arg::Str("X-Before: b"), Arg::Str("Call-ID")]
        ),
        1
    );
    assert_eq!(
        i(
            &mut m,
            "hdr",
            "append_after",
            &[Arg::Str("X-End: c"), Arg::Str("X-None")]
        ),
        1
    );
    assert_eq!(
        i(
            &mut m,
            "hdr",
            "insert_before",
            &[Arg::Str("X-Top: d"), Arg::Str("X-None")]
        ),
        1
    );
    assert_eq!(
        m.route.edits,
        [
            HeaderEdit::AppendAfter(4, "X-After: a\r\n".into()),
            HeaderEdit::InsertBefore(5, "X-Before: b\r\n".into()),
            HeaderEdit::Append("X-End: c\r\n".into()),
            HeaderEdit::Prepend("X-Top: d\r\n".into()),
        ]
    );
    let out = forwarded(&m);
    let names: Vec<String> = Message::parse(out.into())
        .map(|f| f.headers().map(|h| h.name.to_string()).collect())
        .unwrap_or_default();
    let pos = |n: &str| names.iter().position(|x| x == n);
    assert_eq!(pos("X-Top"), Some(0));
    assert_eq!(pos("X-After"), pos("To").map(|p| p + 1));
    assert_eq!(pos("X-Before").map(|p| p + 1), pos("Call-ID"));
    assert_eq!(names.last().map(String::as_str), Some("X-End"));
}

#[test]
fn remove_and_replace() {
    let mut m = msg(INVITE);
    assert_eq!(
        i(&mut m, "hdr", "remove", &[Arg::Str("X-Absent")]),
        1,
        "1 even when none"
    );
    assert!(m.route.edits.is_empty());
    assert_eq!(i(&mut m, "hdr", "remove", &[Arg::Str("bad name")]), -1);
    assert_eq!(
        i(
            &mut m,
            "hdr",
            "rmappend",
            &[Arg::Str("User-Agent"), Arg::Str("User-Agent: sipd")]
        ),
        1
    );
    assert_eq!(
        i(
            &mut m,
            "hdr",
            "rminsert",
            &[Arg::Str("v"), Arg::Str("Via: SIP/2.0/UDP p")]
        ),
        1
    );
    assert_eq!(
        m.route.edits,
        [
            HeaderEdit::Remove(8),
            HeaderEdit::Append("User-Agent: sipd\r\n".into()),
            HeaderEdit::Remove(0),
            HeaderEdit::Remove(1),
            HeaderEdit::Prepend("Via: SIP/2.0/UDP p\r\n".into()),
        ]
    );
    assert_eq!(
        i(&mut m, "hdr", "append", &[Arg::Str("\r\n")]),
        -1,
        "empty line"
    );
    assert_eq!(
        i(
            &mut m,
            "hdr",
            "append_after",
            &[Arg::Str("X: 1"), Arg::Str("")]
        ),
        -1
    );
}

#[test]
fn getters_by_index() {
    let mut m = msg(INVITE);
    assert_eq!(
        x(
            &mut m,
            "hdr",
            "get_idx",
            &[Arg::Str("X-Multi"), Arg::Int(1)]
        ),
        s("two")
    );
    assert_eq!(
        x(
            &mut m,
            "hdr",
            "get_idx",
            &[Arg::Str("X-Multi"), Arg::Int(-1)]
        ),
        s("two")
    );
    assert_eq!(
        x(
            &mut m,
            "hdr",
            "get_idx",
            &[Arg::Str("X-Multi"), Arg::Int(-2)]
        ),
        s("one")
    );
    assert_eq!(
        x(
            &mut m,
            "hdr",
            "get_idx",
            &[Arg::Str("X-Multi"), Arg::Int(-3)]
        ),
        Xval::Null
    );
    assert_eq!(
        x(
            &mut m,
            "hdr",
            "get_idx",
            &[Arg::Str("X-Multi"), Arg::Int(2)]
        ),
        Xval::Null
    );
    assert_eq!(
        x(
            &mut m,
            "hdr",
            "get_idx",
            &[Arg::Str("X-Multi"), Arg::Int(i32::MIN)]
        ),
        Xval::Null
    );
    assert_eq!(
        x(
            &mut m,
            "hdr",
            "gete_idx",
            &[Arg::Str("X-Multi"), Arg::Int(5)]
        ),
        s("")
    );
    assert_eq!(
        x(
            &mut m,
            "hdr",
            "getw_idx",
            &[Arg::Str("X-Multi"), Arg::Int(5)]
        ),
        s("<null>")
    );
    assert_eq!(
        x(&mut m, "hdr", "get", &[Arg::Str("i")]),
        s("a84b4c76e66710@pc33.atlanta.example.com")
    );
    assert_eq!(x(&mut m, "hdr", "gete", &[Arg::Str("X-None")]), s(""));
    assert_eq!(x(&mut m, "hdr", "getw", &[Arg::Str("X-None")]), s("<null>"));
    assert_eq!(x(&mut m, "hdr", "get", &[Arg::Str("X-None")]), Xval::Null);
}

#[test]
fn match_content_operators_and_positions() {
    let mut m = msg(INVITE);
    let mc = |m: &mut kemi_runtime::SipMsg, op: &str, v: &str, w: &str| {
        b(
            m,
            "hdr",
            "match_content",
            &[Arg::Str("X-Multi"), Arg::Str(op), Arg::Str(v), Arg::Str(w)],
        )
    };
    assert!(mc(&mut m, "eq", "ONE", "f"));
    assert!(!mc(&mut m, "eq", "two", "f"));
    assert!(mc(&mut m, "eq", "two", "l"));
    assert!(mc(&mut m, "eq", "two", "o"));
    assert!(!mc(&mut m, "eq", "two", "a"));
    assert!(mc(&mut m, "ne", "three", "a"));
    assert!(mc(&mut m, "sw", "tw", "last"));
    assert!(mc(&mut m, "in", "N", "first"));
    assert!(!mc(&mut m, "re", "o", "f"), "re is not implemented");
    assert!(!mc(&mut m, "xx", "o", "f"));
    assert!(!mc(&mut m, "eq", "one", "z"));
    assert!(!b(
        &mut m,
        "hdr",
        "match_content",
        &[
            Arg::Str("X-None"),
            Arg::Str("ne"),
            Arg::Str("a"),
            Arg::Str("a")
        ]
    ));
}

#[test]
fn append_to_reply_is_kept_for_replies() {
    let mut m = msg(INVITE);
    assert_eq!(
        i(
            &mut m,
            "hdr",
            "append_to_reply",
            &[Arg::Str("X-Reason: test")]
        ),
        1
    );
    assert_eq!(m.route.reply_headers, ["X-Reason: test\r\n"]);
    assert!(m.route.edits.is_empty());
}
