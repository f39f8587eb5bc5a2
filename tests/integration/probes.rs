//! The robustness probes of issue 15, kept as one bounded suite that prints one line per probe
//! with what it sent and what came back (`cargo test -p sipd-tests --test integration probes --
//! --nocapture`): the RFC 4475/5118 corpus and the robustness inputs over UDP and TCP, thousands
//! of idle TCP connections, a slowloris client, a UDP flood, and script faults. After each one
//! the server must still answer at once.

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use kemi_runtime::msg::Proto;

use crate::support::proxy::Sipd;

const SCRIPT: &str = r#"
function ksr_request_route()
    local ci = KSR.pv.get("$ci") or ""
    if ci == "fault" then
        local t = nil
        return t.field
    end
    if ci == "loop" then
        while true do end
    end
    if KSR.is_OPTIONS() and ci:sub(1, 5) == "alive" then
        KSR.sl.sl_send_reply(200, "Alive")
        return
    end
    KSR.sl.sl_send_reply(404, "Probe")
end
"#;

fn start() -> Sipd {
    let listen = vec![
        "udp:127.0.0.1:0".parse().expect("endpoint"),
        "tcp:127.0.0.1:0".parse().expect("endpoint"),
    ];
    Sipd::launch("route.lua", SCRIPT, listen, 2, |c, _| {
        c.limits.script.instructions = Some(2_000_000);
        c.tcp_idle_timeout = Duration::from_secs(2);
    })
}

fn request(call_id: &str, via_port: u16) -> String {
    format!(
        "OPTIONS sip:probe@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{via_port};rport;branch=z9hG4bK-{call_id}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:p@127.0.0.1>;tag=p\r\nTo: <sip:probe@127.0.0.1>\r\n\
         Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
}

/// The first line of what `s` receives within `wait`, or "no answer".
fn udp_answer(s: &UdpSocket, wait: Duration) -> String {
    s.set_read_timeout(Some(wait)).expect("timeout");
    let mut buf = vec![0u8; 65_536];
    match s.recv(&mut buf) {
        Ok(n) => first_line(&buf[..n]),
        Err(_) => "no answer".into(),
    }
}

fn first_line(b: &[u8]) -> String {
    let t = String::from_utf8_lossy(b);
    t.lines().next().unwrap_or("").to_string()
}

/// The server answers an OPTIONS over UDP within 1 s.
fn alive_udp(sipd: &Sipd, tag: &str) -> String {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = s.local_addr().expect("addr").port();
    let start = Instant::now();
    s.send_to(
        request(&format!("alive-{tag}"), port).as_bytes(),
        sipd.addr(Proto::Udp),
    )
    .expect("send");
    let got = udp_answer(&s, Duration::from_secs(1));
    assert_eq!(
        got, "SIP/2.0 200 Alive",
        "after {tag}: the server stopped answering UDP"
    );
    format!("{got} in {} ms", start.elapsed().as_millis())
}

/// The server answers an OPTIONS on a new TCP connection within 1 s.
fn alive_tcp(sipd: &Sipd, tag: &str) -> String {
    let start = Instant::now();
    let mut s = TcpStream::connect(sipd.addr(Proto::Tcp)).expect("tcp connect");
    s.set_read_timeout(Some(Duration::from_secs(1)))
        .expect("timeout");
    s.write_all(request(&format!("alive-{tag}"), 9).as_bytes())
        .expect("write");
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).unwrap_or(0);
    let got = first_line(&buf[..n]);
    assert_eq!(
        got, "SIP/2.0 200 Alive",
        "after {tag}: the server stopped answering TCP"
    );
    format!("{got} in {} ms", start.elapsed().as_millis())
}

/// The soft limit of open files of this process (`/proc/self/limits`).
fn open_file_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

fn corpus_files() -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../kemi-runtime/tests/corpus");
    let mut files = Vec::new();
    for sub in [
        "rfc4475",
        "rfc4475/archive-extra",
        "rfc4475/variants",
        "rfc5118",
        "robustness",
    ] {
        let Ok(entries) = std::fs::read_dir(root.join(sub)) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if matches!(
                p.extension().and_then(|x| x.to_str()),
                Some("sip" | "dat" | "bin")
            ) {
                files.push(p);
            }
        }
    }
    files.sort();
    assert!(files.len() >= 60, "corpus incomplete: {}", files.len());
    files
}

