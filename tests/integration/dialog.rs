//! The dialog module on the wire: sipp calls through sipd (tm, rr, `dlg_manage`). The active
//! dialog count follows 100 calls up and back to 0 after their BYEs (RPC `dlg.stats_active`,
//! `dlg.list` with the states, the Prometheus gauges); a profile limit in the Lua script
//! answers 486 over it; a 1 s dialog timeout makes sipd send a BYE to both sipp sides, and
//! `dlg.end_dlg` does the same on demand; `dialog:start|end` run the script's
//! `ksr_dialog_event`. Every sipp run is bounded by `-m`, `-timeout` and a wall-clock kill;
//! every wait by a deadline.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use kemi_runtime::msg::Proto;
use modules::dialog::DialogState;
use modules::htable::HtableState;
use modules::store::HtableValue;
use serde_json::{json, Value};
use sipd::config::{MetricsConfig, RpcConfig};

use crate::support::proxy::{listen_on, Sipd};
use crate::support::sipp::{free_addr, Sipp, LOCALHOST_V4 as LO};

const SCRIPT: &str = r#"
function ksr_request_route()
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
    if KSR.tm.t_check_trans() == 0 then
        return 1
    end
    if KSR.is_INVITE() then
        if KSR.dialog.get_profile_size_static("calls", "$var(calls)") > 0
            and KSR.pv.get("$var(calls)") >= LIMIT then
            KSR.sl.sl_send_reply(486, "Busy Here")
            return 1
        end
        KSR.dialog.dlg_manage()
        KSR.dialog.set_dlg_profile_static("calls")
        KSR.dialog.set_dlg_profile("caller", KSR.pv.get("$fU"))
        TIMEOUT
    end
    KSR.rr.record_route()
    KSR.pv.sets("$du", "sip:UAS")
    KSR.tm.t_relay()
end

function ksr_dialog_event(evname)
    KSR.htable.sht_inc("ev", evname)
    if evname == "dialog:start" and KSR.pv.get("$dlg(callid)") ~= nil then
        KSR.htable.sht_inc("ev", "with-dlg")
    end
    return 1
end
"#;

/// sipd relaying every initial INVITE to `uas` with dialogs, at most `limit` in profile
/// `calls`, `timeout` (a script line) on each, `modparams` for the dialog module, a control
/// socket `ctl` and metrics.
fn start(uas: SocketAddr, limit: u32, timeout: &str, dialog: &str, ctl: &Path) -> Sipd {
    start_with_db(uas, limit, timeout, dialog, ctl, None)
}

