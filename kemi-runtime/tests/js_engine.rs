//! The JavaScript engine (`jsdt`, QuickJS) against real scripts (`tests/scripts/*.js`), with test
//! exports defined here: KSR call semantics, exit/drop/modf, loading and reloading, error
//! containment.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kemi_runtime::engine::{
    self, Engine, EngineKind, RunOutcome, ScriptError, REPLY_ROUTE, REQUEST_ROUTE,
};
use kemi_runtime::msg::LogRecord;
use kemi_runtime::table::{Enabled, ModuleSet};
use kemi_runtime::{kemi, ExportTable, SipMsg, Xval};

static TEST_MODULES: ModuleSet = ModuleSet {
    crate_name: "js_engine_test",
    modules: &["", "t", "opt"],
};

// --- core test exports -------------------------------------------------------------------

/// Log at info level (NONE result, one param).
#[kemi(name = "info")]
fn info(msg: &mut SipMsg, text: &str) {
    msg.log(kemi_runtime::msg::LogLevel::Info, text);
}

/// Mark the message dropped (NONE result, no params).
#[kemi(name = "set_drop")]
fn set_drop(msg: &mut SipMsg) {
    msg.route.drop = true;
}

/// Set a script flag.
#[kemi(name = "setsflag")]
fn setsflag(msg: &mut SipMsg, flag: i32) -> bool {
    match u32::try_from(flag) {
        Ok(f) if f < 64 => {
            msg.route.sflags |= 1 << f;
            true
        }
        _ => false,
    }
}

/// Test a script flag.
#[kemi(name = "issflagset")]
fn issflagset(msg: &mut SipMsg, flag: i32) -> bool {
    u32::try_from(flag).is_ok_and(|f| f < 64 && msg.route.sflags & (1 << f) != 0)
}

// --- module `t` ----------------------------------------------------------------------------

/// Always -1 (an int "false" that is truthy in JavaScript).
#[kemi(module = "t", name = "neg")]
fn neg(_msg: &mut SipMsg) -> i32 {
    -1
}

/// Shadowed by the core `info` for `KSR.x.modf`.
#[kemi(module = "t", name = "info")]
fn t_info(_msg: &mut SipMsg) -> i32 {
    -7
}

/// Always true.
#[kemi(module = "t", name = "is_a")]
fn is_a(_msg: &mut SipMsg) -> bool {
    true
}

/// Always false.
#[kemi(module = "t", name = "is_not")]
fn is_not(_msg: &mut SipMsg) -> bool {
    false
}

/// Its argument.
#[kemi(module = "t", name = "echo_int")]
fn echo_int(_msg: &mut SipMsg, n: i32) -> i32 {
    n
}

/// Its argument, as a string value.
#[kemi(module = "t", name = "echo_str")]
fn echo_str(_msg: &mut SipMsg, s: &str) -> Xval {
    Xval::str(s)
}

/// Byte length of its argument.
#[kemi(module = "t", name = "strlen")]
fn strlen(_msg: &mut SipMsg, s: &str) -> i32 {
    i32::try_from(s.len()).unwrap_or(i32::MAX)
}

/// Its long argument as a long value.
#[kemi(module = "t", name = "echo_long")]
fn echo_long(_msg: &mut SipMsg, _name: &str, n: i64) -> Xval {
    Xval::Long(n)
}

/// `s/n`.
#[kemi(module = "t", name = "mix")]
fn mix(_msg: &mut SipMsg, s: &str, n: i32) -> Xval {
    Xval::Str(format!("{s}/{n}"))
}

/// Six strings concatenated.
#[kemi(module = "t", name = "concat6")]
fn concat6(_msg: &mut SipMsg, a: &str, b: &str, c: &str, d: &str, e: &str, f: &str) -> Xval {
    Xval::Str([a, b, c, d, e, f].concat())
}

/// Null.
#[kemi(module = "t", name = "xnull")]
fn xnull(_msg: &mut SipMsg) -> Xval {
    Xval::Null
}

/// No value.
#[kemi(module = "t", name = "xnone")]
fn xnone(_msg: &mut SipMsg) -> Xval {
    Xval::None
}

/// A long beyond 32 bits.
#[kemi(module = "t", name = "xlong")]
fn xlong(_msg: &mut SipMsg) -> Xval {
    Xval::Long(5_000_000_000)
}

