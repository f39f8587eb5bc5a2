//! The script engines side by side, on the real modules: what one `KSR.*` call and one whole
//! `ksr_request_route` cost in each language, against Rust doing the same through the table.
//!
//! - `call/<engine>/x1000`: one run whose callback calls `KSR.hdr.is_present("X-Bench")` 1000
//!   times in a loop; `call/<engine>/empty_x1000` is the bare loop. Per call:
//!   (x1000 - empty_x1000) / 1000. `call/rust/table` is the same export through the table.
//! - `route/<engine>/a_real`: one run of the baseline's `a_real` route (maxfwd, three PV reads,
//!   a header test, a stateless reply) on an OPTIONS; `route/rust/a_real` is the same logic in Rust
//!   through the table (slots resolved once). Message creation is outside the timing.
//!
//! Engines that fail to load (a feature turned off) are skipped with a note.
//! Run with `cargo bench -p sipd-benches --bench engines`.

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use kemi_runtime::engine::{self, Engine, EngineKind, RunOutcome, REQUEST_ROUTE};
use kemi_runtime::table::Enabled;
use kemi_runtime::{Arg, ExportTable, KemiRet, SipMsg, Xval};

/// `kamailio-baseline/lua/a_real.lua` and its ports, plus the call loops.
const LUA: &str = r#"
function ksr_request_route()
    if KSR.maxfwd.process_maxfwd(10) < 0 then
        KSR.sl.sl_send_reply(483, "Too Many Hops")
        return 1
    end
    local ru = KSR.pv.get("$ru")
    local si = KSR.pv.get("$si")
    if ru == nil or si == nil then
        KSR.sl.sl_send_reply(400, "Bad Request")
        return 1
    end
    local ua = KSR.pv.gete("$ua")
    if string.find(ua, "friendly-scanner", 1, true) or string.find(ua, "sipcli", 1, true) then
        return 1
    end
    if KSR.hdr.is_present("X-Bench") < 0 then
        KSR.sl.sl_send_reply(403, "Forbidden")
        return 1
    end
    if KSR.is_OPTIONS() then
        KSR.sl.sl_send_reply(200, "OK")
        return 1
    end
    KSR.sl.sl_send_reply(405, "Method Not Allowed")
    return 1
end

function empty_x1000()
    for i = 1, 1000 do end
end

function calls_x1000()
    for i = 1, 1000 do KSR.hdr.is_present("X-Bench") end
end
"#;

const JS: &str = r#"
function ksr_request_route() {
    if (KSR.maxfwd.process_maxfwd(10) < 0) {
        KSR.sl.sl_send_reply(483, "Too Many Hops");
        return 1;
    }
    var ru = KSR.pv.get("$ru");
    var si = KSR.pv.get("$si");
    if (ru === null || si === null) {
        KSR.sl.sl_send_reply(400, "Bad Request");
        return 1;
    }
    var ua = KSR.pv.gete("$ua");
    if (ua.indexOf("friendly-scanner") >= 0 || ua.indexOf("sipcli") >= 0) {
        return 1;
    }
    if (KSR.hdr.is_present("X-Bench") < 0) {
        KSR.sl.sl_send_reply(403, "Forbidden");
        return 1;
    }
    if (KSR.is_OPTIONS()) {
        KSR.sl.sl_send_reply(200, "OK");
        return 1;
    }
    KSR.sl.sl_send_reply(405, "Method Not Allowed");
    return 1;
}

function empty_x1000() {
    for (var i = 0; i < 1000; i++) {}
}

function calls_x1000() {
    for (var i = 0; i < 1000; i++) KSR.hdr.is_present("X-Bench");
}
"#;

const PYTHON: &str = r#"
import KSR


def ksr_request_route():
    if KSR.maxfwd.process_maxfwd(10) < 0:
        KSR.sl.sl_send_reply(483, "Too Many Hops")
        return 1
    ru = KSR.pv.get("$ru")
    si = KSR.pv.get("$si")
    if ru is None or si is None:
        KSR.sl.sl_send_reply(400, "Bad Request")
        return 1
    ua = KSR.pv.gete("$ua")
    if "friendly-scanner" in ua or "sipcli" in ua:
        return 1
    if KSR.hdr.is_present("X-Bench") < 0:
        KSR.sl.sl_send_reply(403, "Forbidden")
        return 1
    if KSR.is_OPTIONS():
        KSR.sl.sl_send_reply(200, "OK")
        return 1
    KSR.sl.sl_send_reply(405, "Method Not Allowed")
    return 1


def empty_x1000():
    for i in range(1000):
        pass


def calls_x1000():
    for i in range(1000):
        KSR.hdr.is_present("X-Bench")
"#;

fn msg() -> SipMsg {
    let raw = b"OPTIONS sip:alice@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK1\r\nMax-Forwards: 70\r\nFrom: <sip:b@127.0.0.1>;tag=1\r\nTo: <sip:alice@127.0.0.1>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\nUser-Agent: bench\r\nX-Bench: 1\r\nContent-Length: 0\r\n\r\n";
    let message = kemi_runtime::sip::Message::parse(bytes::Bytes::from_static(raw)).expect("parse");
    SipMsg::new(message, Default::default(), Default::default())
}

fn table() -> Arc<ExportTable> {
    let table = ExportTable::build(
        &kemi_runtime::__private::KEMI_EXPORTS,
        &[&modules::MODULES],
        &Enabled::All,
    )
    .expect("export table");
    Arc::new(table)
}

