//! `KSR.dispatcher.*` through the export table, set up from Kamailio's modparams and a list
//! file: `$du`/R-URI writes, the `_dsdst_` candidates and `ds_next_dst` over them, marks,
//! source matching, set queries, call load, and refused input.

use std::path::{Path, PathBuf};

use kemi_runtime::msg::Proto;
use kemi_runtime::services::Services;
use kemi_runtime::{Arg, SipMsg, Xval};
use modules::dispatcher::DispatcherState;
use modules::modparam::{ModParams, ParamValue};

use crate::common::{env_with, i, msg_from, pv, request, s};
use crate::htable_exports::{setup_module, temp_db};

/// Written in reverse: equal priorities load in reverse list order (Kamailio's), so set 1 is
/// 5081, 5082, 5083 and set 3 is c1, c2.
const LIST: &str = "# set 1: three UASes\n\
                    1 sip:127.0.0.1:5083\n\
                    1 sip:127.0.0.1:5082 0 0 duid=b;x=y\n\
                    1 sip:127.0.0.1:5081\n\
                    2 sip:127.0.0.2:5060;transport=tcp 0 5\n\
                    3 sip:127.0.0.3:5062 0 0 duid=c2;maxload=1\n\
                    3 sip:127.0.0.3:5061 0 0 duid=c1;maxload=1\n";

fn list_file(text: &str) -> PathBuf {
    let p = temp_db("ds").with_extension("list");
    std::fs::write(&p, text).expect("list file");
    p
}

fn params(list: &Path, flags: i64) -> ModParams {
    ModParams::new("dispatcher")
        .with("list_file", ParamValue::Str(list.display().to_string()))
        .with("flags", ParamValue::Int(flags))
        .with("setid_pvname", ParamValue::Str("$avp(dsid)".into()))
}

fn services(flags: i64) -> Services {
    let list = list_file(LIST);
    setup_module("dispatcher", params(&list, flags), &temp_db("ds")).expect("setup")
}

fn invite(sv: &Services, src: &str) -> SipMsg {
    let mut m = msg_from(&request("INVITE", ""), Proto::Udp, src);
    m.env = env_with(sv.clone());
    m
}

fn state(sv: &Services, set: i32, uri: &str) -> String {
    let ds = sv.get::<DispatcherState>().expect("set up");
    ds.current()
        .find(set, uri)
        .map(|d| d.state_letters())
        .unwrap_or_default()
}

