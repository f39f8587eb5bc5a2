//! Heads that are not UTF-8 on the wire (issue 15 item 4): phones that write display names in
//! Latin-1. sipd forwards them byte for byte (stateless forward, tm relay, its own CANCEL/ACK
//! and replies), the registrar keeps the binding, and scripts of every engine see the lossy
//! view (each octet that is not UTF-8 reads as U+001A). What cannot be parsed (a Request-URI
//! that is not UTF-8) still gets 400. Real UDP sockets on loopback, sipd in-process.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use kemi_runtime::msg::Proto;

use crate::support::proxy::{listen_on, Sipd};
use crate::support::sipp::LOCALHOST_V4 as LO;

const WAIT: Duration = Duration::from_secs(3);

/// Registrar and relay: REGISTER is saved; OPTIONS gets a stateless 486; MESSAGE is looked up
/// and forwarded statelessly; anything else is looked up and relayed by tm. Every request that
/// is not a REGISTER carries what the script read back in `X-Fn` and `X-From`.
const LUA: &str = r#"
function ksr_request_route()
    local m = KSR.pv.get("$rm")
    if m == "REGISTER" then
        if KSR.registrar.save("location", 0) < 0 then
            KSR.sl.sl_send_reply(500, "save failed")
        end
        return 1
    end
    if m == "ACK" then return 1 end
    KSR.hdr.append("X-Fn: " .. KSR.pv.get("$fn") .. "\r\n")
    KSR.hdr.append("X-From: " .. KSR.hdr.get("From") .. "\r\n")
    if m == "OPTIONS" then
        KSR.sl.sl_send_reply(486, "Busy Here")
        return 1
    end
    if KSR.registrar.lookup("location") < 0 then
        KSR.sl.sl_send_reply(404, "Not Found")
        return 1
    end
    if m == "MESSAGE" then
        KSR.forward()
        return 1
    end
    KSR.tm.t_relay()
end
"#;

fn udp() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind test socket");
    s.set_read_timeout(Some(WAIT)).expect("timeout");
    s
}

/// The next datagram on `s` that starts with `prefix` (others, such as retransmissions and
/// 100 Trying, are skipped), within [`WAIT`].
fn recv_starting(s: &UdpSocket, prefix: &[u8]) -> Vec<u8> {
    let end = Instant::now() + WAIT;
    let mut buf = vec![0u8; 65536];
    while Instant::now() < end {
        if let Ok(n) = s.recv(&mut buf) {
            if buf[..n].starts_with(prefix) {
                return buf[..n].to_vec();
            }
        }
    }
    panic!(
        "nothing starting with {:?} arrived",
        String::from_utf8_lossy(prefix)
    );
}

/// Whether `msg` holds `line` (a full header line with CRLF) byte for byte.
fn has_line(msg: &[u8], line: &[u8]) -> bool {
    msg.windows(line.len()).any(|w| w == line)
}

/// The header lines of `msg` named `name` (case-insensitive), without CRLF.
fn lines<'a>(msg: &'a [u8], name: &str) -> Vec<&'a [u8]> {
    msg.split(|c| *c == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .take_while(|l| !l.is_empty())
        .filter(|l| {
            l.iter()
                .position(|c| *c == b':')
                .is_some_and(|c| l[..c].trim_ascii().eq_ignore_ascii_case(name.as_bytes()))
        })
        .collect()
}

