//! `KSR.registrar.*` through the export table, on the real location table set up by
//! `modules::setup` with a SQLite store: save then lookup, expiry from the param, the header and
//! the default, `*`, 423 and the min-expires raise, 400 with nothing stored, q ordering and
//! branches, CSeq ordering, Path, write-through and reload, the expiry sweep, `$ulc`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kemi_runtime::msg::{Action, Avp, VarValue};
use kemi_runtime::services::Services;
use kemi_runtime::{Arg, SipMsg, Xval};
use modules::modparam::{ModParams, ParamValue};
use modules::registrar::Registrar;
use modules::setup::{SetupInput, StoreWriters};

use crate::common::{env_with, i, msg, pv, x};

struct Db(PathBuf);

impl Db {
    fn new() -> Db {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "sipd-registrar-{}-{}.db",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_file(&p);
        Db(p)
    }
    fn url(&self) -> String {
        format!("sqlite://{}", self.0.display())
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        for ext in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{ext}", self.0.display()));
        }
    }
}

fn services(db: &str, reg: &[(&str, ParamValue)], ul: &[(&str, ParamValue)]) -> Services {
    let mut params = BTreeMap::new();
    let mut r = ModParams::new("registrar");
    for (k, v) in reg {
        r.set(k, v.clone());
    }
    let mut u = ModParams::new("usrloc");
    for (k, v) in ul {
        u.set(k, v.clone());
    }
    params.insert("registrar".to_string(), r);
    params.insert("usrloc".to_string(), u);
    let enabled = |m: &str| m == "registrar";
    modules::setup::setup(&SetupInput {
        params: &params,
        enabled: &enabled,
        db_url: db,
        base_dir: Path::new("/tmp"),
    })
    .unwrap_or_else(|e| panic!("setup: {e}"))
}

fn mem() -> Services {
    services("sqlite::memory:", &[], &[])
}

fn with(text: &str, sv: &Services) -> SipMsg {
    let mut m = msg(text);
    m.env = env_with(sv.clone());
    m
}

fn register(contact: &str, extra: &str, callid: &str, cseq: u32) -> String {
    let contact = if contact.is_empty() {
        String::new()
    } else {
        format!("Contact: {contact}\r\n")
    };
    format!(
        "REGISTER sip:example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKr{cseq}\r\n\
         From: <sip:alice@example.com>;tag=f1\r\n\
         To: <sip:alice@example.com>\r\n\
         Call-ID: {callid}\r\n\
         CSeq: {cseq} REGISTER\r\n\
         {contact}{extra}Content-Length: 0\r\n\r\n"
    )
}

fn invite(user: &str) -> String {
    format!(
        "INVITE sip:{user}@example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKi1\r\n\
         From: <sip:bob@example.com>;tag=b1\r\n\
         To: <sip:{user}@example.com>\r\n\
         Call-ID: inv-1\r\n\
         CSeq: 1 INVITE\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

/// Run save; return (code, reply text).
fn save(sv: &Services, text: &str, flags: i32) -> (i32, String) {
    let mut m = with(text, sv);
    let rc = i(
        &mut m,
        "registrar",
        "save",
        &[Arg::Str("location"), Arg::Int(flags)],
    );
    let reply = match m.outbox.as_slice() {
        [Action::Reply(r)] => String::from_utf8_lossy(&r.wire).into_owned(),
        [] => String::new(),
        other => panic!("expected at most one reply, got {other:?}"),
    };
    (rc, reply)
}

fn lookup(sv: &Services, user: &str) -> (i32, SipMsg) {
    let mut m = with(&invite(user), sv);
    let rc = i(&mut m, "registrar", "lookup", &[Arg::Str("location")]);
    (rc, m)
}

fn status(reply: &str) -> &str {
    reply.lines().next().unwrap_or("")
}

fn header<'a>(reply: &'a str, name: &str) -> Option<&'a str> {
    reply
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(": ")))
}

