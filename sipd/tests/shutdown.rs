//! `sipd run` stops on SIGTERM within a bounded time even while a worker is stuck in a script
//! that never returns (a Python endless loop: the Python engine has no instruction budget).

use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn sigterm_stops_sipd_with_a_worker_stuck_in_python() {
    let dir = tempfile::tempdir().expect("temp dir");
    let script = dir.path().join("loop.py");
    std::fs::write(
        &script,
        "def ksr_request_route():\n    while True:\n        pass\n",
    )
    .expect("write script");
    let port = UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("free port")
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sipd"))
        .args(["run", "--workers", "1", "--log-level", "error"])
        .arg("--listen")
        .arg(format!("udp:127.0.0.1:{port}"))
        .arg("--script")
        .arg(&script)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting sipd");
    std::thread::sleep(Duration::from_millis(1500));
    let sock = UdpSocket::bind("127.0.0.1:0").expect("client socket");
    let options = format!(
        "OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKloop\r\n\
         From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:b@127.0.0.1>\r\nCall-ID: loop\r\n\
         CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    sock.send_to(options.as_bytes(), ("127.0.0.1", port))
        .expect("send");
    std::thread::sleep(Duration::from_millis(300));
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let start = Instant::now();
    let exited = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break Some(s);
        }
        if start.elapsed() > Duration::from_secs(20) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    if exited.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    assert!(
        exited.is_some(),
        "sipd did not exit within 20 s of SIGTERM while a worker was in an endless Python loop"
    );
}