/// An xval int.
#[kemi(module = "t", name = "xint")]
fn xint(_msg: &mut SipMsg) -> Xval {
    Xval::Int(7)
}

/// An xval bool.
#[kemi(module = "t", name = "xbool")]
fn xbool(_msg: &mut SipMsg) -> Xval {
    Xval::Bool(true)
}

/// `{1, "two", {k = "v"}, {10, 20}}`.
#[kemi(module = "t", name = "xarr")]
fn xarr(_msg: &mut SipMsg) -> Xval {
    Xval::Array(vec![
        Xval::Int(1),
        Xval::str("two"),
        Xval::Dict(vec![("k".into(), Xval::str("v"))]),
        Xval::Array(vec![Xval::Int(10), Xval::Int(20)]),
    ])
}

/// `{a = 1, b = "x", c = {d = true}, n = nil}`.
#[kemi(module = "t", name = "xdict")]
fn xdict(_msg: &mut SipMsg) -> Xval {
    Xval::Dict(vec![
        ("a".into(), Xval::Int(1)),
        ("b".into(), Xval::str("x")),
        ("c".into(), Xval::Dict(vec![("d".into(), Xval::Bool(true))])),
        ("n".into(), Xval::Null),
    ])
}

/// Panics: a bug in an export must not take the worker down.
#[kemi(module = "t", name = "boom")]
fn boom(_msg: &mut SipMsg) -> i32 {
    panic!("boom")
}

// --- module `opt` (disabled in some tables) --------------------------------------------------

/// Always 1.
#[kemi(module = "opt", name = "f")]
fn opt_f(_msg: &mut SipMsg) -> i32 {
    1
}

// --- helpers ---------------------------------------------------------------------------------

fn table(enabled: Enabled) -> Arc<ExportTable> {
    let table = ExportTable::build(
        &kemi_runtime::__private::KEMI_EXPORTS,
        &[&TEST_MODULES],
        &enabled,
    );
    Arc::new(table.expect("test export table"))
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/scripts")
        .join(name)
}

fn load(name: &str) -> Box<dyn Engine> {
    engine::load(EngineKind::Jsdt, &script(name), table(Enabled::All))
        .unwrap_or_else(|e| panic!("loading {name}: {e}"))
}

fn msg() -> SipMsg {
    let raw = b"OPTIONS sip:alice@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK1\r\nFrom: <sip:b@127.0.0.1>;tag=1\r\nTo: <sip:alice@127.0.0.1>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    let message = kemi_runtime::sip::Message::parse(bytes::Bytes::from_static(raw)).expect("parse");
    let mut msg = SipMsg::new(message, Default::default(), Default::default());
    msg.captured_logs = Some(Vec::new());
    msg
}

fn logs(msg: &SipMsg) -> Vec<String> {
    msg.captured_logs
        .iter()
        .flatten()
        .map(|r: &LogRecord| r.text.clone())
        .collect()
}

/// 1-based line of the first line of script `name` containing `needle`.
fn line_of(name: &str, needle: &str) -> usize {
    let text = std::fs::read_to_string(script(name)).expect("read script");
    text.lines()
        .position(|l| l.contains(needle))
        .expect("needle in script")
        + 1
}

/// Run `callback` and require a normal return (a failed script-side check is an error).
fn run_ok(engine: &mut dyn Engine, callback: &str) -> SipMsg {
    let mut m = msg();
    match engine.run(callback, &mut m, None) {
        Ok(RunOutcome::Returned) => m,
        other => panic!("{callback}: {other:?}"),
    }
}

/// Run `callback` of `semantics.js` with `arg` and give the outcome and the message.
fn run_semantics(callback: &str, arg: Option<&str>) -> (Result<RunOutcome, ScriptError>, SipMsg) {
    let mut engine = load("semantics.js");
    let mut m = msg();
    let out = engine.run(callback, &mut m, arg);
    (out, m)
}

// --- call semantics ---------------------------------------------------------------------------

#[test]
fn ksr_calls_at_load_time_give_false() {
    run_ok(&mut *load("semantics.js"), "test_load_time_call");
}

#[test]
fn int_and_bool_results_stay_distinct() {
    run_ok(&mut *load("semantics.js"), "test_int_vs_bool");
}

#[test]
fn none_results_are_false() {
    let m = run_ok(&mut *load("semantics.js"), "test_none");
    assert!(m.route.drop, "set_drop ran");
    assert_eq!(logs(&m), ["x"]);
}