#[test]
fn save_then_lookup() {
    let sv = mem();
    let (rc, reply) = save(&sv, &register("<sip:alice@127.0.0.1:5070>", "", "c1", 1), 0);
    assert_eq!(rc, 1, "{reply}");
    assert_eq!(status(&reply), "SIP/2.0 200 OK");
    assert_eq!(
        header(&reply, "Contact"),
        Some("<sip:alice@127.0.0.1:5070>;expires=3600")
    );
    let (rc, m) = lookup(&sv, "alice");
    assert_eq!(rc, 1);
    assert_eq!(
        m.route.new_ruri.as_deref(),
        Some("sip:alice@127.0.0.1:5070")
    );
    assert_eq!(m.route.dst_uri, None);
    assert!(m.tm.branches.is_empty());
    assert_eq!(lookup(&sv, "bob").0, -1);
    let mut m = with(&invite("alice"), &sv);
    assert_eq!(
        i(&mut m, "registrar", "registered", &[Arg::Str("location")]),
        1
    );
    let mut m = with(&invite("bob"), &sv);
    assert_eq!(
        i(&mut m, "registrar", "registered", &[Arg::Str("location")]),
        -1
    );
    // Refresh with a higher CSeq: updated (2), still one binding.
    let (rc, reply) = save(
        &sv,
        &register("<sip:alice@127.0.0.1:5070>;expires=120", "", "c1", 2),
        0,
    );
    assert_eq!(rc, 2, "{reply}");
    assert_eq!(
        header(&reply, "Contact"),
        Some("<sip:alice@127.0.0.1:5070>;expires=120")
    );
    // A query (no Contact) lists the bindings: 4.
    let (rc, reply) = save(&sv, &register("", "", "c9", 1), 0);
    assert_eq!(rc, 4);
    assert!(header(&reply, "Contact").is_some());
}

#[test]
fn expiry_param_header_default_and_limits() {
    let sv = services(
        "sqlite::memory:",
        &[("max_expires", ParamValue::Int(600))],
        &[],
    );
    let (_, r) = save(
        &sv,
        &register(
            "<sip:alice@127.0.0.1:1>;expires=100",
            "Expires: 300\r\n",
            "c",
            1,
        ),
        0,
    );
    assert!(
        header(&r, "Contact").unwrap().ends_with("expires=100"),
        "{r}"
    );
    let (_, r) = save(
        &sv,
        &register("<sip:alice@127.0.0.1:1>", "Expires: 300\r\n", "c", 2),
        0,
    );
    assert!(
        header(&r, "Contact").unwrap().ends_with("expires=300"),
        "{r}"
    );
    let (_, r) = save(&sv, &register("<sip:alice@127.0.0.1:1>", "", "c", 3), 0);
    assert!(
        header(&r, "Contact").unwrap().ends_with("expires=600"),
        "capped: {r}"
    );
    // Below min_expires: raised to 60 by default (Kamailio's min_expires_mode 0).
    let (_, r) = save(
        &sv,
        &register("<sip:alice@127.0.0.1:1>;expires=10", "", "c", 4),
        0,
    );
    assert!(
        header(&r, "Contact").unwrap().ends_with("expires=60"),
        "{r}"
    );
    // expires=0 removes it (3).
    let (rc, r) = save(
        &sv,
        &register("<sip:alice@127.0.0.1:1>;expires=0", "", "c", 5),
        0,
    );
    assert_eq!(rc, 3);
    assert_eq!(header(&r, "Contact"), None);
    assert_eq!(lookup(&sv, "alice").0, -1);
}