#[test]
fn select_dst_keeps_candidates_for_next_dst() {
    let sv = services(2);
    let mut m = invite(&sv, "127.0.0.9:5060");
    assert_eq!(
        i(
            &mut m,
            "dispatcher",
            "ds_select_dst",
            &[Arg::Int(1), Arg::Int(4)]
        ),
        1
    );
    assert_eq!(pv(&mut m, "$du"), s("sip:127.0.0.1:5081"));
    assert_eq!(pv(&mut m, "$xavp(_dsdst_=>uri)"), s("sip:127.0.0.1:5081"));
    assert_eq!(
        pv(&mut m, "$xavp(_dsdst_[1]=>uri)"),
        s("sip:127.0.0.1:5082")
    );
    assert_eq!(pv(&mut m, "$xavp(_dsdst_[1]=>attrs)"), s("duid=b;x=y"));
    assert_eq!(pv(&mut m, "$xavp(_dsdst_[2]=>grp)"), Xval::Int(1));
    assert_eq!(pv(&mut m, "$xavp(_dsctx_=>cnt)"), Xval::Int(3));
    // Failure route: mark the head, move on.
    assert_eq!(i(&mut m, "dispatcher", "ds_mark_dst", &[]), 1);
    assert_eq!(state(&sv, 1, "sip:127.0.0.1:5081"), "IX");
    assert_eq!(i(&mut m, "dispatcher", "ds_next_dst", &[]), 1);
    assert_eq!(pv(&mut m, "$du"), s("sip:127.0.0.1:5082"));
    assert_eq!(
        i(&mut m, "dispatcher", "ds_mark_dst_state", &[Arg::Str("tp")]),
        1
    );
    assert_eq!(state(&sv, 1, "sip:127.0.0.1:5082"), "IP", "threshold 1");
    assert_eq!(i(&mut m, "dispatcher", "ds_next_dst", &[]), 1);
    assert_eq!(pv(&mut m, "$du"), s("sip:127.0.0.1:5083"));
    m.route.dst_uri = None;
    assert_eq!(i(&mut m, "dispatcher", "ds_set_dst", &[]), 1);
    assert_eq!(pv(&mut m, "$du"), s("sip:127.0.0.1:5083"));
    // The last candidate dropped: nothing left, as Kamailio's empty XAVP list.
    assert_eq!(i(&mut m, "dispatcher", "ds_next_dst", &[]), -1);
    assert_eq!(i(&mut m, "dispatcher", "ds_set_dst", &[]), -1);
    assert_eq!(
        i(&mut m, "dispatcher", "ds_mark_dst_state", &[Arg::Str("zz")]),
        -1
    );
    // The next call skips both inactive ones.
    let mut m = invite(&sv, "127.0.0.9:5060");
    assert_eq!(
        i(
            &mut m,
            "dispatcher",
            "ds_select_dst_limit",
            &[Arg::Int(1), Arg::Int(4), Arg::Int(1)]
        ),
        1
    );
    assert_eq!(pv(&mut m, "$du"), s("sip:127.0.0.1:5083"));
    assert_eq!(pv(&mut m, "$xavp(_dsctx_=>cnt)"), Xval::Int(1));
    // An empty state is ds_mark_dst(); then nothing of set 1 is active.
    assert_eq!(
        i(&mut m, "dispatcher", "ds_mark_dst_state", &[Arg::Str("")]),
        1
    );
    assert_eq!(state(&sv, 1, "sip:127.0.0.1:5083"), "IX");
    assert_eq!(i(&mut m, "dispatcher", "ds_is_active", &[Arg::Int(1)]), -1);
    assert_eq!(
        i(&mut m, "dispatcher", "ds_mark_dst_state", &[Arg::Str("a")]),
        1
    );
    assert_eq!(i(&mut m, "dispatcher", "ds_is_active", &[Arg::Int(1)]), 1);
    assert_eq!(
        i(
            &mut m,
            "dispatcher",
            "ds_is_active_uri",
            &[Arg::Int(1), Arg::Str("sip:127.0.0.1:5081")]
        ),
        -1
    );
    assert_eq!(
        i(
            &mut m,
            "dispatcher",
            "ds_mark_addr",
            &[Arg::Str("a"), Arg::Int(1), Arg::Str("sip:127.0.0.1:5081")]
        ),
        1
    );
    assert_eq!(state(&sv, 1, "sip:127.0.0.1:5081"), "AX");
    assert_eq!(
        i(
            &mut m,
            "dispatcher",
            "ds_mark_addr",
            &[Arg::Str("a"), Arg::Int(1), Arg::Str("sip:127.0.0.1:9")]
        ),
        -1
    );
}

#[test]
fn domain_xavp_only_and_routes() {
    let sv = services(2);
    let mut m = invite(&sv, "127.0.0.9:5060");
    assert_eq!(
        i(
            &mut m,
            "dispatcher",
            "ds_select_domain",
            &[Arg::Int(2), Arg::Int(8)]
        ),
        1
    );
    assert_eq!(pv(&mut m, "$ru"), s("sip:127.0.0.2:5060;transport=tcp"));
    assert_eq!(pv(&mut m, "$du"), Xval::Null);

    let mut m = invite(&sv, "127.0.0.9:5060");
    assert_eq!(
        i(
            &mut m,
            "dispatcher",
            "ds_select",
            &[Arg::Int(1), Arg::Int(8)]
        ),
        1
    );
    assert_eq!(pv(&mut m, "$du"), Xval::Null);
    assert_eq!(pv(&mut m, "$xavp(_dsdst_=>uri)"), s("sip:127.0.0.1:5081"));
    assert_eq!(i(&mut m, "dispatcher", "ds_set_domain", &[]), 1);
    assert_eq!(pv(&mut m, "$ru"), s("sip:127.0.0.1:5081"));

    let mut m = invite(&sv, "127.0.0.9:5060");
    assert_eq!(
        i(
            &mut m,
            "dispatcher",
            "ds_select_routes",
            &[Arg::Str("2=8;1=8"), Arg::Str("d")]
        ),
        1
    );
    assert_eq!(pv(&mut m, "$du"), s("sip:127.0.0.2:5060;transport=tcp"));
    assert_eq!(pv(&mut m, "$xavp(_dsctx_=>cnt)"), Xval::Int(4));
    assert_eq!(
        pv(&mut m, "$xavp(_dsdst_[1]=>uri)"),
        s("sip:127.0.0.1:5081")
    );
    let mut m = invite(&sv, "127.0.0.9:5060");
    assert_eq!(
        i(
            &mut m,
            "dispatcher",
            "ds_select_routes_limit",
            &[Arg::Str("2=8;1=8"), Arg::Str("x"), Arg::Int(2)]
        ),
        1
    );
    assert_eq!(pv(&mut m, "$du"), Xval::Null);
    assert_eq!(pv(&mut m, "$xavp(_dsctx_=>cnt)"), Xval::Int(2));
    for bad in [("1:4", "d"), ("1=4", "q"), ("", "d")] {
        let mut m = invite(&sv, "127.0.0.9:5060");
        assert_eq!(
            i(
                &mut m,
                "dispatcher",
                "ds_select_routes",
                &[Arg::Str(bad.0), Arg::Str(bad.1)]
            ),
            -1,
            "{bad:?}"
        );
    }
}

