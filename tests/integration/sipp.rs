//! sipd on the wire, driven by real `sipp` processes: OPTIONS answered by the script, calls
//! relayed statelessly to a sipp UAS over UDP, TCP and IPv6 with the script's header checked on
//! arrival, and the conformance corpus thrown at a running server before it must still answer.
//!
//! sipd runs in-process ([`sipd::server::Server::start`]) on port 0; sipp's own ports are found by
//! binding port 0. Every sipp run is bounded by `-m`, `-timeout`/`-timeout_error` and a
//! wall-clock limit (the child is killed by its handle), see [`crate::support::sipp`]. Scenarios
//! live in `tests/sipp/`. Without `sipp` these tests fail, naming the package to install: CI
//! installs `sip-tester`.

use std::net::{IpAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::Duration;

use kemi_runtime::msg::Proto;

use crate::support::proxy::Sipd;
use crate::support::sipp::{free_addr, hostport, proto, Sipp, LOCALHOST_V4, LOCALHOST_V6};

/// Answers OPTIONS to the proxy itself with `200 Alive`; everything else gets our header and
/// goes statelessly to `dst`.
fn relay_script(dst: &str) -> String {
    format!(
        r#"UAS = "{dst}"
function ksr_request_route()
    if KSR.maxfwd.process_maxfwd(10) < 0 then
        KSR.sl.sl_send_reply(483, "Too Many Hops")
        KSR.x.exit()
    end
    if KSR.is_OPTIONS() and KSR.is_myself_ruri() then
        KSR.sl.sl_send_reply(200, "Alive")
        KSR.x.exit()
    end
    KSR.hdr.append("X-Proxied-By: sipd\r\n")
    KSR.setdsturi(UAS)
    KSR.forward()
end
"#
    )
}

/// sipd with one worker on UDP and TCP port 0 of `ip`, routing with `lua`.
fn sipd(ip: IpAddr, lua: &str) -> Sipd {
    Sipd::start(ip, 1, lua)
}

/// `calls` OPTIONS from a sipp UAC to `sipd`, each answered `200 Alive` by the script.
fn options_ok(sipd: &Sipd, ip: IpAddr, t: &str, calls: u32) {
    let to = sipd.addr(proto(t));
    Sipp::uac(
        "OPTIONS UAC",
        "options_uac.xml",
        free_addr(ip),
        t,
        calls,
        to,
    )
    .args(&["-r", "50"])
    .spawn()
    .expect_all_ok();
}

#[test]
fn options_answered_by_the_script_over_udp_and_tcp() {
    let sipd = sipd(LOCALHOST_V4, &relay_script("sip:127.0.0.1:9"));
    options_ok(&sipd, LOCALHOST_V4, "u1", 20);
    options_ok(&sipd, LOCALHOST_V4, "t1", 5);
}

/// A sipp UAS on `ip` (over `t`), a sipd relaying to it, a sipp UAC calling through sipd:
/// `calls` complete calls must succeed on both sides, the UAS checking sipd's header and Via.
fn call_through(ip: IpAddr, t: &str, calls: u32) {
    let uas_addr = free_addr(ip);
    let transport = if t == "t1" { ";transport=tcp" } else { "" };
    let sipd = sipd(
        ip,
        &relay_script(&format!("sip:{}{transport}", hostport(uas_addr))),
    );
    let mut uas = Sipp::uas("call UAS", "call_uas.xml", uas_addr, t, calls).spawn();
    uas.wait_bound(uas_addr, t);
    let to = sipd.addr(proto(t));
    Sipp::uac("call UAC", "call_uac.xml", free_addr(ip), t, calls, to)
        .args(&["-r", "20"])
        .spawn()
        .expect_all_ok();
    uas.expect_all_ok();
}

#[test]
fn call_relayed_statelessly_over_udp() {
    call_through(LOCALHOST_V4, "u1", 10);
}

#[test]
fn call_relayed_statelessly_over_tcp() {
    call_through(LOCALHOST_V4, "t1", 5);
}

#[test]
fn call_relayed_statelessly_over_ipv6_udp() {
    call_through(LOCALHOST_V6, "u1", 5);
}

#[test]
fn call_relayed_statelessly_over_ipv6_tcp() {
    call_through(LOCALHOST_V6, "t1", 3);
}

/// The UAS refuses a call whose INVITE lacks the script's header: proves the check bites.
#[test]
fn uas_header_check_fails_without_the_scripts_header() {
    let ip = LOCALHOST_V4;
    let uas_addr = free_addr(ip);
    let script = format!(
        "function ksr_request_route()\n    KSR.setdsturi(\"sip:{}\")\n    KSR.forward()\nend\n",
        hostport(uas_addr)
    );
    let sipd = sipd(ip, &script);
    let mut uas = Sipp::uas("call UAS (no header)", "call_uas.xml", uas_addr, "u1", 1).spawn();
    uas.wait_bound(uas_addr, "u1");
    let to = sipd.addr(Proto::Udp);
    let mut uac = Sipp::uac("call UAC", "call_uac.xml", free_addr(ip), "u1", 1, to)
        .timeout(Duration::from_secs(4))
        .spawn();
    let _ = uac.finish();
    let o = uas.finish();
    assert!(
        !o.status.success() && o.failed >= 1,
        "the UAS accepted an INVITE without X-Proxied-By (exit {})",
        o.status
    );
}

/// Every file of the conformance corpus (`*.sip`, `*.bin`) under `kemi-runtime/tests/corpus`.
fn corpus_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in
            std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        {
            let p = entry.expect("dir entry").path();
            if p.is_dir() {
                walk(&p, out);
            } else if matches!(p.extension().and_then(|e| e.to_str()), Some("sip" | "bin")) {
                out.push(p);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../kemi-runtime/tests/corpus");
    let mut files = Vec::new();
    walk(&root, &mut files);
    files.sort();
    assert!(
        files.len() > 20,
        "corpus at {} looks empty ({} files)",
        root.display(),
        files.len()
    );
    files
}

/// The corpus over UDP (every file, one datagram each) and the `.bin` files over TCP (one
/// connection each), forwarded to a sink socket we hold; then sipd must still answer OPTIONS.
#[test]
fn conformance_corpus_then_options_still_answered() {
    let ip = LOCALHOST_V4;
    let sink = UdpSocket::bind((ip, 0)).expect("sink socket");
    let sipd = sipd(
        ip,
        &relay_script(&format!("sip:{}", hostport(sink.local_addr().unwrap()))),
    );
    let udp_dst = sipd.addr(Proto::Udp);
    let tcp_dst = sipd.addr(Proto::Tcp);
    let client = UdpSocket::bind((ip, 0)).expect("client socket");
    let files = corpus_files();
    let (mut sent_udp, mut sent_tcp) = (0, 0);
    for f in &files {
        let bytes = std::fs::read(f).expect("corpus file");
        if bytes.len() <= 65_507 {
            client
                .send_to(&bytes, udp_dst)
                .unwrap_or_else(|e| panic!("sending {}: {e}", f.display()));
            sent_udp += 1;
            // Pace the burst so the socket buffer never drops what we mean to deliver.
            std::thread::sleep(Duration::from_millis(2));
        }
        if f.extension().is_some_and(|e| e == "bin") {
            let mut s =
                TcpStream::connect_timeout(&tcp_dst, Duration::from_secs(2)).expect("tcp connect");
            use std::io::{Read, Write};
            let _ = s.write_all(&bytes);
            let _ = s.shutdown(std::net::Shutdown::Write);
            s.set_read_timeout(Some(Duration::from_millis(300)))
                .expect("read timeout");
            let mut buf = [0u8; 4096];
            while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
            sent_tcp += 1;
        }
    }
    assert!(
        sent_udp > 20 && sent_tcp > 0,
        "sent {sent_udp} datagrams, {sent_tcp} TCP streams"
    );
    // Something came out both ways: replies (400/505/483...) to us, forwards to the sink.
    let drain = |sock: &UdpSocket| {
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("read timeout");
        let mut buf = vec![0u8; 65_536];
        let mut n = 0;
        while sock.recv_from(&mut buf).is_ok() {
            n += 1;
        }
        n
    };
    let (replies, forwards) = (drain(&client), drain(&sink));
    assert!(
        replies > 0 && forwards > 0,
        "sipd answered {replies} and forwarded {forwards} of {sent_udp} corpus datagrams"
    );
    options_ok(&sipd, ip, "u1", 10);
    options_ok(&sipd, ip, "t1", 3);
}
