//! `KSR.sanity.*`: each check bit on real messages, the replies on the wire, and the RFC 4475 /
//! RFC 5118 corpus compared with what Kamailio 5.6.3 did (`tests/data/kamailio-5.6.3-sanity.tsv`).

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use kemi_runtime::msg::{Action, RecvInfo, RouteEnv};
use kemi_runtime::sip::Message;
use kemi_runtime::{Arg, SipMsg};

use crate::common::{i, msg, request, INVITE, RINGING};

const OBSERVED: &str = include_str!("../data/kamailio-5.6.3-sanity.tsv");

/// What `sanity_check` did with a message.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    /// Returned 1.
    Pass,
    /// Returned -1 and queued this reply.
    Reply(u16, String),
    /// Returned -1 and sent nothing.
    Silent,
}

fn check(m: &mut SipMsg, checks: i32, uris: i32) -> Outcome {
    let ret = i(
        m,
        "sanity",
        "sanity_check",
        &[Arg::Int(checks), Arg::Int(uris)],
    );
    match (ret, m.outbox.as_slice()) {
        (1, []) => Outcome::Pass,
        (-1, []) => Outcome::Silent,
        (-1, [Action::Reply(r)]) => Outcome::Reply(r.code, r.reason.clone()),
        (ret, outbox) => panic!("sanity_check returned {ret} with outbox {outbox:?}"),
    }
}

fn outcome_of(text: &str, checks: i32, uris: i32) -> Outcome {
    check(&mut msg(text), checks, uris)
}

fn reply(code: u16, reason: &str) -> Outcome {
    Outcome::Reply(code, reason.to_string())
}

/// The stock request mask of Kamailio's configs: 1+2+4+32+64+128+256+1024+16384.
const STOCK: i32 = 17895;

#[test]
fn well_formed_messages_pass_every_check() {
    assert_eq!(outcome_of(INVITE, 0x1_ffff, 15), Outcome::Pass);
    assert_eq!(outcome_of(&request("OPTIONS", ""), STOCK, 7), Outcome::Pass);
    assert_eq!(outcome_of(RINGING, 17604, 6), Outcome::Pass);
}

#[test]
fn request_line_checks() {
    let unknown =
        request("OPTIONS", "").replace("sip:proxy.example.com", "soap.beep://192.0.2.103:3002");
    assert_eq!(
        outcome_of(&unknown, 2, 1),
        reply(416, "Unsupported URI Scheme in Request URI")
    );
    // Through check 1024 the same R-URI is a parse failure, as in Kamailio.
    assert_eq!(outcome_of(&unknown, 1024, 1), reply(400, "Bad Request URI"));
    let tel = request("OPTIONS", "").replace("sip:proxy.example.com", "tel:+15551234");
    assert_eq!(outcome_of(&tel, 2 | 1024, 1), Outcome::Pass);
}

#[test]
fn cseq_checks() {
    let other = request("OPTIONS", "").replace("CSeq: 1 OPTIONS", "CSeq: 1 INVITE");
    assert_eq!(
        outcome_of(&other, 32, 0),
        reply(400, "CSeq method does not match request method")
    );
    assert_eq!(outcome_of(&other, 64, 0), Outcome::Pass);
    let big = request("OPTIONS", "").replace("CSeq: 1 OPTIONS", "CSeq: 2147483648 OPTIONS");
    assert_eq!(
        outcome_of(&big, 64, 0),
        reply(400, "CSeq number is illegal")
    );
    let max = request("OPTIONS", "").replace("CSeq: 1 OPTIONS", "CSeq: 2147483647 OPTIONS");
    assert_eq!(outcome_of(&max, 64, 0), Outcome::Pass);
}

#[test]
fn required_headers_fail_silently() {
    let no_call_id = request("OPTIONS", "").replace("Call-ID: c-OPTIONS\r\n", "");
    assert_eq!(outcome_of(&no_call_id, 4, 0), Outcome::Silent);
    let two_to = request("OPTIONS", "To: <sip:carol@example.com>\r\n");
    assert_eq!(outcome_of(&two_to, 4, 0), Outcome::Silent);
    let bad_lower_via = request("OPTIONS", "Via: SIP/2.0/UDP 10.0.0.9;;\r\n");
    assert_eq!(outcome_of(&bad_lower_via, 4, 0), reply(400, "Bad Headers"));
}

