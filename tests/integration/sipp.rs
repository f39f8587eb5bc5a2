//! sipd on the wire, driven by real `sipp` processes: OPTIONS answered by the script, calls
//! relayed statelessly to a sipp UAS over UDP, TCP and IPv6 with the script's header checked on
//! arrival, and the conformance corpus thrown at a running server before it must still answer.
//!
//! sipd runs in-process ([`sipd::server::Server::start`]) on port 0; sipp's own ports are found by
//! binding port 0. Every sipp run is bounded by `-m`, `-timeout`/`-timeout_error` and a
//! wall-clock limit here (the child is killed by its handle). Scenarios live in `tests/sipp/`.
//! Without `sipp` these tests fail, naming the package to install: CI installs `sip-tester`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use kemi_runtime::msg::Proto;
use sipd::config::{Config, RunArgs};
use sipd::endpoint::Endpoint;
use sipd::server::{Server, ServerHandle};

/// Longest any one sipp run may take before it is killed and the test fails.
const SIPP_WALL: Duration = Duration::from_secs(15);

/// The sipp binary: `$SIPP`, else `sipp` on `PATH`. Panics with what to install.
fn sipp_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("SIPP") {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "$SIPP is {} but there is no such file; unset it or install sip-tester",
            p.display()
        );
        return p;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("sipp"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "sipp not found on PATH (nor $SIPP): these tests drive sipd with real sipp processes; \
                 install it with `apt-get install sip-tester` (CI does, in .ci/run)"
            )
        })
}

/// A scenario file under `tests/sipp/`.
fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sipp")
        .join(name)
}

const LOCALHOST_V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const LOCALHOST_V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

