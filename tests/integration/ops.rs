//! Operating a live sipd: script reload under real `sipp` traffic (a good script switches with
//! no failed call, a broken one is rejected over RPC while the old one keeps serving), the RPC
//! methods and their errors, an endless loop in the script failing one message only, and the
//! Prometheus endpoint moving with traffic.
//!
//! sipd runs in-process on port 0 with its control socket in a temporary directory; sipp runs
//! bounded by `-m`, `-timeout` and a wall-clock limit here.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kemi_runtime::msg::Proto;
use serde_json::{json, Value};
use sipd::config::{Config, MetricsConfig, OnLimit, RpcConfig, RunArgs};
use sipd::endpoint::Endpoint;
use sipd::rpc::client::{self, ClientError};
use sipd::server::{Server, ServerHandle};

const LOOPBACK: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

/// Answers OPTIONS `200 <reason>`; a request with `X-Loop` spins forever.
fn script(reason: &str) -> String {
    format!(
        r#"function ksr_request_route()
    if KSR.hdr.is_present("X-Loop") > 0 then
        local n = 0
        while true do n = n + 1 end
    end
    if KSR.is_OPTIONS() then
        KSR.sl.sl_send_reply(200, "{reason}")
        KSR.x.exit()
    end
    KSR.sl.sl_send_reply(404, "Not Here")
end
"#
    )
}

/// A sipd with RPC (Unix socket and HTTP) and metrics on, in a temporary directory.
struct Live {
    handle: Option<ServerHandle>,
    dir: tempfile::TempDir,
    script: PathBuf,
}

impl Live {
    fn start(workers: usize, on_limit: OnLimit) -> Live {
        let dir = tempfile::tempdir().expect("temp dir");
        let script = dir.path().join("route.lua");
        std::fs::write(&script, script_text("One")).expect("write script");
        let args = RunArgs {
            listen: vec![Endpoint {
                proto: Proto::Udp,
                addr: SocketAddr::new(LOOPBACK, 0),
            }],
            script: Some(script.clone()),
            workers: Some(workers),
            log_level: Some("warn".into()),
            ..RunArgs::default()
        };
        let mut config = Config::load(&args).expect("config");
        config.rpc = Some(RpcConfig {
            socket: dir.path().join("ctl.sock"),
            http: Some(SocketAddr::new(LOOPBACK, 0)),
        });
        config.metrics = Some(MetricsConfig {
            listen: SocketAddr::new(LOOPBACK, 0),
        });
        config.limits.script.instructions = Some(200_000);
        config.limits.on_limit = on_limit;
        let handle = Server::start(config).expect("start sipd");
        Live {
            handle: Some(handle),
            dir,
            script,
        }
    }

    fn h(&self) -> &ServerHandle {
        self.handle.as_ref().expect("running")
    }

    fn sip(&self) -> SocketAddr {
        self.h().local_addr(Proto::Udp, false).expect("udp")
    }

    fn socket(&self) -> PathBuf {
        self.h().rpc_socket().expect("rpc socket").to_path_buf()
    }

    fn rpc(&self, method: &str, params: &[Value]) -> Result<Value, ClientError> {
        client::call(&self.socket(), method, params)
    }

    fn write_script(&self, text: &str) {
        std::fs::write(&self.script, text).expect("write script");
    }

    fn scrape(&self) -> String {
        let addr = self.h().metrics_addr().expect("metrics");
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .expect("send");
        let mut text = String::new();
        s.read_to_string(&mut text).expect("read");
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        text
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown();
        }
        let _ = &self.dir;
    }
}

fn script_text(reason: &str) -> String {
    script(reason)
}

/// The value of the series `name` (exact label text) in an exposition, 0 when absent.
fn series(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0)
}

