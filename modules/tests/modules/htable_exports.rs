//! `KSR.htable.*` and `$sht(...)` through the export table, with tables set up by the real
//! setup from Kamailio-syntax modparams: parsing and its errors, get/set/inc/expiry, matching
//! and removal, the PV, loading from and writing through to a SQLite store.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use kemi_runtime::services::Services;
use kemi_runtime::{Arg, SipMsg, Xval};
use modules::htable::HtableState;
use modules::modparam::{ModParams, ParamValue};
use modules::setup::{setup, SetupError, SetupInput, StoreWriters};
use modules::store::{self, HtableRow, HtableValue};

use crate::common::{call, env_with, i, msg, pv, request, s, x};

/// A fresh SQLite file under the temp dir.
pub fn temp_db(tag: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let p = std::env::temp_dir().join(format!(
        "sipd-{tag}-{}-{}.db",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_file(&p);
    p
}

/// Run the real setup of `module` with `params`, store at `db`.
pub fn setup_module(module: &str, params: ModParams, db: &Path) -> Result<Services, SetupError> {
    let mut map = BTreeMap::new();
    map.insert(module.to_string(), params);
    let url = format!("sqlite://{}", db.display());
    let enabled = |m: &str| m == module;
    setup(&SetupInput {
        params: &map,
        enabled: &enabled,
        db_url: &url,
        base_dir: Path::new("/"),
    })
}

fn defs(list: &[&str]) -> ModParams {
    ModParams::new("htable").with(
        "htable",
        ParamValue::List(
            list.iter()
                .map(|d| ParamValue::Str(d.to_string()))
                .collect(),
        ),
    )
}

fn message(services: &Services) -> SipMsg {
    let mut m = msg(&request("OPTIONS", ""));
    m.env = env_with(services.clone());
    m
}

fn a<'a>(v: &'a str) -> Arg<'a> {
    Arg::Str(v)
}

#[test]
fn definitions_and_their_errors() {
    let db = temp_db("ht-defs");
    let sv = setup_module(
        "htable",
        ModParams::new("htable").with(
            "htable",
            ParamValue::Str("ipban=>size=8;autoexpire=300;".into()),
        ),
        &db,
    )
    .unwrap();
    let st = sv.get::<HtableState>().unwrap();
    let t = st.table("ipban").unwrap();
    assert_eq!((t.slots(), t.spec().autoexpire), (256, 300));
    for (bad, what) in [
        (
            defs(&["x=>size=8;colour=red"]),
            "unknown attribute `colour`",
        ),
        (defs(&["x=>size=eight"]), "`size`"),
        (defs(&["x size=8"]), "expected `name=>"),
        (defs(&["x=>size=1", "x=>size=2"]), "defined twice"),
        (
            defs(&["x=>"]).with("nosuch", ParamValue::Int(1)),
            "unknown parameter",
        ),
        (
            defs(&["x=>"]).with("key_name_column", ParamValue::Str("kname".into())),
            "only the default column",
        ),
    ] {
        let e = setup_module("htable", bad, &db).unwrap_err().to_string();
        assert!(e.contains(what), "{e}");
        assert!(e.contains("htable"), "{e}");
    }
}