/// A port free for both UDP and TCP on `ip` right now (bound to 0, then released).
fn free_port(ip: IpAddr) -> u16 {
    for _ in 0..50 {
        let udp = UdpSocket::bind((ip, 0)).unwrap_or_else(|e| panic!("binding UDP on {ip}: {e}"));
        let port = udp.local_addr().expect("local addr").port();
        if TcpListener::bind((ip, port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both UDP and TCP on {ip}")
}

/// A running sipd with its script's temporary directory.
struct Sipd {
    handle: Option<ServerHandle>,
    _script: crate::support::Script,
}

impl Sipd {
    /// Start sipd with one worker, listening on UDP and TCP port 0 of `ip`, routing with `lua`.
    fn start(ip: IpAddr, lua: &str) -> Sipd {
        let script = crate::support::script("route.lua", lua);
        let listen = [Proto::Udp, Proto::Tcp]
            .map(|proto| Endpoint {
                proto,
                addr: SocketAddr::new(ip, 0),
            })
            .to_vec();
        let args = RunArgs {
            listen,
            script: Some(script.path.clone()),
            workers: Some(1),
            log_level: Some("warn".into()),
            ..RunArgs::default()
        };
        let config = Config::load(&args).expect("sipd configuration");
        let handle = Server::start(config).unwrap_or_else(|e| panic!("starting sipd on {ip}: {e}"));
        Sipd {
            handle: Some(handle),
            _script: script,
        }
    }

    fn addr(&self, proto: Proto) -> SocketAddr {
        let h = self.handle.as_ref().expect("running");
        let v6 = h.local_addrs()[0].addr.is_ipv6();
        h.local_addr(proto, v6).expect("bound address")
    }
}

impl Drop for Sipd {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown();
        }
    }
}

/// `host:port` as sipp and SIP URIs want it (IPv6 in brackets).
fn hostport(a: SocketAddr) -> String {
    match a {
        SocketAddr::V4(v4) => v4.to_string(),
        SocketAddr::V6(v6) => format!("[{}]:{}", v6.ip(), v6.port()),
    }
}

/// One sipp process, its output files in a temporary directory.
struct Sipp {
    name: &'static str,
    child: Option<Child>,
    dir: tempfile::TempDir,
    calls: u32,
}

/// How a sipp run ended, with its counters from the `-trace_stat` file.
struct SippOutcome {
    status: ExitStatus,
    successful: u64,
    failed: u64,
    retransmissions: u64,
}

impl Sipp {
    /// Start sipp: scenario `sf`, bound to `local`, transport `t` (`u1`/`t1`), `calls` calls,
    /// `remote` for a UAC (none for a UAS), plus `extra` arguments.
    fn spawn(
        name: &'static str,
        sf: &str,
        local: SocketAddr,
        t: &str,
        calls: u32,
        remote: Option<SocketAddr>,
        extra: &[&str],
    ) -> Sipp {
        let (ip, port) = (local.ip(), local.port());
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cmd = Command::new(sipp_bin());
        if let Some(r) = remote {
            cmd.arg(hostport(r));
        }
        cmd.args(["-sf"]).arg(scenario(sf));
        cmd.args([
            "-i",
            &ip.to_string(),
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
            "10s",
            "-timeout_error",
            "-trace_stat",
            "-stf",
            "stat.csv",
        ]);
        cmd.args([
            "-trace_err",
            "-error_file",
            "errors.log",
            "-trace_msg",
            "-message_file",
            "messages.log",
        ]);
        cmd.args(extra);
        let out = std::fs::File::create(dir.path().join("screen.log")).expect("sipp screen file");
        let err = out.try_clone().expect("dup");
        cmd.current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {}: {e}", sipp_bin().display()));
        Sipp {
            name,
            child: Some(child),
            dir,
            calls,
        }
    }

    /// Wait until this sipp (a UAS) has bound its port, so a UAC started next finds it.
    fn wait_bound(&mut self, addr: SocketAddr, t: &str) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let taken = if t == "t1" {
                TcpListener::bind(addr).is_err()
            } else {
                UdpSocket::bind(addr).is_err()
            };
            if taken {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "{} exited before binding {addr}: {status}\n{}",
                    self.name,
                    self.report()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "{} did not bind {addr} within 5 s\n{}",
            self.name,
            self.report()
        );
    }

    /// Wait for the end (killing it after [`SIPP_WALL`]) and read its counters.
    fn finish(&mut self) -> SippOutcome {
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + SIPP_WALL;
        let status = loop {
            if let Some(s) = child.try_wait().expect("waiting for sipp") {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{} still running after {SIPP_WALL:?}; killed\n{}",
                    self.name,
                    self.report()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stats = self.stats();
        let get = |k: &str| {
            stats
                .iter()
                .find(|(n, _)| n == k)
                .and_then(|(_, v)| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        SippOutcome {
            status,
            successful: get("SuccessfulCall(C)"),
            failed: get("FailedCall(C)"),
            retransmissions: get("Retransmissions(C)"),
        }
    }

    /// Wait and assert: exit status 0, every call successful, none failed.
    fn expect_all_ok(mut self) {
        let o = self.finish();
        let calls = u64::from(self.calls);
        assert!(
            o.status.success() && o.successful == calls && o.failed == 0,
            "{}: exit {}, {} successful / {} failed / {} retransmissions of {calls} calls\n{}",
            self.name,
            o.status,
            o.successful,
            o.failed,
            o.retransmissions,
            self.report()
        );
    }

    /// The screen, errors and message trace, for a failure message.
    fn report(&self) -> String {
        read_report(self.dir.path())
    }

    /// Name/value pairs of the last line of the `-trace_stat` CSV.
    fn stats(&self) -> Vec<(String, String)> {
        let text = std::fs::read_to_string(self.dir.path().join("stat.csv")).unwrap_or_default();
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let Some(head) = lines.next() else {
            return Vec::new();
        };
        let Some(last) = lines.next_back() else {
            return Vec::new();
        };
        head.split(';')
            .map(str::to_string)
            .zip(last.split(';').map(str::to_string))
            .collect()
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

/// sipp's files in `dir`, tails only, for assertion messages.
fn read_report(dir: &Path) -> String {
    let mut s = String::new();
    for f in ["screen.log", "errors.log", "messages.log"] {
        let text = std::fs::read_to_string(dir.join(f)).unwrap_or_default();
        let tail: String = text
            .chars()
            .rev()
            .take(3000)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        s.push_str(&format!("--- {f} (last 3000 chars)\n{tail}\n"));
    }
    s
}

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

/// `calls` OPTIONS from a sipp UAC to `sipd`, each answered `200 Alive` by the script.
fn options_ok(sipd: &Sipd, ip: IpAddr, t: &str, calls: u32) {
    let proto = if t == "t1" { Proto::Tcp } else { Proto::Udp };
    let uac = Sipp::spawn(
        "OPTIONS UAC",
        "options_uac.xml",
        SocketAddr::new(ip, free_port(ip)),
        t,
        calls,
        Some(sipd.addr(proto)),
        &["-r", "50"],
    );
    uac.expect_all_ok();
}

#[test]
fn options_answered_by_the_script_over_udp_and_tcp() {
    let sipd = Sipd::start(LOCALHOST_V4, &relay_script("sip:127.0.0.1:9"));
    options_ok(&sipd, LOCALHOST_V4, "u1", 20);
    options_ok(&sipd, LOCALHOST_V4, "t1", 5);
}

/// A sipp UAS on `ip` (over `t`), a sipd relaying to it, a sipp UAC calling through sipd:
/// `calls` complete calls must succeed on both sides, the UAS checking sipd's header and Via.
fn call_through(ip: IpAddr, t: &str, calls: u32) {
    let uas_port = free_port(ip);
    let uas_addr = SocketAddr::new(ip, uas_port);
    let transport = if t == "t1" { ";transport=tcp" } else { "" };
    let sipd = Sipd::start(
        ip,
        &relay_script(&format!("sip:{}{transport}", hostport(uas_addr))),
    );
    let mut uas = Sipp::spawn("call UAS", "call_uas.xml", uas_addr, t, calls, None, &[]);
    uas.wait_bound(uas_addr, t);
    let proto = if t == "t1" { Proto::Tcp } else { Proto::Udp };
    let uac = Sipp::spawn(
        "call UAC",
        "call_uac.xml",
        SocketAddr::new(ip, free_port(ip)),
        t,
        calls,
        Some(sipd.addr(proto)),
        &["-r", "20"],
    );
    uac.expect_all_ok();
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
    let uas_port = free_port(ip);
    let uas_addr = SocketAddr::new(ip, uas_port);
    let script = format!(
        "function ksr_request_route()\n    KSR.setdsturi(\"sip:{}\")\n    KSR.forward()\nend\n",
        hostport(uas_addr)
    );
    let sipd = Sipd::start(ip, &script);
    let mut uas = Sipp::spawn(
        "call UAS (no header)",
        "call_uas.xml",
        uas_addr,
        "u1",
        1,
        None,
        &[],
    );
    uas.wait_bound(uas_addr, "u1");
    let mut uac = Sipp::spawn(
        "call UAC",
        "call_uac.xml",
        SocketAddr::new(ip, free_port(ip)),
        "u1",
        1,
        Some(sipd.addr(Proto::Udp)),
        &["-timeout", "4s"],
    );
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
    let sipd = Sipd::start(
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
