//! systemd integration: `Type=notify` readiness over a real `NOTIFY_SOCKET` datagram socket
//! (READY=1 once sipd listens, RELOADING=1/READY=1 around a SIGHUP reload, STOPPING=1 on SIGTERM),
//! and `sipd --version` naming the git revision.

use std::net::UdpSocket;
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::Duration;

fn next(sock: &UnixDatagram) -> String {
    let mut buf = [0u8; 512];
    let n = sock.recv(&mut buf).expect("a notification within 10 s");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// sipd with one worker on `listen`, notifying the socket `notify.sock` in `dir`.
fn start(dir: &std::path::Path, script: &std::path::Path, listen: &str) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_sipd"))
        .args([
            "run",
            "--workers",
            "1",
            "--log-level",
            "warn",
            "--listen",
            listen,
        ])
        .arg("--script")
        .arg(script)
        .env("NOTIFY_SOCKET", dir.join("notify.sock"))
        .env("XDG_RUNTIME_DIR", dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting sipd")
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill {sig}");
}

#[test]
fn readiness_reload_and_stop_are_notified() {
    let dir = tempfile::tempdir().expect("temp dir");
    let notify = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&notify).expect("bind notify socket");
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let script = dir.path().join("route.lua");
    std::fs::write(
        &script,
        "function ksr_request_route() KSR.sl.sl_send_reply(200, 'Ready') end\n",
    )
    .expect("script");
    let port = UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("free port")
        .port();
    let mut child = start(dir.path(), &script, &format!("udp:127.0.0.1:{port}"));
    let ready = next(&sock);
    assert!(ready.starts_with("READY=1\n"), "{ready:?}");
    assert!(
        ready.contains(&format!("MAINPID={}", child.id())),
        "{ready:?}"
    );
    // By then the UDP socket answers.
    let probe = UdpSocket::bind("127.0.0.1:0").expect("probe socket");
    probe
        .set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    let options = format!(
        "OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;rport;branch=z9hG4bKnotify\r\n\
         From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:b@127.0.0.1>\r\nCall-ID: notify\r\n\
         CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    probe
        .send_to(options.as_bytes(), ("127.0.0.1", port))
        .expect("send");
    let mut buf = [0u8; 2048];
    let n = probe
        .recv(&mut buf)
        .expect("an answer once READY=1 was sent");
    assert!(buf[..n].starts_with(b"SIP/2.0 200 Ready"));

    signal(child.id(), "-HUP");
    assert_eq!(next(&sock), "RELOADING=1");
    assert!(next(&sock).starts_with("READY=1"));
    signal(child.id(), "-TERM");
    assert_eq!(next(&sock), "STOPPING=1");
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status}");
}

/// A SIGHUP sent the moment READY=1 arrives (a `systemctl reload` right after start) reloads.
/// sipd used to send READY=1 before its signal handlers were installed, so SIGHUP's default
/// action could kill it (a CI failure of the test above). The window is microseconds wide:
/// this test rarely caught it before the fix (it passed 1 of 1 runs then), it guards the order.
#[test]
fn a_sighup_right_after_ready_reloads() {
    for _ in 0..5 {
        let dir = tempfile::tempdir().expect("temp dir");
        let notify = dir.path().join("notify.sock");
        let sock = UnixDatagram::bind(&notify).expect("bind notify socket");
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let script = dir.path().join("route.lua");
        std::fs::write(&script, "function ksr_request_route() end\n").expect("script");
        let mut child = start(dir.path(), &script, "udp:127.0.0.1:0");
        assert!(next(&sock).starts_with("READY=1\n"));
        signal(child.id(), "-HUP");
        assert_eq!(next(&sock), "RELOADING=1");
        signal(child.id(), "-TERM");
        let status = child.wait().expect("wait");
        assert!(status.success(), "{status}");
    }
}

#[test]
fn version_names_the_git_revision() {
    let out = Command::new(env!("CARGO_BIN_EXE_sipd"))
        .arg("--version")
        .output()
        .expect("sipd --version");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(&format!("sipd {} (git ", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    let revision = text
        .trim_end()
        .strip_suffix(')')
        .and_then(|t| t.rsplit_once("(git "))
        .map(|(_, r)| r);
    assert!(revision.is_some_and(|r| !r.is_empty()), "{text}");
}

#[test]
fn the_example_unit_is_valid_for_systemd() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let unit = std::fs::read_to_string(root.join("examples/systemd/sipd.service")).expect("unit");
    assert!(unit.contains("Type=notify"));
    // systemd-analyze checks that the commands exist: point them at this build of sipd.
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("sipd.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/sipd", env!("CARGO_BIN_EXE_sipd")),
    )
    .expect("write unit");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (Debian systemd, installed by .ci/run)");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
