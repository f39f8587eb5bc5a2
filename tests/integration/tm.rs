//! Transaction-stateful proxying on the wire: sipd started in-process routing with `KSR.tm`
//! and `KSR.rr`, driven by real `sipp` UACs and UASs (scenarios `tests/sipp/tm_*.xml`) and, for
//! a callee that never answers, a plain UDP socket. Every sipp run is bounded by `-m`,
//! `-timeout` and a wall-clock kill here.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kemi_runtime::msg::Proto;
use sipd::config::{Config, RunArgs};
use sipd::endpoint::Endpoint;
use sipd::server::{Server, ServerHandle};

const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// Longest one sipp run may take.
const WALL: Duration = Duration::from_secs(20);

fn sipp_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("SIPP") {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("sipp"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("sipp not found on PATH: install sip-tester"))
}

fn free_port() -> u16 {
    for _ in 0..50 {
        let udp = UdpSocket::bind((LO, 0)).expect("bind udp");
        let port = udp.local_addr().expect("addr").port();
        if TcpListener::bind((LO, port)).is_ok() {
            return port;
        }
    }
    panic!("no free port")
}

/// sipd on UDP and TCP port 0 of 127.0.0.1 with two workers, routing with `lua`.
struct Sipd {
    handle: Option<ServerHandle>,
    _dir: tempfile::TempDir,
}

impl Sipd {
    fn start(lua: &str) -> Sipd {
        let dir = tempfile::tempdir().expect("temp dir");
        let script = dir.path().join("route.lua");
        std::fs::write(&script, lua).expect("script");
        let listen = [Proto::Udp, Proto::Tcp]
            .map(|proto| Endpoint {
                proto,
                addr: SocketAddr::new(LO, 0),
            })
            .to_vec();
        let args = RunArgs {
            listen,
            script: Some(script),
            workers: Some(2),
            log_level: Some("warn".into()),
            ..RunArgs::default()
        };
        let config = Config::load(&args).expect("config");
        let handle = Server::start(config).expect("sipd starts");
        Sipd {
            handle: Some(handle),
            _dir: dir,
        }
    }

    fn addr(&self, proto: Proto) -> SocketAddr {
        self.handle
            .as_ref()
            .and_then(|h| h.local_addr(proto, false))
            .expect("bound")
    }
}

impl Drop for Sipd {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown();
        }
    }
}

struct Sipp {
    name: &'static str,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Sipp {
    #[allow(clippy::too_many_arguments)]
    fn spawn(
        name: &'static str,
        sf: &str,
        port: u16,
        t: &str,
        calls: u32,
        remote: Option<SocketAddr>,
        extra: &[&str],
    ) -> Sipp {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cmd = Command::new(sipp_bin());
        if let Some(r) = remote {
            cmd.arg(r.to_string());
        }
        let sf = Path::new(env!("CARGO_MANIFEST_DIR")).join("sipp").join(sf);
        cmd.arg("-sf").arg(sf);
        cmd.args([
            "-i",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-t",
            t,
            "-m",
            &calls.to_string(),
        ]);
        cmd.args([
            "-nostdin",
            "-timeout",
            "15s",
            "-timeout_error",
            "-trace_err",
            "-error_file",
            "errors.log",
        ]);
        cmd.args(["-trace_msg", "-message_file", "messages.log"]);
        cmd.args(extra);
        let out = std::fs::File::create(dir.path().join("screen.log")).expect("screen file");
        let err = out.try_clone().expect("dup");
        cmd.current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = cmd.spawn().expect("spawn sipp");
        Sipp {
            name,
            child: Some(child),
            dir,
        }
    }

    /// Wait until the UAS bound its port.
    fn wait_bound(&mut self, port: u16, t: &str) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let taken = if t == "t1" {
                TcpListener::bind((LO, port)).is_err()
            } else {
                UdpSocket::bind((LO, port)).is_err()
            };
            if taken {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("{} did not bind {port}\n{}", self.name, self.report());
    }

    fn report(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default();
        let tail = |s: String| {
            s.chars()
                .rev()
                .take(6000)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<String>()
        };
        format!(
            "--- {} errors ---\n{}\n--- {} messages (tail) ---\n{}",
            self.name,
            read("errors.log"),
            self.name,
            tail(read("messages.log"))
        )
    }

