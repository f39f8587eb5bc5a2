//! Cost of one `KSR.*` call from Lua against calling the Rust export directly.
//!
//! - `direct/*`: the plain Rust fn, and the same export through its trampoline (as engines call it).
//! - `lua/*`: one engine run whose callback makes 1000 calls in a Lua loop; divide by 1000 for
//!   the per-call time. `lua/empty_loop` is the bare loop, to subtract.
//!
//! Run with `cargo bench -p sipd-benches --bench ksr_call`.

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use kemi_runtime::engine::{self, Engine, EngineKind, RunOutcome};
use kemi_runtime::table::{Enabled, ModuleSet};
use kemi_runtime::{kemi, Arg, ExportTable, SipMsg};

static BENCH_MODULES: ModuleSet = ModuleSet {
    crate_name: "ksr_call_bench",
    modules: &["b"],
};

/// An int export: its argument plus one.
#[kemi(module = "b", name = "int_fn")]
fn int_fn(_msg: &mut SipMsg, n: i32) -> i32 {
    n.wrapping_add(1)
}

/// A str export: the length of its argument.
#[kemi(module = "b", name = "str_fn")]
fn str_fn(_msg: &mut SipMsg, s: &str) -> i32 {
    s.len() as i32
}

const SCRIPT: &str = r#"
function ksr_request_route() end

function empty_loop()
    for i = 1, 1000 do end
end

function int_calls()
    for i = 1, 1000 do KSR.b.int_fn(i) end
end

function str_calls()
    for i = 1, 1000 do KSR.b.str_fn("sip:alice@example.com") end
end

function int_calls_local()
    local f = KSR.b.int_fn
    for i = 1, 1000 do f(i) end
end

function str_calls_local()
    local f = KSR.b.str_fn
    for i = 1, 1000 do f("sip:alice@example.com") end
end
"#;

fn msg() -> SipMsg {
    let raw = b"OPTIONS sip:alice@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK1\r\nFrom: <sip:b@127.0.0.1>;tag=1\r\nTo: <sip:alice@127.0.0.1>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    let message = kemi_runtime::sip::Message::parse(bytes::Bytes::from_static(raw)).expect("parse");
    SipMsg::new(message, Default::default(), Default::default())
}

fn setup() -> (Arc<ExportTable>, Box<dyn Engine>) {
    let table = ExportTable::build(
        kemi_runtime::linked_exports(),
        &[&BENCH_MODULES],
        &Enabled::All,
    )
    .expect("export table");
    let table = Arc::new(table);
    let path: PathBuf =
        std::env::temp_dir().join(format!("ksr_call_bench_{}.lua", std::process::id()));
    std::fs::write(&path, SCRIPT).expect("write script");
    let engine = engine::load(EngineKind::Lua, &path, table.clone()).expect("load script");
    let _ = std::fs::remove_file(&path);
    (table, engine)
}

fn bench(c: &mut Criterion) {
    let (table, mut engine) = setup();
    let mut m = msg();

    let mut direct = c.benchmark_group("direct");
    direct.bench_function("int_fn/plain", |b| {
        b.iter(|| int_fn(black_box(&mut m), black_box(5)))
    });
    direct.bench_function("str_fn/plain", |b| {
        b.iter(|| str_fn(black_box(&mut m), black_box("sip:alice@example.com")))
    });
    let int_slot = table.lookup("b", "int_fn").expect("int_fn slot");
    let str_slot = table.lookup("b", "str_fn").expect("str_fn slot");
    direct.bench_function("int_fn/trampoline", |b| {
        b.iter(|| table.call(black_box(int_slot), &mut m, &[Arg::Int(black_box(5))]))
    });
    direct.bench_function("str_fn/trampoline", |b| {
        b.iter(|| {
            table.call(
                black_box(str_slot),
                &mut m,
                &[Arg::Str(black_box("sip:alice@example.com"))],
            )
        })
    });
    direct.finish();

    let mut lua = c.benchmark_group("lua_x1000");
    for callback in [
        "empty_loop",
        "int_calls",
        "str_calls",
        "int_calls_local",
        "str_calls_local",
    ] {
        lua.bench_function(callback, |b| {
            b.iter(|| {
                let out = engine.run(callback, &mut m, None);
                assert_eq!(out, Ok(RunOutcome::Returned));
            })
        });
    }
    lua.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