#[test]
fn get_set_inc_and_null_semantics() {
    let db = temp_db("ht-ops");
    let sv = setup_module("htable", defs(&["h=>size=4;", "c=>initval=10;"]), &db).unwrap();
    let mut m = message(&sv);
    assert_eq!(
        x(&mut m, "htable", "sht_get", &[a("h"), a("k")]),
        Xval::Null
    );
    assert_eq!(x(&mut m, "htable", "sht_gete", &[a("h"), a("k")]), s(""));
    assert_eq!(
        x(&mut m, "htable", "sht_getw", &[a("h"), a("k")]),
        s("<null>")
    );
    assert_eq!(i(&mut m, "htable", "sht_is_null", &[a("h"), a("k")]), 1);
    assert_eq!(
        i(&mut m, "htable", "sht_sets", &[a("h"), a("k"), a("v")]),
        1
    );
    assert_eq!(x(&mut m, "htable", "sht_get", &[a("h"), a("k")]), s("v"));
    assert_eq!(i(&mut m, "htable", "sht_is_null", &[a("h"), a("k")]), -1);
    assert_eq!(i(&mut m, "htable", "sht_inc", &[a("h"), a("k")]), -255);
    assert_eq!(
        i(
            &mut m,
            "htable",
            "sht_seti",
            &[a("h"), a("n"), Arg::Int(41)]
        ),
        1
    );
    assert_eq!(i(&mut m, "htable", "sht_inc", &[a("h"), a("n")]), 42);
    assert_eq!(i(&mut m, "htable", "sht_dec", &[a("h"), a("n")]), 41);
    assert_eq!(
        x(&mut m, "htable", "sht_get", &[a("h"), a("n")]),
        Xval::Int(41)
    );
    // no initval: a missing item cannot be incremented
    assert_eq!(i(&mut m, "htable", "sht_inc", &[a("h"), a("none")]), -255);
    // initval table: never null, counters start from it
    assert_eq!(
        x(&mut m, "htable", "sht_get", &[a("c"), a("z")]),
        Xval::Int(10)
    );
    assert_eq!(i(&mut m, "htable", "sht_is_null", &[a("c"), a("z")]), -2);
    assert_eq!(i(&mut m, "htable", "sht_inc", &[a("c"), a("z")]), 11);
    // unknown table
    assert_eq!(i(&mut m, "htable", "sht_is_null", &[a("no"), a("k")]), 2);
    assert_eq!(
        i(
            &mut m,
            "htable",
            "sht_seti",
            &[a("no"), a("k"), Arg::Int(1)]
        ),
        -1
    );
    assert_eq!(
        x(&mut m, "htable", "sht_get", &[a("no"), a("k")]),
        Xval::Null
    );
    assert_eq!(i(&mut m, "htable", "sht_rm", &[a("h"), a("k")]), 1);
    assert_eq!(
        x(&mut m, "htable", "sht_get", &[a("h"), a("k")]),
        Xval::Null
    );
    assert_eq!(i(&mut m, "htable", "sht_reset", &[a("h")]), 0);
    assert_eq!(
        x(&mut m, "htable", "sht_get", &[a("h"), a("n")]),
        Xval::Null
    );
    assert_eq!(i(&mut m, "htable", "sht_lock", &[a("h"), a("n")]), 1);
    assert_eq!(i(&mut m, "htable", "sht_unlock", &[a("h"), a("n")]), 1);
    assert_eq!(i(&mut m, "htable", "sht_unlock", &[a("h"), a("n")]), -1);
}

#[test]
fn match_remove_and_count() {
    let db = temp_db("ht-match");
    let sv = setup_module("htable", defs(&["ipban=>size=8;"]), &db).unwrap();
    let mut m = message(&sv);
    for (k, v) in [
        ("127.0.0.1", "a"),
        ("127.0.0.2", "b"),
        ("user::alice", "Alice"),
    ] {
        assert_eq!(
            i(&mut m, "htable", "sht_sets", &[a("ipban"), a(k), a(v)]),
            1
        );
    }
    let mn = |m: &mut SipMsg, op: &str, v: &str| {
        i(m, "htable", "sht_match_name", &[a("ipban"), a(op), a(v)])
    };
    assert_eq!(mn(&mut m, "eq", "127.0.0.1"), 1);
    assert_eq!(mn(&mut m, "eq", "127.0.0.9"), -1);
    assert_eq!(mn(&mut m, "ne", "127.0.0.1"), 1);
    assert_eq!(mn(&mut m, "sw", "user::"), 1);
    assert_eq!(mn(&mut m, "re", "^USER::"), 1, "regex is case-insensitive");
    assert_eq!(mn(&mut m, "xx", "a"), -1);
    assert_eq!(mn(&mut m, "re", "("), -1);
    assert_eq!(
        i(
            &mut m,
            "htable",
            "sht_match_str_value",
            &[a("ipban"), a("eq"), a("Alice")]
        ),
        1
    );
    assert_eq!(
        i(
            &mut m,
            "htable",
            "sht_cn",
            &[a("ipban"), a("%~"), a("127.")]
        ),
        2
    );
    assert_eq!(
        i(&mut m, "htable", "sht_cn", &[a("ipban"), a("**"), a("x")]),
        3
    );
    assert_eq!(
        i(
            &mut m,
            "htable",
            "sht_rm_name_re",
            &[a("ipban"), a("^127\\.0\\.0\\.1$")]
        ),
        1
    );
    assert_eq!(mn(&mut m, "eq", "127.0.0.1"), -1);
    assert_eq!(mn(&mut m, "eq", "127.0.0.2"), 1);
    assert_eq!(
        i(&mut m, "htable", "sht_rm_name_re", &[a("nosuch"), a(".*")]),
        1
    );
    assert_eq!(
        i(
            &mut m,
            "htable",
            "sht_rm_value",
            &[a("ipban"), a("sw"), a("Ali")]
        ),
        1
    );
    assert_eq!(mn(&mut m, "sw", "user::"), -1);
    assert_eq!(
        i(
            &mut m,
            "htable",
            "sht_rm_name",
            &[a("ipban"), a("in"), a(".0.0.")]
        ),
        1
    );
    assert_eq!(
        i(&mut m, "htable", "sht_cn", &[a("ipban"), a("**"), a("x")]),
        0
    );
    assert_eq!(
        i(&mut m, "htable", "sht_rm_value_re", &[a("ipban"), a("(")]),
        -1
    );
}

