//! `KSR.force_rport()` on the wire (RFC 3581, issue 15 item 1): a request sent from socket A
//! whose top Via names socket B's port without `;rport`. After `force_rport()` every reply
//! (stateless, tm, relayed from a UAS, stateless-forwarded) goes to A, the source, with
//! `rport=<A's port>` on the top Via; without it replies keep going to the sent-by port (B).

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use kemi_runtime::msg::Proto;

use crate::support::proxy::Sipd;

const WAIT: Duration = Duration::from_secs(3);

fn start(script: &str) -> Sipd {
    let listen = vec!["udp:127.0.0.1:0".parse().expect("endpoint")];
    Sipd::launch("route.lua", script, listen, 2, |_, _| {})
}

fn udp() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind test socket");
    s.set_read_timeout(Some(WAIT)).expect("timeout");
    s
}

fn recv(s: &UdpSocket) -> Option<(String, SocketAddr)> {
    let mut buf = vec![0u8; 65536];
    let (n, from) = s.recv_from(&mut buf).ok()?;
    Some((String::from_utf8_lossy(&buf[..n]).into_owned(), from))
}

fn header<'a>(msg: &'a str, name: &str) -> Vec<&'a str> {
    msg.split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
        .collect()
}

/// A request whose Via names `via_port` on 127.0.0.1, without `rport`.
fn request(method: &str, via_port: u16, branch: &str) -> String {
    format!(
        "{method} sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{via_port};branch={branch}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=a1\r\nTo: <sip:bob@127.0.0.1>\r\n\
         Call-ID: rport-{branch}\r\nCSeq: 1 {method}\r\nContact: <sip:alice@127.0.0.1:{via_port}>\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

/// A reply to `req` as a UAS writes it: every Via, From, To (tagged), Call-ID, CSeq.
fn uas_reply(req: &str, status: &str) -> String {
    let mut out = format!("SIP/2.0 {status}\r\n");
    for line in req.split("\r\n").skip(1).take_while(|l| !l.is_empty()) {
        let name = line
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match name.as_str() {
            "via" | "from" | "call-id" | "cseq" => out.push_str(&format!("{line}\r\n")),
            "to" => out.push_str(&format!("{line};tag=uas\r\n")),
            _ => {}
        }
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    out
}

/// Send an OPTIONS from A naming B in its Via to a sipd running `script`; the reply must
/// reach A with `rport=<A's port>` and nothing must reach B.
fn reply_reaches_source(script: &str, code: &str) {
    let p = start(script);
    let (a, b) = (udp(), udp());
    let (a_port, b_port) = (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    );
    let req = request("OPTIONS", b_port, "z9hG4bKfr1");
    a.send_to(req.as_bytes(), p.addr_in(Proto::Udp, false))
        .unwrap();
    let (reply, from) = recv(&a).expect("the reply reaches the source socket A");
    assert_eq!(from, p.addr_in(Proto::Udp, false));
    assert!(reply.starts_with(&format!("SIP/2.0 {code} ")), "{reply}");
    assert_eq!(
        header(&reply, "Via"),
        [format!(
            "SIP/2.0/UDP 127.0.0.1:{b_port};branch=z9hG4bKfr1;rport={a_port}"
        )]
    );
    b.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert!(recv(&b).is_none(), "nothing goes to the Via port");
}

#[test]
fn sl_reply_after_force_rport_goes_to_the_source_port() {
    reply_reaches_source(
        r#"function ksr_request_route() KSR.force_rport(); KSR.sl.sl_send_reply(299, "x") end"#,
        "299",
    );
}

#[test]
fn tm_reply_after_force_rport_goes_to_the_source_port() {
    reply_reaches_source(
        r#"function ksr_request_route() KSR.force_rport(); KSR.tm.t_newtran(); KSR.tm.t_reply(299, "x") end"#,
        "299",
    );
}

#[test]
fn without_force_rport_the_reply_goes_to_the_via_port() {
    let p = start(r#"function ksr_request_route() KSR.sl.sl_send_reply(299, "x") end"#);
    let (a, b) = (udp(), udp());
    let b_port = b.local_addr().unwrap().port();
    let req = request("OPTIONS", b_port, "z9hG4bKfr2");
    a.send_to(req.as_bytes(), p.addr_in(Proto::Udp, false))
        .unwrap();
    let (reply, _) = recv(&b).expect("the reply reaches the sent-by port B");
    assert_eq!(
        header(&reply, "Via"),
        [format!("SIP/2.0/UDP 127.0.0.1:{b_port};branch=z9hG4bKfr2")]
    );
    a.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert!(recv(&a).is_none());
}

/// Relay an INVITE (statefully with `relay`, else statelessly) from A (Via naming B) to a UAS
/// socket: the UAS sees A's Via with `rport=<A's port>`, and its reply comes back to A.
fn relayed_reply_reaches_source(relay: &str, stateful: bool) {
    let uas = udp();
    let uas_port = uas.local_addr().unwrap().port();
    let script = format!(
        "function ksr_request_route()\n  KSR.force_rport()\n  KSR.seturi(\"sip:bob@127.0.0.1:{uas_port}\")\n  {relay}\nend\n"
    );
    let p = start(&script);
    let proxy = p.addr_in(Proto::Udp, false);
    let (a, b) = (udp(), udp());
    let (a_port, b_port) = (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    );
    let req = request("INVITE", b_port, "z9hG4bKfr3");
    a.send_to(req.as_bytes(), proxy).unwrap();
    if stateful {
        let (trying, _) = recv(&a).expect("100 Trying reaches A");
        assert!(trying.starts_with("SIP/2.0 100 "), "{trying}");
        assert!(
            header(&trying, "Via")[0].contains(&format!(";rport={a_port}")),
            "{trying}"
        );
    }
    let (fwd, _) = recv(&uas).expect("the UAS gets the INVITE");
    let vias = header(&fwd, "Via");
    assert_eq!(vias.len(), 2, "{fwd}");
    assert_eq!(
        vias[1],
        format!("SIP/2.0/UDP 127.0.0.1:{b_port};branch=z9hG4bKfr3;rport={a_port}"),
        "the previous hop's Via carries rport: {fwd}"
    );
    uas.send_to(uas_reply(&fwd, "486 Busy Here").as_bytes(), proxy)
        .unwrap();
    let (reply, from) = recv(&a).expect("the UAS's reply reaches A");
    assert_eq!(from, proxy);
    assert!(reply.starts_with("SIP/2.0 486 "), "{reply}");
    assert_eq!(
        header(&reply, "Via"),
        [format!(
            "SIP/2.0/UDP 127.0.0.1:{b_port};branch=z9hG4bKfr3;rport={a_port}"
        )]
    );
    b.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert!(recv(&b).is_none(), "nothing goes to the Via port");
}

#[test]
fn tm_relayed_reply_after_force_rport_goes_to_the_source_port() {
    relayed_reply_reaches_source("KSR.tm.t_relay()", true);
}

#[test]
fn forwarded_reply_after_force_rport_goes_to_the_source_port() {
    relayed_reply_reaches_source("KSR.forward()", false);
}
