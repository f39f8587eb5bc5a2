//! Transaction-stateful proxying on the wire: sipd started in-process routing with `KSR.tm`
//! and `KSR.rr`, driven by real `sipp` UACs and UASs (scenarios `tests/sipp/tm_*.xml`) and, for
//! a callee that never answers, a plain UDP socket. Every sipp run is bounded by `-m`,
//! `-timeout` and a wall-clock kill ([`crate::support::sipp`], limits below).

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use crate::support::proxy::Sipd;
use crate::support::sipp::{self, free_addr, Sipp, LOCALHOST_V4 as LO};

/// sipp's own `-timeout` for every run here.
const TIMEOUT: Duration = Duration::from_secs(15);
/// Longest one sipp run may take before it is killed.
const WALL: Duration = Duration::from_secs(20);

fn free_port() -> u16 {
    sipp::free_port(LO)
}

/// sipd on UDP and TCP port 0 of 127.0.0.1 with two workers, routing with `lua`.
fn sipd(lua: &str) -> Sipd {
    Sipd::start(LO, 2, lua)
}

/// A sipp UAS `name` running `sf` on 127.0.0.1:`port` over `t` for `calls` calls, with `extra`
/// arguments; returned once it has bound its port.
fn uas(name: &'static str, sf: &str, port: u16, t: &str, calls: u32, extra: &[&str]) -> Sipp {
    let addr = SocketAddr::new(LO, port);
    let mut uas = Sipp::uas(name, sf, addr, t, calls)
        .timeout(TIMEOUT)
        .wall(WALL)
        .args(extra)
        .spawn();
    uas.wait_bound(addr, t);
    uas
}

/// A sipp UAC running `sf` for `calls` calls through `sipd` over `t`, with `extra` arguments.
fn uac(sf: &str, sipd: &Sipd, t: &str, calls: u32, extra: &[&str]) -> Sipp {
    Sipp::uac(
        "uac",
        sf,
        free_addr(LO),
        t,
        calls,
        sipd.addr(sipp::proto(t)),
    )
    .timeout(TIMEOUT)
    .wall(WALL)
    .args(extra)
    .spawn()
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
    let sipd = sipd(&script(&uri(uas_port, t), "", "", 0));
    let mut uas = uas("uas", "tm_uas.xml", uas_port, t, 3, &["-d", "50"]);
    uac("tm_uac.xml", &sipd, t, 3, &["-r", "10"]).expect_success();
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
    let sipd = sipd(&script(&uri(uas_port, "u1"), "", "", 0));
    // The callee waits 400 ms before answering; a second INVITE reaching it fails its run.
    let mut uas = uas("uas", "tm_uas.xml", uas_port, "u1", 1, &["-d", "400"]);
    uac("tm_uac_retrans.xml", &sipd, "u1", 1, &[]).expect_success();
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
    let sipd = sipd(&script(&uri(busy, "u1"), &uri(good, "u1"), "", 0));
    let mut b = uas("busy", "tm_uas_busy.xml", busy, "u1", 1, &[]);
    let mut g = uas("good", "tm_uas.xml", good, "u1", 1, &["-d", "20"]);
    let mut uac = uac("tm_uac.xml", &sipd, "u1", 1, &[]);
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
    let sipd = sipd(&script(&uri(silent_port, "u1"), &uri(good, "u1"), "", 700));
    let mut g = uas("good", "tm_uas.xml", good, "u1", 1, &["-d", "20"]);
    let mut uac = uac("tm_uac.xml", &sipd, "u1", 1, &[]);
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
    let sipd = sipd(&script(&uri(uas_port, "u1"), "", "", 0));
    let mut uas = uas("uas", "tm_uas_cancel.xml", uas_port, "u1", 1, &[]);
    uac("tm_uac_cancel.xml", &sipd, "u1", 1, &[]).expect_success();
    uas.expect_success();
}

#[test]
fn parallel_fork_one_answers_other_is_canceled() {
    let (ringing, answering) = (free_port(), free_port());
    let fork = format!("sip:callee@127.0.0.1:{answering}");
    let sipd = sipd(&script(&uri(ringing, "u1"), "", &fork, 0));
    let mut r = uas("ringing", "tm_uas_cancel.xml", ringing, "u1", 1, &[]);
    let mut a = uas(
        "answering",
        "tm_uas.xml",
        answering,
        "u1",
        1,
        &["-d", "300"],
    );
    uac("tm_uac.xml", &sipd, "u1", 1, &[]).expect_success();
    a.expect_success();
    r.expect_success();
}
