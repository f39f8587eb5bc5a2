//! `KSR.kx.*`: every getter on a real request and reply, the null/empty/"<null>" variants, and
//! values reflecting what the script set (R-URI, `$du`).

use kemi_runtime::msg::Proto;
use kemi_runtime::{Arg, Xval};

use crate::common::{b, i, msg, msg_from, request, s, x, INVITE, RINGING};

fn kx(m: &mut kemi_runtime::SipMsg, name: &str) -> Xval {
    x(m, "kx", name, &[])
}

#[test]
fn request_getters() {
    let mut m = msg(INVITE);
    let expected = [
        ("get_ruri", s("sip:bob@example.com:5080;transport=udp")),
        ("get_ouri", s("sip:bob@example.com:5080;transport=udp")),
        ("get_ruser", s("bob")),
        ("get_rhost", s("example.com")),
        ("get_furi", s("sip:alice@atlanta.example.com")),
        ("get_fuser", s("alice")),
        ("get_fhost", s("atlanta.example.com")),
        ("gete_fhost", s("atlanta.example.com")),
        ("get_turi", s("sip:bob@example.com")),
        ("get_tuser", s("bob")),
        ("get_thost", s("example.com")),
        ("get_cturi", s("sip:alice@10.0.0.5:5062")),
        ("get_ua", s("softphone/1.0")),
        ("get_method", s("INVITE")),
        ("gets_status", Xval::Null),
        ("get_body", s("v=0\n")),
        ("get_callid", s("a84b4c76e66710@pc33.atlanta.example.com")),
        ("get_duri", Xval::Null),
        ("gete_duri", s("")),
        ("getw_duri", s("<null>")),
        ("get_nhuri", s("sip:bob@example.com:5080;transport=udp")),
        ("get_au", Xval::Null),
        ("gete_au", s("")),
        ("getw_au", s("<null>")),
        ("get_srcip", s("192.0.2.10")),
        ("get_srcport", Xval::Int(5062)),
        ("get_srcuri", s("sip:192.0.2.10:5062")),
        ("get_srcaddr_sock", s("udp:192.0.2.10:5062")),
        ("get_rcvip", s("198.51.100.1")),
        ("get_rcvport", Xval::Int(5060)),
        ("get_rcvadvip", s("198.51.100.1")),
        ("get_rcvadvport", Xval::Int(5060)),
        ("get_rcvaddr_sock", s("udp:198.51.100.1:5060")),
        ("get_proto", s("udp")),
    ];
    for (name, want) in expected {
        assert_eq!(kx(&mut m, name), want, "kx.{name}");
    }
    assert_eq!(i(&mut m, "kx", "get_status", &[]), -1);
    assert_eq!(i(&mut m, "kx", "get_bodylen", &[]), 4);
    assert_eq!(
        i(&mut m, "kx", "get_msglen", &[]),
        i32::try_from(INVITE.len()).unwrap_or(-1)
    );
    assert_eq!(i(&mut m, "kx", "get_msgtype", &[]), 1);
    assert_eq!(i(&mut m, "kx", "get_protoid", &[]), 1);
    assert_eq!(kx(&mut m, "get_msgbuf"), s(INVITE));
}

#[test]
fn absent_values_in_three_flavours() {
    // No user in R-URI, To or Contact; no User-Agent, no body.
    let mut m = msg(&request("OPTIONS", ""));
    assert_eq!(kx(&mut m, "get_ruser"), Xval::Null);
    assert_eq!(kx(&mut m, "gete_ruser"), s(""));
    assert_eq!(kx(&mut m, "getw_ruser"), s("<null>"));
    assert_eq!(kx(&mut m, "get_ua"), Xval::Null);
    assert_eq!(kx(&mut m, "gete_ua"), s(""));
    assert_eq!(kx(&mut m, "getw_ua"), s("<null>"));
    assert_eq!(kx(&mut m, "get_cturi"), Xval::Null);
    assert_eq!(kx(&mut m, "gete_cturi"), s(""));
    assert_eq!(kx(&mut m, "getw_cturi"), s("<null>"));
    assert_eq!(kx(&mut m, "get_body"), Xval::Null);
    assert_eq!(kx(&mut m, "gete_body"), s(""));
    assert_eq!(kx(&mut m, "getw_body"), s("<null>"));
    assert_eq!(i(&mut m, "kx", "get_bodylen", &[]), 0);
    assert_eq!(kx(&mut m, "getw_rhost"), s("proxy.example.com"));
    assert_eq!(kx(&mut m, "gete_tuser"), s("bob"));
    assert_eq!(kx(&mut m, "getw_thost"), s("example.com"));

    let mut star = msg(&request("REGISTER", "Contact: *\r\nExpires: 0\r\n"));
    assert_eq!(kx(&mut star, "get_cturi"), Xval::Null);
}