/// [`start`] with the store at `db` (a SQLite URL) instead of the script directory's.
fn start_with_db(
    uas: SocketAddr,
    limit: u32,
    timeout: &str,
    dialog: &str,
    ctl: &Path,
    db: Option<String>,
) -> Sipd {
    let ctl = ctl.to_path_buf();
    let dialog = dialog.to_string();
    Sipd::launch(
        "route.lua",
        &SCRIPT
            .replace("UAS", &uas.to_string())
            .replace("LIMIT", &limit.to_string())
            .replace("TIMEOUT", timeout),
        listen_on(LO, &[Proto::Udp]),
        2,
        move |c, _| {
            c.modparams = toml::from_str(&format!(
                "[dialog]\nprofiles_no_value = \"calls\"\nprofiles_with_value = \"caller\"\n\
                 event_callback = \"ksr_dialog_event\"\n{dialog}\n\
                 [htable]\nhtable = \"ev=>size=4;initval=0;\"\n"
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
            if let Some(db) = db {
                c.db_url = db;
            }
        },
    )
}

fn dialogs(sipd: &Sipd) -> std::sync::Arc<DialogState> {
    sipd.handle()
        .services()
        .get_arc::<DialogState>()
        .expect("dialog is set up")
}

/// How many times the script saw event `name`.
fn event_count(sipd: &Sipd, name: &str) -> i64 {
    let t = sipd
        .handle()
        .services()
        .get::<HtableState>()
        .and_then(|h| h.table("ev").cloned())
        .expect("htable ev");
    match t.get(name) {
        Some(HtableValue::Int(n)) => n,
        _ => 0,
    }
}

/// Wait (at most `within`) until `f` holds.
fn wait_for(within: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("not within {within:?}: {what}");
}

fn rpc(ctl: &Path, method: &str, params: &[Value]) -> Value {
    sipd::rpc::client::call(ctl, method, params).unwrap_or_else(|e| panic!("{method}: {e}"))
}

/// The Prometheus text of `sipd`.
fn scrape(sipd: &Sipd) -> String {
    use std::io::{Read, Write};
    let addr = sipd.handle().metrics_addr().expect("metrics address");
    let mut s = std::net::TcpStream::connect(addr).expect("metrics connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("request");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn gauge(text: &str, name: &str) -> Option<i64> {
    text.lines()
        .find(|l| l.starts_with(name) && l.as_bytes().get(name.len()) == Some(&b' '))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

#[test]
fn active_dialogs_follow_100_sipp_calls_up_and_back_to_zero() {
    let dir = tempfile::tempdir().expect("dir");
    let ctl = dir.path().join("ctl");
    let uas_addr = free_addr(LO);
    let sipd = start(uas_addr, 1000, "", "", &ctl);
    let mut uas = Sipp::uas("uas", "tm_uas.xml", uas_addr, "u1", 100)
        .timeout(Duration::from_secs(40))
        .wall(Duration::from_secs(45))
        .spawn();
    uas.wait_bound(uas_addr, "u1");
    // 100 calls at 50 per second, each held 2 s after its ACK: most are up at once.
    let uac = Sipp::uac(
        "uac",
        "dlg_uac.xml",
        free_addr(LO),
        "u1",
        100,
        sipd.addr(Proto::Udp),
    )
    .args(&["-r", "50", "-d", "2000", "-l", "100"])
    .timeout(Duration::from_secs(40))
    .wall(Duration::from_secs(45))
    .spawn();

    let st = dialogs(&sipd);
    let mut peak = 0;
    let mut listed = Value::Null;
    wait_for(Duration::from_secs(20), "50 active dialogs", || {
        let active = rpc(&ctl, "dlg.stats_active", &[]);
        let ongoing = active["ongoing"].as_i64().unwrap_or(0);
        peak = peak.max(ongoing);
        if ongoing >= 50 {
            listed = rpc(&ctl, "dlg.list", &[]);
        }
        ongoing >= 50
    });
    let list = listed.as_array().expect("dlg.list is an array");
    assert!(list.len() >= 50, "{listed}");
    let one = list
        .iter()
        .find(|d| d["state"] == json!(4))
        .expect("a confirmed dialog (state 4, after the ACK)");
    assert!(
        one["call-id"].as_str().is_some_and(|c| !c.is_empty()),
        "{one}"
    );
    assert!(
        one["callee"]["tag"].as_str().is_some_and(|t| !t.is_empty()),
        "{one}"
    );
    assert!(one["profiles"].to_string().contains("calls"), "{one}");
    let metrics = scrape(&sipd);
    assert!(
        gauge(&metrics, "sipd_dialog_active").unwrap_or(0) >= 40,
        "{metrics}"
    );
    let size = rpc(&ctl, "dlg.profile_get_size", &[json!("calls")]);
    assert!(size["count"].as_i64().unwrap_or(0) >= 40, "{size}");

    uac.expect_all_ok();
    uas.expect_all_ok();
    wait_for(Duration::from_secs(5), "no dialog left", || st.live() == 0);
    assert_eq!(st.stats.active.load(Ordering::Relaxed), 0);
    assert_eq!(st.stats.early.load(Ordering::Relaxed), 0);
    assert_eq!(st.stats.processed.load(Ordering::Relaxed), 100);
    assert_eq!(st.stats.failed.load(Ordering::Relaxed), 0);
    assert_eq!(rpc(&ctl, "dlg.list", &[]), json!([]));
    assert_eq!(
        rpc(&ctl, "dlg.profile_get_size", &[json!("calls")])["count"],
        json!(0)
    );
    let metrics = scrape(&sipd);
    assert_eq!(gauge(&metrics, "sipd_dialog_active"), Some(0), "{metrics}");
    assert_eq!(
        gauge(&metrics, "sipd_dialog_processed_total"),
        Some(100),
        "{metrics}"
    );
    eprintln!("peak ongoing dialogs seen: {peak} of 100");
    wait_for(Duration::from_secs(5), "100 dialog:end events", || {
        event_count(&sipd, "dialog:end") == 100
    });
    assert_eq!(event_count(&sipd, "dialog:start"), 100);
    assert_eq!(
        event_count(&sipd, "with-dlg"),
        100,
        "$dlg(...) in the event"
    );
}

#[test]
fn a_profile_limit_in_the_script_answers_486_over_it() {
    let dir = tempfile::tempdir().expect("dir");
    let ctl = dir.path().join("ctl");
    let uas_addr = free_addr(LO);
    let sipd = start(uas_addr, 2, "", "", &ctl);
    let mut uas = Sipp::uas("uas", "tm_uas.xml", uas_addr, "u1", 3)
        .timeout(Duration::from_secs(30))
        .wall(Duration::from_secs(35))
        .spawn();
    uas.wait_bound(uas_addr, "u1");
    // Two calls held 4 s fill the profile.
    let held = Sipp::uac(
        "held",
        "dlg_uac.xml",
        free_addr(LO),
        "u1",
        2,
        sipd.addr(Proto::Udp),
    )
    .args(&["-d", "4000", "-r", "10"])
    .timeout(Duration::from_secs(20))
    .spawn();
    let st = dialogs(&sipd);
    wait_for(Duration::from_secs(5), "2 confirmed dialogs", || {
        st.stats.active.load(Ordering::Relaxed) == 2
    });
    assert_eq!(
        rpc(&ctl, "dlg.profile_get_size", &[json!("calls")])["count"],
        json!(2)
    );
    let by_user = rpc(
        &ctl,
        "dlg.profile_get_size",
        &[json!("caller"), json!("caller")],
    );
    assert_eq!(by_user["count"], json!(2), "{by_user}");
    // The third is refused by the script.
    Sipp::uac(
        "busy",
        "dlg_busy_uac.xml",
        free_addr(LO),
        "u1",
        1,
        sipd.addr(Proto::Udp),
    )
    .timeout(Duration::from_secs(10))
    .spawn()
    .expect_all_ok();
    held.expect_all_ok();
    wait_for(Duration::from_secs(5), "the profile empties", || {
        st.profile("calls").map(|p| p.size(None)) == Some(0)
    });
    // Below the limit again: a call goes through.
    Sipp::uac(
        "again",
        "tm_uac.xml",
        free_addr(LO),
        "u1",
        1,
        sipd.addr(Proto::Udp),
    )
    .timeout(Duration::from_secs(10))
    .spawn()
    .expect_all_ok();
    uas.expect_all_ok();
    assert_eq!(
        st.stats.processed.load(Ordering::Relaxed),
        3,
        "the 486 made no dialog"
    );
}

#[test]
fn a_dialog_timeout_sends_bye_both_ways_and_ends_the_dialog() {
    let dir = tempfile::tempdir().expect("dir");
    let ctl = dir.path().join("ctl");
    let uas_addr = free_addr(LO);
    let sipd = start(
        uas_addr,
        10,
        "KSR.dialog.dlg_set_timeout(1)",
        "send_bye = 1",
        &ctl,
    );
    let mut uas = Sipp::uas("uas", "dlg_bye_uas.xml", uas_addr, "u1", 1)
        .timeout(Duration::from_secs(15))
        .spawn();
    uas.wait_bound(uas_addr, "u1");
    let started = Instant::now();
    let uac = Sipp::uac(
        "uac",
        "dlg_bye_uac.xml",
        free_addr(LO),
        "u1",
        1,
        sipd.addr(Proto::Udp),
    )
    .timeout(Duration::from_secs(15))
    .spawn();
    let st = dialogs(&sipd);
    wait_for(Duration::from_secs(5), "the dialog is confirmed", || {
        st.stats.active.load(Ordering::Relaxed) == 1
    });
    let listed = rpc(&ctl, "dlg.list", &[]);
    assert_eq!(listed[0]["lifetime"], json!(1), "{listed}");
    // Both sides get sipd's BYE (each scenario fails without it) and answer it.
    uac.expect_all_ok();
    uas.expect_all_ok();
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(900), "{took:?}");
    assert_eq!(st.stats.expired.load(Ordering::Relaxed), 1);
    assert_eq!(st.live(), 0);
    wait_for(Duration::from_secs(3), "both BYEs answered", || {
        st.pending_byes() == 0
    });
    wait_for(Duration::from_secs(3), "dialog:end ran", || {
        event_count(&sipd, "dialog:end") == 1
    });
    assert_eq!(event_count(&sipd, "dialog:start"), 1);
}

#[test]
fn rpc_end_dlg_sends_bye_both_ways() {
    let dir = tempfile::tempdir().expect("dir");
    let ctl = dir.path().join("ctl");
    let uas_addr = free_addr(LO);
    let sipd = start(uas_addr, 10, "", "", &ctl);
    let mut uas = Sipp::uas("uas", "dlg_bye_uas.xml", uas_addr, "u1", 1)
        .timeout(Duration::from_secs(15))
        .spawn();
    uas.wait_bound(uas_addr, "u1");
    let uac = Sipp::uac(
        "uac",
        "dlg_bye_uac.xml",
        free_addr(LO),
        "u1",
        1,
        sipd.addr(Proto::Udp),
    )
    .timeout(Duration::from_secs(15))
    .spawn();
    let st = dialogs(&sipd);
    let mut listed = Value::Null;
    wait_for(
        Duration::from_secs(5),
        "a confirmed dialog after the ACK",
        || {
            listed = rpc(&ctl, "dlg.list", &[]);
            listed[0]["state"] == json!(4)
        },
    );
    let (he, hi) = (listed[0]["h_entry"].clone(), listed[0]["h_id"].clone());
    let missing = sipd::rpc::client::call(&ctl, "dlg.end_dlg", &[json!(99), json!(12345)]);
    assert!(missing.is_err(), "{missing:?}");
    rpc(&ctl, "dlg.end_dlg", &[he, hi]);
    uac.expect_all_ok();
    uas.expect_all_ok();
    assert_eq!(st.live(), 0);
    assert_eq!(st.stats.expired.load(Ordering::Relaxed), 0);
    wait_for(Duration::from_secs(3), "dialog:end ran", || {
        event_count(&sipd, "dialog:end") == 1
    });
}

#[test]
fn a_restart_with_db_mode_1_keeps_the_call_and_can_still_end_it() {
    let dir = tempfile::tempdir().expect("dir");
    let ctl = dir.path().join("ctl");
    let db = format!("sqlite://{}", dir.path().join("dialogs.db").display());
    let uas_addr = free_addr(LO);
    let mut first = start_with_db(uas_addr, 10, "", "db_mode = 1", &ctl, Some(db.clone()));
    let mut uas = Sipp::uas("uas", "dlg_bye_uas.xml", uas_addr, "u1", 1)
        .timeout(Duration::from_secs(20))
        .wall(Duration::from_secs(25))
        .spawn();
    uas.wait_bound(uas_addr, "u1");
    let uac = Sipp::uac(
        "uac",
        "dlg_bye_uac.xml",
        free_addr(LO),
        "u1",
        1,
        first.addr(Proto::Udp),
    )
    .timeout(Duration::from_secs(20))
    .wall(Duration::from_secs(25))
    .spawn();
    let mut before = Value::Null;
    wait_for(
        Duration::from_secs(5),
        "a confirmed dialog after the ACK",
        || {
            before = rpc(&ctl, "dlg.list", &[]);
            before[0]["state"] == json!(4)
        },
    );
    // A clean stop flushes the store; the next sipd loads the call back.
    first.shutdown();
    let second = start_with_db(uas_addr, 10, "", "db_mode = 1", &ctl, Some(db));
    let st = dialogs(&second);
    assert_eq!(st.live(), 1);
    assert_eq!(st.stats.active.load(Ordering::Relaxed), 1);
    let after = rpc(&ctl, "dlg.list", &[]);
    assert_eq!(after[0]["call-id"], before[0]["call-id"], "{after}");
    assert_eq!(after[0]["state"], json!(4), "{after}");
    assert_eq!(
        after[0]["callee"]["tag"], before[0]["callee"]["tag"],
        "{after}"
    );
    assert_eq!(
        rpc(&ctl, "dlg.profile_get_size", &[json!("calls")])["count"],
        json!(1)
    );
    // Ended from the new process: both sides get its BYE.
    rpc(
        &ctl,
        "dlg.end_dlg",
        &[after[0]["h_entry"].clone(), after[0]["h_id"].clone()],
    );
    uac.expect_all_ok();
    uas.expect_all_ok();
    assert_eq!(st.live(), 0);
}
