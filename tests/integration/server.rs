//! The server on real loopback sockets: `sipd::server::Server` started in-process on port 0
//! with a Lua script written to a temp dir, driven by plain UDP and TCP sockets.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::time::Duration;

use kemi_runtime::msg::Proto;
use sipd::transport::stream::StreamFramer;

use crate::support::proxy::Sipd;

const WAIT: Duration = Duration::from_secs(3);

/// sipd with two workers on `listen` (`proto:ip:port` each), routing with the Lua `script`.
fn start(script: &str, listen: &[&str]) -> Sipd {
    start_file("route.lua", script, listen)
}

/// Like [`start`], with the script saved as `file` (its extension picks the engine).
fn start_file(file: &str, script: &str, listen: &[&str]) -> Sipd {
    let listen = listen
        .iter()
        .map(|l| l.parse().expect("endpoint"))
        .collect();
    Sipd::launch(file, script, listen, 2, |_, _| {})
}

fn udp(bind: &str) -> UdpSocket {
    let s = UdpSocket::bind(bind).expect("bind test socket");
    s.set_read_timeout(Some(WAIT)).expect("timeout");
    s
}

fn recv(s: &UdpSocket) -> (String, SocketAddr) {
    let mut buf = vec![0u8; 65536];
    let (n, from) = s
        .recv_from(&mut buf)
        .expect("a datagram within the timeout");
    (String::from_utf8_lossy(&buf[..n]).into_owned(), from)
}

/// Send `msg` from `client` to `to` and wait for the answer there.
fn ask(client: &UdpSocket, msg: &str, to: SocketAddr) -> (String, SocketAddr) {
    client.send_to(msg.as_bytes(), to).unwrap();
    recv(client)
}

fn options(via: &str, call_id: &str) -> String {
    format!(
        "OPTIONS sip:proxy@127.0.0.1 SIP/2.0\r\nVia: {via}\r\nMax-Forwards: 70\r\n\
         From: <sip:alice@example.invalid>;tag=a1\r\nTo: <sip:proxy@127.0.0.1>\r\nCall-ID: {call_id}\r\n\
         CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
}

fn header<'a>(msg: &'a str, name: &str) -> Vec<&'a str> {
    msg.split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
        .collect()
}

const ANSWER_OPTIONS: &str = r#"
function ksr_request_route()
    if KSR.is_OPTIONS() then
        KSR.sl.sl_send_reply(200, "OK")
        return
    end
    KSR.sl.sl_send_reply(404, "Not Here")
end
"#;

#[test]
fn udp_options_answered_with_received_and_rport() {
    let p = start(ANSWER_OPTIONS, &["udp:127.0.0.1:0"]);
    let client = udp("127.0.0.1:0");
    let port = client.local_addr().unwrap().port();
    let req = options(
        "SIP/2.0/UDP client.invalid:5999;rport;branch=z9hG4bKopt1",
        "opt-1",
    );
    let (reply, from) = ask(&client, &req, p.addr_in(Proto::Udp, false));
    assert_eq!(
        from,
        p.addr_in(Proto::Udp, false),
        "the reply leaves from the listen socket"
    );
    assert!(reply.starts_with("SIP/2.0 200 OK\r\n"), "{reply}");
    assert_eq!(
        header(&reply, "Via"),
        [format!(
            "SIP/2.0/UDP client.invalid:5999;rport={port};branch=z9hG4bKopt1;received=127.0.0.1"
        )]
    );
}

#[test]
fn script_error_is_answered_500() {
    let p = start(
        "function ksr_request_route()\n  error('boom')\nend\n",
        &["udp:127.0.0.1:0"],
    );
    let client = udp("127.0.0.1:0");
    let (reply, _) = ask(
        &client,
        &options("SIP/2.0/UDP 127.0.0.1;rport;branch=z9hG4bKe1", "err-1"),
        p.addr_in(Proto::Udp, false),
    );
    assert!(reply.starts_with("SIP/2.0 500 "), "{reply}");
}

/// A reply to `req` as a UAS would write it: every Via, From, To (tagged), Call-ID, CSeq.
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