fn name(p: &std::path::Path) -> String {
    let parent = p
        .parent()
        .and_then(|d| d.file_name())
        .map(|d| d.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(
        "{parent}/{}",
        p.file_name()
            .map(|f| f.to_string_lossy())
            .unwrap_or_default()
    )
}

#[test]
fn probes() {
    let sipd = start();
    let files = corpus_files();

    // The corpus over UDP: every file from its own socket, then each answer.
    let sent: Vec<(PathBuf, usize, Option<UdpSocket>)> = files
        .iter()
        .map(|f| {
            let bytes = std::fs::read(f).expect("read corpus file");
            let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
            let ok = bytes.len() < 65_000 && s.send_to(&bytes, sipd.addr(Proto::Udp)).is_ok();
            (f.clone(), bytes.len(), ok.then_some(s))
        })
        .collect();
    for (f, len, s) in &sent {
        let got = match s {
            Some(s) => udp_answer(s, Duration::from_millis(150)),
            None => "not sent (over one datagram)".into(),
        };
        println!("probe corpus-udp {} ({len} bytes): {got}", name(f));
    }
    println!("probe corpus-udp done: {}", alive_udp(&sipd, "corpus-udp"));

    // The corpus over TCP: each file on its own connection, written whole, then the answer or
    // the close.
    for f in &files {
        let bytes = std::fs::read(f).expect("read corpus file");
        let mut s = TcpStream::connect(sipd.addr(Proto::Tcp)).expect("connect");
        s.set_read_timeout(Some(Duration::from_millis(150)))
            .expect("timeout");
        let _ = s.write_all(&bytes);
        let mut buf = vec![0u8; 8192];
        let got = match s.read(&mut buf) {
            Ok(0) => "closed".to_string(),
            Ok(n) => first_line(&buf[..n]),
            Err(_) => "no answer (connection kept)".into(),
        };
        println!(
            "probe corpus-tcp {} ({} bytes): {got}",
            name(f),
            bytes.len()
        );
    }
    println!("probe corpus-tcp done: {}", alive_tcp(&sipd, "corpus-tcp"));

    // Thousands of idle TCP connections: 5,000, or fewer when this process's open-file limit
    // is low (each costs two descriptors here, client and server in one process; half the
    // limit stays for the tests that run alongside).
    let want = open_file_limit().map_or(5_000, |n| n / 4).min(5_000);
    let mut idle = Vec::with_capacity(want);
    for _ in 0..want {
        match TcpStream::connect(sipd.addr(Proto::Tcp)) {
            Ok(s) => idle.push(s),
            Err(_) => break,
        }
    }
    println!(
        "probe idle-tcp: opened {} of {want} idle connections; then udp {}, tcp {}",
        idle.len(),
        alive_udp(&sipd, "idle-udp"),
        alive_tcp(&sipd, "idle-tcp")
    );
    assert_eq!(idle.len(), want, "could not open {want} connections");
    drop(idle);

    // Slowloris: a head dribbled one byte per 10 ms for 3 s while others are served.
    let mut slow = TcpStream::connect(sipd.addr(Proto::Tcp)).expect("connect");
    let head = request("slow", 9);
    let start = Instant::now();
    let mut written = 0;
    let mut served = Vec::new();
    for (i, b) in head.as_bytes().iter().take(300).enumerate() {
        if start.elapsed() > Duration::from_secs(3) || slow.write_all(&[*b]).is_err() {
            break;
        }
        written += 1;
        if i % 100 == 50 {
            served.push(alive_udp(&sipd, "slowloris"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    println!(
        "probe slowloris: dribbled {written} bytes over {} ms; meanwhile {served:?}",
        start.elapsed().as_millis()
    );

    // A UDP flood: 20,000 OPTIONS as fast as one socket sends them (at most 10 s).
    let flood = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = flood.local_addr().expect("addr").port();
    flood.set_nonblocking(true).expect("nonblocking");
    let start = Instant::now();
    let (mut sent_n, mut answered) = (0u32, 0u32);
    let mut buf = vec![0u8; 65_536];
    while sent_n < 20_000 && start.elapsed() < Duration::from_secs(10) {
        let msg = request(&format!("flood-{sent_n}"), port);
        if flood.send_to(msg.as_bytes(), sipd.addr(Proto::Udp)).is_ok() {
            sent_n += 1;
        }
        while flood.recv(&mut buf).is_ok() {
            answered += 1;
        }
    }
    let drain_until = Instant::now() + Duration::from_millis(500);
    while Instant::now() < drain_until {
        match flood.recv(&mut buf) {
            Ok(_) => answered += 1,
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    println!(
        "probe udp-flood: sent {sent_n} OPTIONS in {} ms, {answered} answered (404 Probe); then {}",
        start.elapsed().as_millis(),
        alive_udp(&sipd, "flood")
    );

    // Script faults: a runtime error and an endless loop cost their own message only.
    for fault in ["fault", "loop"] {
        let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let port = s.local_addr().expect("addr").port();
        let start = Instant::now();
        s.send_to(request(fault, port).as_bytes(), sipd.addr(Proto::Udp))
            .expect("send");
        let got = udp_answer(&s, Duration::from_secs(3));
        println!(
            "probe script-{fault}: got {got} in {} ms; then {}",
            start.elapsed().as_millis(),
            alive_udp(&sipd, fault)
        );
        assert!(got.starts_with("SIP/2.0 500"), "{fault}: {got}");
    }
}