/// `text` with `{port}` replaced, as bytes with the Latin-1 octets `\xe9` kept.
fn wire(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// A reply to `req` as a UAS writes it: its Vias, From, Call-ID, CSeq as received, To tagged.
fn uas_reply(req: &[u8], status: &str) -> Vec<u8> {
    let mut out = format!("SIP/2.0 {status}\r\n").into_bytes();
    for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
        for l in lines(req, name) {
            out.extend_from_slice(l);
            if name == "To" {
                out.extend_from_slice(b";tag=uas");
            }
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    out
}

fn start(file: &str, source: &str, db: &tempfile::TempDir) -> Sipd {
    let url = format!("sqlite://{}", db.path().join("sipd.db").display());
    Sipd::launch(
        file,
        source,
        listen_on(LO, &[Proto::Udp]),
        2,
        move |c, _| c.db_url = url,
    )
}

const FROM_RENEE: &[u8] = b"From: \"Ren\xe9e\" <sip:renee@127.0.0.1>;tag=i1\r\n";

#[test]
fn latin1_display_names_are_registered_relayed_and_answered_byte_for_byte() {
    let db = tempfile::tempdir().expect("temp dir");
    let p = start("route.lua", LUA, &db);
    let proxy = p.addr_in(Proto::Udp, false);
    let (ua, caller) = (udp(), udp());
    let ua_port = ua.local_addr().unwrap().port().to_string();
    let caller_port = caller.local_addr().unwrap().port().to_string();
    let port = ua_port.as_bytes();

    // REGISTER: the 200 carries From and To as received; the binding is saved.
    let from_jose: &[u8] = b"From: \"Jos\xe9\" <sip:jose@127.0.0.1>;tag=r1\r\n";
    let to_jose: &[u8] = b"To: \"Jos\xe9\" <sip:jose@127.0.0.1>";
    let register = wire(&[
        b"REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:",
        port,
        b";branch=z9hG4bKreg1;rport\r\nMax-Forwards: 70\r\n",
        from_jose,
        to_jose,
        b"\r\nCall-ID: latin1-reg\r\nCSeq: 1 REGISTER\r\nContact: \"Jos\xe9\" <sip:jose@127.0.0.1:",
        port,
        b">\r\nUser-Agent: T\xe9l\xe9phone\r\nExpires: 60\r\nContent-Length: 0\r\n\r\n",
    ]);
    ua.send_to(&register, proxy).unwrap();
    let ok = recv_starting(&ua, b"SIP/2.0 ");
    assert!(
        ok.starts_with(b"SIP/2.0 200 "),
        "{}",
        String::from_utf8_lossy(&ok)
    );
    assert!(has_line(&ok, from_jose), "{}", String::from_utf8_lossy(&ok));
    assert!(has_line(&ok, to_jose));
    let contact = lines(&ok, "Contact");
    assert_eq!(contact.len(), 1, "{}", String::from_utf8_lossy(&ok));
    assert!(has_line(
        contact[0],
        format!("<sip:jose@127.0.0.1:{ua_port}>").as_bytes()
    ));

    // A To URI with a Latin-1 octet is no address of record (its lossy view could stand for
    // other users): the registrar answers 400 itself and stores nothing.
    let register_bad = wire(&[
        b"REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:",
        port,
        b";branch=z9hG4bKreg2;rport\r\nMax-Forwards: 70\r\n",
        b"From: <sip:jos\xe9@127.0.0.1>;tag=r2\r\nTo: <sip:jos\xe9@127.0.0.1>\r\n",
        b"Call-ID: latin1-reg2\r\nCSeq: 1 REGISTER\r\nContact: <sip:x@127.0.0.1:",
        port,
        b">\r\nExpires: 60\r\nContent-Length: 0\r\n\r\n",
    ]);
    ua.send_to(&register_bad, proxy).unwrap();
    let failed = recv_starting(&ua, b"SIP/2.0 ");
    assert!(
        failed.starts_with(b"SIP/2.0 400 "),
        "{}",
        String::from_utf8_lossy(&failed)
    );
    assert!(has_line(
        &failed,
        b"From: <sip:jos\xe9@127.0.0.1>;tag=r2\r\n"
    ));

    // INVITE to the registered user: relayed by tm with the From as sent; the script's view
    // marks the Latin-1 octet with U+001A; the caller's 100 Trying copies the From as sent.
    let invite = wire(&[
        b"INVITE sip:jose@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:",
        caller_port.as_bytes(),
        b";branch=z9hG4bKinv1;rport\r\nMax-Forwards: 70\r\n",
        FROM_RENEE,
        b"To: <sip:jose@127.0.0.1>\r\nCall-ID: latin1-inv\r\nCSeq: 7 INVITE\r\n\
Subject: caf\xe9 cr\xe8me\r\nContent-Length: 0\r\n\r\n",
    ]);
    caller.send_to(&invite, proxy).unwrap();
    let trying = recv_starting(&caller, b"SIP/2.0 100 ");
    assert!(
        has_line(&trying, FROM_RENEE),
        "{}",
        String::from_utf8_lossy(&trying)
    );
    let relayed = recv_starting(&ua, b"INVITE ");
    assert!(
        has_line(&relayed, FROM_RENEE),
        "{}",
        String::from_utf8_lossy(&relayed)
    );
    assert!(has_line(&relayed, b"Subject: caf\xe9 cr\xe8me\r\n"));
    assert!(
        has_line(&relayed, b"X-Fn: \"Ren\x1ae\"\r\n") || has_line(&relayed, b"X-Fn: Ren\x1ae\r\n"),
        "{}",
        String::from_utf8_lossy(&relayed)
    );
    assert!(has_line(
        &relayed,
        b"X-From: \"Ren\x1ae\" <sip:renee@127.0.0.1>;tag=i1\r\n"
    ));
    // The callee is busy: the 486 goes upstream as the callee wrote it, and sipd's own ACK to
    // the callee carries the From as sent.
    ua.send_to(&uas_reply(&relayed, "486 Occup\u{e9}"), proxy)
        .unwrap();
    let busy = recv_starting(&caller, b"SIP/2.0 486 ");
    assert!(
        has_line(&busy, FROM_RENEE),
        "{}",
        String::from_utf8_lossy(&busy)
    );
    let ack = recv_starting(&ua, b"ACK ");
    assert!(
        has_line(&ack, FROM_RENEE),
        "{}",
        String::from_utf8_lossy(&ack)
    );

    // MESSAGE, forwarded statelessly after the lookup: byte for byte again.
    let message = wire(&[
        b"MESSAGE sip:jose@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:",
        caller_port.as_bytes(),
        b";branch=z9hG4bKmsg1;rport\r\nMax-Forwards: 70\r\n",
        FROM_RENEE,
        b"To: <sip:jose@127.0.0.1>\r\nCall-ID: latin1-msg\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n",
    ]);
    caller.send_to(&message, proxy).unwrap();
    let fwd = recv_starting(&ua, b"MESSAGE ");
    assert!(
        has_line(&fwd, FROM_RENEE),
        "{}",
        String::from_utf8_lossy(&fwd)
    );

    // OPTIONS answered statelessly by the script: the reply's From is the request's.
    let options = wire(&[
        b"OPTIONS sip:jose@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:",
        caller_port.as_bytes(),
        b";branch=z9hG4bKopt1;rport\r\n",
        FROM_RENEE,
        b"To: \"Jos\xe9\" <sip:jose@127.0.0.1>\r\nCall-ID: latin1-opt\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
    ]);
    caller.send_to(&options, proxy).unwrap();
    let reply = recv_starting(&caller, b"SIP/2.0 486 Busy Here");
    assert!(
        has_line(&reply, FROM_RENEE),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    assert!(has_line(
        &reply,
        b"To: \"Jos\xe9\" <sip:jose@127.0.0.1>;tag="
    ));

    // A Request-URI that is not UTF-8 cannot be routed on: 400.
    let bad = wire(&[
        b"OPTIONS sip:jos\xe9@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:",
        caller_port.as_bytes(),
        b";branch=z9hG4bKbad1;rport\r\n",
        FROM_RENEE,
        b"To: <sip:jose@127.0.0.1>\r\nCall-ID: latin1-bad\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
    ]);
    caller.send_to(&bad, proxy).unwrap();
    let rejected = recv_starting(&caller, b"SIP/2.0 4");
    assert!(
        rejected.starts_with(b"SIP/2.0 400 "),
        "{}",
        String::from_utf8_lossy(&rejected)
    );
}

/// The same view in every engine: the script forwards statelessly to `$du` and writes what it
/// read into `X-Fn` / `X-From`.
#[test]
fn every_engine_sees_the_same_lossy_view() {
    let far = udp();
    let du = format!("sip:127.0.0.1:{}", far.local_addr().unwrap().port());
    let scripts = [
        (
            "route.lua",
            format!(
                r#"function ksr_request_route()
    KSR.hdr.append("X-Fn: " .. KSR.pv.get("$fn") .. "\r\n")
    KSR.hdr.append("X-From: " .. KSR.hdr.get("From") .. "\r\n")
    KSR.setdsturi("{du}")
    KSR.forward()
end"#
            ),
        ),
        (
            "route.js",
            format!(
                r#"function ksr_request_route() {{
    KSR.hdr.append("X-Fn: " + KSR.pv.get("$fn") + "\r\n");
    KSR.hdr.append("X-From: " + KSR.hdr.get("From") + "\r\n");
    KSR.setdsturi("{du}");
    KSR.forward();
}}"#
            ),
        ),
        (
            "route.py",
            format!(
                r#"import KSR
def ksr_request_route():
    KSR.hdr.append("X-Fn: " + KSR.pv.get("$fn") + "\r\n")
    KSR.hdr.append("X-From: " + KSR.hdr.get("From") + "\r\n")
    KSR.setdsturi("{du}")
    KSR.forward()
    return 1
"#
            ),
        ),
    ];
    let caller = udp();
    for (i, (file, source)) in scripts.iter().enumerate() {
        let db = tempfile::tempdir().expect("temp dir");
        let p = start(file, source, &db);
        let msg = wire(&[
            b"MESSAGE sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKe",
            i.to_string().as_bytes(),
            b"\r\nMax-Forwards: 70\r\n",
            FROM_RENEE,
            b"To: <sip:x@127.0.0.1>\r\nCall-ID: latin1-e\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n",
        ]);
        caller.send_to(&msg, p.addr_in(Proto::Udp, false)).unwrap();
        let got = recv_starting(&far, b"MESSAGE ");
        let text = String::from_utf8_lossy(&got).into_owned();
        assert!(has_line(&got, FROM_RENEE), "{file}: {text}");
        assert_eq!(
            lines(&got, "X-From"),
            [&b"X-From: \"Ren\x1ae\" <sip:renee@127.0.0.1>;tag=i1"[..]],
            "{file}: {text}"
        );
        assert_eq!(lines(&got, "X-Fn").len(), 1, "{file}: {text}");
        assert!(
            has_line(lines(&got, "X-Fn")[0], b"Ren\x1ae"),
            "{file}: {text}"
        );
    }
}