fn forward_script(next_hop: SocketAddr, transport: &str) -> String {
    let host = match next_hop {
        SocketAddr::V6(a) => format!("[{}]", a.ip()),
        SocketAddr::V4(a) => a.ip().to_string(),
    };
    format!(
        r#"
function ksr_request_route()
    KSR.hdr.append("X-Script: forwarded\r\n")
    KSR.seturi("sip:carol@{host}:{port}{transport}")
    KSR.forward()
end
function ksr_reply_route()
    KSR.info("reply " .. KSR.pv.get("$rs"))
end
"#,
        port = next_hop.port()
    )
}

fn invite(client: SocketAddr, branch: &str, extra: &str) -> String {
    let host = match client {
        SocketAddr::V6(a) => format!("[{}]", a.ip()),
        SocketAddr::V4(a) => a.ip().to_string(),
    };
    format!(
        "INVITE sip:bob@example.invalid SIP/2.0\r\nVia: SIP/2.0/UDP {host}:{port};rport;branch={branch}\r\n\
         {extra}From: <sip:alice@example.invalid>;tag=a1\r\nTo: <sip:bob@example.invalid>\r\nCall-ID: fwd-{branch}\r\n\
         CSeq: 1 INVITE\r\nContact: <sip:alice@{host}:{port}>\r\nContent-Length: 0\r\n\r\n",
        port = client.port()
    )
}

fn forward_round_trip(loopback: &str, v6: bool) {
    let next_hop = udp(&format!("{loopback}:0"));
    let next_addr = next_hop.local_addr().unwrap();
    let listen = format!("udp:{loopback}:0");
    let p = start(&forward_script(next_addr, ""), &[&listen]);
    let proxy = p.addr_in(Proto::Udp, v6);
    let client = udp(&format!("{loopback}:0"));
    let client_addr = client.local_addr().unwrap();

    let req = invite(client_addr, "z9hG4bKfwd1", "Max-Forwards: 10\r\n");
    client.send_to(req.as_bytes(), proxy).unwrap();
    let (fwd, from) = recv(&next_hop);
    assert_eq!(from, proxy, "forwarded from the listen socket");
    let expected_ruri = format!(
        "INVITE sip:carol@{}:{} SIP/2.0\r\n",
        if v6 { "[::1]" } else { "127.0.0.1" },
        next_addr.port()
    );
    assert!(fwd.starts_with(&expected_ruri), "R-URI rewritten: {fwd}");
    let vias = header(&fwd, "Via");
    assert_eq!(vias.len(), 2, "{fwd}");
    let host = if v6 {
        format!("[::1]:{}", proxy.port())
    } else {
        format!("127.0.0.1:{}", proxy.port())
    };
    assert!(
        vias[0].starts_with(&format!("SIP/2.0/UDP {host};branch=z9hG4bKsd.")),
        "our Via on top: {fwd}"
    );
    assert!(
        vias[1].contains(&format!("rport={}", client_addr.port())),
        "client's Via stamped: {fwd}"
    );
    assert_eq!(header(&fwd, "Max-Forwards"), ["9"]);
    assert_eq!(header(&fwd, "X-Script"), ["forwarded"]);

    // A retransmission maps to the same branch.
    client.send_to(req.as_bytes(), proxy).unwrap();
    let (again, _) = recv(&next_hop);
    assert_eq!(header(&again, "Via")[0], vias[0]);

    // The reply comes back to the client without our Via.
    next_hop
        .send_to(uas_reply(&fwd, "200 OK").as_bytes(), proxy)
        .unwrap();
    let (reply, from) = recv(&client);
    assert_eq!(from, proxy);
    assert!(reply.starts_with("SIP/2.0 200 OK\r\n"), "{reply}");
    let vias = header(&reply, "Via");
    assert_eq!(vias.len(), 1, "{reply}");
    assert!(
        vias[0].contains("branch=z9hG4bKfwd1") && !reply.contains("z9hG4bKsd."),
        "{reply}"
    );

    // A reply whose top Via is not ours is dropped.
    let stray = uas_reply(&req, "200 OK");
    next_hop.send_to(stray.as_bytes(), proxy).unwrap();
    client
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 2048];
    assert!(
        client.recv_from(&mut buf).is_err(),
        "a stray reply must not reach the client"
    );

    // Max-Forwards absent: 70 is added; zero: answered 483 by the server.
    client.set_read_timeout(Some(WAIT)).unwrap();
    client
        .send_to(invite(client_addr, "z9hG4bKfwd2", "").as_bytes(), proxy)
        .unwrap();
    let (fwd, _) = recv(&next_hop);
    assert_eq!(header(&fwd, "Max-Forwards"), ["70"]);
    let zero = invite(client_addr, "z9hG4bKfwd3", "Max-Forwards: 0\r\n");
    let (reply, _) = ask(&client, &zero, proxy);
    assert!(reply.starts_with("SIP/2.0 483 "), "{reply}");
}

