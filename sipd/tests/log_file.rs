//! Logs written to a file carry no ANSI escapes (colours are for terminals only), and under
//! systemd (`JOURNAL_STREAM` set) lines carry no timestamp of their own.

use std::net::UdpSocket;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Run sipd with stderr into a file until it logged that it listens; return the file's text.
fn log_of(dir: &Path, envs: &[(&str, &str)]) -> String {
    let script = dir.join("route.lua");
    std::fs::write(&script, "function ksr_request_route() end\n").expect("script");
    let log = dir.join("sipd.log");
    let port = UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("free port")
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sipd"))
        .args(["run", "--workers", "1", "--log-level", "info", "--listen"])
        .arg(format!("udp:127.0.0.1:{port}"))
        .arg("--script")
        .arg(&script)
        .env("XDG_RUNTIME_DIR", dir)
        .env_remove("NO_COLOR")
        .envs(envs.iter().copied())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("starting sipd");
    let start = Instant::now();
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("listening on") || start.elapsed() > Duration::from_secs(10) {
            break text;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(text.contains("listening on"), "{text}");
    text
}

#[test]
fn a_log_file_has_no_ansi_escapes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = log_of(dir.path(), &[]);
    assert!(!text.contains('\x1b'), "{text:?}");
    // A timestamp starts each line (RFC 3339, this century).
    assert!(text.lines().all(|l| l.starts_with("20")), "{text}");
}

#[test]
fn under_systemd_lines_have_no_timestamp() {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = log_of(dir.path(), &[("JOURNAL_STREAM", "8:12345")]);
    assert!(!text.contains('\x1b'), "{text:?}");
    assert!(text.lines().all(|l| !l.starts_with("20")), "{text}");
}