#[test]
fn expires_checks() {
    let e = |v: &str| outcome_of(&request("REGISTER", &format!("Expires: {v}\r\n")), 256, 0);
    assert_eq!(e("3600"), Outcome::Pass);
    assert_eq!(e("4294967295"), Outcome::Pass);
    assert_eq!(e("4294967296"), reply(400, "Expires value is illegal"));
    assert_eq!(e("soon"), reply(400, "Bad Expires Header"));
}

#[test]
fn proxy_require_answers_420_with_unsupported() {
    let mut m = msg(&request("OPTIONS", "Proxy-Require: foo, bar\r\n"));
    assert_eq!(
        check(&mut m, 512, 0),
        reply(420, "Bad Proxy Require Extension")
    );
    let [Action::Reply(r)] = m.outbox.as_slice() else {
        unreachable!()
    };
    let wire = Message::parse(Bytes::from(r.wire.clone())).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(wire.header_value("Unsupported"), Some("foo"));
    assert!(
        m.route.reply_headers.is_empty(),
        "the header is for this reply only"
    );
    assert_eq!(outcome_of(&request("OPTIONS", ""), 512, 0), Outcome::Pass);
}

#[test]
fn uri_checks_pick_the_uris() {
    let from = request("OPTIONS", "").replace(
        "<sip:alice@atlanta.example.com>",
        "<http://www.example.com>",
    );
    assert_eq!(
        outcome_of(&from, 1024, 2),
        reply(400, "Invalid From Header")
    );
    assert_eq!(
        outcome_of(&from, 1024, 1 | 4),
        Outcome::Pass,
        "From is not selected"
    );
    let contact = request("REGISTER", "Contact: <mailto:x@y>\r\n");
    assert_eq!(outcome_of(&contact, 1024, 8), reply(400, "Bad Contact URI"));
    let star = request("REGISTER", "Contact: *\r\n");
    assert_eq!(outcome_of(&star, 1024, 8), Outcome::Pass);
}

#[test]
fn credentials_digest_versus_authorization() {
    let digest = "Authorization: Digest username=\"bob\", realm=\"r\", nonce=\"n\", \
                  uri=\"sip:r\", response=\"abc\"\r\n";
    assert_eq!(
        outcome_of(&request("REGISTER", digest), 2048 | 8192, 0),
        Outcome::Pass
    );
    let other = request(
        "REGISTER",
        "Authorization: NoOneKnowsThisScheme opaque-data=here\r\n",
    );
    assert_eq!(outcome_of(&other, 2048, 0), Outcome::Silent);
    assert_eq!(outcome_of(&other, 8192, 0), Outcome::Pass);
    let empty_user = request("REGISTER", &digest.replace("\"bob\"", "\"\""));
    assert_eq!(
        outcome_of(&empty_user, 8192, 0),
        reply(400, "Auth Empty User")
    );
    let incomplete = request("REGISTER", &digest.replace("realm=\"r\", ", ""));
    assert_eq!(
        outcome_of(&incomplete, 2048, 0),
        reply(400, "Bad Auth Credentials")
    );
}

#[test]
fn duplicate_tags_and_rfc3261() {
    let dup = request("BYE", "").replace("tag=1", "tag=1;tag=2");
    assert_eq!(
        outcome_of(&dup, 4096, 0),
        reply(400, "Many From Tag Params")
    );
    let rr = request("BYE", "Route: <sip:p1.example.com>\r\n");
    assert_eq!(outcome_of(&rr, 32768, 0), Outcome::Silent);
    let lr = request("BYE", "Route: <sip:p1.example.com;lr>\r\n");
    assert_eq!(outcome_of(&lr, 32768, 0), Outcome::Pass);
    let old = request("BYE", "").replace("branch=z9hG4bKBYE", "branch=1");
    assert_eq!(outcome_of(&old, 32768, 0), Outcome::Silent);
    assert_eq!(outcome_of(&old, 16384, 0), Outcome::Pass);
}

#[test]
fn never_answers_ack_or_replies() {
    let ack = request("ACK", "").replace("CSeq: 1 ACK", "CSeq: 1 INVITE");
    assert_eq!(outcome_of(&ack, 32, 0), Outcome::Silent);
    let reply_dup = RINGING.replace("tag=a6c85cf", "tag=a6c85cf;tag=x");
    assert_eq!(outcome_of(&reply_dup, 4096, 0), Outcome::Silent);
}

#[test]
fn defaults_and_sanity_reply() {
    let mut m = msg(&request("OPTIONS", "Proxy-Require: foo\r\n"));
    assert_eq!(
        i(&mut m, "sanity", "sanity_check_defaults", &[]),
        -1,
        "3047 includes 512"
    );
    assert_eq!(m.outbox.len(), 1);
    // Without `noreply` the reply went out already; sanity_reply does nothing more.
    assert_eq!(i(&mut m, "sanity", "sanity_reply", &[]), 1);
    assert_eq!(m.outbox.len(), 1);
}