#[test]
fn items_expire_at_once_and_are_swept() {
    let db = temp_db("ht-exp");
    let sv = setup_module("htable", defs(&["e=>autoexpire=60;", "n=>"]), &db).unwrap();
    let mut m = message(&sv);
    assert_eq!(
        i(
            &mut m,
            "htable",
            "sht_setxi",
            &[a("e"), a("short"), Arg::Int(7), Arg::Int(1)]
        ),
        1
    );
    assert_eq!(
        i(
            &mut m,
            "htable",
            "sht_setxs",
            &[a("e"), a("s"), a("v"), Arg::Int(1)]
        ),
        1
    );
    assert_eq!(
        i(
            &mut m,
            "htable",
            "sht_seti",
            &[a("e"), a("long"), Arg::Int(1)]
        ),
        1
    );
    assert_eq!(
        i(&mut m, "htable", "sht_seti", &[a("e"), a("x"), Arg::Int(1)]),
        1
    );
    assert_eq!(
        i(
            &mut m,
            "htable",
            "sht_setex",
            &[a("e"), a("x"), Arg::Int(1)]
        ),
        1
    );
    // no autoexpire: per-item expiry is ignored, as Kamailio does
    assert_eq!(
        i(
            &mut m,
            "htable",
            "sht_setxi",
            &[a("n"), a("k"), Arg::Int(1), Arg::Int(1)]
        ),
        1
    );
    assert_eq!(
        x(&mut m, "htable", "sht_get", &[a("e"), a("short")]),
        Xval::Int(7)
    );
    std::thread::sleep(Duration::from_millis(1100));
    for k in ["short", "s", "x"] {
        assert_eq!(
            x(&mut m, "htable", "sht_get", &[a("e"), a(k)]),
            Xval::Null,
            "{k}"
        );
    }
    assert_eq!(
        i(
            &mut m,
            "htable",
            "sht_match_name",
            &[a("e"), a("eq"), a("short")]
        ),
        -1
    );
    assert_eq!(
        x(&mut m, "htable", "sht_get", &[a("e"), a("long")]),
        Xval::Int(1)
    );
    assert_eq!(
        x(&mut m, "htable", "sht_get", &[a("n"), a("k")]),
        Xval::Int(1)
    );
    let st = sv.get::<HtableState>().unwrap();
    assert_eq!(st.sweep(), 3);
    // the periodic job is registered with the host
    assert!(sv.periodic().iter().any(|p| p.name == "htable expiry"));
}

