//! The JavaScript engine's [`ScriptLimits`]: an endless loop (plain, inside `try`/`catch`/
//! `finally`, in a recursion) and a memory hog each fail one run with a recognizable error, the
//! next run on the same interpreter is served, and a normal route under the budget is unaffected.
//! Also: the engine registry builds a JavaScript engine from the source text it is given.
#![cfg(feature = "js")]

use std::path::PathBuf;
use std::sync::Arc;

use kemi_runtime::engine::js::{JsEngine, POLL_PERIOD};
use kemi_runtime::engine::limits::{LimitKind, ScriptLimits};
use kemi_runtime::engine::{self, Engine, EngineKind, RunOutcome, ScriptError, REQUEST_ROUTE};
use kemi_runtime::table::{Enabled, ModuleSet};
use kemi_runtime::{kemi, ExportTable, SipMsg};

static TEST_MODULES: ModuleSet = ModuleSet {
    crate_name: "js_limits_test",
    modules: &[""],
};

/// Set branch flag 1, so a test sees that a run got to its end.
#[kemi(name = "mark")]
fn mark(msg: &mut SipMsg) {
    msg.route.bflags |= 2;
}

const SCRIPT: &str = r#"
var kept = [];
function ksr_request_route() {
    KSR.mark();
}
function spin() {
    var n = 0;
    while (true) { n = n + 1; }
}
function spin_in_try() {
    while (true) {
        try {
            try { while (true) {} } catch (e) { while (true) {} } finally { while (true) {} }
        } catch (e) {}
    }
}
function spin_in_recursion(d) {
    if (d === undefined) d = 0;
    if (d > 200) return;
    for (;;) { try { spin_in_recursion(d + 1); } catch (e) {} }
}
function hog() {
    var t = [];
    for (var i = 0; i < 100000000; i++) { t.push("x".repeat(64) + i); }
}
function hog_in_catch() {
    try { hog(); } catch (e) {}
    var t = [];
    for (var i = 0; i < 100000000; i++) { t.push({ i: i }); }
}
function hog_big_string() {
    var s = "x";
    while (true) { s = s + s; }
}
function hog_kept() {
    for (var i = 0; i < 100000000; i++) { kept.push("y".repeat(64) + i); }
}
function busy() {
    var n = 0;
    for (var i = 0; i < 100000; i++) { n += i; }
    KSR.mark();
}
"#;

struct Script(PathBuf);

