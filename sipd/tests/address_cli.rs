//! `sipd address add/list/rm` against a SQLite store, their input validation (exit status 1 with
//! a message), and a running sipd that lets an address through once it was added and
//! `permissions.addressReload` was called.

use std::net::UdpSocket;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn sipd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sipd"))
        .args(args)
        .output()
        .expect("running sipd")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn add_list_rm_and_bad_input() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("a.db").display());
    let db = ["--db", url.as_str()];
    let ok = |args: &[&str]| {
        let out = sipd(&[&["address"], args, &db].concat());
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    ok(&["add", "1", "127.0.0.1"]);
    ok(&["add", "2", "10.1.2.3/16", "5060", "--tag", "gw"]);
    ok(&["add", "3", "::1/128"]);
    let list = ok(&["list"]);
    assert_eq!(
        list,
        "1\t127.0.0.1/32\t0\t\n2\t10.1.0.0/16\t5060\tgw\n3\t::1/128\t0\t\n"
    );
    for (args, what) in [
        (vec!["add", "x", "127.0.0.1"], "bad group"),
        (vec!["add", "1", "nonsense"], "bad address"),
        (vec!["add", "1", "127.0.0.1/40"], "bad mask"),
        (vec!["add", "1", "127.0.0.1", "99999"], "bad port"),
        (vec!["add", "1", "127.0.0.1"], "already in group 1"),
        (vec!["rm", "9", "127.0.0.1"], "not in group 9"),
    ] {
        let out = sipd(&[&["address"], args.as_slice(), &db].concat());
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            text(&out.stderr).contains(what),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    ok(&["rm", "2", "10.1.0.0/16", "5060"]);
    assert_eq!(ok(&["list"]), "1\t127.0.0.1/32\t0\t\n3\t::1/128\t0\t\n");
    let out = sipd(&["address", "list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("--config FILE or --db URL"));
}

fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("free port")
        .port()
}

fn options(sock: &UdpSocket, port: u16, n: u32) -> String {
    let req = format!(
        "OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKaddr{n}\r\n\
         From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:b@127.0.0.1>\r\nCall-ID: addr-{n}\r\n\
         CSeq: {n} OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        sock.local_addr().expect("addr")
    );
    sock.send_to(req.as_bytes(), ("127.0.0.1", port))
        .expect("send");
    let mut buf = [0u8; 4096];
    let (len, _) = sock.recv_from(&mut buf).expect("a reply");
    text(&buf[..len]).lines().next().unwrap_or("").to_string()
}

#[test]
fn running_sipd_picks_up_an_added_address() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let script = dir.path().join("route.lua");
    std::fs::write(
        &script,
        "function ksr_request_route()\n\
         \x20 if KSR.permissions.allow_source_address(1) > 0 then\n\
         \x20   KSR.sl.sl_send_reply(200, \"Trusted\")\n\
         \x20 else\n\
         \x20   KSR.sl.sl_send_reply(403, \"Untrusted\")\n\
         \x20 end\n\
         end\n",
    )
    .expect("write script");
    let sock_path = dir.path().join("rpc.sock");
    let cfg = dir.path().join("sipd.toml");
    std::fs::write(
        &cfg,
        format!(
            "listen = [\"udp:127.0.0.1:{port}\"]\nworkers = 1\nlog_level = \"error\"\n\
             script = \"route.lua\"\nmodules = [\"sl\", \"permissions\"]\n\
             [rpc]\nsocket = \"{}\"\n\
             [modparam.permissions]\ndb_mode = 1\nreload_interval = 0\n",
            sock_path.display()
        ),
    )
    .expect("write config");
    let cfg_s = cfg.to_str().expect("utf-8 path");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sipd"))
        .args(["run", "--config", cfg_s])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting sipd");
    let result = std::panic::catch_unwind(|| {
        for _ in 0..50 {
            if Path::new(&sock_path).exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let sock = UdpSocket::bind("127.0.0.1:0").expect("client socket");
        sock.set_read_timeout(Some(Duration::from_secs(3)))
            .expect("timeout");
        assert_eq!(options(&sock, port, 1), "SIP/2.0 403 Untrusted");
        let out = sipd(&["address", "add", "1", "127.0.0.1", "--config", cfg_s]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let out = sipd(&["rpc", "permissions.addressReload", "--config", cfg_s]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(
            text(&out.stdout).contains("Reload OK"),
            "{}",
            text(&out.stdout)
        );
        assert_eq!(options(&sock, port, 2), "SIP/2.0 200 Trusted");
    });
    let _ = child.kill();
    let _ = child.wait();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}