/// Whether this host has no IPv6 loopback (an IPv6 test then skips, saying so).
fn no_ipv6_loopback() -> bool {
    let missing = UdpSocket::bind("[::1]:0").is_err();
    if missing {
        eprintln!("no IPv6 loopback here: skipped");
    }
    missing
}

#[test]
fn udp_forward_and_reply_ipv4() {
    forward_round_trip("127.0.0.1", false);
}

#[test]
fn udp_forward_and_reply_ipv6() {
    if no_ipv6_loopback() {
        return;
    }
    forward_round_trip("[::1]", true);
}

#[test]
fn udp_options_ipv6() {
    if no_ipv6_loopback() {
        return;
    }
    let p = start(ANSWER_OPTIONS, &["udp:[::1]:0", "udp:127.0.0.1:0"]);
    let client = udp("[::1]:0");
    let port = client.local_addr().unwrap().port();
    let (reply, _) = ask(
        &client,
        &options("SIP/2.0/UDP [2001:db8::1]:5070;rport;branch=z9hG4bK6", "v6"),
        p.addr_in(Proto::Udp, true),
    );
    assert!(reply.starts_with("SIP/2.0 200 OK"), "{reply}");
    assert!(
        header(&reply, "Via")[0].ends_with(&format!("rport={port};branch=z9hG4bK6;received=::1")),
        "{reply}"
    );
}

/// Read `n` SIP messages from a TCP stream, framed by Content-Length.
fn read_messages(s: &mut TcpStream, n: usize) -> Vec<String> {
    let mut framer = StreamFramer::new(65535);
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    for _ in 0..100 {
        while let Ok(Some(frame)) = framer.next_frame() {
            got.push(String::from_utf8_lossy(&frame).into_owned());
        }
        if got.len() >= n {
            break;
        }
        let k = s.read(&mut buf).expect("read within the timeout");
        assert!(k > 0, "connection closed after {} message(s)", got.len());
        framer.push(&buf[..k]);
    }
    got
}

#[test]
fn tcp_two_messages_in_one_write_and_one_split() {
    let p = start(ANSWER_OPTIONS, &["tcp:127.0.0.1:0"]);
    let mut s = TcpStream::connect(p.addr_in(Proto::Tcp, false)).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let a = options("SIP/2.0/TCP client.invalid;branch=z9hG4bKt1", "tcp-1");
    let b = options("SIP/2.0/TCP client.invalid;branch=z9hG4bKt2", "tcp-2");
    s.write_all(format!("{a}{b}").as_bytes()).unwrap();
    let replies = read_messages(&mut s, 2);
    assert_eq!(replies.len(), 2);
    assert!(
        replies.iter().all(|r| r.starts_with("SIP/2.0 200 OK")),
        "{replies:?}"
    );
    assert_eq!(header(&replies[0], "Call-ID"), ["tcp-1"]);
    assert_eq!(header(&replies[1], "Call-ID"), ["tcp-2"]);

    let c = options("SIP/2.0/TCP client.invalid;branch=z9hG4bKt3", "tcp-3");
    let (head, tail) = c.split_at(40);
    s.write_all(head.as_bytes()).unwrap();
    s.flush().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    s.write_all(tail.as_bytes()).unwrap();
    let replies = read_messages(&mut s, 1);
    assert_eq!(header(&replies[0], "Call-ID"), ["tcp-3"]);
}

#[test]
fn tcp_framing_error_closes_the_connection() {
    let p = start(ANSWER_OPTIONS, &["tcp:127.0.0.1:0"]);
    let mut s = TcpStream::connect(p.addr_in(Proto::Tcp, false)).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    // No Content-Length on a stream: unrecoverable.
    s.write_all(b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bKx\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 1024];
    assert_eq!(s.read(&mut buf).expect("closed, not timed out"), 0);
}