/// Send one OPTIONS (with `extra` headers) and return the status line of the answer, if any
/// arrives within `wait`.
fn probe(to: SocketAddr, extra: &str, wait: Duration) -> Option<String> {
    let s = UdpSocket::bind((LOOPBACK, 0)).expect("bind");
    let me = s.local_addr().expect("addr");
    let msg = format!(
        "OPTIONS sip:ping@{to} SIP/2.0\r\nVia: SIP/2.0/UDP {me};rport;branch=z9hG4bK{n}\r\nMax-Forwards: 70\r\nFrom: <sip:t@{me}>;tag=1\r\nTo: <sip:ping@{to}>\r\nCall-ID: probe-{n}@x\r\nCSeq: 1 OPTIONS\r\n{extra}Content-Length: 0\r\n\r\n",
        n = me.port()
    );
    s.send_to(msg.as_bytes(), to).expect("send");
    s.set_read_timeout(Some(wait)).expect("timeout");
    let mut buf = [0u8; 4096];
    let n = s.recv(&mut buf).ok()?;
    let text = String::from_utf8_lossy(buf.get(..n).unwrap_or_default()).into_owned();
    text.lines().next().map(str::to_string)
}

const ANSWER: Duration = Duration::from_secs(3);

// --- sipp ----------------------------------------------------------------------------------

fn sipp_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("SIPP") {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("sipp"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("sipp not found on PATH (nor $SIPP): apt-get install sip-tester"))
}

/// A sipp OPTIONS UAC at `rate` calls/s, `calls` calls, its files in a temporary directory.
struct Uac {
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Uac {
    fn start(to: SocketAddr, calls: u32, rate: u32) -> Uac {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = UdpSocket::bind((LOOPBACK, 0))
            .and_then(|s| s.local_addr())
            .expect("free port")
            .port();
        let sf = Path::new(env!("CARGO_MANIFEST_DIR")).join("sipp/options_uac.xml");
        let out = std::fs::File::create(dir.path().join("screen.log")).expect("screen");
        let child = Command::new(sipp_bin())
            .arg(to.to_string())
            .arg("-sf")
            .arg(sf)
            .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-t", "u1"])
            .args(["-m", &calls.to_string(), "-r", &rate.to_string()])
            .args(["-nostdin", "-timeout", "20s", "-timeout_error"])
            .args([
                "-trace_stat",
                "-stf",
                "stat.csv",
                "-trace_err",
                "-error_file",
                "errors.log",
            ])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("dup"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("spawning sipp: {e}"));
        Uac {
            child: Some(child),
            dir,
        }
    }

    /// Calls successful and failed so far (from the last line of the stat file).
    fn counts(&self) -> (u64, u64) {
        let text = std::fs::read_to_string(self.dir.path().join("stat.csv")).unwrap_or_default();
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let (Some(head), Some(last)) = (lines.next(), lines.next_back()) else {
            return (0, 0);
        };
        let row: Vec<(&str, &str)> = head.split(';').zip(last.split(';')).collect();
        let get = |k: &str| {
            row.iter()
                .find(|(n, _)| *n == k)
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0)
        };
        (get("SuccessfulCall(C)"), get("FailedCall(C)"))
    }

