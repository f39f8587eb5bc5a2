//! `sipd trace` shows live traffic from the HEP copies of a running sipd (`siptrace` with
//! `trace_mode = 1`): one line per message, filtered by method.

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::Duration;

fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("free port")
        .port()
}

#[test]
fn sipd_trace_prints_the_options_and_its_answer() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (sip, hep) = (free_port(), free_port());
    std::fs::write(
        dir.path().join("route.lua"),
        "function ksr_request_route() KSR.sl.sl_send_reply(200, 'Alive') end\n",
    )
    .expect("script");
    std::fs::write(
        dir.path().join("sipd.toml"),
        format!(
            "listen = [\"udp:127.0.0.1:{sip}\"]\nscript = \"route.lua\"\nworkers = 1\n\
             [rpc]\nenabled = false\n\
             [modparam.siptrace]\nduplicate_uri = \"sip:127.0.0.1:{hep}\"\ntrace_on = 1\ntrace_mode = 1\n"
        ),
    )
    .expect("config");
    let mut trace = Command::new(env!("CARGO_BIN_EXE_sipd"))
        .args(["trace", "--hep", &format!("127.0.0.1:{hep}")])
        .args(["--method", "OPTIONS", "--count", "2"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("sipd trace");
    let mut sipd = Command::new(env!("CARGO_BIN_EXE_sipd"))
        .args(["run", "--log-level", "warn", "--config"])
        .arg(dir.path().join("sipd.toml"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sipd run");
    let probe = UdpSocket::bind("127.0.0.1:0").expect("probe");
    probe
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let port = probe.local_addr().expect("addr").port();
    // An INVITE first, which the method filter leaves out, then OPTIONS until answered.
    let request = |method: &str, n: u32| {
        format!(
            "{method} sip:127.0.0.1:{sip} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-t{n}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:a@127.0.0.1>;tag=t\r\nTo: <sip:b@127.0.0.1>\r\n\
             Call-ID: trace-{n}\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
        )
    };
    let mut answered = false;
    for n in 0..20 {
        let method = if n == 0 { "INVITE" } else { "OPTIONS" };
        probe
            .send_to(request(method, n).as_bytes(), ("127.0.0.1", sip))
            .expect("send");
        let mut buf = [0u8; 2048];
        if method == "OPTIONS" && probe.recv(&mut buf).is_ok() {
            answered = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(answered, "sipd did not answer");
    // Bounded: if the copies never come, `sipd trace` is killed after 20 s and the test fails.
    let pid = trace.id().to_string();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(20));
        let _ = Command::new("kill").args(["-KILL", &pid]).status();
    });
    let stdout = trace.stdout.take().expect("stdout");
    let lines: Vec<String> = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .collect();
    let status = trace.wait().expect("sipd trace ends after --count");
    let _ = sipd.kill();
    let _ = sipd.wait();
    assert!(status.success());
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].contains(&format!(
            "127.0.0.1:{port} -> 127.0.0.1:{sip} UDP OPTIONS trace-"
        )),
        "{lines:?}"
    );
    assert!(
        lines[1].contains(&format!(
            "127.0.0.1:{sip} -> 127.0.0.1:{port} UDP 200 Alive trace-"
        )),
        "{lines:?}"
    );
}
