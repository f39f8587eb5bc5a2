//! The dispatcher on the wire: a sipp UAC calls through sipd (tm, rr, `ds_select_dst(1, 4)`,
//! failover with `ds_next_dst` in the failure callback) to three sipp UASes
//! (`tests/sipp/ds_uas.xml`, which also answers the OPTIONS probes). Round robin spreads the
//! calls evenly; a UAS that is killed is marked inactive by probing, its calls go to the
//! others with no failed call; restarted, it is probed active again and takes its share.
//! RPC `dispatcher.list`/`set_state`/`reload` are driven over the control socket. Every sipp
//! run is bounded by `-m`, `-timeout` and a wall-clock kill; every wait by a deadline.

use std::collections::HashSet;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use kemi_runtime::msg::Proto;
use modules::dispatcher::DispatcherState;
use serde_json::{json, Value};
use sipd::config::{MetricsConfig, RpcConfig};

use crate::support::proxy::{listen_on, Sipd};
use crate::support::sipp::{free_addr, free_port, Sipp, LOCALHOST_V4 as LO};

/// sipp's own `-timeout` for a UAC run.
const UAC_TIMEOUT: Duration = Duration::from_secs(30);
/// A UAS runs for the whole test (it is killed at the end); its own limit.
const UAS_TIMEOUT: Duration = Duration::from_secs(150);

const SCRIPT: &str = r#"
function ksr_request_route()
    if KSR.maxfwd.process_maxfwd(10) < 0 then
        KSR.sl.sl_send_reply(483, "Too Many Hops")
        return 1
    end
    if KSR.siputils.has_totag() > 0 then
        if KSR.rr.loose_route() > 0 then
            KSR.tm.t_relay()
        elseif KSR.is_ACK() then
            if KSR.tm.t_check_trans() > 0 then
                KSR.tm.t_relay()
            end
        else
            KSR.sl.sl_send_reply(404, "Not here")
        end
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
    KSR.rr.record_route()
    if KSR.dispatcher.ds_select_dst(SET, ALG) < 0 then
        KSR.sl.sl_send_reply(503, "No destination")
        return 1
    end
    KSR.tm.t_on_failure("ksr_failure_ds")
    KSR.tm.t_set_fr(10000, 2000)
    KSR.tm.t_relay()
end

function ksr_failure_ds()
    if KSR.tm.t_is_canceled() > 0 then
        return 1
    end
    if KSR.tm.t_branch_timeout() > 0 or KSR.tm.t_check_status("5[0-9][0-9]") > 0 then
        KSR.dispatcher.ds_mark_dst()
        if KSR.dispatcher.ds_next_dst() > 0 then
            KSR.hdr.append("X-Failover: 1\r\n")
            KSR.tm.t_on_failure("ksr_failure_ds")
            KSR.tm.t_relay()
        end
    end
end
"#;

/// sipd selecting from `set` by `alg`, with the dispatcher on `list` (written to its
/// directory), probing every second, and a control socket `ctl`.
fn start(set: i32, alg: i32, list: &str, ctl: &Path) -> Sipd {
    let ctl = ctl.to_path_buf();
    let list = list.to_string();
    Sipd::launch(
        "route.lua",
        &SCRIPT
            .replace("SET", &set.to_string())
            .replace("ALG", &alg.to_string()),
        listen_on(LO, &[Proto::Udp]),
        2,
        move |c, dir| {
            let file = dir.join("dispatcher.list");
            std::fs::write(&file, list).expect("list file");
            c.modparams = toml::from_str(&format!(
                "[dispatcher]\nlist_file = \"{}\"\nflags = 2\nds_ping_interval = 1\n\
                 ds_probing_mode = 1\nds_probing_threshold = 2\nds_inactive_threshold = 1\n\
                 ds_ping_timeout = 1000\n",
                file.display()
            ))
            .expect("modparams");
            c.rpc = Some(RpcConfig {
                socket: ctl,
                explicit: true,
                http: None,
            });
            c.metrics = Some(MetricsConfig {
                listen: SocketAddr::new(LO, 0),
            });
        },
    )
}

/// A sipp UAS on `port` that takes `calls` calls (probes count as calls), then stops
/// answering and exits once its calls are over.
fn uas_for(name: &'static str, port: u16, calls: u32) -> Sipp {
    let addr = SocketAddr::new(LO, port);
    let mut uas = Sipp::uas(name, "ds_uas.xml", addr, "u1", calls)
        .timeout(UAS_TIMEOUT)
        .wall(UAS_TIMEOUT)
        .spawn();
    uas.wait_bound(addr, "u1");
    uas
}