#[test]
fn xval_results_convert() {
    run_ok(&mut *load("semantics.js"), "test_xval");
}

#[test]
fn arguments_are_coerced() {
    run_ok(&mut *load("semantics.js"), "test_args");
}

#[test]
fn throwing_coercions_propagate_to_the_script() {
    run_ok(&mut *load("semantics.js"), "test_throwing_coercion");
}

#[test]
fn a_failed_check_in_the_script_is_reported() {
    // The harness itself must be able to fail: a script-side mismatch is a ScriptError.
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("js_engine_failing_check.js");
    std::fs::write(
        &path,
        "function ksr_request_route() {}\nfunction t() { if (KSR.t.echo_int(1) !== 2) throw new Error('mismatch'); }\n",
    )
    .expect("write");
    let mut engine = engine::load(EngineKind::Jsdt, &path, table(Enabled::All)).expect("load");
    let err = engine.run("t", &mut msg(), None).expect_err("mismatch");
    assert_eq!(err.message, "Error: mismatch");
}

#[test]
fn module_objects_follow_the_enabled_set() {
    let mut all = load("semantics.js");
    let mut m = msg();
    assert_eq!(
        all.run("test_globals", &mut m, Some("present")),
        Ok(RunOutcome::Returned)
    );

    let only_t = table(Enabled::Only(vec!["t".into()]));
    assert!(!only_t.has_module("opt"));
    let mut some = engine::load(EngineKind::Jsdt, &script("semantics.js"), only_t).expect("load");
    let mut m = msg();
    assert_eq!(
        some.run("test_globals", &mut m, Some("absent")),
        Ok(RunOutcome::Returned)
    );
}

#[test]
fn many_calls_in_one_run() {
    let m = run_ok(&mut *load("loops.js"), REQUEST_ROUTE);
    assert_eq!(logs(&m), ["sum 500500"]);
}

#[test]
fn two_engines_on_one_thread_keep_their_messages_apart() {
    let mut a = load("loops.js");
    let mut b = load("semantics.js");
    let mut ma = msg();
    let mut mb = msg();
    assert_eq!(
        a.run(REQUEST_ROUTE, &mut ma, None),
        Ok(RunOutcome::Returned)
    );
    assert_eq!(
        b.run(REQUEST_ROUTE, &mut mb, None),
        Ok(RunOutcome::Returned)
    );
    assert_eq!(logs(&ma), ["sum 500500"]);
    assert_eq!(logs(&mb), ["request"]);
}

// --- exit, drop, modf ---------------------------------------------------------------------------

#[test]
fn exit_in_nested_functions_ends_the_run() {
    let (out, m) = run_semantics("test_exit_nested", None);
    assert_eq!(out, Ok(RunOutcome::Exited));
    assert_eq!(logs(&m), ["before exit"]);
    assert!(!m.route.drop);
}

#[test]
fn exit_is_caught_by_try_catch() {
    let (out, m) = run_semantics("test_exit_caught", None);
    assert_eq!(out, Ok(RunOutcome::Returned));
    assert_eq!(logs(&m), ["caught string ~~ksr~exit~~"]);
}

#[test]
fn throwing_the_marker_string_is_an_exit() {
    let (out, _m) = run_semantics("test_exit_thrown_by_hand", None);
    assert_eq!(out, Ok(RunOutcome::Exited));
}

#[test]
fn drop_marks_and_exits() {
    let (out, m) = run_semantics("test_drop", None);
    assert_eq!(out, Ok(RunOutcome::Exited));
    assert!(m.route.drop);
    assert!(logs(&m).is_empty());
}

#[test]
fn modf_runs_exports_by_name() {
    let m = run_ok(&mut *load("semantics.js"), "test_modf");
    assert_eq!(logs(&m), ["via modf"]);
}

// --- runs -------------------------------------------------------------------------------------

#[test]
fn sflags_reset_for_the_run_and_restored() {
    let mut engine = load("semantics.js");
    let mut m = msg();
    m.route.sflags = 0b1;
    assert_eq!(
        engine.run("test_sflags", &mut m, None),
        Ok(RunOutcome::Returned)
    );
    assert_eq!(m.route.sflags, 0b1);
    // And again: flags set in one run do not leak into the next.
    assert_eq!(
        engine.run("test_sflags", &mut m, None),
        Ok(RunOutcome::Returned)
    );
}