#[test]
fn interval_too_brief_with_min_expires_mode() {
    let sv = services(
        "sqlite::memory:",
        &[
            ("min_expires_mode", ParamValue::Int(1)),
            ("min_expires", ParamValue::Int(120)),
        ],
        &[],
    );
    let (rc, r) = save(
        &sv,
        &register("<sip:alice@127.0.0.1:1>", "Expires: 30\r\n", "c", 1),
        0,
    );
    assert_eq!(rc, -1);
    assert_eq!(status(&r), "SIP/2.0 423 Interval Too Brief");
    assert_eq!(header(&r, "Min-Expires"), Some("120"));
    assert_eq!(lookup(&sv, "alice").0, -1);
}

#[test]
fn star_removes_everything() {
    let sv = mem();
    save(
        &sv,
        &register(
            "<sip:alice@127.0.0.1:1>, <sip:alice@127.0.0.2:2>",
            "",
            "c",
            1,
        ),
        0,
    );
    let (rc, r) = save(&sv, &register("*", "", "c", 2), 0);
    assert_eq!(status(&r), "SIP/2.0 400 Bad Request", "no Expires: 0");
    assert_eq!(rc, -1);
    assert_eq!(lookup(&sv, "alice").0, 1);
    let (rc, r) = save(&sv, &register("*", "Expires: 0\r\n", "c", 3), 0);
    assert_eq!((rc, status(&r)), (3, "SIP/2.0 200 OK"));
    assert_eq!(header(&r, "Contact"), None);
    assert_eq!(lookup(&sv, "alice").0, -1);
}

#[test]
fn bad_input_gets_400_and_stores_nothing() {
    let sv = mem();
    for (contact, extra, why) in [
        ("<sip:alice@127.0.0.1:1", "", "Contact parse error"),
        (
            "<sip:alice@127.0.0.1:1>;expires=soon",
            "",
            "Invalid expires param in contact",
        ),
        (
            "<sip:alice@127.0.0.1:1>",
            "Expires: never\r\n",
            "Expires parse error",
        ),
        (
            "<sip:alice@127.0.0.1:1>;q=7",
            "",
            "Invalid q param in contact",
        ),
        (
            "<sip:a@127.0.0.2>, <sip:alice@127.0.0.1:1>;expires=x",
            "",
            "Invalid expires param in contact",
        ),
    ] {
        let (rc, r) = save(&sv, &register(contact, extra, "c", 1), 0);
        assert_eq!(rc, -1, "{contact}");
        assert_eq!(status(&r), "SIP/2.0 400 Bad Request", "{contact}");
        assert_eq!(header(&r, "P-Registrar-Error"), Some(why), "{contact}");
        assert_eq!(lookup(&sv, "alice").0, -1, "{contact}: nothing stored");
    }
    // With flag 2 no reply is sent; reg_send_reply sends it.
    let text = register("<bad", "", "c", 1);
    let mut m = with(&text, &sv);
    assert_eq!(
        i(
            &mut m,
            "registrar",
            "save",
            &[Arg::Str("location"), Arg::Int(2)]
        ),
        -1
    );
    assert!(m.outbox.is_empty());
    assert_eq!(i(&mut m, "registrar", "reg_send_reply", &[]), 1);
    assert_eq!(m.outbox.len(), 1);
}

#[test]
fn q_ordering_and_branches() {
    let sv = mem();
    save(
        &sv,
        &register(
            "<sip:alice@127.0.0.1:1>;q=0.5, <sip:alice@127.0.0.2:2>;q=1.0, <sip:alice@127.0.0.3:3>",
            "",
            "c",
            1,
        ),
        0,
    );
    let (rc, m) = lookup(&sv, "alice");
    assert_eq!(rc, 1);
    assert_eq!(m.route.new_ruri.as_deref(), Some("sip:alice@127.0.0.2:2"));
    let b: Vec<&str> = m.tm.branches.iter().map(|b| b.uri.as_str()).collect();
    assert_eq!(b, ["sip:alice@127.0.0.1:1", "sip:alice@127.0.0.3:3"]);
    // append_branches = 0: only the R-URI.
    let sv = services(
        "sqlite::memory:",
        &[("append_branches", ParamValue::Int(0))],
        &[],
    );
    save(
        &sv,
        &register(
            "<sip:alice@127.0.0.1:1>, <sip:alice@127.0.0.2:2>",
            "",
            "c",
            1,
        ),
        0,
    );
    let (_, m) = lookup(&sv, "alice");
    assert!(m.tm.branches.is_empty());
}

