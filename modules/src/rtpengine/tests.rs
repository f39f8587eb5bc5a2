//! Offer/answer against a fake ng peer on loopback: the body swap, and every way a reply can
//! be bad (error result, malformed bencode, no SDP, late, refused) leaving the message as it
//! was and returning -1.

use std::net::UdpSocket;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use kemi_runtime::msg::{RecvInfo, RouteEnv};
use kemi_runtime::services::Services;
use kemi_runtime::sip::Message;

use super::*;

const INVITE: &str =
    "INVITE sip:b@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKab\r\n\
From: <sip:a@127.0.0.1>;tag=fa\r\nTo: <sip:b@127.0.0.1>\r\nCall-ID: call-1\r\nCSeq: 1 INVITE\r\n\
Content-Type: application/sdp\r\nContent-Length: 10\r\n\r\nv=0\r\ns=x\r\n";

/// A fake daemon answering each command with `reply(cookie, request)`; its address.
fn peer(
    count: usize,
    reply: impl Fn(&str, &Value) -> Option<Vec<u8>> + Send + 'static,
) -> std::net::SocketAddr {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let addr = s.local_addr().unwrap();
    thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        for _ in 0..count {
            let Ok((n, from)) = s.recv_from(&mut buf) else {
                return;
            };
            let text = &buf[..n];
            let sp = text.iter().position(|&b| b == b' ').unwrap();
            let cookie = std::str::from_utf8(&text[..sp]).unwrap().to_string();
            let req = Value::decode(&text[sp + 1..]).unwrap();
            if let Some(body) = reply(&cookie, &req) {
                s.send_to(&body, from).unwrap();
            }
        }
    });
    addr
}

fn msg_with(addr: std::net::SocketAddr, tout_ms: u64, retr: u32) -> SipMsg {
    let mut relay = Relay::new(&[format!("udp:{addr}")]).unwrap();
    relay.timeout = Duration::from_millis(tout_ms);
    relay.retries = retr;
    let mut services = Services::new();
    services.insert(Arc::new(NgRelay(relay)));
    let env = RouteEnv {
        services,
        ..RouteEnv::default()
    };
    let m = Message::parse(INVITE.as_bytes().to_vec().into()).unwrap();
    SipMsg::new(m, RecvInfo::default(), Arc::new(env))
}

fn ok_sdp(cookie: &str, sdp: &str) -> Vec<u8> {
    let mut d = BTreeMap::new();
    d.insert(b"result".to_vec(), Value::str("ok"));
    d.insert(b"sdp".to_vec(), Value::str(sdp));
    let mut out = format!("{cookie} ").into_bytes();
    out.extend(Value::Dict(d).encode());
    out
}

#[test]
fn offer_sends_call_and_flags_and_replaces_the_body() {
    let addr = peer(1, |cookie, req| {
        assert_eq!(req.get("command").and_then(Value::as_str), Some("offer"));
        assert_eq!(req.get("call-id").and_then(Value::as_str), Some("call-1"));
        assert_eq!(req.get("from-tag").and_then(Value::as_str), Some("fa"));
        assert_eq!(req.get("to-tag"), None);
        assert_eq!(
            req.get("via-branch").and_then(Value::as_str),
            Some("z9hG4bKab")
        );
        assert_eq!(
            req.get("sdp").and_then(Value::as_str),
            Some("v=0\r\ns=x\r\n")
        );
        assert_eq!(req.get("replace"), Some(&Value::strs(&["origin"])));
        assert_eq!(req.get("ICE").and_then(Value::as_str), Some("remove"));
        Some(ok_sdp(cookie, "v=0\r\nc=IN IP4 127.0.0.1\r\n"))
    });
    let mut m = msg_with(addr, 500, 0);
    assert_eq!(
        rtpengine_manage(&mut m, "replace-origin ICE=remove via-branch=1"),
        1
    );
    assert_eq!(m.message.body(), b"v=0\r\nc=IN IP4 127.0.0.1\r\n");
    assert_eq!(m.message.content_length(), Some(25));
    assert_eq!(m.message.call_id(), Some("call-1"));
}

