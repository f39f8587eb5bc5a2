//! Operating a live sipd: script reload under real `sipp` traffic (a good script switches with
//! no failed call, a broken one is rejected over RPC while the old one keeps serving), the RPC
//! methods and their errors, an endless loop in the script failing one message only, and the
//! Prometheus endpoint moving with traffic.
//!
//! sipd runs in-process on port 0 with its control socket in a temporary directory; sipp runs
//! bounded by `-m`, `-timeout` and a wall-clock limit ([`crate::support::sipp`]).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use kemi_runtime::msg::Proto;
use serde_json::{json, Value};
use sipd::config::{MetricsConfig, OnLimit, RpcConfig};
use sipd::rpc::client::{self, ClientError};
use sipd::server::ServerHandle;

use crate::support::proxy::{listen_on, Sipd};
use crate::support::sipp::{free_addr, Sipp, LOCALHOST_V4 as LOOPBACK};

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

/// A sipd on UDP with RPC (Unix socket and HTTP) and metrics on, in a temporary directory.
struct Live {
    sipd: Sipd,
}

impl Live {
    /// The Lua script answering `200 One`, `workers` workers.
    fn start(workers: usize, on_limit: OnLimit) -> Live {
        Live::launch("route.lua", &script_text("One"), workers, on_limit)
    }

    /// `source` saved as `file` (its extension picks the engine), the script limited to
    /// 200,000 instructions a message, `on_limit` when it hits that.
    fn launch(file: &str, source: &str, workers: usize, on_limit: OnLimit) -> Live {
        Live::launch_with(file, source, &[], workers, on_limit)
    }

    /// [`Live::launch`], with `companions` (file name, text) written beside the script first.
    fn launch_with(
        file: &str,
        source: &str,
        companions: &[(&str, &str)],
        workers: usize,
        on_limit: OnLimit,
    ) -> Live {
        let listen = listen_on(LOOPBACK, &[Proto::Udp]);
        let sipd = Sipd::launch(file, source, listen, workers, |config, dir| {
            for (name, text) in companions {
                std::fs::write(dir.join(name), text).expect("write companion");
            }
            config.rpc = Some(RpcConfig {
                socket: dir.join("ctl.sock"),
                explicit: true,
                http: Some(SocketAddr::new(LOOPBACK, 0)),
            });
            config.metrics = Some(MetricsConfig {
                listen: SocketAddr::new(LOOPBACK, 0),
            });
            config.limits.script.instructions = Some(200_000);
            config.limits.on_limit = on_limit;
        });
        Live { sipd }
    }

    fn h(&self) -> &ServerHandle {
        self.sipd.handle()
    }

    fn sip(&self) -> SocketAddr {
        self.sipd.addr_in(Proto::Udp, false)
    }

    fn socket(&self) -> PathBuf {
        self.h().rpc_socket().expect("rpc socket").to_path_buf()
    }

    fn rpc(&self, method: &str, params: &[Value]) -> Result<Value, ClientError> {
        client::call(&self.socket(), method, params)
    }

    fn write_script(&self, text: &str) {
        std::fs::write(self.sipd.script_path(), text).expect("write script");
    }