    /// Wait for the end (killed after [`WALL`]); panics with the logs unless it succeeded.
    fn expect_success(&mut self) {
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + WALL;
        let status = loop {
            if let Some(s) = child.try_wait().expect("wait") {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{} still running after {WALL:?}\n{}",
                    self.name,
                    self.report()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(
            status.success(),
            "{} failed: {status}\n{}",
            self.name,
            self.report()
        );
    }

    /// The messages it exchanged.
    fn messages(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("messages.log")).unwrap_or_default()
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The proxy script: b_proxy.lua's shape, plus a failure callback trying `$var`-free
/// `SECOND` and an optional parallel branch. `%FIRST%`, `%SECOND%`, `%FORK%`, `%FR%` are
/// replaced per test.
const SCRIPT: &str = r#"
local FIRST = "%FIRST%"
local SECOND = "%SECOND%"
local FORK = "%FORK%"
local FR = %FR%

function ksr_request_route()
    if KSR.maxfwd.process_maxfwd(10) < 0 then
        KSR.sl.sl_send_reply(483, "Too Many Hops")
        return 1
    end
    if KSR.siputils.has_totag() > 0 then
        if KSR.rr.loose_route() < 0 then
            KSR.setdsturi(FIRST)
        end
        KSR.tm.t_relay()
        return 1
    end
    if KSR.is_CANCEL() then
        if KSR.tm.t_check_trans() > 0 then
            KSR.tm.t_relay()
        end
        return 1
    end
    if KSR.tm.t_check_trans() == 0 then
        return 1
    end
    if KSR.is_INVITE() then
        KSR.rr.record_route()
        if SECOND ~= "" then
            KSR.tm.t_on_failure("ksr_failure_next")
        end
        if FR > 0 then
            KSR.tm.t_set_fr(FR, FR)
        end
    end
    if FORK ~= "" then
        KSR.corex.append_branch_uri(FORK)
    end
    KSR.setdsturi(FIRST)
    if KSR.tm.t_relay() < 0 then
        KSR.sl.sl_reply_error()
    end
    return 1
end

function ksr_failure_next()
    if KSR.tm.t_is_canceled() > 0 then
        return 1
    end
    if KSR.tmx.t_is_failure_route() > 0 and KSR.tm.t_check_status("^(486|408)$") > 0 then
        KSR.info("failure route: trying the second callee\n")
        KSR.setdsturi(SECOND)
        KSR.tm.t_relay()
    end
end
"#;

fn script(first: &str, second: &str, fork: &str, fr_ms: u32) -> String {
    SCRIPT
        .replace("%FIRST%", first)
        .replace("%SECOND%", second)
        .replace("%FORK%", fork)
        .replace("%FR%", &fr_ms.to_string())
}

fn uri(port: u16, t: &str) -> String {
    if t == "t1" {
        format!("sip:127.0.0.1:{port};transport=tcp")
    } else {
        format!("sip:127.0.0.1:{port}")
    }
}

/// A whole record-routed call through sipd: UAC and UAS over transport `t`.
fn complete_call(t: &str) {
    let uas_port = free_port();
    let sipd = Sipd::start(&script(&uri(uas_port, t), "", "", 0));
    let proto = if t == "t1" { Proto::Tcp } else { Proto::Udp };
    let mut uas = Sipp::spawn("uas", "tm_uas.xml", uas_port, t, 3, None, &["-d", "50"]);
    uas.wait_bound(uas_port, t);
    let mut uac = Sipp::spawn(
        "uac",
        "tm_uac.xml",
        free_port(),
        t,
        3,
        Some(sipd.addr(proto)),
        &["-r", "10"],
    );
    uac.expect_success();
    uas.expect_success();
    let seen = uas.messages();
    assert!(
        seen.contains("Record-Route: <sip:127.0.0.1:"),
        "no Record-Route at the callee:\n{seen}"
    );
}

#[test]
fn complete_call_with_record_route_over_udp() {
    complete_call("u1");
}

#[test]
fn complete_call_with_record_route_over_tcp() {
    complete_call("t1");
}

#[test]
fn retransmitted_invite_is_absorbed() {
    let uas_port = free_port();
    let sipd = Sipd::start(&script(&uri(uas_port, "u1"), "", "", 0));
    // The callee waits 400 ms before answering; a second INVITE reaching it fails its run.
    let mut uas = Sipp::spawn("uas", "tm_uas.xml", uas_port, "u1", 1, None, &["-d", "400"]);
    uas.wait_bound(uas_port, "u1");
    let mut uac = Sipp::spawn(
        "uac",
        "tm_uac_retrans.xml",
        free_port(),
        "u1",
        1,
        Some(sipd.addr(Proto::Udp)),
        &[],
    );
    uac.expect_success();
    uas.expect_success();
    let invites = uas.messages().matches("INVITE sip:").count();
    assert_eq!(
        invites,
        1,
        "the callee saw {invites} INVITEs:\n{}",
        uas.messages()
    );
}

#[test]
fn busy_callee_triggers_failure_route_and_serial_fork() {
    let (busy, good) = (free_port(), free_port());
    let sipd = Sipd::start(&script(&uri(busy, "u1"), &uri(good, "u1"), "", 0));
    let mut b = Sipp::spawn("busy", "tm_uas_busy.xml", busy, "u1", 1, None, &[]);
    b.wait_bound(busy, "u1");
    let mut g = Sipp::spawn("good", "tm_uas.xml", good, "u1", 1, None, &["-d", "20"]);
    g.wait_bound(good, "u1");
    let mut uac = Sipp::spawn(
        "uac",
        "tm_uac.xml",
        free_port(),
        "u1",
        1,
        Some(sipd.addr(Proto::Udp)),
        &[],
    );
    uac.expect_success();
    b.expect_success();
    g.expect_success();
    assert!(
        !uac.messages().contains("SIP/2.0 486"),
        "the 486 reached the caller"
    );
}

#[test]
fn silent_callee_times_out_into_failure_route() {
    let good = free_port();
    let silent = UdpSocket::bind((LO, 0)).expect("bind");
    silent
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let silent_port = silent.local_addr().expect("addr").port();
    let sipd = Sipd::start(&script(&uri(silent_port, "u1"), &uri(good, "u1"), "", 700));
    let mut g = Sipp::spawn("good", "tm_uas.xml", good, "u1", 1, None, &["-d", "20"]);
    g.wait_bound(good, "u1");
    let mut uac = Sipp::spawn(
        "uac",
        "tm_uac.xml",
        free_port(),
        "u1",
        1,
        Some(sipd.addr(Proto::Udp)),
        &[],
    );
    // The silent callee gets the INVITE and its retransmissions (timer A), never answers.
    let mut seen = 0;
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut buf = vec![0u8; 65536];
    while Instant::now() < deadline {
        if let Ok((n, _)) = silent.recv_from(&mut buf) {
            if buf.get(..n).is_some_and(|m| m.starts_with(b"INVITE ")) {
                seen += 1;
            }
        }
    }
    uac.expect_success();
    g.expect_success();
    assert!(
        seen >= 2,
        "expected the INVITE and at least one retransmission, got {seen}"
    );
}

#[test]
fn cancel_reaches_ringing_callee_and_caller_gets_487() {
    let uas_port = free_port();
    let sipd = Sipd::start(&script(&uri(uas_port, "u1"), "", "", 0));
    let mut uas = Sipp::spawn("uas", "tm_uas_cancel.xml", uas_port, "u1", 1, None, &[]);
    uas.wait_bound(uas_port, "u1");
    let mut uac = Sipp::spawn(
        "uac",
        "tm_uac_cancel.xml",
        free_port(),
        "u1",
        1,
        Some(sipd.addr(Proto::Udp)),
        &[],
    );
    uac.expect_success();
    uas.expect_success();
}

#[test]
fn parallel_fork_one_answers_other_is_canceled() {
    let (ringing, answering) = (free_port(), free_port());
    let fork = format!("sip:callee@127.0.0.1:{answering}");
    let sipd = Sipd::start(&script(&uri(ringing, "u1"), "", &fork, 0));
    let mut r = Sipp::spawn("ringing", "tm_uas_cancel.xml", ringing, "u1", 1, None, &[]);
    r.wait_bound(ringing, "u1");
    let mut a = Sipp::spawn(
        "answering",
        "tm_uas.xml",
        answering,
        "u1",
        1,
        None,
        &["-d", "300"],
    );
    a.wait_bound(answering, "u1");
    let mut uac = Sipp::spawn(
        "uac",
        "tm_uac.xml",
        free_port(),
        "u1",
        1,
        Some(sipd.addr(Proto::Udp)),
        &[],
    );
    uac.expect_success();
    a.expect_success();
    r.expect_success();
}