/// Load `source` as a script of `kind`, or `None` (with a note) when this build cannot.
fn load(
    kind: EngineKind,
    ext: &str,
    source: &str,
    table: &Arc<ExportTable>,
) -> Option<Box<dyn Engine>> {
    let path: PathBuf = std::env::temp_dir().join(format!(
        "engines_bench_{}_{}.{ext}",
        kind,
        std::process::id()
    ));
    std::fs::write(&path, source).expect("write script");
    let engine = engine::load(kind, &path, table.clone());
    let _ = std::fs::remove_file(&path);
    match engine {
        Ok(e) => Some(e),
        Err(e) => {
            eprintln!("skipping {kind}: {e}");
            None
        }
    }
}

/// The export slots the Rust `a_real` uses, resolved once.
struct Slots {
    maxfwd: u16,
    pv_get: u16,
    pv_gete: u16,
    is_present: u16,
    is_options: u16,
    reply: u16,
}

impl Slots {
    fn new(t: &ExportTable) -> Self {
        let slot = |m: &str, f: &str| t.lookup(m, f).unwrap_or_else(|| panic!("{m}.{f}"));
        Slots {
            maxfwd: slot("maxfwd", "process_maxfwd"),
            pv_get: slot("pv", "get"),
            pv_gete: slot("pv", "gete"),
            is_present: slot("hdr", "is_present"),
            is_options: slot("", "is_OPTIONS"),
            reply: slot("sl", "sl_send_reply"),
        }
    }
}

/// `a_real` in Rust through the table: what the scripts do, with no interpreter.
fn rust_a_real(t: &ExportTable, s: &Slots, msg: &mut SipMsg) {
    let int = |r: Result<KemiRet, _>| matches!(r, Ok(KemiRet::Int(n)) if n < 0);
    let reply = |msg: &mut SipMsg, code: i32, reason: &str| {
        let _ = t.call(s.reply, msg, &[Arg::Int(code), Arg::Str(reason)]);
    };
    if int(t.call(s.maxfwd, msg, &[Arg::Int(10)])) {
        return reply(msg, 483, "Too Many Hops");
    }
    let ru = t.call(s.pv_get, msg, &[Arg::Str("$ru")]);
    let si = t.call(s.pv_get, msg, &[Arg::Str("$si")]);
    let null = |r: &Result<KemiRet, _>| matches!(r, Ok(KemiRet::Xval(Xval::Null)));
    if null(&ru) || null(&si) {
        return reply(msg, 400, "Bad Request");
    }
    if let Ok(KemiRet::Xval(Xval::Str(ua))) = t.call(s.pv_gete, msg, &[Arg::Str("$ua")]) {
        if ua.contains("friendly-scanner") || ua.contains("sipcli") {
            return;
        }
    }
    if int(t.call(s.is_present, msg, &[Arg::Str("X-Bench")])) {
        return reply(msg, 403, "Forbidden");
    }
    if matches!(t.call(s.is_options, msg, &[]), Ok(KemiRet::Bool(true))) {
        return reply(msg, 200, "OK");
    }
    reply(msg, 405, "Method Not Allowed")
}

fn bench(c: &mut Criterion) {
    let table = table();
    let slots = Slots::new(&table);
    let mut engines: Vec<(&str, Box<dyn Engine>)> = [
        (EngineKind::Lua, "lua", LUA),
        (EngineKind::Jsdt, "js", JS),
        (EngineKind::Python, "py", PYTHON),
    ]
    .into_iter()
    .filter_map(|(kind, ext, src)| load(kind, ext, src, &table).map(|e| (kind.name(), e)))
    .collect();

    // The Rust a_real must reply as the scripts do.
    let mut m = msg();
    rust_a_real(&table, &slots, &mut m);
    assert_eq!(m.outbox.len(), 1, "rust a_real replies once");

    let mut calls = c.benchmark_group("call");
    let mut m = msg();
    calls.bench_function("rust/table", |b| {
        b.iter(|| {
            table.call(
                black_box(slots.is_present),
                &mut m,
                &[Arg::Str(black_box("X-Bench"))],
            )
        })
    });
    for (name, engine) in engines.iter_mut() {
        for callback in ["empty_x1000", "calls_x1000"] {
            let id = format!(
                "{name}/{}",
                if callback == "calls_x1000" {
                    "x1000"
                } else {
                    callback
                }
            );
            calls.bench_function(id, |b| {
                b.iter(|| assert_eq!(engine.run(callback, &mut m, None), Ok(RunOutcome::Returned)))
            });
        }
    }
    calls.finish();

    let mut route = c.benchmark_group("route");
    route.bench_function("rust/a_real", |b| {
        b.iter_batched(
            msg,
            |mut m| {
                rust_a_real(&table, &slots, &mut m);
                m
            },
            BatchSize::SmallInput,
        )
    });
    for (name, engine) in engines.iter_mut() {
        let mut check = msg();
        assert!(engine.run(REQUEST_ROUTE, &mut check, None).is_ok());
        assert_eq!(check.outbox.len(), 1, "{name} a_real replies once");
        route.bench_function(format!("{name}/a_real"), |b| {
            b.iter_batched(
                msg,
                |mut m| {
                    let out = engine.run(REQUEST_ROUTE, &mut m, None);
                    debug_assert!(out.is_ok());
                    black_box(out).ok();
                    m
                },
                BatchSize::SmallInput,
            )
        });
    }
    route.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