#[test]
fn tcp_request_over_the_size_limit_gets_513_then_the_close() {
    let p = start(ANSWER_OPTIONS, &["tcp:127.0.0.1:0"]);
    let mut s = TcpStream::connect(p.addr_in(Proto::Tcp, false)).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    // A readable head announcing a body far over max_message_size (65,535 by default).
    let head =
        "MESSAGE sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK-big\r\n\
                From: <sip:b@127.0.0.1>;tag=1\r\nTo: <sip:a@127.0.0.1>\r\nCall-ID: too-big\r\n\
                CSeq: 1 MESSAGE\r\nMax-Forwards: 70\r\nContent-Length: 200000\r\n\r\n";
    s.write_all(head.as_bytes()).unwrap();
    let _ = s.write_all(&[b'x'; 1000]);
    let mut got = Vec::new();
    s.read_to_end(&mut got)
        .expect("answered and closed, not timed out");
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.starts_with("SIP/2.0 513 Message Too Large\r\n"),
        "{text}"
    );
    assert_eq!(header(&text, "Call-ID"), ["too-big"]);
}

#[test]
fn forward_over_tcp_reply_back_over_udp() {
    let next_hop = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let next_addr = next_hop.local_addr().unwrap();
    let p = start(
        &forward_script(next_addr, ";transport=tcp"),
        &["udp:127.0.0.1:0", "tcp:127.0.0.1:0"],
    );
    let proxy = p.addr_in(Proto::Udp, false);
    let client = udp("127.0.0.1:0");
    client
        .send_to(
            invite(client.local_addr().unwrap(), "z9hG4bKtcpf", "").as_bytes(),
            proxy,
        )
        .unwrap();
    next_hop.set_nonblocking(false).unwrap();
    let (mut conn, _) = next_hop.accept().unwrap();
    conn.set_read_timeout(Some(WAIT)).unwrap();
    let fwd = read_messages(&mut conn, 1).remove(0);
    let tcp_port = p.addr_in(Proto::Tcp, false).port();
    assert!(
        header(&fwd, "Via")[0].starts_with(&format!(
            "SIP/2.0/TCP 127.0.0.1:{tcp_port};branch=z9hG4bKsd."
        )),
        "{fwd}"
    );
    conn.write_all(uas_reply(&fwd, "180 Ringing").as_bytes())
        .unwrap();
    let (reply, _) = recv(&client);
    assert!(reply.starts_with("SIP/2.0 180 Ringing"), "{reply}");
    assert_eq!(header(&reply, "Via").len(), 1);
}

/// Every file of the torture corpus, after which the server still answers.
#[test]
fn torture_corpus_then_still_answers() {
    let corpus = [
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../kemi-runtime/tests/corpus"),
        PathBuf::from("/work/shared/conformance"),
    ]
    .into_iter()
    .find(|d| d.is_dir())
    .expect("a corpus directory");
    let blackhole = udp("127.0.0.1:0");
    let script = format!(
        "function ksr_request_route()\n  if KSR.is_OPTIONS() and KSR.pv.get('$ci') == 'alive' then\n    \
         KSR.sl.sl_send_reply(200, 'OK')\n    return\n  end\n  KSR.setdsturi('sip:127.0.0.1:{}')\n  KSR.forward()\nend\n",
        blackhole.local_addr().unwrap().port()
    );
    let p = start(&script, &["udp:127.0.0.1:0", "tcp:127.0.0.1:0"]);
    let client = udp("127.0.0.1:0");
    let mut files = Vec::new();
    for sub in [
        "rfc4475",
        "rfc4475/archive-extra",
        "rfc4475/variants",
        "rfc5118",
        "robustness",
    ] {
        let Ok(entries) = std::fs::read_dir(corpus.join(sub)) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if matches!(
                path.extension().and_then(|x| x.to_str()),
                Some("sip" | "dat" | "bin")
            ) {
                files.push(path);
            }
        }
    }
    assert!(
        files.len() >= 60,
        "corpus incomplete: {} files in {}",
        files.len(),
        corpus.display()
    );
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        if bytes.len() < 65_000 {
            client
                .send_to(&bytes, p.addr_in(Proto::Udp, false))
                .unwrap();
        }
        let mut s = TcpStream::connect(p.addr_in(Proto::Tcp, false)).unwrap();
        let _ = s.write_all(&bytes);
    }
    // Whatever was answered, the server is alive on both transports.
    let alive = options("SIP/2.0/UDP 127.0.0.1;rport;branch=z9hG4bKalive", "alive");
    client
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = vec![0u8; 65536];
    while client.recv_from(&mut buf).is_ok() {} // drain replies to the corpus (bounded by the timeout)
    client.set_read_timeout(Some(WAIT)).unwrap();
    let (reply, _) = ask(&client, &alive, p.addr_in(Proto::Udp, false));
    assert!(
        reply.starts_with("SIP/2.0 200 OK") && reply.contains("alive"),
        "{reply}"
    );
    let mut s = TcpStream::connect(p.addr_in(Proto::Tcp, false)).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(alive.as_bytes()).unwrap();
    assert!(read_messages(&mut s, 1)[0].starts_with("SIP/2.0 200 OK"));
}

