//! `KSR.nathelper.*` through the export table: every `nat_uac_test` flag bit on messages whose
//! Via/Contact/SDP are private, public or the source itself; the Contact rewrites as they
//! leave (serialized with their edits); the received AVP; alias round trips.

use std::sync::Arc;

use kemi_runtime::msg::{Proto, VarValue};
use kemi_runtime::services::Services;
use kemi_runtime::{Arg, SipMsg};
use modules::modparam::{ModParams, ParamValue};
use modules::nathelper::config::NathelperConfig;

use crate::common::{i, msg_from, pv, s};

/// Where test messages come from.
const SRC: &str = "127.0.0.1:5070";

/// An INVITE with the given top Via sent-by, Contact URI (as written) and SDP `c=` address.
fn invite(via: &str, contact: &str, sdp_c: Option<&str>) -> String {
    let body = sdp_c.map_or(String::new(), |c| {
        format!("v=0\r\no=- 1 1 IN IP4 {c}\r\ns=-\r\nc=IN IP4 {c}\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n")
    });
    let ctype = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    format!(
        "INVITE sip:bob@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP {via};branch=z9hG4bKnh1;rport\r\n\
         From: <sip:alice@example.com>;tag=a1\r\n\
         To: <sip:bob@example.com>\r\n\
         Call-ID: nh-1\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: {contact}\r\n\
         {ctype}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn udp(text: &str) -> SipMsg {
    msg_from(text, Proto::Udp, SRC)
}

fn test(m: &mut SipMsg, flags: i32) -> i32 {
    i(m, "nathelper", "nat_uac_test", &[Arg::Int(flags)])
}

/// The request as it would leave: R-URI in effect and header edits applied.
fn wire(m: &SipMsg) -> String {
    let mut out = Vec::new();
    m.message
        .write_request(&mut out, m.route.new_ruri.as_deref(), &m.route.edits, None);
    String::from_utf8(out).unwrap()
}

fn contact_line(m: &SipMsg) -> String {
    wire(m)
        .lines()
        .find(|l| l.starts_with("Contact:"))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn nat_uac_test_every_flag() {
    // Everything matches the source: no test fires.
    let clean = invite(
        "127.0.0.1:5070",
        "<sip:alice@127.0.0.1:5070>",
        Some("127.0.0.1"),
    );
    for flag in [1, 2, 4, 8, 16, 32, 64, 128, 256, 512] {
        assert_eq!(
            test(&mut udp(&clean), flag),
            -1,
            "flag {flag} on a clean message"
        );
    }
    assert_eq!(test(&mut udp(&clean), 1023), -1);

    // 1: private Contact host.
    let m = invite("127.0.0.1:5070", "<sip:alice@192.168.1.20:5070>", None);
    assert_eq!(test(&mut udp(&m), 1), 1);
    assert_eq!(test(&mut udp(&m), 2 | 4 | 16), -1);
    let public = invite("127.0.0.1:5070", "<sip:alice@203.0.113.5:5070>", None);
    assert_eq!(test(&mut udp(&public), 1), -1);
    // 100.64/10 (RFC 6598) counts as private too.
    let cgn = invite("127.0.0.1:5070", "<sip:alice@100.64.1.1:5070>", None);
    assert_eq!(test(&mut udp(&cgn), 1), 1);

    // 2: top Via host is not the source IP; 4: it is private.
    let m = invite("10.0.0.5:5070", "<sip:alice@127.0.0.1:5070>", None);
    assert_eq!(test(&mut udp(&m), 2), 1);
    assert_eq!(test(&mut udp(&m), 4), 1);
    assert_eq!(test(&mut udp(&m), 16), -1);
    let m = invite("203.0.113.5:5070", "<sip:alice@127.0.0.1:5070>", None);
    assert_eq!(test(&mut udp(&m), 2), 1);
    assert_eq!(test(&mut udp(&m), 4), -1);
    let m = invite("host.example.com:5070", "<sip:alice@127.0.0.1:5070>", None);
    assert_eq!(
        test(&mut udp(&m), 2),
        1,
        "a host name is not the source IP (no DNS)"
    );

    // 8: private SDP address; 256: SDP c= is not the source.
    let m = invite(
        "127.0.0.1:5070",
        "<sip:alice@127.0.0.1:5070>",
        Some("172.16.5.5"),
    );
    assert_eq!(test(&mut udp(&m), 8), 1);
    assert_eq!(test(&mut udp(&m), 256), 1);
    let m = invite(
        "127.0.0.1:5070",
        "<sip:alice@127.0.0.1:5070>",
        Some("203.0.113.9"),
    );
    assert_eq!(test(&mut udp(&m), 8), -1);
    assert_eq!(test(&mut udp(&m), 256), 1);
    let m = invite(
        "127.0.0.1:5070",
        "<sip:alice@127.0.0.1:5070>",
        Some("0.0.0.0"),
    );
    assert_eq!(test(&mut udp(&m), 8), -1, "on hold is not private");

    // 16: source port is not the Via port (5060 when absent).
    let m = invite("127.0.0.1:5999", "<sip:alice@127.0.0.1:5070>", None);
    assert_eq!(test(&mut udp(&m), 16), 1);
    assert_eq!(test(&mut udp(&m), 2), -1);
    let m = invite("127.0.0.1", "<sip:alice@127.0.0.1:5070>", None);
    assert_eq!(test(&mut udp(&m), 16), 1);
    let mut from_5060 = msg_from(&m, Proto::Udp, "127.0.0.1:5060");
    assert_eq!(test(&mut from_5060, 16), -1);

    // 32: the source itself is private (never for loopback).
    assert_eq!(test(&mut udp(&clean), 32), -1);

    // 64: WebSocket.
    let mut ws = msg_from(&clean, Proto::Ws, SRC);
    assert_eq!(test(&mut ws, 64), 1);
    assert_eq!(test(&mut msg_from(&clean, Proto::Tcp, SRC), 64), -1);

    // 128: Contact port differs from the source port (5060 when absent).
    let m = invite("127.0.0.1:5070", "<sip:alice@127.0.0.1:6000>", None);
    assert_eq!(test(&mut udp(&m), 128), 1);
    let m = invite("127.0.0.1:5070", "<sip:alice@127.0.0.1>", None);
    assert_eq!(test(&mut udp(&m), 128), 1);

    // 512: $du differs from the R-URI.
    let mut m = udp(&clean);
    assert_eq!(test(&mut m, 512), -1);
    m.route.dst_uri = Some("sip:127.0.0.1:5080".into());
    assert_eq!(test(&mut m, 512), 1);
    m.route.dst_uri = Some("sip:127.0.0.1".into());
    assert_eq!(test(&mut m, 512), -1);

    // Bits combine: any test that holds.
    let m = invite("10.0.0.5:5070", "<sip:alice@127.0.0.1:5070>", None);
    assert_eq!(test(&mut udp(&m), 19), 1);
    assert_eq!(test(&mut udp(&m), 1 | 16), -1);
}

#[test]
fn is_rfc1918_classifies() {
    let mut m = udp(&invite("127.0.0.1:5070", "<sip:a@127.0.0.1:5070>", None));
    for (ip, want) in [
        ("10.0.0.1", 1),
        ("172.20.1.1", 1),
        ("192.168.0.1", 1),
        ("100.64.0.1", 1),
        ("127.0.0.1", -1),
        ("203.0.113.1", -1),
        ("not-an-ip", -1),
        ("::1", -1),
    ] {
        assert_eq!(
            i(&mut m, "nathelper", "is_rfc1918", &[Arg::Str(ip)]),
            want,
            "{ip}"
        );
    }
}

#[test]
fn fix_nated_contact_rewrites_host_port() {
    let text = invite(
        "10.0.0.5:5070",
        "\"Alice\" <sip:alice@192.168.1.20:5062;maddr=192.168.1.1;transport=udp>;expires=60",
        None,
    );
    let mut m = udp(&text);
    assert_eq!(i(&mut m, "nathelper", "fix_nated_contact", &[]), 1);
    assert_eq!(
        contact_line(&m),
        "Contact: \"Alice\" <sip:alice@127.0.0.1:5070;transport=udp>;expires=60"
    );
    // Reads in the same route still see the Contact as received.
    assert_eq!(
        pv(&mut m, "$ct"),
        s("\"Alice\" <sip:alice@192.168.1.20:5062;maddr=192.168.1.1;transport=udp>;expires=60")
    );
    // A second change of the Contact is refused, as in Kamailio.
    assert_eq!(i(&mut m, "nathelper", "fix_nated_contact", &[]), -1);
    assert_eq!(i(&mut m, "nathelper", "set_contact_alias", &[]), -1);

    // Without a port, over IPv6.
    let text = invite("10.0.0.5", "<sip:alice@10.0.0.5>", None);
    let mut m = msg_from(&text, Proto::Tcp, "[::1]:40000");
    assert_eq!(i(&mut m, "nathelper", "fix_nated_contact", &[]), 1);
    assert_eq!(contact_line(&m), "Contact: <sip:alice@[::1]:40000>");

    // No Contact.
    let text = invite("10.0.0.5", "x", None).replace("Contact: x\r\n", "");
    assert_eq!(
        i(&mut udp(&text), "nathelper", "fix_nated_contact", &[]),
        -1
    );
}

#[test]
fn fix_nated_register_sets_the_received_avp() {
    let text = invite("10.0.0.5:5070", "<sip:alice@10.0.0.5:5070>", None);
    let mut m = udp(&text);
    assert_eq!(i(&mut m, "nathelper", "fix_nated_register", &[]), 1);
    assert_eq!(pv(&mut m, "$avp(RECEIVED)"), s("sip:127.0.0.1:5070"));
    let avp = m.route.avps.last().unwrap();
    assert_eq!(
        (avp.name.as_str(), &avp.value),
        ("RECEIVED", &VarValue::Str("sip:127.0.0.1:5070".into()))
    );
    let mut tcp = msg_from(&text, Proto::Tcp, "127.0.0.1:40001");
    assert_eq!(i(&mut tcp, "nathelper", "fix_nated_register", &[]), 1);
    assert_eq!(
        pv(&mut tcp, "$avp(RECEIVED)"),
        s("sip:127.0.0.1:40001;transport=tcp")
    );

    // The AVP named by the received_avp modparam.
    let params =
        ModParams::new("nathelper").with("received_avp", ParamValue::Str("$avp(rcv)".into()));
    let mut services = Services::new();
    services.insert(Arc::new(NathelperConfig::from_params(&params).unwrap()));
    let mut m = udp(&text);
    m.env = crate::common::env_with(services);
    assert_eq!(i(&mut m, "nathelper", "fix_nated_register", &[]), 1);
    assert_eq!(pv(&mut m, "$avp(rcv)"), s("sip:127.0.0.1:5070"));
}

#[test]
fn contact_alias_round_trip() {
    // set_contact_alias on the INVITE from behind the NAT...
    let text = invite("10.0.0.5:5062", "sip:alice@10.0.0.5:5062;expires=30", None);
    let mut m = msg_from(&text, Proto::Tcp, SRC);
    assert_eq!(i(&mut m, "nathelper", "set_contact_alias", &[]), 1);
    let line = contact_line(&m);
    assert_eq!(
        line,
        "Contact: <sip:alice@10.0.0.5:5062;alias=127.0.0.1~5070~2>;expires=30"
    );

    // ... and the in-dialog request that comes back to that Contact.
    let uri = "sip:alice@10.0.0.5:5062;alias=127.0.0.1~5070~2";
    let bye = format!(
        "BYE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKb1\r\n\
         From: <sip:bob@example.com>;tag=b\r\nTo: <sip:alice@example.com>;tag=a1\r\n\
         Call-ID: nh-1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    let mut b = msg_from(&bye, Proto::Udp, "127.0.0.1:5080");
    assert_eq!(i(&mut b, "nathelper", "handle_ruri_alias", &[]), 1);
    assert_eq!(pv(&mut b, "$du"), s("sip:127.0.0.1:5070;transport=tcp"));
    assert_eq!(pv(&mut b, "$ru"), s("sip:alice@10.0.0.5:5062"));
    assert!(wire(&b).starts_with("BYE sip:alice@10.0.0.5:5062 SIP/2.0\r\n"));
    // Nothing left to handle.
    assert_eq!(i(&mut b, "nathelper", "handle_ruri_alias", &[]), 2);

    // UDP aliases give a $du without transport; mode 1 takes the last alias.
    let two = bye.replace(
        uri,
        "sip:alice@h;alias=127.0.0.1~5001~1;lr;alias=127.0.0.1~5002~1",
    );
    let mut b = msg_from(&two, Proto::Udp, "127.0.0.1:5080");
    assert_eq!(
        i(
            &mut b,
            "nathelper",
            "handle_ruri_alias_mode",
            &[Arg::Int(1)]
        ),
        1
    );
    assert_eq!(pv(&mut b, "$du"), s("sip:127.0.0.1:5002"));
    assert_eq!(
        pv(&mut b, "$ru"),
        s("sip:alice@h;alias=127.0.0.1~5001~1;lr")
    );
    let bad = bye.replace(uri, "sip:alice@h;alias=127.0.0.1~5001");
    let mut b = msg_from(&bad, Proto::Udp, "127.0.0.1:5080");
    assert_eq!(i(&mut b, "nathelper", "handle_ruri_alias", &[]), -1);

    // set_contact_alias_trim replaces an alias the Contact already had.
    let text = invite(
        "10.0.0.5:5062",
        "<sip:alice@10.0.0.5:5062;alias=10.9.9.9~1~1;ob>",
        None,
    );
    let mut m = udp(&text);
    assert_eq!(i(&mut m, "nathelper", "set_contact_alias_trim", &[]), 1);
    assert_eq!(
        contact_line(&m),
        "Contact: <sip:alice@10.0.0.5:5062;ob;alias=127.0.0.1~5070~1>"
    );

    // set_alias_to_pv reads it back as a URI.
    let mut a = udp(&invite(
        "127.0.0.1:5070",
        "<sip:alice@10.0.0.5:5062;alias=127.0.0.1~5070~2>",
        None,
    ));
    assert_eq!(
        i(
            &mut a,
            "nathelper",
            "set_alias_to_pv",
            &[Arg::Str("$var(a)")]
        ),
        1
    );
    assert_eq!(pv(&mut a, "$var(a)"), s("sip:127.0.0.1:5070;transport=tcp"));
}

#[test]
fn add_contact_alias_only_when_the_source_differs() {
    // The Contact names the source (with the transport): nothing to add.
    let same = invite(
        "127.0.0.1:5070",
        "<sip:alice@127.0.0.1:5070;transport=tcp>",
        None,
    );
    let mut m = msg_from(&same, Proto::Tcp, SRC);
    assert_eq!(i(&mut m, "nathelper", "add_contact_alias", &[]), 2);
    assert!(m.route.edits.is_empty());

    // Behind a NAT: the alias goes after host:port, before the URI params.
    let natted = invite("10.0.0.5:5062", "<sip:alice@10.0.0.5:5062;ob>", None);
    let mut m = udp(&natted);
    assert_eq!(i(&mut m, "nathelper", "add_contact_alias", &[]), 1);
    assert_eq!(
        contact_line(&m),
        "Contact: <sip:alice@10.0.0.5:5062;alias=127.0.0.1~5070~1;ob>"
    );

    // Explicit address, Contact without <>.
    let bare = invite("10.0.0.5:5062", "sip:alice@10.0.0.5:5062;expires=30", None);
    let mut m = udp(&bare);
    let args = [Arg::Str("127.0.0.1"), Arg::Str("5090"), Arg::Str("tls")];
    assert_eq!(i(&mut m, "nathelper", "add_contact_alias_addr", &args), 1);
    assert_eq!(
        contact_line(&m),
        "Contact: <sip:alice@10.0.0.5:5062;alias=127.0.0.1~5090~3>;expires=30"
    );
    for bad in [
        [Arg::Str("nope"), Arg::Str("5090"), Arg::Str("udp")],
        [Arg::Str("127.0.0.1"), Arg::Str("0"), Arg::Str("udp")],
        [
            Arg::Str("127.0.0.1"),
            Arg::Str("5090"),
            Arg::Str("carrier-pigeon"),
        ],
    ] {
        assert_eq!(
            i(&mut udp(&bare), "nathelper", "add_contact_alias_addr", &bad),
            -1
        );
    }
}

#[test]
fn add_rcv_param_and_sdp_functions() {
    let text = invite(
        "10.0.0.5:5062",
        "<sip:a@10.0.0.5:5062>;q=0.5, <sip:b@10.0.0.5>",
        None,
    );
    let mut m = udp(&text);
    assert_eq!(i(&mut m, "nathelper", "add_rcv_param", &[Arg::Int(0)]), 1);
    assert_eq!(
        contact_line(&m),
        "Contact: <sip:a@10.0.0.5:5062>;q=0.5;received=\"sip:127.0.0.1:5070\", \
         <sip:b@10.0.0.5>;received=\"sip:127.0.0.1:5070\""
    );
    let mut m = udp(&text);
    assert_eq!(i(&mut m, "nathelper", "add_rcv_param", &[Arg::Int(1)]), 1);
    assert!(contact_line(&m)
        .starts_with("Contact: <sip:a@10.0.0.5:5062;received=sip:127.0.0.1:5070>;q=0.5"));
    let mut tcp = msg_from(&text, Proto::Tcp, SRC);
    assert_eq!(
        i(&mut tcp, "nathelper", "add_rcv_param", &[Arg::Int(1)]),
        -1
    );

    let sdp = invite("10.0.0.5:5062", "<sip:a@10.0.0.5>", Some("10.0.0.5"));
    let mut m = udp(&sdp);
    assert_eq!(i(&mut m, "nathelper", "fix_nated_sdp", &[Arg::Int(3)]), -1);
    let args = [Arg::Int(2), Arg::Str("127.0.0.1")];
    assert_eq!(i(&mut m, "nathelper", "fix_nated_sdp_ip", &args), -1);
    let logs = m.captured_logs.as_ref().unwrap();
    assert!(logs
        .iter()
        .any(|l| l.text.contains("cannot rewrite message bodies")));
}
