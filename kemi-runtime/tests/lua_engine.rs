//! The Lua engine against real scripts (`tests/scripts/`), with test exports defined here:
//! KSR call semantics, exit/drop/modf, loading and reloading, error containment.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kemi_runtime::engine::{self, Engine, EngineKind, RunOutcome, REPLY_ROUTE, REQUEST_ROUTE};
use kemi_runtime::msg::LogRecord;
use kemi_runtime::table::{Enabled, ModuleSet};
use kemi_runtime::{kemi, ExportTable, SipMsg, Xval};

static TEST_MODULES: ModuleSet = ModuleSet {
    crate_name: "lua_engine_test",
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

/// Always -1 (an int "false" that is truthy in Lua).
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
    let table = ExportTable::build(kemi_runtime::linked_exports(), &[&TEST_MODULES], &enabled);
    Arc::new(table.expect("test export table"))
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/scripts")
        .join(name)
}

fn load(name: &str) -> Box<dyn Engine> {
    engine::load(EngineKind::Lua, &script(name), table(Enabled::All))
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

/// Run `callback` and require a normal return (a failed Lua-side check is an error).
fn run_ok(engine: &mut dyn Engine, callback: &str) -> SipMsg {
    let mut m = msg();
    match engine.run(callback, &mut m, None) {
        Ok(RunOutcome::Returned) => m,
        other => panic!("{callback}: {other:?}"),
    }
}

// --- call semantics ---------------------------------------------------------------------------

#[test]
fn ksr_calls_at_load_time_give_false() {
    run_ok(&mut *load("semantics.lua"), "test_load_time_call");
}

#[test]
fn int_and_bool_results_stay_distinct() {
    run_ok(&mut *load("semantics.lua"), "test_int_vs_bool");
}

#[test]
fn none_result_quirk() {
    let m = run_ok(&mut *load("semantics.lua"), "test_none_quirk");
    assert!(m.route.drop, "set_drop ran");
    assert_eq!(logs(&m), ["x"]);
}

#[test]
fn xval_results_convert() {
    run_ok(&mut *load("semantics.lua"), "test_xval");
}

#[test]
fn argument_types_and_counts() {
    run_ok(&mut *load("semantics.lua"), "test_args");
}

#[test]
fn module_tables_follow_the_enabled_set() {
    let mut all = load("semantics.lua");
    let mut m = msg();
    assert_eq!(
        all.run("test_globals", &mut m, Some("present")),
        Ok(RunOutcome::Returned)
    );

    let only_t = table(Enabled::Only(vec!["t".into()]));
    assert!(!only_t.has_module("opt"));
    let mut some = engine::load(EngineKind::Lua, &script("semantics.lua"), only_t).expect("load");
    let mut m = msg();
    assert_eq!(
        some.run("test_globals", &mut m, Some("absent")),
        Ok(RunOutcome::Returned)
    );
}

#[test]
fn many_calls_in_one_run() {
    let m = run_ok(&mut *load("loops.lua"), REQUEST_ROUTE);
    assert_eq!(logs(&m), ["sum 500500"]);
}

// --- exit, drop, modf ---------------------------------------------------------------------------

#[test]
fn exit_in_nested_functions_ends_the_run() {
    let mut engine = load("semantics.lua");
    let mut m = msg();
    assert_eq!(
        engine.run("test_exit_nested", &mut m, None),
        Ok(RunOutcome::Exited)
    );
    assert_eq!(logs(&m), ["before exit"]);
    assert!(!m.route.drop);
}

#[test]
fn exit_is_caught_by_pcall() {
    let m = run_ok(&mut *load("semantics.lua"), "test_exit_pcall");
    assert_eq!(logs(&m), ["caught false ~~ksr~exit~~"]);
}

#[test]
fn drop_marks_and_exits() {
    let mut engine = load("semantics.lua");
    let mut m = msg();
    assert_eq!(
        engine.run("test_drop", &mut m, None),
        Ok(RunOutcome::Exited)
    );
    assert!(m.route.drop);
    assert!(logs(&m).is_empty());
}

#[test]
fn modf_runs_exports_by_name() {
    let m = run_ok(&mut *load("semantics.lua"), "test_modf");
    assert_eq!(logs(&m), ["via modf"]);
}

// --- runs -------------------------------------------------------------------------------------

#[test]
fn sflags_reset_for_the_run_and_restored() {
    let mut engine = load("semantics.lua");
    let mut m = msg();
    m.route.sflags = 0b1;
    assert_eq!(
        engine.run("test_sflags", &mut m, None),
        Ok(RunOutcome::Returned)
    );
    assert_eq!(m.route.sflags, 0b1);
}

#[test]
fn event_callbacks_get_their_argument() {
    let mut engine = load("semantics.lua");
    let mut m = msg();
    assert_eq!(
        engine.run("test_event", &mut m, Some("core:worker-one-init")),
        Ok(RunOutcome::Returned)
    );
    assert_eq!(logs(&m), ["event core:worker-one-init"]);
}

#[test]
fn missing_callbacks() {
    let mut engine = load("semantics.lua");
    let mut m = msg();
    assert!(engine.has_callback(REQUEST_ROUTE));
    assert!(!engine.has_callback(REPLY_ROUTE));
    assert!(!engine.has_callback("loaded_call"), "not a function");
    assert_eq!(
        engine.run(REPLY_ROUTE, &mut m, None),
        Ok(RunOutcome::Missing)
    );
    assert_eq!(
        engine.run("no_such_failure_route", &mut m, None),
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
    let mut engine = load("semantics.lua");
    let mut m = msg();
    let err = engine
        .run("test_runtime_error", &mut m, None)
        .expect_err("error");
    let path = script("semantics.lua");
    let line = line_of("semantics.lua", "return t.field");
    assert_eq!(err.location, Some(format!("{}:{line}", path.display())));
    assert!(err.message.contains("attempt to index"), "{}", err.message);
    assert!(
        err.traceback.contains("test_runtime_error"),
        "{}",
        err.traceback
    );
    assert!(err
        .to_string()
        .starts_with(&format!("{}:{line}: ", path.display())));
    // The engine stays usable, and the message is no longer lent.
    assert_eq!(
        engine.run(REQUEST_ROUTE, &mut m, None),
        Ok(RunOutcome::Returned)
    );
    assert_eq!(logs(&m), ["request"]);
}

#[test]
fn panicking_export_is_contained() {
    let mut engine = load("semantics.lua");
    let mut m = msg();
    let err = engine.run("test_panic", &mut m, None).expect_err("error");
    assert_eq!(err.message, "KSR.t.boom panicked");
    let at = format!(
        "{}:{}",
        script("semantics.lua").display(),
        line_of("semantics.lua", "KSR.t.boom()")
    );
    assert_eq!(err.location, Some(at));
    run_ok(&mut *engine, "test_int_vs_bool");
}

#[test]
fn os_exit_is_blocked() {
    let mut engine = load("semantics.lua");
    let mut m = msg();
    let err = engine.run("test_os_exit", &mut m, None).expect_err("error");
    assert_eq!(err.message, "os.exit is disabled in sipd; use KSR.x.exit()");
    assert!(err.location.is_some_and(|l| l.contains("semantics.lua:")));
    assert_eq!(
        engine.run(REQUEST_ROUTE, &mut m, None),
        Ok(RunOutcome::Returned)
    );
}

// --- loading and reloading ----------------------------------------------------------------------

#[test]
fn syntax_error_names_file_and_line() {
    let path = script("syntax_error.lua");
    let err = engine::load(EngineKind::Lua, &path, table(Enabled::All)).expect_err("syntax error");
    assert_eq!(err.file, path);
    assert_eq!(err.line, Some(3));
    assert!(err.cause.contains("unexpected symbol"), "{}", err.cause);
    assert!(err
        .to_string()
        .starts_with(&format!("{}:3: ", path.display())));
}

#[test]
fn top_level_runtime_error_names_file_and_line() {
    let path = script("toplevel_error.lua");
    let err = engine::load(EngineKind::Lua, &path, table(Enabled::All)).expect_err("error");
    assert_eq!(err.line, Some(3));
    assert!(err.cause.contains("attempt to index"), "{}", err.cause);
}

#[test]
fn missing_request_route_fails_to_load() {
    let path = script("no_request_route.lua");
    let err = engine::load(EngineKind::Lua, &path, table(Enabled::All)).expect_err("error");
    assert_eq!(
        err.to_string(),
        format!(
            "{}: function ksr_request_route is not defined",
            path.display()
        )
    );
}

#[test]
fn unreadable_file_fails_to_load() {
    let err = engine::load(
        EngineKind::Lua,
        &script("does_not_exist.lua"),
        table(Enabled::All),
    )
    .expect_err("error");
    assert!(err.cause.contains("cannot read"), "{}", err.cause);
}

#[test]
fn reload_replaces_callbacks_and_keeps_them_on_failure() {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("lua_engine_reload.lua");
    std::fs::write(&path, "function ksr_request_route() KSR.info('v1') end\n").expect("write");
    let mut engine = engine::load(EngineKind::Lua, &path, table(Enabled::All)).expect("load");
    assert_eq!(logs(&run_ok(&mut *engine, REQUEST_ROUTE)), ["v1"]);

    std::fs::write(
        &path,
        "function ksr_request_route() KSR.info('v2') end\nfunction ksr_reply_route() KSR.info('r2') end\n",
    )
    .expect("write");
    engine.reload().expect("reload");
    assert_eq!(logs(&run_ok(&mut *engine, REQUEST_ROUTE)), ["v2"]);
    assert_eq!(
        logs(&run_ok(&mut *engine, REPLY_ROUTE)),
        ["r2"],
        "new callback cached"
    );

    std::fs::write(&path, "function ksr_request_route() KSR.info('v3')\n").expect("write");
    let err = engine.reload().expect_err("syntax error");
    assert_eq!(err.file, path);
    assert_eq!(err.line, Some(2));
    assert_eq!(
        logs(&run_ok(&mut *engine, REQUEST_ROUTE)),
        ["v2"],
        "old definitions in effect"
    );
}

#[test]
fn engine_kind_names() {
    assert_eq!(EngineKind::from_name("LUA"), Some(EngineKind::Lua));
    assert_eq!(EngineKind::from_name("cobol"), None);
    assert_eq!(EngineKind::from_extension(".lua"), Some(EngineKind::Lua));
    assert_eq!(
        EngineKind::from_path(Path::new("/x/route.lua")),
        Some(EngineKind::Lua)
    );
    assert_eq!(EngineKind::from_path(Path::new("/x/route.cfg")), None);
    assert_eq!(load("semantics.lua").kind(), EngineKind::Lua);
}