/// A sipp UAS on `port` for the whole test.
fn uas(name: &'static str, port: u16) -> Sipp {
    uas_for(name, port, 1_000_000)
}

/// `calls` calls through `sipd` at 100 per second; every one must succeed.
fn calls(sipd: &Sipd, calls: u32) {
    uac(sipd, calls).expect_all_ok();
}

/// A UAC running `calls` calls through `sipd` at 100 per second.
fn uac(sipd: &Sipd, calls: u32) -> Sipp {
    Sipp::uac(
        "uac",
        "tm_uac.xml",
        free_addr(LO),
        "u1",
        calls,
        sipd.addr(Proto::Udp),
    )
    .timeout(UAC_TIMEOUT)
    .wall(UAC_TIMEOUT + Duration::from_secs(5))
    .args(&["-r", "100", "-l", "60"])
    .spawn()
}

/// Distinct Call-IDs of the INVITEs a UAS received (its message trace).
fn invites(uas: &Sipp) -> usize {
    let log = uas.messages();
    let mut ids = HashSet::new();
    let mut in_invite = false;
    for line in log.lines() {
        if line.starts_with("INVITE ") {
            in_invite = true;
        } else if in_invite {
            if let Some(v) = line
                .strip_prefix("Call-ID:")
                .or_else(|| line.strip_prefix("Call-Id:"))
            {
                ids.insert(v.trim().to_string());
                in_invite = false;
            } else if line.trim().is_empty() {
                in_invite = false;
            }
        }
    }
    ids.len()
}

/// INVITEs a UAS received after a failover (the failure callback adds `X-Failover`).
fn failovers(uas: &Sipp) -> usize {
    uas.messages().matches("\nX-Failover: 1").count()
}