#[test]
fn sht_pseudo_variable() {
    let db = temp_db("ht-pv");
    let sv = setup_module("htable", defs(&["ipban=>size=8;autoexpire=300;"]), &db).unwrap();
    let mut m = message(&sv);
    let set = |m: &mut SipMsg, name: &str, v: Arg<'_>| {
        call(
            m,
            "pv",
            if matches!(v, Arg::Int(_)) {
                "seti"
            } else {
                "sets"
            },
            &[a(name), v],
        )
    };
    set(&mut m, "$sht(ipban=>$si)", Arg::Int(1));
    let src = m.rcv.src.ip().to_string();
    assert_eq!(
        x(&mut m, "htable", "sht_get", &[a("ipban"), a(&src)]),
        Xval::Int(1)
    );
    assert_eq!(pv(&mut m, "$sht(ipban=>$si)"), Xval::Int(1));
    assert_eq!(
        i(
            &mut m,
            "htable",
            "sht_match_name",
            &[a("ipban"), a("eq"), a(&src)]
        ),
        1
    );
    set(&mut m, "$sht(ipban=>k::$rm)", a("text"));
    assert_eq!(
        x(&mut m, "htable", "sht_get", &[a("ipban"), a("k::OPTIONS")]),
        s("text")
    );
    call(&mut m, "pv", "unset", &[a("$sht(ipban=>$si)")]);
    assert_eq!(pv(&mut m, "$sht(ipban=>$si)"), Xval::Null);
    assert_eq!(pv(&mut m, "$sht(nosuch=>x)"), Xval::Null);
}

#[test]
fn loads_from_store_and_writes_through() {
    let db = temp_db("ht-db");
    {
        let st = store::open(&format!("sqlite://{}", db.display()), Path::new("/")).unwrap();
        st.put_htable(
            "htable",
            &HtableRow {
                key_name: "preset".into(),
                value: HtableValue::Int(5),
                expires: 0,
            },
        )
        .unwrap();
        st.put_htable(
            "htable",
            &HtableRow {
                key_name: "name".into(),
                value: HtableValue::Str("x".into()),
                expires: 0,
            },
        )
        .unwrap();
    }
    let params = defs(&["a=>dbtable=htable;dbmode=1;", "ro=>dbtable=htable;"]);
    let sv = setup_module("htable", params.clone(), &db).unwrap();
    let mut m = message(&sv);
    assert_eq!(
        x(&mut m, "htable", "sht_get", &[a("a"), a("preset")]),
        Xval::Int(5)
    );
    assert_eq!(
        x(&mut m, "htable", "sht_get", &[a("ro"), a("name")]),
        s("x")
    );
    i(
        &mut m,
        "htable",
        "sht_seti",
        &[a("a"), a("new"), Arg::Int(9)],
    );
    i(&mut m, "htable", "sht_rm", &[a("a"), a("name")]);
    i(&mut m, "htable", "sht_inc", &[a("a"), a("preset")]);
    // dbmode=0: not written
    i(
        &mut m,
        "htable",
        "sht_seti",
        &[a("ro"), a("ro-only"), Arg::Int(1)],
    );
    sv.get::<StoreWriters>()
        .unwrap()
        .flush(Duration::from_secs(5));
    let st = store::open(&format!("sqlite://{}", db.display()), Path::new("/")).unwrap();
    let mut rows: Vec<(String, HtableValue)> = st
        .htable_rows("htable")
        .unwrap()
        .into_iter()
        .map(|r| (r.key_name, r.value))
        .collect();
    rows.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        rows,
        vec![
            ("new".into(), HtableValue::Int(9)),
            ("preset".into(), HtableValue::Int(6))
        ]
    );
    // a restart sees the same
    drop(m);
    drop(sv);
    let sv = setup_module("htable", params, &db).unwrap();
    let mut m = message(&sv);
    assert_eq!(
        x(&mut m, "htable", "sht_get", &[a("a"), a("new")]),
        Xval::Int(9)
    );
    // reload after an outside change
    st.put_htable(
        "htable",
        &HtableRow {
            key_name: "ext".into(),
            value: HtableValue::Int(1),
            expires: 0,
        },
    )
    .unwrap();
    let state = sv.get::<HtableState>().unwrap();
    assert_eq!(state.reload("a"), Ok(3));
    assert_eq!(
        x(&mut m, "htable", "sht_get", &[a("a"), a("ext")]),
        Xval::Int(1)
    );
    assert!(state.reload("nosuch").is_err());
    let _ = std::fs::remove_file(&db);
}