#[test]
fn cseq_ordering() {
    let sv = mem();
    assert_eq!(
        save(&sv, &register("<sip:alice@127.0.0.1:1>", "", "c", 5), 0).0,
        1
    );
    let (rc, r) = save(
        &sv,
        &register("<sip:alice@127.0.0.1:1>;expires=0", "", "c", 4),
        0,
    );
    assert_eq!(rc, -1);
    assert_eq!(status(&r), "SIP/2.0 400 Bad Request");
    assert_eq!(header(&r, "P-Registrar-Error"), Some("Invalid CSeq number"));
    assert_eq!(lookup(&sv, "alice").0, 1, "still registered");
    // Same CSeq right away: a retransmission, skipped but answered 200.
    let (rc, r) = save(
        &sv,
        &register("<sip:alice@127.0.0.1:1>;expires=0", "", "c", 5),
        0,
    );
    assert!(rc > 0 && status(&r) == "SIP/2.0 200 OK", "{rc} {r}");
    assert_eq!(lookup(&sv, "alice").0, 1);
    // Another Call-ID may use any CSeq.
    assert_eq!(
        save(
            &sv,
            &register("<sip:alice@127.0.0.1:1>;expires=0", "", "d", 1),
            0
        )
        .0,
        3
    );
}

#[test]
fn received_avp_and_path() {
    let sv = services(
        "sqlite::memory:",
        &[
            ("use_path", ParamValue::Int(1)),
            ("path_mode", ParamValue::Int(1)),
        ],
        &[],
    );
    let mut m = with(&register("<sip:alice@10.0.0.9:5060>", "", "c", 1), &sv);
    m.route.avps.push(Avp {
        name: "RECEIVED".into(),
        value: VarValue::Str("sip:127.0.0.1:5070;transport=udp".into()),
    });
    m.route.bflags = 1 << 6;
    assert_eq!(
        i(
            &mut m,
            "registrar",
            "save",
            &[Arg::Str("location"), Arg::Int(0)]
        ),
        1
    );
    let (_, lm) = lookup(&sv, "alice");
    assert_eq!(
        lm.route.dst_uri.as_deref(),
        Some("sip:127.0.0.1:5070;transport=udp")
    );
    assert_eq!(lm.route.bflags & (1 << 6), 1 << 6, "branch flags restored");

    let text = register(
        "<sip:bob@10.0.0.9:5060>",
        "Path: <sip:edge.example.com;lr>\r\nSupported: path\r\n",
        "p",
        1,
    )
    .replace("alice@", "bob@");
    let (rc, r) = save(&sv, &text, 0);
    assert_eq!(rc, 1, "{r}");
    assert_eq!(header(&r, "Path"), Some("<sip:edge.example.com;lr>"));
    let (_, lm) = lookup(&sv, "bob");
    assert_eq!(lm.route.dst_uri.as_deref(), Some("sip:edge.example.com;lr"));
    let mut out = Vec::new();
    lm.message.write_request(
        &mut out,
        lm.route.new_ruri.as_deref(),
        &lm.route.edits,
        None,
    );
    assert!(String::from_utf8_lossy(&out).contains("Route: <sip:edge.example.com;lr>\r\n"));

    // Strict path mode refuses a UA that does not support path.
    let sv = services("sqlite::memory:", &[("use_path", ParamValue::Int(1))], &[]);
    let (rc, r) = save(
        &sv,
        &register("<sip:alice@10.0.0.9>", "Path: <sip:edge;lr>\r\n", "c", 1),
        0,
    );
    assert_eq!((rc, status(&r)), (-1, "SIP/2.0 420 Bad Extension"));
}

