//! `KSR.pike.*` through the export table, set up from Kamailio's modparams: a flood from one IP
//! is blocked (-2 once, then -1) while another IP passes, and the IP is let through again once
//! a sampling unit passes without a flood.

use std::time::{Duration, Instant};

use kemi_runtime::msg::Proto;
use kemi_runtime::services::Services;
use kemi_runtime::{Arg, SipMsg};
use modules::modparam::{ModParams, ParamValue};

use crate::common::{env_with, i, msg_from, request};
use crate::htable_exports::{setup_module, temp_db};

fn from(services: &Services, src: &str) -> SipMsg {
    let mut m = msg_from(&request("INVITE", ""), Proto::Udp, src);
    m.env = env_with(services.clone());
    m
}

fn params(unit: i64, density: i64) -> ModParams {
    ModParams::new("pike")
        .with("sampling_time_unit", ParamValue::Int(unit))
        .with("reqs_density_per_unit", ParamValue::Int(density))
        .with("remove_latency", ParamValue::Int(4))
}

/// Wait until just after a unit boundary of a `unit`-second clock started at `t0`, so that a
/// burst fits in one unit.
fn align(t0: Instant, unit: Duration) {
    let into = t0.elapsed().as_nanos() % unit.as_nanos();
    let left = unit.as_nanos() - into;
    std::thread::sleep(Duration::from_nanos(left as u64 + 20_000_000));
}

#[test]
fn blocks_a_flood_and_lets_it_go() {
    let db = temp_db("pike");
    let t0 = Instant::now();
    let sv = setup_module("pike", params(1, 5), &db).unwrap();
    align(t0, Duration::from_secs(1));
    let flood = "127.0.0.5:5060";
    let mut codes = Vec::new();
    for _ in 0..8 {
        let mut m = from(&sv, flood);
        codes.push(i(&mut m, "pike", "pike_check_req", &[]));
    }
    assert_eq!(codes, vec![1, 1, 1, 1, -2, -1, -1, -1]);
    let mut m = from(&sv, flood);
    assert!(m.captured_logs.is_some());
    // another IP is not affected; pike_check_ip counts the given address
    let mut other = from(&sv, "127.0.0.6:5060");
    assert_eq!(i(&mut other, "pike", "pike_check_req", &[]), 1);
    assert_eq!(
        i(
            &mut other,
            "pike",
            "pike_check_ip",
            &[Arg::Str("127.0.0.5")]
        ),
        -1
    );
    assert_eq!(
        i(
            &mut other,
            "pike",
            "pike_check_ip",
            &[Arg::Str("not an ip")]
        ),
        -1
    );
    assert_eq!(
        i(&mut other, "pike", "pike_check_ip", &[Arg::Str("::1")]),
        1
    );
    // still red in the next unit (the previous unit was hot), free in the one after
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(i(&mut m, "pike", "pike_check_req", &[]), 1);
}

#[test]
fn bad_params_are_setup_errors() {
    let db = temp_db("pike-bad");
    let e = setup_module("pike", params(0, 5), &db)
        .unwrap_err()
        .to_string();
    assert!(e.contains("pike.sampling_time_unit"), "{e}");
    let e = setup_module(
        "pike",
        ModParams::new("pike").with("density", ParamValue::Int(1)),
        &db,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("unknown parameter"), "{e}");
}