#[test]
fn bad_replies_leave_the_message_unchanged() {
    type Reply = fn(&str) -> Vec<u8>;
    let cases: Vec<(&str, Reply)> = vec![
        ("error result", |c| {
            format!("{c} d6:result5:error12:error-reason7:no waye").into_bytes()
        }),
        ("malformed", |c| format!("{c} d6:result2:okxx").into_bytes()),
        ("not a dict", |c| format!("{c} 2:ok").into_bytes()),
        ("no sdp", |c| format!("{c} d6:result2:oke").into_bytes()),
        ("no result", |c| format!("{c} d3:sdp3:v=0e").into_bytes()),
    ];
    for (what, reply) in cases {
        let addr = peer(1, move |c, _| Some(reply(c)));
        let mut m = msg_with(addr, 500, 0);
        let before = m.message.as_bytes().to_vec();
        assert_eq!(rtpengine_offer0(&mut m), -1, "{what}");
        assert_eq!(m.message.as_bytes(), &before[..], "{what}");
    }
}

#[test]
fn a_late_reply_is_ignored_within_the_bound_and_the_node_is_disabled() {
    // Replies with a wrong cookie (a stale reply) and nothing else.
    let addr = peer(3, |_, _| Some(b"other_1 d6:result2:oke".to_vec()));
    let mut m = msg_with(addr, 100, 2);
    let t = Instant::now();
    assert_eq!(rtpengine_offer0(&mut m), -1);
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(290), "{took:?}");
    assert!(took < Duration::from_millis(1500), "{took:?}");
    let relay = m.env.services.get::<NgRelay>().unwrap();
    assert!(!relay.0.enabled(&relay.0.sets[0].nodes[0]));
    // Disabled: the next command fails at once.
    let t = Instant::now();
    assert_eq!(rtpengine_offer0(&mut m), -1);
    assert!(t.elapsed() < Duration::from_millis(50));
}

#[test]
fn non_sdp_body_is_an_error_without_a_command() {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = s.local_addr().unwrap();
    let text = INVITE.replace("application/sdp", "text/plain");
    let relay = Relay::new(&[format!("udp:{addr}")]).unwrap();
    let mut services = Services::new();
    services.insert(Arc::new(NgRelay(relay)));
    let env = RouteEnv {
        services,
        ..RouteEnv::default()
    };
    let mut m = SipMsg::new(
        Message::parse(text.into_bytes().into()).unwrap(),
        RecvInfo::default(),
        Arc::new(env),
    );
    assert_eq!(manage_op(&m), Manage::Nothing);
    assert_eq!(rtpengine_offer0(&mut m), -1);
    s.set_nonblocking(true).unwrap();
    assert!(s.recv(&mut [0u8; 16]).is_err(), "nothing was sent");
}

#[test]
fn manage_picks_kamailio_commands() {
    let env = Arc::new(RouteEnv::default());
    let parse = |t: &str| {
        SipMsg::new(
            Message::parse(t.as_bytes().to_vec().into()).unwrap(),
            RecvInfo::default(),
            Arc::clone(&env),
        )
    };
    assert_eq!(manage_op(&parse(INVITE)), Manage::Offer);
    let ok = INVITE.replace("INVITE sip:b@127.0.0.1 SIP/2.0", "SIP/2.0 200 OK");
    assert_eq!(manage_op(&parse(&ok)), Manage::Answer);
    let busy =
        "SIP/2.0 486 Busy\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nCSeq: 1 INVITE\r\nl: 0\r\n\r\n";
    assert_eq!(manage_op(&parse(busy)), Manage::Delete);
    let trying = "SIP/2.0 100 Trying\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nCSeq: 1 INVITE\r\nl: 0\r\n\r\n";
    assert_eq!(manage_op(&parse(trying)), Manage::Nothing);
    let bye =
        "BYE sip:a@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nCSeq: 2 BYE\r\nl: 0\r\n\r\n";
    assert_eq!(manage_op(&parse(bye)), Manage::Delete);
    let mut f = parse(INVITE);
    f.tm.route = TmRoute::Failure;
    assert_eq!(manage_op(&f), Manage::Delete);
}