#[test]
fn refuses_unknown_algorithms_sets_and_failover_off() {
    let sv = services(2);
    let mut m = invite(&sv, "127.0.0.9:5060");
    for alg in [3, 5, 6, 7, 11, 12, 13, 64, -1] {
        assert_eq!(
            i(
                &mut m,
                "dispatcher",
                "ds_select_dst",
                &[Arg::Int(1), Arg::Int(alg)]
            ),
            -1,
            "algorithm {alg}"
        );
    }
    let logs = m.captured_logs.clone().unwrap_or_default();
    assert!(logs
        .iter()
        .any(|l| l.text.contains("algorithm 3 is not implemented")));
    assert_eq!(
        i(
            &mut m,
            "dispatcher",
            "ds_select_dst",
            &[Arg::Int(9), Arg::Int(4)]
        ),
        -1
    );
    assert_eq!(
        i(&mut m, "dispatcher", "ds_list_exists", &[Arg::Int(9)]),
        -1
    );
    assert_eq!(i(&mut m, "dispatcher", "ds_list_exists", &[Arg::Int(2)]), 1);

    let off = services(0);
    let mut m = invite(&off, "127.0.0.9:5060");
    assert_eq!(
        i(
            &mut m,
            "dispatcher",
            "ds_select_dst",
            &[Arg::Int(1), Arg::Int(0)]
        ),
        1
    );
    assert_ne!(pv(&mut m, "$du"), Xval::Null);
    assert_eq!(pv(&mut m, "$xavp(_dsdst_=>uri)"), Xval::Null);
    assert_eq!(pv(&mut m, "$xavp(_dsctx_=>cnt)"), Xval::Int(0));
    assert_eq!(i(&mut m, "dispatcher", "ds_next_dst", &[]), -1);
    assert_eq!(i(&mut m, "dispatcher", "ds_mark_dst", &[]), -1);
}

#[test]
fn hashes_follow_the_headers() {
    let sv = services(2);
    let pick = |alg: i32, extra: &str| {
        let mut m = msg_from(&request("INVITE", extra), Proto::Udp, "127.0.0.9:5060");
        m.env = env_with(sv.clone());
        assert_eq!(
            i(
                &mut m,
                "dispatcher",
                "ds_select_dst",
                &[Arg::Int(1), Arg::Int(alg)]
            ),
            1
        );
        pv(&mut m, "$du")
    };
    // The same Call-ID, From and To always give the same destination.
    for alg in [0, 1, 2] {
        assert_eq!(pick(alg, ""), pick(alg, ""), "algorithm {alg}");
    }
}