#[test]
fn event_callbacks_get_their_argument() {
    let (out, m) = run_semantics("test_event", Some("core:worker-one-init"));
    assert_eq!(out, Ok(RunOutcome::Returned));
    assert_eq!(logs(&m), ["event core:worker-one-init"]);
}

#[test]
fn missing_callbacks() {
    let mut engine = load("semantics.js");
    let mut m = msg();
    assert!(engine.has_callback(REQUEST_ROUTE));
    assert!(engine.has_callback("test_event"));
    assert!(!engine.has_callback(REPLY_ROUTE));
    assert!(!engine.has_callback("not_a_function"));
    assert!(!engine.has_callback("loaded_call"));
    assert_eq!(
        engine.run(REPLY_ROUTE, &mut m, None),
        Ok(RunOutcome::Missing)
    );
    assert_eq!(
        engine.run("no_such_failure_route", &mut m, None),
        Ok(RunOutcome::Missing)
    );
    assert_eq!(
        engine.run("not_a_function", &mut m, None),
        Ok(RunOutcome::Missing)
    );
    assert_eq!(
        engine.run(REQUEST_ROUTE, &mut m, None),
        Ok(RunOutcome::Returned)
    );
    assert_eq!(logs(&m), ["request"]);
}

#[test]
fn runtime_error_is_contained() {
    let mut engine = load("semantics.js");
    let mut m = msg();
    let err = engine
        .run("test_runtime_error", &mut m, None)
        .expect_err("error");
    let path = script("semantics.js");
    let line = line_of("semantics.js", "KSR.info(t.field)");
    assert_eq!(err.location, Some(format!("{}:{line}", path.display())));
    assert!(err.message.starts_with("TypeError: "), "{}", err.message);
    assert!(
        err.traceback.contains("test_runtime_error"),
        "{}",
        err.traceback
    );
    assert!(err
        .to_string()
        .starts_with(&format!("{}:{line}: TypeError", path.display())));
    // The engine stays usable, and the message is no longer lent.
    assert_eq!(
        engine.run(REQUEST_ROUTE, &mut m, None),
        Ok(RunOutcome::Returned)
    );
    assert_eq!(logs(&m), ["request"]);
}

#[test]
fn error_in_a_return_expression_points_at_the_function() {
    let (out, _m) = run_semantics("test_runtime_error_in_return", None);
    let err = out.expect_err("error");
    let line = line_of("semantics.js", "function test_runtime_error_in_return");
    assert!(
        err.location
            .as_deref()
            .is_some_and(|l| l.ends_with(&format!("semantics.js:{line}"))),
        "{:?}",
        err.location
    );
}

#[test]
fn thrown_errors_and_values() {
    let (out, _m) = run_semantics("test_throw_error", None);
    let err = out.expect_err("error");
    assert_eq!(err.message, "RangeError: out of range");
    let line = line_of("semantics.js", "new RangeError");
    assert!(
        err.location
            .as_deref()
            .is_some_and(|l| l.ends_with(&format!("semantics.js:{line}"))),
        "{:?}",
        err.location
    );

    let (out, _m) = run_semantics("test_throw_value", None);
    let err = out.expect_err("error");
    assert_eq!(err.message, "42");
    assert_eq!(err.location, None, "a thrown number has no stack");
}

#[test]
fn runaway_recursion_is_contained() {
    let mut engine = load("semantics.js");
    let mut m = msg();
    let err = engine
        .run("test_recursion", &mut m, None)
        .expect_err("error");
    assert!(err.message.contains("stack"), "{}", err.message);
    run_ok(&mut *engine, "test_int_vs_bool");
}

#[test]
fn panicking_export_is_contained() {
    let mut engine = load("semantics.js");
    let mut m = msg();
    let err = engine.run("test_panic", &mut m, None).expect_err("error");
    assert_eq!(err.message, "Error: KSR.t.boom panicked");
    let at = format!(
        "{}:{}",
        script("semantics.js").display(),
        line_of("semantics.js", "KSR.t.boom()")
    );
    assert_eq!(err.location, Some(at));
    run_ok(&mut *engine, "test_int_vs_bool");
}

// --- loading and reloading ----------------------------------------------------------------------

