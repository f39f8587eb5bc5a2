//! Memory comes back after a script hit its memory ceiling (issue 15 item 3): one message makes
//! the Lua interpreter allocate up to `[limits] max_memory_mb`, gets a 500, and within seconds
//! sipd's resident memory is back near where it was before (the interpreter collected what the
//! failed run left, and the housekeeping trim gave malloc's free pages back to the system).

use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn options(port: u16, me: u16, call_id: &str) -> String {
    format!(
        "OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{me};rport;branch=z9hG4bK-{call_id}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:a@127.0.0.1>;tag=m\r\nTo: <sip:b@127.0.0.1>\r\n\
         Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}

#[test]
fn rss_comes_back_after_a_run_hit_the_memory_ceiling() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("free port")
        .port();
    std::fs::write(
        dir.path().join("route.lua"),
        r#"
function ksr_request_route()
    if KSR.pv.get("$ci") == "hog" then
        local t = {}
        for i = 1, 100000000 do
            t[i] = string.rep("x", 1000) .. i
        end
    end
    KSR.sl.sl_send_reply(200, "OK")
end
"#,
    )
    .expect("script");
    std::fs::write(
        dir.path().join("sipd.toml"),
        format!(
            "listen = [\"udp:127.0.0.1:{port}\"]\nscript = \"route.lua\"\nworkers = 1\n\
             [rpc]\nenabled = false\n[limits]\nmax_memory_mb = 160\nmax_instructions = 0\n"
        ),
    )
    .expect("config");
    let mut sipd = Command::new(env!("CARGO_BIN_EXE_sipd"))
        .args(["run", "--log-level", "error", "--config"])
        .arg(dir.path().join("sipd.toml"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sipd run");
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let me = s.local_addr().expect("addr").port();
    let ask = |call_id: &str| {
        let req = options(port, me, call_id);
        s.send_to(req.as_bytes(), ("127.0.0.1", port))
            .expect("send");
        let mut buf = [0u8; 2048];
        let n = s.recv(&mut buf).expect("an answer");
        String::from_utf8_lossy(&buf[..n])
            .lines()
            .next()
            .unwrap_or("")
            .to_string()
    };
    // Ready (retry while it starts), then the baseline.
    let start = Instant::now();
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    let mut n = 0;
    let req_ok = loop {
        n += 1;
        let req = options(port, me, &format!("warm-{n}"));
        s.send_to(req.as_bytes(), ("127.0.0.1", port))
            .expect("send");
        let mut buf = [0u8; 2048];
        if s.recv(&mut buf).is_ok() {
            break true;
        }
        if start.elapsed() > Duration::from_secs(10) {
            break false;
        }
    };
    assert!(req_ok, "sipd did not start");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let baseline = rss_kib(sipd.id());

    assert!(
        ask("hog").starts_with("SIP/2.0 500"),
        "the hog hit the ceiling"
    );
    let peak = rss_kib(sipd.id());
    // Back within 30 MiB of the baseline within 15 s (the housekeeping trim runs every 5 s).
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut now = peak;
    while Instant::now() < deadline {
        now = rss_kib(sipd.id());
        if now < baseline + 30 * 1024 {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(ask("after"), "SIP/2.0 200 OK");
    let _ = sipd.kill();
    let _ = sipd.wait();
    println!("RSS KiB: baseline {baseline}, right after the 500 {peak}, then {now}");
    assert!(
        peak > baseline + 60 * 1024,
        "the hog did not allocate: {baseline} -> {peak}"
    );
    assert!(
        now < baseline + 30 * 1024,
        "RSS stayed up: baseline {baseline} KiB, peak {peak}, after 15 s {now}"
    );
}