    /// Wait (at most 40 s) for sipp to end; its exit success and counts.
    fn finish(mut self) -> (bool, u64, u64, String) {
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + Duration::from_secs(40);
        let ok = loop {
            if let Some(s) = child.try_wait().expect("wait") {
                break s.success();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break false;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let (good, bad) = self.counts();
        let errors =
            std::fs::read_to_string(self.dir.path().join("errors.log")).unwrap_or_default();
        (ok, good, bad, errors)
    }
}

impl Drop for Uac {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

// --- tests ---------------------------------------------------------------------------------

#[test]
fn reload_under_sipp_traffic_switches_with_no_failed_call_and_rejects_a_broken_script() {
    let live = Live::start(2, OnLimit::Reply);
    let sip = live.sip();
    assert_eq!(probe(sip, "", ANSWER).as_deref(), Some("SIP/2.0 200 One"));
    let before = live.scrape();

    let uac = Uac::start(sip, 400, 100);
    std::thread::sleep(Duration::from_millis(1000));

    // A broken script is rejected with file, line and cause; the old one keeps answering.
    live.write_script("function ksr_request_route()\n    if then\nend\n");
    match live.rpc("app_lua.reload", &[]) {
        Err(ClientError::Rpc {
            code: 500,
            message,
            data: Some(d),
        }) => {
            assert_eq!(message, "Reload Failed");
            assert_eq!(d["line"], json!(2), "{d}");
            assert!(
                d["file"].as_str().is_some_and(|f| f.ends_with("route.lua")),
                "{d}"
            );
            assert!(
                d["cause"].as_str().is_some_and(|c| c.contains("then")),
                "{d}"
            );
        }
        other => panic!("broken script: {other:?}"),
    }
    live.write_script("function other() end\n");
    let missing = live.rpc("app_lua.reload", &[]);
    assert!(
        matches!(&missing, Err(ClientError::Rpc { code: 500, data: Some(d), .. }) if d["cause"].as_str().is_some_and(|c| c.contains("ksr_request_route"))),
        "{missing:?}"
    );
    assert_eq!(probe(sip, "", ANSWER).as_deref(), Some("SIP/2.0 200 One"));

    // A good script switches every worker between two messages.
    live.write_script(&script_text("Two"));
    let r = live.rpc("app_lua.reload", &[]).expect("reload");
    assert_eq!(r, json!({"old": 1, "new": 2}));
    let (ok, good, bad, errors) = uac.finish();
    assert!(
        ok && good == 400 && bad == 0,
        "sipp: exit ok {ok}, {good} successful, {bad} failed\n{errors}"
    );

    // Every probe now gets the new answer (each worker switched before its next message).
    for _ in 0..6 {
        assert_eq!(probe(sip, "", ANSWER).as_deref(), Some("SIP/2.0 200 Two"));
    }
    let ps = live.rpc("core.ps", &[]).expect("core.ps");
    let workers = ps.as_array().expect("array");
    assert_eq!(workers.len(), 2, "{ps}");
    let received: u64 = workers.iter().filter_map(|w| w["received"].as_u64()).sum();
    assert!(received >= 408, "{ps}");

    let after = live.scrape();
    let options = r#"sipd_requests_received_total{method="OPTIONS"}"#;
    assert!(
        series(&after, options) >= series(&before, options) + 407,
        "{after}"
    );
    let sent = r#"sipd_replies_sent_local_total{method="OPTIONS",class="2xx"}"#;
    assert!(series(&after, sent) >= 408, "{after}");
    assert_eq!(
        series(&after, r#"sipd_script_reloads_total{result="accepted"}"#),
        1
    );
    assert_eq!(
        series(&after, r#"sipd_script_reloads_total{result="rejected"}"#),
        2
    );
    assert_eq!(series(&after, "sipd_script_generation"), 2, "{after}");
}

#[test]
fn endless_loop_fails_one_message_and_the_next_is_served() {
    let live = Live::start(1, OnLimit::Reply);
    let sip = live.sip();
    let started = Instant::now();
    assert_eq!(
        probe(sip, "X-Loop: 1\r\n", ANSWER).as_deref(),
        Some("SIP/2.0 500 Server Internal Error")
    );
    assert!(started.elapsed() < ANSWER);
    assert_eq!(probe(sip, "", ANSWER).as_deref(), Some("SIP/2.0 200 One"));
    let stats = live
        .rpc("stats.get_statistics", &[json!("script:")])
        .expect("stats");
    let lines: Vec<&str> = stats
        .as_array()
        .expect("array")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        lines.contains(&"script:limit_instructions = 1"),
        "{lines:?}"
    );
    assert!(lines.contains(&"script:errors = 1"), "{lines:?}");
    let text = live.scrape();
    assert_eq!(
        series(
            &text,
            r#"sipd_script_limit_hits_total{limit="instructions"}"#
        ),
        1
    );
}

#[test]
fn endless_loop_with_the_drop_policy_gets_no_answer() {
    let live = Live::start(1, OnLimit::Drop);
    let sip = live.sip();
    assert_eq!(
        probe(sip, "X-Loop: 1\r\n", Duration::from_millis(700)),
        None
    );
    assert_eq!(probe(sip, "", ANSWER).as_deref(), Some("SIP/2.0 200 One"));
}

#[test]
fn rpc_api_list_matches_sipd_api_list_and_errors_are_json_rpc() {
    let live = Live::start(1, OnLimit::Reply);
    let listed = live.rpc("app_lua.api_list", &[]).expect("api_list");
    let table = sipd::exports::build_table(&Default::default()).expect("table");
    let cli: Value =
        serde_json::from_str(&sipd::api::render(&table, sipd::api::ApiFormat::Json)).expect("json");
    assert_eq!(listed, cli);

    let methods = live.rpc("system.listMethods", &[]).expect("listMethods");
    for m in [
        "app_lua.reload",
        "app_lua.list",
        "core.uptime",
        "core.ps",
        "kemi.stats",
        "stats.get_statistics",
    ] {
        assert!(
            methods.as_array().is_some_and(|a| a.contains(&json!(m))),
            "{m} in {methods}"
        );
    }
    assert!(!methods
        .as_array()
        .is_some_and(|a| a.contains(&json!("app_jsdt.reload"))));
    let list = live.rpc("app_lua.list", &[]).expect("list");
    assert!(
        list[0]
            .as_str()
            .is_some_and(|s| s.starts_with("0: [") && s.contains("route.lua")),
        "{list}"
    );
    assert!(live
        .rpc("core.version", &[])
        .expect("version")
        .as_str()
        .is_some_and(|v| v.starts_with("sipd ")));

    let code = |r: Result<Value, ClientError>| match r {
        Err(ClientError::Rpc { code, .. }) => code,
        other => panic!("expected an RPC error, got {other:?}"),
    };
    assert_eq!(code(live.rpc("no.such", &[])), -32601);
    assert_eq!(code(live.rpc("app_jsdt.reload", &[])), -32601);
    assert_eq!(code(live.rpc("core.uptime", &[json!(1)])), -32602);
    assert_eq!(code(live.rpc("app_lua.reload", &[json!(7)])), -32602);
    assert_eq!(code(live.rpc("stats.get_statistics", &[json!(5)])), -32602);
    assert_eq!(
        code(live.rpc("stats.get_statistics", &[json!("nosuch:")])),
        -32602
    );

    // Garbage on the socket gets a parse error, and the server keeps answering.
    let mut raw = std::os::unix::net::UnixStream::connect(live.socket()).expect("connect");
    raw.write_all(b"{not json").expect("write");
    raw.shutdown(std::net::Shutdown::Write).expect("shutdown");
    let mut answer = String::new();
    raw.read_to_string(&mut answer).expect("read");
    let v: Value = serde_json::from_str(&answer).expect("json answer");
    assert_eq!(v["error"]["code"], json!(-32700));

    // The same methods over HTTP.
    let http = live.h().rpc_http_addr().expect("http");
    let up = client::call_http(http, "core.uptime", &[]).expect("uptime over http");
    assert!(up["uptime"].is_u64(), "{up}");

    // kemi.stats counts export calls per export, summed over the workers.
    for _ in 0..3 {
        assert!(probe(live.sip(), "", ANSWER).is_some());
    }
    let k = live.rpc("kemi.stats", &[]).expect("kemi.stats");
    let exports = k["exports"].as_array().expect("exports");
    let reply = exports
        .iter()
        .find(|e| e["module"] == json!("sl") && e["name"] == json!("sl_send_reply"))
        .expect("sl_send_reply counted");
    assert_eq!(reply["calls"], json!(3), "{k}");
}

#[test]
fn socket_is_owner_only_and_removed_at_shutdown() {
    use std::os::unix::fs::PermissionsExt;
    let live = Live::start(1, OnLimit::Reply);
    let path = live.socket();
    let mode = std::fs::metadata(&path)
        .expect("socket")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let mut live = live;
    if let Some(h) = live.handle.take() {
        h.shutdown();
    }
    assert!(!path.exists(), "socket file left behind");
}

#[test]
fn tm_stats_and_transaction_gauges_follow_stateful_replies() {
    let live = Live::start(1, OnLimit::Reply);
    live.write_script(
        r#"function ksr_request_route()
    if KSR.tm.t_send_reply(200, "Stateful") < 0 then
        KSR.sl.sl_send_reply(500, "no transaction")
    end
end
"#,
    );
    live.rpc("app_lua.reload", &[]).expect("reload");
    let before = live.rpc("tm.stats", &[]).expect("tm.stats");
    assert_eq!(before["created"], json!(0), "{before}");
    // The reload takes effect before the next message; each probe is a new transaction.
    for _ in 0..3 {
        let status = probe(live.sip(), "", ANSWER).expect("an answer");
        assert_eq!(status, "SIP/2.0 200 Stateful");
    }
    let after = live.rpc("tm.stats", &[]).expect("tm.stats");
    assert_eq!(after["created"], json!(3), "{after}");
    assert!(after["current"].as_u64().is_some(), "{after}");
    let text = live.scrape();
    assert_eq!(series(&text, "sipd_tm_transactions_created"), 3, "{text}");
    let methods = live.rpc("system.listMethods", &[]).expect("listMethods");
    assert!(methods
        .as_array()
        .is_some_and(|a| a.contains(&json!("tm.stats"))));
}

#[test]
fn javascript_endless_loop_fails_one_message_and_the_next_is_served() {
    let dir = tempfile::tempdir().expect("temp dir");
    let script = dir.path().join("route.js");
    std::fs::write(
        &script,
        r#"function ksr_request_route() {
    if (KSR.hdr.is_present("X-Loop") > 0) {
        var n = 0;
        while (true) { try { n = n + 1; } catch (e) {} }
    }
    if (KSR.is_OPTIONS()) {
        KSR.sl.sl_send_reply(200, "Js");
        KSR.x.exit();
    }
    KSR.sl.sl_send_reply(404, "Not Here");
}
"#,
    )
    .expect("write script");
    let args = RunArgs {
        listen: vec![Endpoint {
            proto: Proto::Udp,
            addr: SocketAddr::new(LOOPBACK, 0),
        }],
        script: Some(script.clone()),
        workers: Some(1),
        log_level: Some("warn".into()),
        ..RunArgs::default()
    };
    let mut config = Config::load(&args).expect("config");
    config.rpc = Some(RpcConfig {
        socket: dir.path().join("ctl.sock"),
        http: None,
    });
    config.limits.script.instructions = Some(200_000);
    config.limits.on_limit = OnLimit::Reply;
    let handle = Server::start(config).expect("start sipd");
    let live = Live {
        handle: Some(handle),
        dir,
        script,
    };
    let sip = live.sip();
    let started = Instant::now();
    assert_eq!(
        probe(sip, "X-Loop: 1\r\n", ANSWER).as_deref(),
        Some("SIP/2.0 500 Server Internal Error")
    );
    assert!(started.elapsed() < ANSWER);
    assert_eq!(probe(sip, "", ANSWER).as_deref(), Some("SIP/2.0 200 Js"));
    let stats = live
        .rpc("stats.get_statistics", &[json!("script:")])
        .expect("stats");
    let lines: Vec<&str> = stats
        .as_array()
        .expect("array")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        lines.contains(&"script:limit_instructions = 1"),
        "{lines:?}"
    );
}
