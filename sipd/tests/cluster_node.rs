//! A node's identity (`[cluster] node`): on every log line, in `core.info` and in the
//! `sipd_node_info` metric, so the nodes sharing one store can be told apart.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("free port")
        .port()
}

fn scrape(port: u16) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("metrics connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("send");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read");
    text
}

#[test]
fn the_node_identity_is_in_logs_core_info_and_metrics() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sip = UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("free port")
        .port();
    let metrics = free_port();
    let socket = dir.path().join("ctl.sock");
    std::fs::write(
        dir.path().join("route.lua"),
        "function ksr_request_route() end\n",
    )
    .expect("script");
    let config = dir.path().join("sipd.toml");
    std::fs::write(
        &config,
        format!(
            "listen = [\"udp:127.0.0.1:{sip}\"]\nscript = \"route.lua\"\nworkers = 1\n\
             [db]\nurl = \"sqlite::memory:\"\n[cluster]\nnode = \"edge-7\"\n\
             [rpc]\nsocket = \"{}\"\n[metrics]\nlisten = \"127.0.0.1:{metrics}\"\n",
            socket.display()
        ),
    )
    .expect("config");
    let log = dir.path().join("sipd.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sipd"))
        .args(["run", "--log-level", "info", "--config"])
        .arg(&config)
        .env("XDG_RUNTIME_DIR", dir.path())
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
    let info = sipd::rpc::client::call(&socket, "core.info", &[]);
    let scraped = scrape(metrics);
    let _ = child.kill();
    let _ = child.wait();

    let listening = text
        .lines()
        .find(|l| l.contains("listening on"))
        .unwrap_or_else(|| panic!("no listening line in\n{text}"));
    assert!(listening.contains("node{id=edge-7}"), "{listening}");
    let info = info.expect("core.info");
    assert_eq!(info["node"], "edge-7", "{info}");
    assert_eq!(info["workers"], 1, "{info}");
    assert!(
        info["version"]
            .as_str()
            .is_some_and(|v| v.starts_with("sipd ")),
        "{info}"
    );
    let line = format!(
        "sipd_node_info{{node=\"edge-7\",version=\"{}\"}} 1",
        sipd::VERSION
    );
    assert!(scraped.contains(&line), "{line} in\n{scraped}");
}