#[test]
fn source_matching_sets_the_setid_avp() {
    let sv = services(2);
    let mut m = invite(&sv, "127.0.0.1:5082");
    assert_eq!(
        i(&mut m, "dispatcher", "ds_is_from_list", &[Arg::Int(1)]),
        1
    );
    assert_eq!(pv(&mut m, "$avp(dsid)"), Xval::Int(1));
    assert_eq!(
        i(&mut m, "dispatcher", "ds_is_from_list", &[Arg::Int(2)]),
        -1
    );
    assert_eq!(i(&mut m, "dispatcher", "ds_is_from_lists", &[]), 1);
    let mut other_port = invite(&sv, "127.0.0.1:9999");
    assert_eq!(
        i(
            &mut other_port,
            "dispatcher",
            "ds_is_from_list",
            &[Arg::Int(-1)]
        ),
        -1
    );
    assert_eq!(
        i(
            &mut other_port,
            "dispatcher",
            "ds_is_from_list_mode",
            &[Arg::Int(1), Arg::Int(3)]
        ),
        1,
        "mode 3 ignores the port and the transport"
    );
    assert_eq!(
        i(
            &mut other_port,
            "dispatcher",
            "ds_is_from_list_mode",
            &[Arg::Int(1), Arg::Int(1)]
        ),
        -1,
        "mode 1 compares the transport: set 1's URIs name none (Kamailio)"
    );
    // Mode 0 matches the transport too: set 2 is TCP, the request came over UDP.
    let mut tcp = invite(&sv, "127.0.0.2:5060");
    assert_eq!(
        i(
            &mut tcp,
            "dispatcher",
            "ds_is_from_list_mode",
            &[Arg::Int(2), Arg::Int(0)]
        ),
        -1
    );
    assert_eq!(
        i(
            &mut tcp,
            "dispatcher",
            "ds_is_from_list_mode",
            &[Arg::Int(2), Arg::Int(2)]
        ),
        1
    );
    assert_eq!(
        i(
            &mut tcp,
            "dispatcher",
            "ds_is_from_list_uri",
            &[Arg::Int(1), Arg::Int(0), Arg::Str("sip:127.0.0.1:5083")]
        ),
        1
    );
    assert_eq!(
        i(
            &mut tcp,
            "dispatcher",
            "ds_is_from_list_uri",
            &[Arg::Int(1), Arg::Int(0), Arg::Str("not a uri")]
        ),
        -1
    );
}

#[test]
fn call_load_counts_until_unset() {
    let sv = services(2);
    let call = |cid: &str| {
        let text = request("INVITE", "").replace("c-INVITE", cid);
        let mut m = msg_from(&text, Proto::Udp, "127.0.0.9:5060");
        m.env = env_with(sv.clone());
        let r = i(
            &mut m,
            "dispatcher",
            "ds_select_dst",
            &[Arg::Int(3), Arg::Int(10)],
        );
        (r, m)
    };
    let (r1, mut m1) = call("call-1");
    assert_eq!(r1, 1);
    assert_eq!(pv(&mut m1, "$xavp(_dsdst_=>dstid)"), s("c1"));
    let (r2, _) = call("call-2");
    assert_eq!(r2, 1);
    let (r3, _) = call("call-3");
    assert_eq!(r3, -1, "both at maxload");
    assert_eq!(i(&mut m1, "dispatcher", "ds_load_unset", &[]), 1);
    assert_eq!(i(&mut m1, "dispatcher", "ds_load_unset", &[]), -1);
    let (r4, mut m4) = call("call-4");
    assert_eq!(r4, 1);
    assert_eq!(pv(&mut m4, "$du"), s("sip:127.0.0.3:5061"));
    // A BYE of call-4 through ds_load_update frees its slot.
    let bye = request("BYE", "").replace("c-BYE", "call-4");
    let mut b = msg_from(&bye, Proto::Udp, "127.0.0.9:5060");
    b.env = env_with(sv.clone());
    assert_eq!(i(&mut b, "dispatcher", "ds_load_update", &[]), 1);
    let (r5, _) = call("call-5");
    assert_eq!(r5, 1);
}

#[test]
fn reload_from_the_script() {
    let list = list_file("1 sip:127.0.0.1:5081\n");
    let sv = setup_module("dispatcher", params(&list, 2), &temp_db("ds")).expect("setup");
    let mut m = invite(&sv, "127.0.0.9:5060");
    assert_eq!(
        i(&mut m, "dispatcher", "ds_list_exists", &[Arg::Int(4)]),
        -1
    );
    std::fs::write(&list, "1 sip:127.0.0.1:5081\n4 sip:127.0.0.1:5084\n").expect("rewrite");
    assert_eq!(i(&mut m, "dispatcher", "ds_reload", &[]), 1);
    assert_eq!(i(&mut m, "dispatcher", "ds_list_exists", &[Arg::Int(4)]), 1);
    std::fs::write(&list, "1 sip:127.0.0.1:5081 bad\n").expect("rewrite");
    assert_eq!(i(&mut m, "dispatcher", "ds_reload", &[]), -1);
    assert_eq!(
        i(&mut m, "dispatcher", "ds_list_exists", &[Arg::Int(4)]),
        1,
        "a failed reload keeps the sets in use"
    );
}