fn check(config_text: &str, script: &str) -> Result<(), String> {
    let script = crate::support::script("route.lua", script);
    let cfg = script.dir().join("sipd.toml");
    std::fs::write(&cfg, config_text).unwrap();
    let cli = <sipd::cli::Cli as clap::Parser>::try_parse_from([
        "sipd",
        "check",
        "--config",
        cfg.to_str().unwrap(),
    ])
    .map_err(|e| e.to_string())?;
    sipd::cli::run(cli)
        .map(|_| ())
        .map_err(|e| format!("{e:#}"))
}

#[test]
fn check_reports_config_and_script_errors_with_lines() {
    let good = "listen = [\"udp:127.0.0.1:5060\"]\nscript = \"route.lua\"\n";
    let script = "function ksr_request_route()\nend\n";
    assert_eq!(check(good, script), Ok(()));

    let e = check(
        "listen = [\"udp:127.0.0.1:5060\"]\nscript = \"route.lua\"\nworkerz = 4\n",
        script,
    )
    .unwrap_err();
    assert!(e.contains("sipd.toml:3:") && e.contains("workerz"), "{e}");

    let e = check(
        "listen = [\"udp:127.0.0.1:5060\"]\nscript = \"nope.lua\"\n",
        script,
    )
    .unwrap_err();
    assert!(e.contains("sipd.toml:2:") && e.contains("nope.lua"), "{e}");

    let e = check(good, "function ksr_request_route()\n  local x = \nend\n").unwrap_err();
    assert!(e.contains("route.lua:3"), "{e}");
}

#[test]
fn examples_check() {
    let cfg = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/sipd.toml");
    let cli = <sipd::cli::Cli as clap::Parser>::try_parse_from([
        "sipd",
        "check",
        "--config",
        cfg.to_str().unwrap(),
    ])
    .unwrap();
    sipd::cli::run(cli).expect("examples/sipd.toml and proxy.lua check");
}

/// A call's INVITE forwarded and its 200 relayed back by a script in another language: the same
/// round trip as the Lua one, through `sipd run`'s server, so every engine works live.
fn engine_call_round_trip(file: &str, script: &str) {
    let next_hop = udp("127.0.0.1:0");
    let next_addr = next_hop.local_addr().unwrap();
    let script = script.replace("NEXT_HOP", &next_addr.to_string());
    let p = start_file(file, &script, &["udp:127.0.0.1:0"]);
    let proxy = p.addr_in(Proto::Udp, false);
    let client = udp("127.0.0.1:0");
    let client_addr = client.local_addr().unwrap();

    let req = invite(client_addr, "z9hG4bKeng1", "Max-Forwards: 10\r\n");
    client.send_to(req.as_bytes(), proxy).unwrap();
    let (fwd, _) = recv(&next_hop);
    assert!(
        fwd.starts_with("INVITE sip:bob@example.invalid SIP/2.0\r\n"),
        "{fwd}"
    );
    assert_eq!(header(&fwd, "X-Engine"), [file], "{fwd}");
    assert_eq!(header(&fwd, "Max-Forwards"), ["9"]);
    next_hop
        .send_to(uas_reply(&fwd, "200 OK").as_bytes(), proxy)
        .unwrap();
    let (reply, _) = recv(&client);
    assert!(reply.starts_with("SIP/2.0 200 OK\r\n"), "{reply}");

    // OPTIONS is answered by the script itself.
    let (reply, _) = ask(
        &client,
        &options("SIP/2.0/UDP 127.0.0.1;rport;branch=z9hG4bKeng2", "eng-2"),
        proxy,
    );
    assert!(reply.starts_with("SIP/2.0 200 Engine OK\r\n"), "{reply}");
}

