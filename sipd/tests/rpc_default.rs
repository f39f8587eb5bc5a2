//! The control socket is on by default (issue 14): `sipd rpc` reaches a sipd started with only
//! `--listen` and `--script`, two named instances side by side are each reached by name, an
//! unnamed second instance starts without the taken socket and says so, and the socket refuses
//! another uid. Each test points `XDG_RUNTIME_DIR` at its own temp dir, where the default
//! sockets then live.

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Instance {
    child: Child,
    log: PathBuf,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("free port")
        .port()
}

/// `sipd run` with only --listen/--script (and `extra`), its runtime dir `runtime`.
fn start(runtime: &Path, extra: &[&str]) -> Instance {
    let script = runtime.join("route.lua");
    std::fs::write(&script, "function ksr_request_route() end\n").expect("script");
    let log = runtime.join(format!("sipd-{}.log", extra.join("_").replace('/', "_")));
    let child = Command::new(env!("CARGO_BIN_EXE_sipd"))
        .arg("run")
        .arg("--listen")
        .arg(format!("udp:127.0.0.1:{}", free_udp_port()))
        .arg("--script")
        .arg(&script)
        .args(extra)
        .env("XDG_RUNTIME_DIR", runtime)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("starting sipd");
    Instance { child, log }
}

fn rpc(runtime: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sipd"))
        .arg("rpc")
        .args(args)
        .env("XDG_RUNTIME_DIR", runtime)
        .output()
        .expect("sipd rpc")
}

/// Wait until `path` exists (at most 10 s).
fn wait_for(path: &Path) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{} did not appear",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn workers(out: &Output) -> usize {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON result");
    v.as_array().map_or(0, Vec::len)
}

#[test]
fn rpc_reaches_a_sipd_started_with_only_listen_and_script() {
    let dir = tempfile::tempdir().expect("temp dir");
    let _sipd = start(dir.path(), &[]);
    wait_for(&dir.path().join("sipd.sock"));
    let out = rpc(dir.path(), &["core.version"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("sipd"), "{text}");
}

#[test]
fn named_instances_are_each_reached_by_name_and_an_unnamed_second_says_why_it_has_none() {
    let dir = tempfile::tempdir().expect("temp dir");
    let one = start(dir.path(), &["--name", "one", "--workers", "1"]);
    let two = start(dir.path(), &["--name", "two", "--workers", "2"]);
    wait_for(&dir.path().join("sipd-one.sock"));
    wait_for(&dir.path().join("sipd-two.sock"));
    assert_eq!(workers(&rpc(dir.path(), &["--name", "one", "core.ps"])), 1);
    assert_eq!(workers(&rpc(dir.path(), &["--name", "two", "core.ps"])), 2);

    // A second instance without a name while the first unnamed one holds the default socket.
    let first = start(dir.path(), &["--workers", "1"]);
    wait_for(&dir.path().join("sipd.sock"));
    let second = start(dir.path(), &["--workers", "2"]);
    let start_wait = Instant::now();
    let warned = loop {
        let log = std::fs::read_to_string(&second.log).unwrap_or_default();
        if log.contains("belongs to another running sipd") {
            break true;
        }
        if start_wait.elapsed() > Duration::from_secs(10) {
            break false;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        warned,
        "{}",
        std::fs::read_to_string(&second.log).unwrap_or_default()
    );
    // The first keeps its socket; the second kept running.
    assert_eq!(workers(&rpc(dir.path(), &["core.ps"])), 1);
    let mut second = second;
    assert!(second.child.try_wait().expect("wait").is_none());
    drop((one, two, first));
}

#[test]
fn a_bad_instance_name_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut bad = start(dir.path(), &["--name", "../x"]);
    let status = bad.child.wait().expect("wait");
    assert!(!status.success());
    let log = std::fs::read_to_string(&bad.log).unwrap_or_default();
    assert!(log.contains("--name `../x`"), "{log}");
}

#[test]
fn the_socket_refuses_another_uid() {
    let dir = tempfile::tempdir().expect("temp dir");
    let _sipd = start(dir.path(), &[]);
    let sock = dir.path().join("sipd.sock");
    wait_for(&sock);
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = std::fs::metadata(&sock).expect("socket");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    if meta.uid() != 0 {
        // Only root can become another user here; the mode above is what refuses them.
        return;
    }
    // The temp dir is root's 0700: let `nobody` reach the socket file itself, so the socket's
    // own check is what is tested.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_sipd"))
        .args(["rpc", "--socket"])
        .arg(&sock)
        .arg("core.version")
        .output()
        .expect("setpriv (util-linux)");
    assert!(!out.status.success(), "another uid was served");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot connect"), "{err}");
}
