//! Driving real `sipp` processes: finding the binary, free loopback ports, one bounded run
//! (`-m` calls, sipp's own `-timeout`, a wall-clock limit after which the child is killed by its
//! handle), its `-trace_stat` counters and its logs for failure messages.
//!
//! Without `sipp` the tests fail, naming the package to install: CI installs `sip-tester`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const LOCALHOST_V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
pub const LOCALHOST_V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

/// The sipp binary: `$SIPP`, else `sipp` on `PATH`. Panics with what to install.
pub fn sipp_bin() -> PathBuf {
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
pub fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sipp")
        .join(name)
}

/// A port free for both UDP and TCP on `ip` right now (bound to 0, then released).
pub fn free_port(ip: IpAddr) -> u16 {
    for _ in 0..50 {
        let udp = UdpSocket::bind((ip, 0)).unwrap_or_else(|e| panic!("binding UDP on {ip}: {e}"));
        let port = udp.local_addr().expect("local addr").port();
        if TcpListener::bind((ip, port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both UDP and TCP on {ip}")
}

/// A free address (see [`free_port`]) on `ip`.
pub fn free_addr(ip: IpAddr) -> SocketAddr {
    SocketAddr::new(ip, free_port(ip))
}

/// `host:port` as sipp and SIP URIs want it (IPv6 in brackets).
pub fn hostport(a: SocketAddr) -> String {
    match a {
        SocketAddr::V4(v4) => v4.to_string(),
        SocketAddr::V6(v6) => format!("[{}]:{}", v6.ip(), v6.port()),
    }
}

/// sipp's transport flag (`u1`/`t1`) as the proxy's listening protocol.
pub fn proto(t: &str) -> kemi_runtime::msg::Proto {
    if t == "t1" {
        kemi_runtime::msg::Proto::Tcp
    } else {
        kemi_runtime::msg::Proto::Udp
    }
}

/// One sipp run to start: scenario, local address, transport, call count and limits.
pub struct SippCmd {
    name: &'static str,
    sf: String,
    local: SocketAddr,
    t: String,
    calls: u32,
    remote: Option<SocketAddr>,
    timeout: Duration,
    wall: Duration,
    extra: Vec<String>,
}

impl SippCmd {
    /// sipp's own `-timeout` (with `-timeout_error`); 10 s unless set.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    /// How long [`Sipp::finish`] waits before killing the child and failing; 15 s unless set.
    pub fn wall(mut self, d: Duration) -> Self {
        self.wall = d;
        self
    }

    /// More arguments, after the standard ones (so they override them).
    pub fn args(mut self, extra: &[&str]) -> Self {
        self.extra.extend(extra.iter().map(|s| s.to_string()));
        self
    }

    /// Start it.
    pub fn spawn(self) -> Sipp {
        let dir = tempfile::tempdir().expect("temp dir");
        let bin = sipp_bin();
        let mut cmd = Command::new(&bin);
        if let Some(r) = self.remote {
            cmd.arg(hostport(r));
        }
        cmd.arg("-sf").arg(scenario(&self.sf));
        cmd.args([
            "-i",
            &self.local.ip().to_string(),
            "-p",
            &self.local.port().to_string(),
            "-t",
            &self.t,
            "-m",
            &self.calls.to_string(),
        ]);
        cmd.args([
            "-nostdin",
            "-timeout",
            &format!("{}s", self.timeout.as_secs()),
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
        cmd.args(&self.extra);
        let out = std::fs::File::create(dir.path().join("screen.log")).expect("sipp screen file");
        let err = out.try_clone().expect("dup");
        cmd.current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {}: {e}", bin.display()));
        Sipp {
            name: self.name,
            child: Some(child),
            dir,
            calls: self.calls,
            wall: self.wall,
        }
    }
}

/// One sipp process, its output files in a temporary directory; killed on drop if still running.
pub struct Sipp {
    name: &'static str,
    child: Option<Child>,
    dir: tempfile::TempDir,
    calls: u32,
    wall: Duration,
}

/// How a sipp run ended, with its counters from the `-trace_stat` file.
pub struct SippOutcome {
    pub status: ExitStatus,
    pub successful: u64,
    pub failed: u64,
    pub retransmissions: u64,
}

impl Sipp {
    /// A UAS: scenario `sf` bound to `local`, transport `t` (`u1`/`t1`), `calls` calls.
    pub fn uas(name: &'static str, sf: &str, local: SocketAddr, t: &str, calls: u32) -> SippCmd {
        SippCmd {
            name,
            sf: sf.to_string(),
            local,
            t: t.to_string(),
            calls,
            remote: None,
            timeout: Duration::from_secs(10),
            wall: Duration::from_secs(15),
            extra: Vec::new(),
        }
    }

    /// A UAC: like [`Sipp::uas`], sending to `remote`.
    pub fn uac(
        name: &'static str,
        sf: &str,
        local: SocketAddr,
        t: &str,
        calls: u32,
        remote: SocketAddr,
    ) -> SippCmd {
        SippCmd {
            remote: Some(remote),
            ..Sipp::uas(name, sf, local, t, calls)
        }
    }

    /// Wait until this sipp (a UAS) has bound `addr`, so a UAC started next finds it.
    pub fn wait_bound(&mut self, addr: SocketAddr, t: &str) {
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

    /// Wait for the end (killing it and failing after its wall-clock limit) and read its counters.
    pub fn finish(&mut self) -> SippOutcome {
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + self.wall;
        let status = loop {
            if let Some(s) = child.try_wait().expect("waiting for sipp") {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{} still running after {:?}; killed\n{}",
                    self.name,
                    self.wall,
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

    /// Wait and assert: exit status 0.
    pub fn expect_success(&mut self) {
        let o = self.finish();
        assert!(
            o.status.success(),
            "{} failed: {}\n{}",
            self.name,
            o.status,
            self.report()
        );
    }

    /// Wait and assert: exit status 0, every call successful, none failed.
    pub fn expect_all_ok(mut self) {
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

    /// The messages it exchanged (its `-trace_msg` file).
    pub fn messages(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("messages.log")).unwrap_or_default()
    }

    /// The screen, errors and message trace (tails only), for a failure message.
    pub fn report(&self) -> String {
        let mut s = String::new();
        for f in ["screen.log", "errors.log", "messages.log"] {
            let text = std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default();
            let tail: String = text
                .chars()
                .rev()
                .take(6000)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            s.push_str(&format!(
                "--- {} {f} (last 6000 chars)\n{tail}\n",
                self.name
            ));
        }
        s
    }

    /// Name/value pairs of the last line of the `-trace_stat` CSV.
    fn stats(&self) -> Vec<(String, String)> {
        let text = std::fs::read_to_string(self.dir.path().join("stat.csv")).unwrap_or_default();
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let (Some(head), Some(last)) = (lines.next(), lines.next_back()) else {
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