#[test]
fn javascript_script_routes_a_call_live() {
    engine_call_round_trip(
        "route.js",
        r#"
function ksr_request_route() {
    if (KSR.is_OPTIONS()) {
        KSR.sl.sl_send_reply(200, "Engine OK");
        KSR.x.exit();
    }
    KSR.hdr.append("X-Engine: route.js\r\n");
    KSR.setdsturi("sip:NEXT_HOP");
    KSR.forward();
}
"#,
    );
}

#[test]
fn python_script_routes_a_call_live() {
    engine_call_round_trip(
        "route.py",
        r#"
import KSR

def ksr_request_route():
    if KSR.is_OPTIONS():
        KSR.sl.sl_send_reply(200, "Engine OK")
        return 1
    KSR.hdr.append("X-Engine: route.py\r\n")
    KSR.setdsturi("sip:NEXT_HOP")
    KSR.forward()
    return 1
"#,
    );
}

#[test]
fn python_class_style_script_routes_a_call_live() {
    engine_call_round_trip(
        "route.py",
        r#"
import KSR

class Router:
    def child_init(self, rank):
        return 0

    def ksr_request_route(self, msg):
        if KSR.is_OPTIONS():
            KSR.sl.sl_send_reply(200, "Engine OK")
            return 1
        KSR.hdr.append("X-Engine: route.py\r\n")
        KSR.setdsturi("sip:NEXT_HOP")
        KSR.forward()
        return 1

def mod_init():
    return Router()
"#,
    );
}

/// Accept one connection on `l` within `wait`, if any comes.
fn accept_within(l: &std::net::TcpListener, wait: Duration) -> Option<TcpStream> {
    l.set_nonblocking(true).unwrap();
    let until = std::time::Instant::now() + wait;
    while std::time::Instant::now() < until {
        match l.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).unwrap();
                return Some(s);
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    None
}

#[test]
fn tcp_forward_no_connect_and_close() {
    let p = start(
        r#"
function ksr_request_route()
    if KSR.hdr.is_present("X-No-Connect") > 0 then KSR.set_forward_no_connect() end
    if KSR.hdr.is_present("X-Close") > 0 then KSR.set_forward_close() end
    KSR.forward_uri(KSR.pv.get("$hdr(X-Target)"))
end
"#,
        &["udp:127.0.0.1:0", "tcp:127.0.0.1:0"],
    );
    let next = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = format!(
        "X-Target: sip:{};transport=tcp\r\n",
        next.local_addr().unwrap()
    );
    let client = udp("127.0.0.1:0");
    let via = format!(
        "SIP/2.0/UDP {};branch=z9hG4bKnc",
        client.local_addr().unwrap()
    );
    let with = |extra: &str, call_id: &str| {
        options(&via, call_id).replace("Content-Length", &format!("{target}{extra}Content-Length"))
    };

    // no_connect: no connection to the next hop is open, so none is made and nothing is sent.
    let m = with("X-No-Connect: 1\r\n", "nc-1");
    client.send_to(m.as_bytes(), p.addr(Proto::Udp)).unwrap();
    assert!(
        accept_within(&next, Duration::from_millis(700)).is_none(),
        "set_forward_no_connect opened a connection"
    );

    // close: the connection is opened, the request written, then the connection closed.
    let m = with("X-Close: 1\r\n", "nc-2");
    client.send_to(m.as_bytes(), p.addr(Proto::Udp)).unwrap();
    let mut conn = accept_within(&next, WAIT).expect("a connection to the next hop");
    conn.set_read_timeout(Some(WAIT)).unwrap();
    let mut got = Vec::new();
    conn.read_to_end(&mut got)
        .expect("sipd closes the connection after the forward");
    let got = String::from_utf8_lossy(&got);
    assert!(
        got.starts_with("OPTIONS sip:proxy@127.0.0.1 SIP/2.0\r\n"),
        "{got}"
    );
    assert_eq!(header(&got, "Call-ID"), ["nc-2"]);
}