    /// Write `text` as the file `name` beside the script.
    fn write_companion(&self, name: &str, text: &str) {
        let dir = self.sipd.script_path().parent().expect("script folder");
        std::fs::write(dir.join(name), text).expect("write companion");
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

/// A message with `X-Loop` gets `500` before [`ANSWER`] is up, the next one `200 <reason>`, and
/// the statistics count one hit of the instruction limit; returns the `script:` statistics.
fn endless_loop_then_served(live: &Live, reason: &str) -> Vec<String> {
    let sip = live.sip();
    let started = Instant::now();
    assert_eq!(
        probe(sip, "X-Loop: 1\r\n", ANSWER).as_deref(),
        Some("SIP/2.0 500 Server Internal Error")
    );
    assert!(started.elapsed() < ANSWER);
    let ok = format!("SIP/2.0 200 {reason}");
    assert_eq!(probe(sip, "", ANSWER).as_deref(), Some(ok.as_str()));
    let stats = live
        .rpc("stats.get_statistics", &[json!("script:")])
        .expect("stats");
    let lines: Vec<String> = stats
        .as_array()
        .expect("array")
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    assert!(
        lines.iter().any(|l| l == "script:limit_instructions = 1"),
        "{lines:?}"
    );
    lines
}

// --- tests ---------------------------------------------------------------------------------

#[test]
fn reload_under_sipp_traffic_switches_with_no_failed_call_and_rejects_a_broken_script() {
    let live = Live::start(2, OnLimit::Reply);
    let sip = live.sip();
    assert_eq!(probe(sip, "", ANSWER).as_deref(), Some("SIP/2.0 200 One"));
    let before = live.scrape();

    let uac = Sipp::uac(
        "OPTIONS UAC",
        "options_uac.xml",
        free_addr(LOOPBACK),
        "u1",
        400,
        sip,
    )
    .args(&["-r", "100"])
    .timeout(Duration::from_secs(20))
    .wall(Duration::from_secs(40))
    .spawn();
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
    uac.expect_all_ok();

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

/// Answers OPTIONS `200 <reason>` with the reason taken from the companion `helper.lua`.
const COMPANION_ROUTE: &str = r#"local helper = require("helper")

function ksr_request_route()
    KSR.sl.sl_send_reply(200, helper.reason)
    KSR.x.exit()
end
"#;

#[test]
fn lua_companion_beside_the_script_is_reloaded_and_a_broken_one_is_rejected() {
    let live = Live::launch_with(
        "route.lua",
        COMPANION_ROUTE,
        &[("helper.lua", "return { reason = \"One\" }\n")],
        // Two workers: one that sees no message between the accepted reload and the broken
        // edit below still runs the companion text the reload validated, not the file.
        2,
        OnLimit::Reply,
    );
    let sip = live.sip();
    assert_eq!(probe(sip, "", ANSWER).as_deref(), Some("SIP/2.0 200 One"));

    // Only the companion changes: the reload reads it again.
    live.write_companion("helper.lua", "return { reason = \"Two\" }\n");
    let r = live.rpc("app_lua.reload", &[]).expect("reload");
    assert_eq!(r, json!({"old": 1, "new": 2}));
    for _ in 0..4 {
        assert_eq!(probe(sip, "", ANSWER).as_deref(), Some("SIP/2.0 200 Two"));
    }

    // A companion that does not compile rejects the reload with its own file and line.
    live.write_companion(
        "helper.lua",
        "local M = {}\nM.reason = = \"Three\"\nreturn M\n",
    );
    match live.rpc("app_lua.reload", &[]) {
        Err(ClientError::Rpc {
            code: 500,
            message,
            data: Some(d),
        }) => {
            assert_eq!(message, "Reload Failed");
            assert!(
                d["file"]
                    .as_str()
                    .is_some_and(|f| f.ends_with("helper.lua")),
                "{d}"
            );
            assert_eq!(d["line"], json!(2), "{d}");
            assert!(
                d["cause"]
                    .as_str()
                    .is_some_and(|c| c.contains("unexpected symbol") && c.contains("'helper'")),
                "{d}"
            );
        }
        other => panic!("broken companion: {other:?}"),
    }
    for _ in 0..4 {
        assert_eq!(probe(sip, "", ANSWER).as_deref(), Some("SIP/2.0 200 Two"));
    }
    // No generation 3 was published.
    let ps = live.rpc("core.ps", &[]).expect("core.ps");
    assert!(
        ps.as_array()
            .expect("array")
            .iter()
            .all(|w| w["generation"].as_u64().is_some_and(|g| g <= 2)),
        "{ps}"
    );
}

#[test]
fn endless_loop_fails_one_message_and_the_next_is_served() {
    let live = Live::start(1, OnLimit::Reply);
    let lines = endless_loop_then_served(&live, "One");
    assert!(lines.iter().any(|l| l == "script:errors = 1"), "{lines:?}");
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
fn rpc_garbage_is_answered_and_closed_without_waiting_and_connections_are_bounded() {
    use std::os::unix::net::UnixStream;
    let live = Live::start(1, OnLimit::Reply);
    // Garbage, the write side left open: a parse error and the close come at once.
    let read_answer = |raw: &mut UnixStream| {
        raw.set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        let mut answer = String::new();
        raw.read_to_string(&mut answer)
            .expect("answered and closed within 2 s");
        serde_json::from_str::<Value>(&answer).expect("json answer")
    };
    let mut raw = UnixStream::connect(live.socket()).expect("connect");
    raw.write_all(b"GET / HTTP/1.0\r\n\r\n").expect("write");
    assert_eq!(read_answer(&mut raw)["error"]["code"], json!(-32700));
    // A request whose JSON is complete is answered without the client closing its side.
    let mut raw = UnixStream::connect(live.socket()).expect("connect");
    raw.write_all(br#"{"jsonrpc":"2.0","method":"core.uptime","id":1}"#)
        .expect("write");
    assert!(read_answer(&mut raw)["result"]["uptime"].is_u64());
    // Idle connections beyond the bound are refused with an error; the server still answers
    // once they are gone.
    let idle: Vec<UnixStream> = (0..sipd::rpc::MAX_CONNECTIONS)
        .map(|_| UnixStream::connect(live.socket()).expect("connect"))
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut extra = UnixStream::connect(live.socket()).expect("connect");
    let refused = read_answer(&mut extra);
    assert!(
        refused["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("too many")),
        "{refused}"
    );
    drop(idle);
    std::thread::sleep(Duration::from_millis(200));
    assert!(live.rpc("core.uptime", &[]).is_ok());
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
    live.sipd.shutdown();
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
    let live = Live::launch(
        "route.js",
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
        1,
        OnLimit::Reply,
    );
    endless_loop_then_served(&live, "Js");
}