impl Script {
    fn new(tag: &str, text: &str) -> Script {
        let p =
            std::env::temp_dir().join(format!("sipd-js-limits-{tag}-{}.js", std::process::id()));
        std::fs::write(&p, text).expect("write script");
        Script(p)
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn table() -> Arc<ExportTable> {
    let t = ExportTable::build(
        kemi_runtime::linked_exports(),
        &[&TEST_MODULES],
        &Enabled::All,
    );
    Arc::new(t.expect("test export table"))
}

fn msg() -> SipMsg {
    let raw = b"OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK1\r\nFrom: <sip:b@127.0.0.1>;tag=1\r\nTo: <sip:a@127.0.0.1>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    let message = kemi_runtime::sip::Message::parse(bytes::Bytes::from_static(raw)).expect("parse");
    SipMsg::new(message, Default::default(), Default::default())
}

const LIMITS: ScriptLimits = ScriptLimits {
    instructions: Some(200_000),
    memory: Some(8 << 20),
};

fn engine(tag: &str) -> (JsEngine, Script) {
    engine_with(tag, LIMITS)
}

fn engine_with(tag: &str, limits: ScriptLimits) -> (JsEngine, Script) {
    let s = Script::new(tag, SCRIPT);
    let e = JsEngine::load_with(&s.0, None, table(), limits).expect("load");
    (e, s)
}

fn fail(e: &mut dyn Engine, callback: &str) -> ScriptError {
    let started = std::time::Instant::now();
    let r = e.run(callback, &mut msg(), None);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{callback} ran {:?}",
        started.elapsed()
    );
    r.expect_err(callback)
}

fn served_by(e: &mut dyn Engine, callback: &str) {
    let mut m = msg();
    assert_eq!(
        e.run(callback, &mut m, None).expect("run"),
        RunOutcome::Returned
    );
    assert_eq!(m.route.bflags & 2, 2, "{callback} ran to its end");
}

fn served(e: &mut dyn Engine) {
    served_by(e, REQUEST_ROUTE);
}

#[test]
fn endless_loop_fails_one_run_at_its_function() {
    let (mut e, _s) = engine("loop");
    let err = fail(&mut e, "spin");
    assert_eq!(LimitKind::of(&err), Some(LimitKind::Instructions), "{err}");
    assert_eq!(err.message, "instruction limit exceeded", "{err:?}");
    // QuickJS does not record the position of a jump, so the interrupt is reported at the
    // function that was running.
    let line = SCRIPT
        .lines()
        .position(|l| l.contains("function spin()"))
        .expect("line")
        + 1;
    let loc = err.location.clone().unwrap_or_default();
    assert!(
        loc.contains("sipd-js-limits-loop") && loc.ends_with(&format!(":{line}")),
        "{err:?}"
    );
    assert!(err.traceback.contains("at spin ("), "{err:?}");
    served(&mut e);
    // Twice in a row: the budget is re-armed for each run.
    assert_eq!(
        LimitKind::of(&fail(&mut e, "spin")),
        Some(LimitKind::Instructions)
    );
    served(&mut e);
}

#[test]
fn try_catch_finally_and_recursion_do_not_escape_the_budget() {
    let (mut e, _s) = engine("escape");
    for cb in ["spin_in_try", "spin_in_recursion"] {
        let err = fail(&mut e, cb);
        assert_eq!(
            LimitKind::of(&err),
            Some(LimitKind::Instructions),
            "{cb}: {err}"
        );
        served(&mut e);
    }
}

#[test]
fn memory_hog_fails_one_run_and_memory_is_given_back() {
    // A budget large enough that memory runs out first.
    let limits = ScriptLimits {
        instructions: Some(500_000_000),
        ..LIMITS
    };
    let (mut e, _s) = engine_with("hog", limits);
    for cb in ["hog", "hog_in_catch", "hog_big_string", "hog"] {
        let err = fail(&mut e, cb);
        assert_eq!(LimitKind::of(&err), Some(LimitKind::Memory), "{cb}: {err}");
        served(&mut e);
    }
}

#[test]
fn memory_kept_in_a_global_fails_every_allocating_run_but_not_the_route() {
    let limits = ScriptLimits {
        instructions: None,
        ..LIMITS
    };
    let (mut e, _s) = engine_with("kept", limits);
    let err = fail(&mut e, "hog_kept");
    assert_eq!(LimitKind::of(&err), Some(LimitKind::Memory), "{err}");
    // The route allocates nothing, so it still runs with the heap nearly full.
    served(&mut e);
}

#[test]
fn normal_route_under_the_budget_is_unaffected() {
    // `busy` makes about 200 000 polls (a test and a jump per iteration): well under a budget
    // of 50 periods.
    let limits = ScriptLimits {
        instructions: Some(50 * POLL_PERIOD),
        memory: Some(8 << 20),
    };
    let (mut e, _s) = engine_with("normal", limits);
    for _ in 0..50 {
        served(&mut e);
        served_by(&mut e, "busy");
    }
    // The same loop with a smaller budget is stopped.
    let tight = ScriptLimits {
        instructions: Some(2 * POLL_PERIOD),
        memory: None,
    };
    let (mut t, _s2) = engine_with("tight", tight);
    let err = fail(&mut t, "busy");
    assert_eq!(LimitKind::of(&err), Some(LimitKind::Instructions), "{err}");
    served(&mut t);
}

#[test]
fn unlimited_engine_runs_long_loops() {
    let s = Script::new(
        "unlimited",
        "function ksr_request_route() { for (var i = 0; i < 3000000; i++) {} KSR.mark(); }\n",
    );
    let mut e = JsEngine::load_with(&s.0, None, table(), ScriptLimits::default()).expect("load");
    served(&mut e);
    let mut limited = JsEngine::load_with(&s.0, None, table(), LIMITS).expect("load");
    let err = fail(&mut limited, REQUEST_ROUTE);
    assert_eq!(LimitKind::of(&err), Some(LimitKind::Instructions));
}

#[test]
fn endless_loop_at_top_level_fails_the_load() {
    let s = Script::new(
        "toplevel",
        "while (true) {}\nfunction ksr_request_route() {}\n",
    );
    let err = JsEngine::load_with(&s.0, None, table(), LIMITS).expect_err("load must fail");
    assert!(
        err.cause.contains("instruction limit exceeded") && err.line == Some(1),
        "{err:?}"
    );
}

#[test]
fn ordinary_errors_are_not_limit_hits() {
    let s = Script::new(
        "plain",
        "function ksr_request_route() { throw new Error('out of luck'); }\n",
    );
    let mut e = JsEngine::load_with(&s.0, None, table(), LIMITS).expect("load");
    let err = fail(&mut e, REQUEST_ROUTE);
    assert_eq!(LimitKind::of(&err), None, "{err}");
    assert_eq!(err.message, "Error: out of luck");
}

#[test]
fn registry_builds_from_the_source_given_with_the_limits() {
    let s = Script::new("source", "this is not javascript\n");
    let text = b"function ksr_request_route() { KSR.mark(); }\nfunction spin() { for (;;) {} }\n";
    let mut e = engine::load_with(EngineKind::Jsdt, &s.0, Some(text), table(), LIMITS)
        .expect("load from source");
    served(e.as_mut());
    let err = fail(e.as_mut(), "spin");
    assert_eq!(LimitKind::of(&err), Some(LimitKind::Instructions), "{err}");
    served(e.as_mut());
    // Reload re-reads the file, which does not parse: the loaded callbacks stay.
    assert!(e.reload().is_err());
    served(e.as_mut());
}

#[test]
fn registry_builds_lua_from_the_source_given() {
    let s = Script::new("lua-source", "this is not lua\n");
    let mut e = engine::load_with(
        EngineKind::Lua,
        &s.0,
        Some(b"function ksr_request_route() KSR.mark() end"),
        table(),
        LIMITS,
    )
    .expect("load from source");
    served(e.as_mut());
}