#[test]
fn setup_refuses_bad_parameters() {
    let list = list_file("1 sip:127.0.0.1:5081\n");
    let bad = [
        params(&list, 2).with("db_url", ParamValue::Str("sqlite::memory:".into())),
        params(&list, 2).with("ds_probing_mode", ParamValue::Int(7)),
        params(&list, 2).with("ds_ping_reply_codes", ParamValue::Str("code=9".into())),
        params(&list, 2).with("ds_ping_from", ParamValue::Str("nobody".into())),
        params(&list, 2).with("setid_pvname", ParamValue::Str("$var(x)".into())),
        params(&list_file("1 sip:a x\n"), 2),
        params(&PathBuf::from("/nonexistent/dispatcher.list"), 2),
    ];
    for p in bad {
        let e = setup_module("dispatcher", p.clone(), &temp_db("ds"));
        assert!(e.is_err(), "{p:?} was accepted");
    }
    // Without list_file and without dispatcher.list in the configuration directory: no sets.
    let sv = setup_module("dispatcher", ModParams::new("dispatcher"), &temp_db("ds"))
        .expect("setup without a list");
    let ds = sv.get::<DispatcherState>().expect("set up");
    assert!(ds.current().sets.is_empty());
}

#[test]
fn destinations_from_the_store_table() {
    let db = temp_db("ds-store");
    let url = format!("sqlite://{}", db.display());
    let store = modules::store::open(&url, Path::new("/")).expect("store");
    // The first read creates Kamailio's table; an operator fills it (here: SQL, as with
    // Kamailio's kamctl).
    assert!(store
        .dispatcher_rows("dispatcher")
        .expect("empty")
        .is_empty());
    let conn = rusqlite::Connection::open(&db).expect("sqlite");
    conn.execute_batch(
        "INSERT INTO dispatcher (setid, destination, flags, priority, attrs) VALUES
           (5, 'sip:127.0.0.5:5060', 0, 1, ''),
           (5, 'sip:127.0.0.6:5060', 0, 9, 'duid=six');",
    )
    .expect("rows");
    let p = ModParams::new("dispatcher")
        .with("db_url", ParamValue::Str(url.clone()))
        .with("flags", ParamValue::Int(2));
    let sv = setup_module("dispatcher", p.clone(), &db).expect("setup from the store");
    let mut m = invite(&sv, "127.0.0.9:5060");
    assert_eq!(
        i(
            &mut m,
            "dispatcher",
            "ds_select_dst",
            &[Arg::Int(5), Arg::Int(8)]
        ),
        1
    );
    assert_eq!(
        pv(&mut m, "$du"),
        s("sip:127.0.0.6:5060"),
        "priority 9 first"
    );
    conn.execute(
        "INSERT INTO dispatcher (setid, destination) VALUES (6, 'sip:127.0.0.7:5060')",
        [],
    )
    .expect("row");
    assert_eq!(
        i(&mut m, "dispatcher", "ds_list_exists", &[Arg::Int(6)]),
        -1
    );
    assert_eq!(i(&mut m, "dispatcher", "ds_reload", &[]), 1);
    assert_eq!(i(&mut m, "dispatcher", "ds_list_exists", &[Arg::Int(6)]), 1);
    // A bad row stops startup, naming it; list_file and db_url together are refused.
    conn.execute(
        "INSERT INTO dispatcher (setid, destination) VALUES (7, 'tel:+123')",
        [],
    )
    .expect("row");
    let e = setup_module("dispatcher", p.clone(), &db).expect_err("bad row");
    assert!(e.to_string().contains("row 4"), "{e}");
    let both = p.with("list_file", ParamValue::Str("x.list".into()));
    assert!(setup_module("dispatcher", both, &db).is_err());
}