#[test]
fn write_through_and_reload() {
    let db = Db::new();
    {
        let sv = services(&db.url(), &[], &[]);
        save(
            &sv,
            &register(
                "<sip:alice@127.0.0.1:1>;q=0.3, <sip:alice@127.0.0.2:2>;q=0.9",
                "",
                "c",
                1,
            ),
            0,
        );
        save(
            &sv,
            &register("<sip:alice@127.0.0.3:3>;expires=0", "", "c", 2),
            0,
        );
        // Memory-only save (flag 1) is not persisted.
        save(
            &sv,
            &register("<sip:carol@127.0.0.4:4>", "", "m", 1).replace("alice@", "carol@"),
            1,
        );
        let w = sv.get::<StoreWriters>().unwrap();
        w.flush(Duration::from_secs(10));
    }
    let sv = services(&db.url(), &[], &[]);
    let (rc, m) = lookup(&sv, "alice");
    assert_eq!(rc, 1);
    assert_eq!(m.route.new_ruri.as_deref(), Some("sip:alice@127.0.0.2:2"));
    assert_eq!(m.tm.branches.len(), 1);
    assert_eq!(lookup(&sv, "carol").0, -1);
    // unregister removes from the store too.
    let mut m = with(&invite("alice"), &sv);
    assert_eq!(
        i(
            &mut m,
            "registrar",
            "unregister",
            &[Arg::Str("location"), Arg::Str("sip:alice@example.com")]
        ),
        1
    );
    sv.get::<StoreWriters>()
        .unwrap()
        .flush(Duration::from_secs(10));
    let sv = services(&db.url(), &[], &[]);
    assert_eq!(lookup(&sv, "alice").0, -1);
}

#[test]
fn sweep_removes_expired() {
    let db = Db::new();
    let sv = services(&db.url(), &[("min_expires", ParamValue::Int(0))], &[]);
    save(
        &sv,
        &register(
            "<sip:alice@127.0.0.1:1>;expires=1, <sip:alice@127.0.0.2:2>;expires=100",
            "",
            "c",
            1,
        ),
        0,
    );
    let reg: Arc<Registrar> = sv.get_arc::<Registrar>().unwrap();
    let now = modules::store::now_unix();
    assert_eq!(reg.ul.sweep(now + 5), 1);
    let (rc, m) = lookup(&sv, "alice");
    assert_eq!(rc, 1);
    assert_eq!(m.route.new_ruri.as_deref(), Some("sip:alice@127.0.0.2:2"));
    assert!(m.tm.branches.is_empty());
    assert_eq!(sv.periodic().len(), 1);
    sv.get::<StoreWriters>()
        .unwrap()
        .flush(Duration::from_secs(10));
    let rows = modules::store::open(&db.url(), Path::new("/tmp"))
        .unwrap()
        .locations("location")
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].contact, "sip:alice@127.0.0.2:2");
}

#[test]
fn fetch_contacts_and_ulc() {
    let sv = mem();
    save(
        &sv,
        &register(
            "<sip:alice@127.0.0.1:1>;q=0.5, <sip:alice@127.0.0.2:2>",
            "",
            "c",
            1,
        ),
        0,
    );
    let mut m = with(&invite("alice"), &sv);
    assert_eq!(
        i(
            &mut m,
            "registrar",
            "reg_fetch_contacts",
            &[
                Arg::Str("location"),
                Arg::Str("sip:alice@example.com"),
                Arg::Str("caller")
            ]
        ),
        1
    );
    assert_eq!(pv(&mut m, "$ulc(caller=>count)"), Xval::Int(2));
    assert_eq!(
        pv(&mut m, "$ulc(caller=>addr)"),
        Xval::Str("sip:alice@127.0.0.1:1".into())
    );
    assert_eq!(
        pv(&mut m, "$(ulc(caller=>addr)[1])"),
        Xval::Str("sip:alice@127.0.0.2:2".into())
    );
    assert_eq!(
        x(
            &mut m,
            "registrar",
            "ulc_rget",
            &[Arg::Str("caller"), Arg::Str("aor")]
        ),
        Xval::Str("alice".into())
    );
    assert_eq!(
        x(
            &mut m,
            "registrar",
            "ulc_cget",
            &[Arg::Str("caller"), Arg::Str("q"), Arg::Int(0)]
        ),
        Xval::Int(500)
    );
    assert_eq!(
        i(
            &mut m,
            "registrar",
            "reg_free_contacts",
            &[Arg::Str("caller")]
        ),
        1
    );
    assert_eq!(pv(&mut m, "$ulc(caller=>count)"), Xval::Null);
}

