//! `KSR.permissions.*` through the export table, with address groups loaded from a SQLite store
//! by the real setup: exact IPv4/IPv6 addresses, subnets, ports (0 = any), groups, host names,
//! and a reload after the store changed.

use std::path::Path;

use kemi_runtime::msg::Proto;
use kemi_runtime::services::Services;
use kemi_runtime::{Arg, SipMsg};
use modules::modparam::{ModParams, ParamValue};
use modules::permissions::PermissionsState;
use modules::store::{self, AddressRow};

use crate::common::{env_with, i, msg_from, pv, request, s};
use crate::htable_exports::{setup_module, temp_db};

fn row(grp: i32, ip: &str, mask: i32, port: i32, tag: &str) -> AddressRow {
    AddressRow {
        grp,
        ip_addr: ip.into(),
        mask,
        port,
        tag: tag.into(),
    }
}

fn from(services: &Services, src: &str) -> SipMsg {
    let mut m = msg_from(&request("INVITE", ""), Proto::Udp, src);
    m.env = env_with(services.clone());
    m
}

#[test]
fn groups_cidr_ports_and_reload() {
    let db = temp_db("perm");
    let url = format!("sqlite://{}", db.display());
    let st = store::open(&url, Path::new("/")).unwrap();
    for r in [
        row(1, "127.0.0.1", 32, 0, "lo"),
        row(2, "127.0.1.0", 24, 5080, ""),
        row(3, "::1", 128, 0, ""),
        row(4, "fd00:1::", 32, 0, ""),
        row(5, "gw.example.com", 0, 0, ""),
    ] {
        st.add_address("address", &r).unwrap();
    }
    let params = ModParams::new("permissions")
        .with("db_mode", ParamValue::Int(1))
        .with("peer_tag_avp", ParamValue::Str("$avp(peer)".into()));
    let sv = setup_module("permissions", params, &db).unwrap();

    let mut m = from(&sv, "127.0.0.1:5060");
    assert_eq!(
        i(
            &mut m,
            "permissions",
            "allow_source_address",
            &[Arg::Int(1)]
        ),
        1
    );
    assert_eq!(pv(&mut m, "$avp(peer)"), s("lo"));
    assert_eq!(
        i(
            &mut m,
            "permissions",
            "allow_source_address",
            &[Arg::Int(2)]
        ),
        -1
    );
    assert_eq!(
        i(&mut m, "permissions", "allow_source_address_group", &[]),
        1
    );
    assert_eq!(i(&mut m, "permissions", "allow_trusted", &[]), -1);

    // subnet with a port
    let mut m = from(&sv, "127.0.1.77:5080");
    assert_eq!(
        i(
            &mut m,
            "permissions",
            "allow_source_address",
            &[Arg::Int(2)]
        ),
        1
    );
    let mut m = from(&sv, "127.0.1.77:5081");
    assert_eq!(
        i(
            &mut m,
            "permissions",
            "allow_source_address",
            &[Arg::Int(2)]
        ),
        -1
    );
    assert_eq!(
        i(&mut m, "permissions", "allow_source_address_group", &[]),
        -1
    );
    let addr = |m: &mut SipMsg, g: i32, ip: &str, port: i32| {
        i(
            m,
            "permissions",
            "allow_address",
            &[Arg::Int(g), Arg::Str(ip), Arg::Int(port)],
        )
    };
    assert_eq!(addr(&mut m, 2, "127.0.2.1", 5080), -1);
    // IPv6 exact and subnet
    let mut m6 = from(&sv, "[::1]:5060");
    assert_eq!(
        i(
            &mut m6,
            "permissions",
            "allow_source_address",
            &[Arg::Int(3)]
        ),
        1
    );
    assert_eq!(addr(&mut m6, 4, "fd00:1:ffff::9", 1), 1);
    assert_eq!(addr(&mut m6, 4, "fd00:2::9", 1), -1);
    assert_eq!(addr(&mut m6, 4, "[fd00:1::1]", 1), 1);
    // host name (text match), bad port
    assert_eq!(addr(&mut m6, 5, "GW.example.com", 5060), 1);
    assert_eq!(addr(&mut m6, 1, "127.0.0.1", 70000), -1);
    assert_eq!(
        i(
            &mut m6,
            "permissions",
            "allow_address_group",
            &[Arg::Str("fd00:1::5"), Arg::Int(9)]
        ),
        4
    );

    // the operator adds an address: a reload (RPC or periodic) picks it up
    let mut m = from(&sv, "127.0.0.9:5060");
    assert_eq!(
        i(
            &mut m,
            "permissions",
            "allow_source_address",
            &[Arg::Int(7)]
        ),
        -1
    );
    st.add_address("address", &row(7, "127.0.0.9", 32, 0, ""))
        .unwrap();
    let state = sv.get::<PermissionsState>().unwrap();
    assert_eq!(state.reload().unwrap(), 6);
    assert_eq!(
        i(
            &mut m,
            "permissions",
            "allow_source_address",
            &[Arg::Int(7)]
        ),
        1
    );
    let job = sv
        .periodic()
        .iter()
        .find(|p| p.name == "permissions reload")
        .expect("periodic reload registered");
    st.add_address("address", &row(8, "127.0.0.9", 32, 0, ""))
        .unwrap();
    (job.run)();
    assert_eq!(
        i(
            &mut m,
            "permissions",
            "allow_address",
            &[Arg::Int(8), Arg::Str("127.0.0.9"), Arg::Int(1)]
        ),
        1
    );
    let _ = std::fs::remove_file(&db);
}

#[test]
fn without_setup_everything_is_refused() {
    let mut m = msg_from(&request("INVITE", ""), Proto::Udp, "127.0.0.1:5060");
    assert_eq!(
        i(
            &mut m,
            "permissions",
            "allow_source_address",
            &[Arg::Int(1)]
        ),
        -1
    );
    assert_eq!(
        i(&mut m, "permissions", "allow_source_address_group", &[]),
        -1
    );
}