#[test]
fn script_changes_are_visible() {
    let mut m = msg(INVITE);
    assert!(b(&mut m, "", "setuser", &[Arg::Str("carol")]));
    assert!(b(&mut m, "", "setdsturi", &[Arg::Str("sip:10.1.1.1:5070")]));
    assert_eq!(kx(&mut m, "get_ruser"), s("carol"));
    assert_eq!(
        kx(&mut m, "get_ouri"),
        s("sip:bob@example.com:5080;transport=udp")
    );
    assert_eq!(kx(&mut m, "get_duri"), s("sip:10.1.1.1:5070"));
    assert_eq!(kx(&mut m, "get_nhuri"), s("sip:10.1.1.1:5070"));
}

#[test]
fn reply_getters() {
    let mut r = msg(RINGING);
    assert_eq!(i(&mut r, "kx", "get_status", &[]), 180);
    assert_eq!(kx(&mut r, "gets_status"), s("180"));
    assert_eq!(kx(&mut r, "get_method"), s("INVITE"));
    assert_eq!(kx(&mut r, "get_ruri"), Xval::Null);
    assert_eq!(kx(&mut r, "gete_rhost"), s(""));
    assert_eq!(i(&mut r, "kx", "get_msgtype", &[]), 2);
}

#[test]
fn transport_and_credentials() {
    let text = request(
        "INVITE",
        "Proxy-Authorization: Digest username=\"alice@atlanta.example.com\", realm=\"atlanta.example.com\", nonce=\"x\"\r\n",
    );
    let mut m = msg_from(&text, Proto::Tls, "[2001:db8::5]:5061");
    assert_eq!(kx(&mut m, "get_au"), s("alice"));
    assert_eq!(kx(&mut m, "get_srcip"), s("2001:db8::5"));
    assert_eq!(
        kx(&mut m, "get_srcuri"),
        s("sip:[2001:db8::5]:5061;transport=tls")
    );
    assert_eq!(kx(&mut m, "get_srcaddr_sock"), s("tls:[2001:db8::5]:5061"));
    assert_eq!(kx(&mut m, "get_proto"), s("tls"));
    assert_eq!(i(&mut m, "kx", "get_protoid", &[]), 3);
}

#[test]
fn defines_env_and_clock() {
    let mut m = msg(INVITE);
    assert!(!b(&mut m, "kx", "ifdef", &[Arg::Str("WITH_RTPENGINE")]));
    assert!(b(&mut m, "kx", "ifndef", &[Arg::Str("WITH_RTPENGINE")]));
    assert_eq!(x(&mut m, "kx", "get_def", &[Arg::Str("WITH_NAT")]), s(""));
    assert_eq!(i(&mut m, "kx", "get_defn", &[Arg::Str("WITH_NAT")]), 0);
    // PATH is set in every test environment; a surely-unset name gives "" and 0.
    let path = std::env::var("PATH").unwrap_or_default();
    assert_eq!(x(&mut m, "kx", "get_env", &[Arg::Str("PATH")]), s(&path));
    assert_eq!(
        x(
            &mut m,
            "kx",
            "get_env",
            &[Arg::Str("SIPD_SURELY_UNSET_VAR")]
        ),
        s("")
    );
    assert_eq!(
        i(
            &mut m,
            "kx",
            "get_envn",
            &[Arg::Str("SIPD_SURELY_UNSET_VAR")]
        ),
        0
    );
    assert_eq!(x(&mut m, "kx", "get_env", &[Arg::Str("A=B")]), s(""));
    assert!(i(&mut m, "kx", "get_timestamp", &[]) > 1_600_000_000);
}