#[test]
fn unknown_modparam_is_refused_and_missing_setup_is_an_error() {
    let mut params = BTreeMap::new();
    params.insert(
        "registrar".to_string(),
        ModParams::new("registrar").with("no_such", ParamValue::Int(1)),
    );
    let enabled = |m: &str| m == "registrar";
    let e = modules::setup::setup(&SetupInput {
        params: &params,
        enabled: &enabled,
        db_url: "sqlite::memory:",
        base_dir: Path::new("/tmp"),
    })
    .unwrap_err();
    assert!(e.to_string().contains("registrar.no_such"), "{e}");
    let mut m = msg(&invite("alice"));
    assert_eq!(
        i(&mut m, "registrar", "lookup", &[Arg::Str("location")]),
        -3
    );
    assert_eq!(
        i(
            &mut m,
            "registrar",
            "save",
            &[Arg::Str("location"), Arg::Int(0)]
        ),
        -1
    );
}

/// A REGISTER over a WebSocket: its Contact host does not exist (RFC 7118), so the source is
/// stored as `received` and is where lookup sends; once the host says that connection is gone,
/// lookup skips the binding (a UDP one is not affected).
#[test]
fn websocket_contact_is_reached_at_its_source_and_skipped_once_its_connection_closed() {
    use std::sync::atomic::{AtomicBool, Ordering};

    use kemi_runtime::msg::Proto;
    use kemi_runtime::services::OpenConnections;

    let open = Arc::new(AtomicBool::new(true));
    let mut sv = mem();
    let seen = Arc::clone(&open);
    sv.insert(Arc::new(OpenConnections::new(move |proto, peer| {
        proto == Proto::Wss
            && peer == "192.0.2.10:40000".parse().expect("addr")
            && seen.load(Ordering::Relaxed)
    })));
    let text = register(
        "<sip:k3jd8s@df7jal23ls0d.invalid;transport=ws;ob>",
        "",
        "ws-1",
        1,
    );
    let mut m = crate::common::msg_from(&text, Proto::Wss, "192.0.2.10:40000");
    m.env = env_with(sv.clone());
    assert_eq!(
        i(
            &mut m,
            "registrar",
            "save",
            &[Arg::Str("location"), Arg::Int(0)]
        ),
        1
    );
    let (rc, m) = lookup(&sv, "alice");
    assert_eq!(rc, 1);
    assert_eq!(
        m.route.new_ruri.as_deref(),
        Some("sip:k3jd8s@df7jal23ls0d.invalid;transport=ws;ob")
    );
    assert_eq!(
        m.route.dst_uri.as_deref(),
        Some("sip:192.0.2.10:40000;transport=wss")
    );
    open.store(false, Ordering::Relaxed);
    assert_eq!(
        lookup(&sv, "alice").0,
        -1,
        "a closed WebSocket contact is not returned"
    );
    // carol over UDP: no connection to ask about.
    let text = register("<sip:carol@192.0.2.20:5060>", "", "udp-1", 1).replace("alice@", "carol@");
    assert_eq!(save(&sv, &text, 0).0, 1);
    assert_eq!(lookup(&sv, "carol").0, 1);
}