/// The value of Prometheus sample `name` at sipd's `/metrics`.
fn metric(sipd: &Sipd, name: &str) -> f64 {
    use std::io::{Read, Write};
    let addr = sipd.handle().metrics_addr().expect("metrics");
    let mut s =
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("send");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read");
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

/// The two-letter state of `uri` in set `set`.
fn state(sipd: &Sipd, set: i32, uri: &str) -> String {
    let ds = sipd
        .handle()
        .services()
        .get::<DispatcherState>()
        .expect("dispatcher set up");
    ds.current()
        .find(set, uri)
        .map(|d| d.state_letters())
        .unwrap_or_default()
}

/// Wait (at most `within`) until `uri` has state `want`; how long it took.
fn wait_state(sipd: &Sipd, set: i32, uri: &str, want: &str, within: Duration) -> Duration {
    let t0 = Instant::now();
    while t0.elapsed() < within {
        if state(sipd, set, uri) == want {
            return t0.elapsed();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "{uri} still {} after {within:?}, want {want}",
        state(sipd, set, uri)
    );
}

fn near(count: usize, expected: usize, what: &str) {
    let tolerance = expected.div_ceil(20); // 5 %
    assert!(
        count.abs_diff(expected) <= tolerance,
        "{what}: {count} calls, expected {expected} ± {tolerance}"
    );
}

#[test]
fn round_robin_probing_failover_and_recovery() {
    let ports = [free_port(LO), free_port(LO), free_port(LO)];
    let uris: Vec<String> = ports.iter().map(|p| format!("sip:127.0.0.1:{p}")).collect();
    let list: String = uris.iter().map(|u| format!("1 {u}\n")).collect();
    let a = uas("uas-a", ports[0]);
    let b = uas("uas-b", ports[1]);
    let mut c = Some(uas("uas-c", ports[2]));
    let ctl_dir = tempfile::tempdir().expect("temp dir");
    let ctl = ctl_dir.path().join("ctl.sock");
    let sipd = start(1, 4, &list, &ctl);
    for u in &uris {
        wait_state(&sipd, 1, u, "AP", Duration::from_secs(5));
    }
    let listed = sipd::rpc::client::call(&ctl, "dispatcher.list", &[]).expect("dispatcher.list");
    assert_eq!(listed["NRSETS"], json!(1));
    let targets = &listed["RECORDS"][0]["SET"]["TARGETS"];
    // Kamailio's order: equal priorities in reverse list order.
    for (i, u) in uris.iter().rev().enumerate() {
        assert_eq!(targets[i]["DEST"]["URI"], json!(u));
        assert_eq!(targets[i]["DEST"]["FLAGS"], json!("AP"));
    }

    // All up: 300 calls, 100 each.
    calls(&sipd, 300);
    let before = [invites(&a), invites(&b), invites(c.as_ref().expect("c"))];
    eprintln!("dispatcher: 300 calls over A, B, C: {before:?}");
    assert_eq!(
        failovers(&a) + failovers(&b),
        0,
        "no failover while all answer"
    );
    for (n, name) in before.iter().zip(["a", "b", "c"]) {
        near(*n, 100, &format!("round robin over three, UAS {name}"));
    }

    // C stops answering, no traffic: the probes alone mark it trying (one unanswered probe),
    // then inactive (ds_probing_threshold 2).
    let t_kill = Instant::now();
    drop(c.take());
    wait_state(&sipd, 1, &uris[2], "TP", Duration::from_secs(5));
    let trying = t_kill.elapsed();
    wait_state(&sipd, 1, &uris[2], "IP", Duration::from_secs(8));
    eprintln!(
        "dispatcher: C trying {trying:?}, inactive {:?} after it was killed (probing only)",
        t_kill.elapsed()
    );
    assert_eq!(metric(&sipd, "sipd_dispatcher_destinations_down"), 1.0);
    assert_eq!(metric(&sipd, "sipd_dispatcher_destinations_up"), 2.0);
    assert!(metric(&sipd, "sipd_dispatcher_probes_failed_total") >= 1.0);
    assert!(metric(&sipd, "sipd_dispatcher_probes_sent_total") >= 6.0);
    let mid = [invites(&a), invites(&b)];
    calls(&sipd, 200);
    let after = [invites(&a) - mid[0], invites(&b) - mid[1]];
    eprintln!("dispatcher: 200 calls with C inactive over A, B: {after:?}");
    assert_eq!(
        after[0] + after[1],
        200,
        "every call after the marking went to A or B"
    );
    near(after[0], 100, "round robin with C inactive, UAS a");
    near(after[1], 100, "round robin with C inactive, UAS b");

    // C answers again: probed active, it takes its third.
    let t_back = Instant::now();
    let c2 = uas("uas-c2", ports[2]);
    wait_state(&sipd, 1, &uris[2], "AP", Duration::from_secs(5));
    eprintln!(
        "dispatcher: C active {:?} after its restart",
        t_back.elapsed()
    );
    let mid = [invites(&a), invites(&b)];
    calls(&sipd, 300);
    eprintln!(
        "dispatcher: 300 calls after C's recovery over A, B, C: {:?}",
        [invites(&a) - mid[0], invites(&b) - mid[1], invites(&c2)]
    );
    near(
        invites(&a) - mid[0],
        100,
        "round robin after recovery, UAS a",
    );
    near(
        invites(&b) - mid[1],
        100,
        "round robin after recovery, UAS b",
    );
    near(invites(&c2), 100, "round robin after recovery, UAS c");

    // C stops answering under traffic, its dialogs done: a UAS for 30 calls (the probes
    // count too) takes its share of 200 calls until then; the calls sent to it afterwards
    // time out (fr 2 s) and fail over in the failure callback (ds_mark_dst, ds_next_dst).
    drop(c2);
    let mut c3 = uas_for("uas-c3", ports[2], 30);
    wait_state(&sipd, 1, &uris[2], "AP", Duration::from_secs(5));
    let before = failovers(&a) + failovers(&b);
    calls(&sipd, 200);
    let took = invites(&c3);
    c3.expect_success();
    let moved = failovers(&a) + failovers(&b) - before;
    eprintln!(
        "dispatcher: C quit after {took} of 200 calls under traffic; {moved} failed over to \
         A or B; all 200 succeeded"
    );
    assert!(
        (10..60).contains(&took),
        "C took {took} calls before it quit"
    );
    assert!(
        moved > 0,
        "some calls reached C after it quit and failed over"
    );
    wait_state(&sipd, 1, &uris[2], "IP", Duration::from_secs(8));
    let c2 = uas("uas-c4", ports[2]);
    wait_state(&sipd, 1, &uris[2], "AP", Duration::from_secs(5));

    // RPC: the operator disables C; it gets no calls and probing does not revive it.
    sipd::rpc::client::call(
        &ctl,
        "dispatcher.set_state",
        &[json!("d"), json!(1), json!(uris[2])],
    )
    .expect("set_state");
    assert_eq!(state(&sipd, 1, &uris[2]), "DX");
    let mid = [invites(&a), invites(&b), invites(&c2)];
    calls(&sipd, 40);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(invites(&c2), mid[2], "a disabled destination gets no call");
    assert_eq!(invites(&a) + invites(&b) - mid[0] - mid[1], 40);
    assert_eq!(
        state(&sipd, 1, &uris[2]),
        "DX",
        "probing leaves a disabled one alone"
    );
    let bad = sipd::rpc::client::call(
        &ctl,
        "dispatcher.set_state",
        &[json!("q"), json!(1), json!(uris[2])],
    );
    assert!(bad.is_err(), "a bad state is refused: {bad:?}");

    // Reload: C leaves the list, A and B keep their state.
    let file = sipd.script_path().with_file_name("dispatcher.list");
    std::fs::write(&file, format!("1 {}\n1 {}\n", uris[0], uris[1])).expect("rewrite list");
    let reloaded = sipd::rpc::client::call(&ctl, "dispatcher.reload", &[]).expect("reload");
    assert_eq!(reloaded, json!("Ok. Dispatcher successfully reloaded."));
    let listed: Value =
        sipd::rpc::client::call(&ctl, "dispatcher.list", &[]).expect("dispatcher.list");
    let targets = listed["RECORDS"][0]["SET"]["TARGETS"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(targets.len(), 2);
    assert!(targets.iter().all(|t| t["DEST"]["FLAGS"] == json!("AP")));
    let full = sipd::rpc::client::call(&ctl, "dispatcher.list", &[json!("full")]).expect("full");
    let dest = &full["RECORDS"][0]["SET"]["TARGETS"][0]["DEST"];
    assert_eq!(dest["IPADDR"], json!("127.0.0.1"));
    assert_eq!(dest["PORT"], json!(ports[1]));
    let short = sipd::rpc::client::call(&ctl, "dispatcher.list", &[json!("short")]).expect("short");
    assert!(short["RECORDS"][0]["SET"]["TARGETS"][0]["DEST"]
        .get("ATTRS")
        .is_none());
    std::fs::write(&file, "1 nonsense\n").expect("break the list");
    let failed = sipd::rpc::client::call(&ctl, "dispatcher.reload", &[]);
    assert!(
        failed
            .as_ref()
            .is_err_and(|e| e.to_string().contains("Reload Failed")),
        "{failed:?}"
    );
    assert_eq!(
        state(&sipd, 1, &uris[0]),
        "AP",
        "a failed reload keeps the sets"
    );
    drop((a, b, c2));
}

/// Serial failover over two destinations that never answer: the first failure callback's
/// `ds_next_dst` leaves the rest of the candidates with the transaction, so the second one
/// moves on to the third destination instead of the second again.
#[test]
fn failover_walks_every_candidate() {
    // Two silent destinations (bound, never answering) first in priority order (algorithm
    // 8), then a sipp UAS; all flagged 32 (never probed), so only the calls find out.
    let silent = [
        UdpSocket::bind((LO, 0)).expect("silent 1"),
        UdpSocket::bind((LO, 0)).expect("silent 2"),
    ];
    let port = free_port(LO);
    let live = uas("uas-live", port);
    let list = format!(
        "2 sip:{} 32 9\n2 sip:{} 32 8\n2 sip:127.0.0.1:{port} 32 1\n",
        silent[0].local_addr().expect("addr"),
        silent[1].local_addr().expect("addr"),
    );
    let ctl_dir = tempfile::tempdir().expect("temp dir");
    let sipd = start(2, 8, &list, &ctl_dir.path().join("ctl.sock"));
    calls(&sipd, 3);
    assert_eq!(invites(&live), 3, "each call reached the third destination");
    assert_eq!(failovers(&live), 3, "after a failover");
    let mut buf = [0u8; 4096];
    for s in &silent {
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        assert!(
            s.recv(&mut buf).is_ok(),
            "the silent destinations were tried"
        );
    }
    drop(live);
}

/// `examples/dispatcher.toml` (list, modparams, script) passes `sipd check`.
#[test]
fn example_checks() {
    let cfg = crate::support::example("dispatcher.toml");
    let cli = <sipd::cli::Cli as clap::Parser>::try_parse_from([
        "sipd",
        "check",
        "--config",
        cfg.to_str().expect("utf-8 path"),
    ])
    .expect("arguments");
    sipd::cli::run(cli).expect("examples/dispatcher.toml checks");
}