#[test]
fn syntax_error_names_file_and_line() {
    let path = script("syntax_error.js");
    let err = engine::load(EngineKind::Jsdt, &path, table(Enabled::All)).expect_err("syntax error");
    assert_eq!(err.file, path);
    assert_eq!(err.line, Some(3));
    assert!(err.cause.starts_with("SyntaxError: "), "{}", err.cause);
    assert!(err
        .to_string()
        .starts_with(&format!("{}:3: SyntaxError", path.display())));
}

#[test]
fn top_level_runtime_error_names_file_and_line() {
    let path = script("toplevel_error.js");
    let err = engine::load(EngineKind::Jsdt, &path, table(Enabled::All)).expect_err("error");
    assert_eq!(err.line, Some(3));
    assert!(err.cause.starts_with("TypeError: "), "{}", err.cause);
}

#[test]
fn missing_request_route_fails_to_load() {
    for name in ["no_request_route.js", "request_route_not_function.js"] {
        let path = script(name);
        let err = engine::load(EngineKind::Jsdt, &path, table(Enabled::All)).expect_err("error");
        assert_eq!(
            err.to_string(),
            format!(
                "{}: function ksr_request_route is not defined",
                path.display()
            )
        );
    }
}

#[test]
fn exit_while_loading_fails_to_load() {
    let path = script("exit_at_load.js");
    let err = engine::load(EngineKind::Jsdt, &path, table(Enabled::All)).expect_err("error");
    assert_eq!(err.cause, "KSR.x.exit() called while loading the script");
}

#[test]
fn unreadable_file_fails_to_load() {
    let err = engine::load(
        EngineKind::Jsdt,
        &script("does_not_exist.js"),
        table(Enabled::All),
    )
    .expect_err("error");
    assert!(err.cause.contains("cannot read"), "{}", err.cause);
}

#[test]
fn reload_replaces_callbacks_and_keeps_them_on_failure() {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("js_engine_reload.js");
    std::fs::write(
        &path,
        "var count = 0;\nfunction ksr_request_route() { KSR.info('v1'); }\n",
    )
    .expect("write");
    let mut engine = engine::load(EngineKind::Jsdt, &path, table(Enabled::All)).expect("load");
    assert_eq!(logs(&run_ok(&mut *engine, REQUEST_ROUTE)), ["v1"]);

    std::fs::write(
        &path,
        "var kept = typeof count;\nfunction ksr_request_route() { KSR.info('v2 ' + kept); }\nfunction ksr_reply_route() { KSR.info('r2'); }\n",
    )
    .expect("write");
    engine.reload().expect("reload");
    assert_eq!(
        logs(&run_ok(&mut *engine, REQUEST_ROUTE)),
        ["v2 number"],
        "old globals stay"
    );
    assert_eq!(
        logs(&run_ok(&mut *engine, REPLY_ROUTE)),
        ["r2"],
        "new callback cached"
    );

    std::fs::write(&path, "function ksr_request_route() {\n  KSR.info('v3');\n").expect("write");
    let err = engine.reload().expect_err("syntax error");
    assert_eq!(err.file, path);
    assert!(err.line.is_some(), "{err}");
    assert_eq!(
        logs(&run_ok(&mut *engine, REQUEST_ROUTE)),
        ["v2 number"],
        "old definitions in effect"
    );
}

#[test]
fn reload_of_top_level_let_is_a_redeclaration() {
    // Documented caveat: the global lexical scope survives a reload, as the globals do.
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("js_engine_reload_let.js");
    std::fs::write(&path, "let x = 1;\nfunction ksr_request_route() {}\n").expect("write");
    let mut engine = engine::load(EngineKind::Jsdt, &path, table(Enabled::All)).expect("load");
    let err = engine.reload().expect_err("redeclaration");
    assert!(err.cause.contains("redeclar"), "{err}");
    run_ok(&mut *engine, REQUEST_ROUTE);
}

#[test]
fn engine_kind_names() {
    assert_eq!(EngineKind::from_name("JSDT"), Some(EngineKind::Jsdt));
    assert_eq!(EngineKind::Jsdt.name(), "jsdt");
    assert_eq!(EngineKind::from_extension(".js"), Some(EngineKind::Jsdt));
    assert_eq!(
        EngineKind::from_path(Path::new("/x/route.JS")),
        Some(EngineKind::Jsdt)
    );
    assert!(EngineKind::ALL.contains(&EngineKind::Jsdt));
    assert_eq!(load("semantics.js").kind(), EngineKind::Jsdt);
}
