//! The JavaScript engine (`jsdt`, QuickJS) against real scripts (`tests/scripts/*.js`), with the
//! test exports of `common`: KSR call semantics, exit/drop/modf, loading and reloading, error
//! containment.

mod common;

use std::path::Path;

use kemi_runtime::engine::{
    self, Engine, EngineKind, LoadError, RunOutcome, ScriptError, REPLY_ROUTE, REQUEST_ROUTE,
};
use kemi_runtime::table::Enabled;
use kemi_runtime::SipMsg;

use common::{line_of, logs, msg, run_ok, script, table};

/// Script `name` of `tests/scripts`, loaded.
fn load(name: &str) -> Box<dyn Engine> {
    common::load(EngineKind::Jsdt, name, table(Enabled::All))
}

/// The script at `path`, loaded with every test module enabled.
fn load_path(path: &Path) -> Result<Box<dyn Engine>, LoadError> {
    engine::load(EngineKind::Jsdt, path, table(Enabled::All))
}

/// Run `callback` of `semantics.js` and require a normal return.
fn semantics(callback: &str) -> SipMsg {
    run_ok(&mut *load("semantics.js"), callback)
}

/// Run `callback` of `semantics.js` with `arg` and give the outcome and the message.
fn run_semantics(callback: &str, arg: Option<&str>) -> (Result<RunOutcome, ScriptError>, SipMsg) {
    let mut engine = load("semantics.js");
    let mut m = msg();
    let out = engine.run(callback, &mut m, arg);
    (out, m)
}

/// Require `err` to be located at the first line of `semantics.js` containing `needle`.
fn assert_at_line(err: &ScriptError, needle: &str) {
    let line = line_of("semantics.js", needle);
    assert!(
        err.location
            .as_deref()
            .is_some_and(|l| l.ends_with(&format!("semantics.js:{line}"))),
        "{:?}",
        err.location
    );
}

// --- call semantics ---------------------------------------------------------------------------

#[test]
fn ksr_calls_at_load_time_give_false() {
    semantics("test_load_time_call");
}

#[test]
fn int_and_bool_results_stay_distinct() {
    semantics("test_int_vs_bool");
}

#[test]
fn none_results_are_false() {
    let m = semantics("test_none");
    assert!(m.route.drop, "set_drop ran");
    assert_eq!(logs(&m), ["x"]);
}

#[test]
fn xval_results_convert() {
    semantics("test_xval");
}

#[test]
fn arguments_are_coerced() {
    semantics("test_args");
}

#[test]
fn throwing_coercions_propagate_to_the_script() {
    semantics("test_throwing_coercion");
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
    let mut engine = load_path(&path).expect("load");
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
    let m = semantics("test_modf");
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
    assert_at_line(&err, "function test_runtime_error_in_return");
}

#[test]
fn thrown_errors_and_values() {
    let (out, _m) = run_semantics("test_throw_error", None);
    let err = out.expect_err("error");
    assert_eq!(err.message, "RangeError: out of range");
    assert_at_line(&err, "new RangeError");

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
    let err = load_path(&path).expect_err("syntax error");
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
    let err = load_path(&path).expect_err("error");
    assert_eq!(err.line, Some(3));
    assert!(err.cause.starts_with("TypeError: "), "{}", err.cause);
}

#[test]
fn missing_request_route_fails_to_load() {
    for name in ["no_request_route.js", "request_route_not_function.js"] {
        let path = script(name);
        let err = load_path(&path).expect_err("error");
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
    let err = load_path(&path).expect_err("error");
    assert_eq!(err.cause, "KSR.x.exit() called while loading the script");
}

#[test]
fn unreadable_file_fails_to_load() {
    let err = load_path(&script("does_not_exist.js")).expect_err("error");
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
    let mut engine = load_path(&path).expect("load");
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
    let mut engine = load_path(&path).expect("load");
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

// --- companion files: what the engine can load (see the README) --------------------------------

/// The script is a global script with no module loader: `require` is not defined, a static
/// `import` does not parse, and a dynamic `import()` gives a promise that never settles (no module
/// is ever read). Both load errors name the script's file and line.
#[test]
fn no_require_and_no_import_of_files_beside_the_script() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("js_companions");
    std::fs::create_dir_all(&dir).expect("tmp dir");
    std::fs::write(dir.join("helper.js"), "export const reason = 'helper';\n").expect("helper");
    let with = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write script");
        (load_path(&path), path)
    };

    let (loaded, path) = with(
        "require.js",
        "// a companion\nrequire('./helper.js');\nfunction ksr_request_route() {}\n",
    );
    let err = loaded.expect_err("require");
    assert_eq!((err.file.as_path(), err.line), (path.as_path(), Some(2)));
    assert!(err.cause.contains("require is not defined"), "{err}");

    let (loaded, path) = with(
        "import.js",
        "import helper from './helper.js';\nfunction ksr_request_route() {}\n",
    );
    let err = loaded.expect_err("static import");
    assert_eq!((err.file.as_path(), err.line), (path.as_path(), Some(1)));
    assert!(err.cause.contains("SyntaxError"), "{err}");

    let (loaded, _) = with(
        "dynamic.js",
        "var state = 'pending';\n\
         import('./helper.js').then(function (m) { state = m.reason; }, function (e) { state = 'failed: ' + e; });\n\
         function ksr_request_route() { KSR.info(state); }\n",
    );
    let mut engine = loaded.expect("a dynamic import() loads");
    for _ in 0..2 {
        assert_eq!(logs(&run_ok(&mut *engine, REQUEST_ROUTE)), ["pending"]);
    }
}