/// Corpus files where sipd deliberately differs from Kamailio 5.6.3, with our outcome and why.
/// Files sipd's parser rejects are not listed: `sanity_check` never sees them.
const DIFFERENCES: &[(&str, &str, &str)] = &[
    ("rfc4475/dblreq.sip", "pass", "RFC 3261 18.3: octets after Content-Length in a datagram are discarded, not an error"),
    ("rfc4475/unkscm.sip", "416 Unsupported URI Scheme in Request URI", "RFC 3261 8.2.2.1: an unknown scheme is 416; Kamailio's URI parser fails first and gives 400"),
    ("rfc4475/novelsc.sip", "416 Unsupported URI Scheme in Request URI", "same as unkscm"),
    ("rfc4475/wsinv.sip", "pass", "the folded CSeq parses (RFC 3261 7.3.1); Kamailio's core drops it"),
    ("rfc4475/intmeth.sip", "pass", "token-legal header names are accepted; Kamailio's header-name parser fails"),
    ("rfc4475/esc02.sip", "pass", "token-legal header names ('C%6Fntact') are accepted; Kamailio fails"),
    ("rfc4475/quotbal.sip", "400 Bad Headers", "RFC 4475 3.1.2.6 asks for 400 on the unterminated quote; Kamailio's core drops it silently"),
    ("rfc4475/variants/baddn-terminated.sip", "400 Bad Headers", "RFC 4475 3.1.2.15: unquoted display names with ',' must be rejected; Kamailio accepts them"),
];

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../kemi-runtime/tests/corpus")
}

/// Kamailio's column as an outcome; `None` when its core dropped the message before the script.
fn kamailio(cell: &str) -> Option<Outcome> {
    if cell.starts_with("pass") || cell.starts_with("reply_route: sanity pass") {
        Some(Outcome::Pass)
    } else if cell.starts_with("no reply: core drop") {
        None
    } else if cell.starts_with("no reply: sanity_check false")
        || cell.starts_with("reply_route: sanity FAIL")
    {
        Some(Outcome::Silent)
    } else {
        let (code, reason) = cell
            .split_once(' ')
            .unwrap_or_else(|| panic!("odd cell {cell}"));
        Some(reply(
            code.parse().unwrap_or_else(|e| panic!("{cell}: {e}")),
            reason,
        ))
    }
}

fn show(o: &Option<Outcome>) -> String {
    match o {
        None => "core drop".into(),
        Some(Outcome::Pass) => "pass".into(),
        Some(Outcome::Silent) => "silent".into(),
        Some(Outcome::Reply(c, r)) => format!("{c} {r}"),
    }
}

#[test]
fn corpus_matches_kamailio_except_documented_differences() {
    let mut compared = 0;
    let mut mismatches = Vec::new();
    for line in OBSERVED.lines().skip(1) {
        let mut cols = line.split('\t');
        let (Some(file), Some(cell)) = (cols.next(), cols.next()) else {
            continue;
        };
        let bytes =
            std::fs::read(corpus_dir().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let Ok(message) = Message::parse(Bytes::from(bytes)) else {
            continue;
        };
        // Kamailio's cfg ran the stock request mask, and 17604/6 in its reply route.
        let (checks, uris) = if message.is_request() {
            (STOCK, 7)
        } else {
            (17604, 6)
        };
        let mut m = SipMsg::new(message, RecvInfo::default(), Arc::new(RouteEnv::default()));
        let ours = check(&mut m, checks, uris);
        let theirs = kamailio(cell);
        compared += 1;
        let documented = DIFFERENCES.iter().find(|(f, ..)| *f == file);
        let ok = match documented {
            Some((_, expected, _)) => show(&Some(ours.clone())) == *expected,
            // Kamailio's core drop and a silent failure look the same from outside: no reply,
            // and the script must not route the message.
            None => Some(ours.clone()) == theirs || (theirs.is_none() && ours == Outcome::Silent),
        };
        if !ok {
            mismatches.push(format!(
                "{file}: sipd {}, kamailio {}",
                show(&Some(ours)),
                show(&theirs)
            ));
        }
    }
    assert!(compared > 40, "only {compared} corpus files parsed");
    assert!(
        mismatches.is_empty(),
        "undocumented differences:\n{}",
        mismatches.join("\n")
    );
}
