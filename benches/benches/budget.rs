//! What the instruction budget costs a normal run: the baseline's `a_real` route (as in the
//! `engines` bench) on a prepared OPTIONS, per engine and budget.
//!
//! - `lua/none`: no budget (LuaJIT's JIT on).
//! - `lua/exact`: a budget of `EXACT_MAX` instructions, counted by the count hook on every
//!   instruction: what every budget was before the watchdog (sipd's default 10 million included).
//! - `lua/watched`: sipd's default, 10 million: the hook is armed only in runs that last.
//! - `js/none`, `js/budget`: QuickJS without and with a budget of 10 million polls.
//!
//! Criterion (time): `cargo bench -p sipd-benches --bench budget`.
//!
//! Instructions (callgrind): with `BUDGET_IR=<rounds>` the bench runs `<rounds>` routes per
//! variant in one `#[inline(never)]` function each and exits:
//!
//! ```text
//! cargo bench -p sipd-benches --bench budget --no-run
//! BUDGET_IR=20000 valgrind --tool=callgrind --callgrind-out-file=cg.budget \
//!   target/release/deps/budget-<hash>
//! callgrind_annotate --inclusive=yes cg.budget | grep 'budget::ir_'
//! ```
//! Ir per route = the function's inclusive Ir / rounds.

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;

use criterion::{criterion_group, BatchSize, Criterion};
use kemi_runtime::engine::limits::ScriptLimits;
use kemi_runtime::engine::lua::EXACT_MAX;
use kemi_runtime::engine::{self, Engine, EngineKind, RunOutcome, REQUEST_ROUTE};
use kemi_runtime::table::Enabled;
use kemi_runtime::{ExportTable, SipMsg};

/// The load harness's a_real route.
const LUA: &str = include_str!("../load/lua/a_real.lua");

/// The same route in JavaScript (the `engines` bench's port).
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
"#;

/// sipd's default `[limits] max_instructions`.
const DEFAULT_BUDGET: u64 = 10_000_000;

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

/// The variants: name, engine, script, instruction budget.
fn variants() -> [(&'static str, EngineKind, &'static str, Option<u64>); 5] {
    [
        ("lua/none", EngineKind::Lua, LUA, None),
        ("lua/exact", EngineKind::Lua, LUA, Some(EXACT_MAX)),
        ("lua/watched", EngineKind::Lua, LUA, Some(DEFAULT_BUDGET)),
        ("js/none", EngineKind::Jsdt, JS, None),
        ("js/budget", EngineKind::Jsdt, JS, Some(DEFAULT_BUDGET)),
    ]
}

/// Load a variant, or `None` (with a note) when this build cannot.
fn load(
    name: &str,
    kind: EngineKind,
    source: &str,
    instructions: Option<u64>,
    table: &Arc<ExportTable>,
) -> Option<Box<dyn Engine>> {
    let ext = if kind == EngineKind::Lua { "lua" } else { "js" };
    let path: PathBuf = std::env::temp_dir().join(format!(
        "budget_bench_{}_{}.{ext}",
        name.replace('/', "_"),
        std::process::id()
    ));
    let limits = ScriptLimits {
        instructions,
        memory: Some(256 << 20),
    };
    match engine::load_with(kind, &path, Some(source.as_bytes()), table.clone(), limits) {
        Ok(e) => Some(e),
        Err(e) => {
            eprintln!("skipping {name}: {e}");
            None
        }
    }
}

/// One route on a fresh message; the message is made outside the measured part in criterion.
fn route(engine: &mut dyn Engine, m: &mut SipMsg) {
    let outcome = engine.run(REQUEST_ROUTE, m, None).expect("route");
    black_box(outcome == RunOutcome::Returned);
}

/// `rounds` routes (messages made in advance, so the function holds the routes only).
fn rounds(engine: &mut dyn Engine, msgs: &mut [SipMsg]) {
    for m in msgs.iter_mut() {
        route(engine, m);
    }
}

macro_rules! ir_fns {
    ($($f:ident = $id:literal),*) => {$(
        #[inline(never)]
        fn $f(engine: &mut dyn Engine, msgs: &mut [SipMsg]) {
            // A distinct body, so the linker does not fold the five into one symbol.
            black_box($id);
            rounds(engine, msgs)
        }
    )*};
}
ir_fns!(
    ir_lua_none = 1,
    ir_lua_exact = 2,
    ir_lua_watched = 3,
    ir_js_none = 4,
    ir_js_budget = 5
);

/// Callgrind mode: each variant's routes in its own function.
fn ir(n: usize) {
    let table = table();
    let fns: [fn(&mut dyn Engine, &mut [SipMsg]); 5] = [
        ir_lua_none,
        ir_lua_exact,
        ir_lua_watched,
        ir_js_none,
        ir_js_budget,
    ];
    for ((name, kind, source, budget), f) in variants().into_iter().zip(fns) {
        let Some(mut engine) = load(name, kind, source, budget, &table) else {
            continue;
        };
        // Warm up (and check the route replies once).
        let mut check = msg();
        route(engine.as_mut(), &mut check);
        assert_eq!(check.outbox.len(), 1, "{name} replies once");
        let mut msgs: Vec<SipMsg> = (0..n).map(|_| msg()).collect();
        f(engine.as_mut(), &mut msgs);
        println!("{name}: {n} routes");
    }
}

fn bench(c: &mut Criterion) {
    let table = table();
    let mut group = c.benchmark_group("budget");
    for (name, kind, source, budget) in variants() {
        let Some(mut engine) = load(name, kind, source, budget, &table) else {
            continue;
        };
        group.bench_function(name, |b| {
            b.iter_batched_ref(msg, |m| route(engine.as_mut(), m), BatchSize::SmallInput)
        });
    }
    group.finish();
}

criterion_group!(benches, bench);

fn main() {
    if let Some(n) = std::env::var("BUDGET_IR").ok().and_then(|v| v.parse().ok()) {
        ir(n);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
