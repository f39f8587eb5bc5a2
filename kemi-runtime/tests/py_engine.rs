//! The Python engine against real scripts (`tests/scripts/py_*.py`) in embedded CPython, in both
//! Kamailio styles, with the test exports of `common` and a few of its own: KSR call semantics
//! (strict types, results), modf, exit by `sys.exit()`, drop, the `msg` object, loading and
//! reloading, error containment, and two engines on two threads.
#![cfg(feature = "python")]

mod common;

use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use kemi_runtime::engine::python::{PythonEngine, PythonOptions, PythonStyle};
use kemi_runtime::engine::{
    self, Engine, EngineKind, LoadError, RunOutcome, REPLY_ROUTE, REQUEST_ROUTE,
};
use kemi_runtime::msg::{Action, Reply, VarValue};
use kemi_runtime::sip::HeaderEdit;
use kemi_runtime::table::{Enabled, ModuleSet};
use kemi_runtime::{kemi, ExportTable, SipMsg, Xval};

use common::{line_of, logs, msg, reply_msg, run_ok, script};

/// The modules of the exports defined here, beside `common`'s.
static PY_MODULES: ModuleSet = ModuleSet {
    crate_name: "py_engine_test",
    modules: &["pv", "hdr", "sl"],
};

// --- core test exports -------------------------------------------------------------------

/// Rewrite the R-URI.
#[kemi(name = "setruri")]
fn setruri(msg: &mut SipMsg, uri: &str) -> bool {
    msg.route.new_ruri = Some(uri.to_owned());
    true
}

// --- pv, hdr, sl (small stand-ins for the real modules) --------------------------------------

/// Store a string variable (the name as given).
#[kemi(module = "pv", name = "sets")]
fn pv_sets(msg: &mut SipMsg, name: &str, value: &str) -> bool {
    msg.vars
        .insert(name.to_owned(), VarValue::Str(value.to_owned()));
    true
}

/// A variable's value, or null.
#[kemi(module = "pv", name = "get")]
fn pv_get(msg: &mut SipMsg, name: &str) -> Xval {
    match msg.vars.get(name) {
        Some(VarValue::Str(s)) => Xval::str(s.as_str()),
        Some(VarValue::Int(n)) => Xval::Long(*n),
        None => Xval::Null,
    }
}

/// Append a header line.
#[kemi(module = "hdr", name = "append")]
fn hdr_append(msg: &mut SipMsg, line: &str) -> i32 {
    msg.route.edits.push(HeaderEdit::Append(line.to_owned()));
    1
}

/// Record a reply (no wire bytes).
#[kemi(module = "sl", name = "send_reply")]
fn sl_send_reply(msg: &mut SipMsg, code: i32, reason: &str) -> i32 {
    match u16::try_from(code) {
        Ok(code) => {
            msg.outbox.push(Action::Reply(Reply {
                code,
                reason: reason.to_owned(),
                wire: Vec::new(),
            }));
            1
        }
        Err(_) => -1,
    }
}

// --- helpers ---------------------------------------------------------------------------------

/// Every Python engine of this process shares one interpreter, so `sys.modules["KSR"]` is the
/// `KSR` of the engine loaded last. Tests that build tables with different modules would see each
/// other's `KSR` through `import KSR.<mod>`; they run one at a time. (sipd's workers all share one
/// table, so their `KSR` modules are interchangeable.)
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn table(enabled: Enabled) -> Arc<ExportTable> {
    common::table_with(&[&PY_MODULES], enabled)
}

/// Script `name` of `tests/scripts`, loaded.
fn load(name: &str) -> Box<dyn Engine> {
    common::load(EngineKind::Python, name, table(Enabled::All))
}

/// The script at `path`, loaded with every test module enabled.
fn load_path(path: &Path) -> Result<Box<dyn Engine>, LoadError> {
    engine::load(EngineKind::Python, path, table(Enabled::All))
}

fn load_with(name: &str, style: PythonStyle) -> Result<PythonEngine, LoadError> {
    PythonEngine::load(
        &script(name),
        table(Enabled::All),
        PythonOptions {
            style,
            ..PythonOptions::default()
        },
    )
}

// --- loading and styles ---------------------------------------------------------------------

#[test]
fn kind_is_picked_by_name_and_extension() {
    let _one_at_a_time = serial();
    assert_eq!(EngineKind::from_name("Python"), Some(EngineKind::Python));
    assert_eq!(
        EngineKind::from_path(Path::new("route.py")),
        Some(EngineKind::Python)
    );
    assert_eq!(EngineKind::Python.name(), "python");
}

#[test]
fn styles_are_detected_and_can_be_forced() {
    let _one_at_a_time = serial();
    let class = load_with("py_class.py", PythonStyle::Auto).expect("load");
    assert_eq!(class.style(), PythonStyle::Class);
    let plain = load_with("py_plain.py", PythonStyle::Auto).expect("load");
    assert_eq!(plain.style(), PythonStyle::Plain);

    // Forcing plain style on a class-style script: its module has no ksr_request_route.
    let err = load_with("py_class.py", PythonStyle::Plain).expect_err("no module-level route");
    assert!(err.cause.contains("ksr_request_route"), "{err}");
    // Forcing class style on a plain script: no mod_init.
    let err = load_with("py_plain.py", PythonStyle::Class).expect_err("no mod_init");
    assert!(err.cause.contains("mod_init"), "{err}");
}

#[test]
fn ksr_calls_work_at_load_time_with_a_faked_message() {
    let _one_at_a_time = serial();
    run_ok(&mut *load("py_class.py"), "test_load_time");
    run_ok(&mut *load("py_plain.py"), "test_basics");
}

#[test]
fn syntax_error_names_file_and_line() {
    let _one_at_a_time = serial();
    let path = script("py_syntax_error.py");
    let err = load_path(&path).expect_err("syntax");
    assert_eq!(err.file, path);
    assert_eq!(err.line, Some(line_of("py_syntax_error.py", "def broken(")));
    assert!(err.cause.starts_with("SyntaxError"), "{err}");
}

#[test]
fn exception_at_top_level_names_the_script_line() {
    let _one_at_a_time = serial();
    let err = load_path(&script("py_toplevel_error.py")).expect_err("KeyError at load");
    // The innermost frame in the script: inside helper().
    assert_eq!(
        err.line,
        Some(line_of("py_toplevel_error.py", "return {}[\"missing\"]"))
    );
    assert!(err.cause.starts_with("KeyError"), "{err}");
}

#[test]
fn missing_request_route_fails_to_load() {
    let _one_at_a_time = serial();
    let err = load_path(&script("py_no_request_route.py")).expect_err("no request route");
    assert!(
        err.cause.contains("ksr_request_route is not defined"),
        "{err}"
    );
    let err = load_path(&script("py_mod_init_none.py")).expect_err("mod_init returned None");
    assert!(err.cause.contains("returned None"), "{err}");
    let err = load_path(&script("does_not_exist.py")).expect_err("missing file");
    assert!(err.cause.contains("cannot read"), "{err}");
}

// --- routing ----------------------------------------------------------------------------------

#[test]
fn class_style_request_reply_and_edits() {
    let _one_at_a_time = serial();
    let mut engine = load("py_class.py");
    assert!(engine.has_callback(REQUEST_ROUTE));
    assert!(engine.has_callback(REPLY_ROUTE));
    assert!(!engine.has_callback(engine::ONSEND_ROUTE));

    let m = run_ok(&mut *engine, REQUEST_ROUTE);
    assert_eq!(logs(&m), ["request OPTIONS sip:alice@127.0.0.1"]);
    assert_eq!(
        m.route.edits,
        [HeaderEdit::Append("X-Python: class\r\n".into())]
    );
    assert!(
        matches!(&m.outbox[..], [Action::Reply(r)] if r.code == 200 && r.reason == "OK from Python")
    );
    assert_eq!(m.vars.get("$var(seen)"), Some(&VarValue::Str("yes".into())));

    let mut r = reply_msg();
    assert_eq!(
        engine.run(REPLY_ROUTE, &mut r, None),
        Ok(RunOutcome::Returned)
    );
    assert_eq!(logs(&r), ["reply 486"]);

    // Missing onsend: silently skipped.
    let mut m = msg();
    assert_eq!(
        engine.run(engine::ONSEND_ROUTE, &mut m, None),
        Ok(RunOutcome::Missing)
    );
}

#[test]
fn plain_style_request_and_onsend() {
    let _one_at_a_time = serial();
    let mut engine = load("py_plain.py");
    let m = run_ok(&mut *engine, REQUEST_ROUTE);
    assert_eq!(logs(&m), ["plain request"]);
    assert_eq!(
        m.route.edits,
        [HeaderEdit::Append("X-Python: plain\r\n".into())]
    );
    assert!(matches!(&m.outbox[..], [Action::Reply(r)] if r.code == 404));
    let m = run_ok(&mut *engine, engine::ONSEND_ROUTE);
    assert_eq!(logs(&m), ["onsend"]);
    let mut r = reply_msg();
    assert_eq!(
        engine.run(REPLY_ROUTE, &mut r, None),
        Ok(RunOutcome::Missing)
    );
}

#[test]
fn tm_and_event_callbacks_in_both_styles() {
    let _one_at_a_time = serial();
    let mut class = load("py_class.py");
    let mut m = msg();
    assert_eq!(
        class.run("ksr_failure_one", &mut m, None),
        Ok(RunOutcome::Returned)
    );
    assert_eq!(
        class.run("ksr_event", &mut m, Some("htable:mod-init")),
        Ok(RunOutcome::Returned)
    );
    assert_eq!(logs(&m), ["failure OPTIONS", "event htable:mod-init"]);
    // A missing tm callback: logged as an error in class style, and skipped.
    assert_eq!(
        class.run("ksr_missing", &mut m, None),
        Ok(RunOutcome::Missing)
    );

    let mut plain = load("py_plain.py");
    let mut m = msg();
    assert_eq!(
        plain.run("ksr_event", &mut m, Some("dispatcher:dst-up")),
        Ok(RunOutcome::Returned)
    );
    assert_eq!(logs(&m), ["event dispatcher:dst-up"]);
    assert_eq!(
        plain.run("ksr_missing", &mut m, None),
        Ok(RunOutcome::Missing)
    );
}

// --- call semantics ---------------------------------------------------------------------------

#[test]
fn module_shape() {
    let _one_at_a_time = serial();
    run_ok(&mut *load("py_class.py"), "test_module_shape");
}

#[test]
fn int_and_bool_results_stay_distinct() {
    let _one_at_a_time = serial();
    run_ok(&mut *load("py_class.py"), "test_int_vs_bool");
}

#[test]
fn none_results_are_int_zero() {
    let _one_at_a_time = serial();
    let m = run_ok(&mut *load("py_class.py"), "test_none_results");
    assert!(m.route.drop, "set_drop ran");
    assert_eq!(logs(&m), ["x"]);
}

#[test]
fn xval_results_convert() {
    let _one_at_a_time = serial();
    run_ok(&mut *load("py_class.py"), "test_xval");
}

#[test]
fn strict_argument_types_and_counts() {
    let _one_at_a_time = serial();
    run_ok(&mut *load("py_class.py"), "test_args");
}

#[test]
fn modf_runs_exports_by_name() {
    let _one_at_a_time = serial();
    let m = run_ok(&mut *load("py_class.py"), "test_modf");
    assert_eq!(logs(&m), ["via modf"]);
}

#[test]
fn msg_object_reads_the_current_message() {
    let _one_at_a_time = serial();
    run_ok(&mut *load("py_class.py"), "test_msg");
}

#[test]
fn sflags_reset_for_the_run_and_restored() {
    let _one_at_a_time = serial();
    let mut engine = load("py_class.py");
    let mut m = msg();
    m.route.sflags = 1 << 9;
    assert_eq!(
        engine.run("test_sflags", &mut m, None),
        Ok(RunOutcome::Returned)
    );
    assert_eq!(m.route.sflags, 1 << 9);
}

#[test]
fn script_threads_have_no_message() {
    let _one_at_a_time = serial();
    run_ok(&mut *load("py_plain.py"), "test_thread");
}

#[test]
fn disabled_module_is_absent() {
    let _one_at_a_time = serial();
    let mut all = load("py_plain.py");
    let mut m = msg();
    assert_eq!(
        all.run("test_optional", &mut m, Some("present")),
        Ok(RunOutcome::Returned)
    );
    let only_t = table(Enabled::Only(vec!["t".into(), "sl".into()]));
    let mut some = engine::load(EngineKind::Python, &script("py_plain.py"), only_t).expect("load");
    let mut m = msg();
    assert_eq!(
        some.run("test_optional", &mut m, Some("absent")),
        Ok(RunOutcome::Returned)
    );
}

// --- exit, drop, errors -----------------------------------------------------------------------

#[test]
fn sys_exit_ends_the_run_normally() {
    let _one_at_a_time = serial();
    let mut engine = load("py_class.py");
    let mut m = msg();
    assert_eq!(
        engine.run("test_exit", &mut m, None),
        Ok(RunOutcome::Exited)
    );
    assert_eq!(logs(&m), ["before exit"]);

    let mut m = msg();
    assert_eq!(
        engine.run("test_builtin_exit", &mut m, None),
        Ok(RunOutcome::Exited)
    );
    assert_eq!(logs(&m), ["before exit()"]);

    let mut plain = load("py_plain.py");
    let mut m = msg();
    assert_eq!(plain.run("test_exit", &mut m, None), Ok(RunOutcome::Exited));
    assert_eq!(logs(&m), ["plain before exit"]);
    // The engine (and the process) go on.
    run_ok(&mut *plain, REQUEST_ROUTE);
}

#[test]
fn set_drop_then_return() {
    let _one_at_a_time = serial();
    let mut engine = load("py_class.py");
    let mut m = msg();
    assert_eq!(
        engine.run("test_drop", &mut m, None),
        Ok(RunOutcome::Returned)
    );
    assert!(m.route.drop);
}

#[test]
fn exception_is_contained_with_its_line() {
    let _one_at_a_time = serial();
    let mut engine = load("py_class.py");
    let mut m = msg();
    let err = engine
        .run("test_raise", &mut m, None)
        .expect_err("ZeroDivisionError");
    assert!(
        err.message.starts_with("ZeroDivisionError"),
        "{}",
        err.message
    );
    let want = format!(
        "{}:{}",
        script("py_class.py").display(),
        line_of("py_class.py", "return 1 // 0")
    );
    assert_eq!(err.location.as_deref(), Some(want.as_str()));
    assert!(err.traceback.contains("test_raise"), "{}", err.traceback);
    assert_eq!(logs(&m), ["before raise"]);
    // The next message works.
    let m = run_ok(&mut *engine, REQUEST_ROUTE);
    assert_eq!(logs(&m).len(), 1);

    let mut plain = load("py_plain.py");
    let err = plain
        .run("test_raise", &mut msg(), None)
        .expect_err("ValueError");
    assert_eq!(err.message, "ValueError: bad value");
    run_ok(&mut *plain, REQUEST_ROUTE);
}

#[test]
fn export_panic_raises_runtime_error() {
    let _one_at_a_time = serial();
    let m = run_ok(&mut *load("py_class.py"), "test_panic");
    assert_eq!(logs(&m), ["caught KSR.t.boom panicked"]);
}

// --- reload -----------------------------------------------------------------------------------

#[test]
fn reload_reexecutes_and_calls_mod_init_again() {
    let _one_at_a_time = serial();
    let dir = std::env::temp_dir().join(format!("sipd-py-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let path = dir.join("reload_me.py");
    let v1 = "import KSR\nINITS = globals().get('INITS', 0)\n\ndef mod_init():\n    global INITS\n    INITS += 1\n    return H()\n\nclass H:\n    def ksr_request_route(self, msg):\n        KSR.info('v1 %d' % INITS)\n";
    std::fs::write(&path, v1).expect("write v1");
    let mut engine = load_path(&path).expect("load v1");
    assert_eq!(logs(&run_ok(&mut *engine, REQUEST_ROUTE)), ["v1 1"]);

    std::fs::write(&path, v1.replace("'v1 %d'", "'v2 %d'")).expect("write v2");
    engine.reload().expect("reload");
    // Old globals stay (INITS kept counting), mod_init ran again, the new method is in effect.
    assert_eq!(logs(&run_ok(&mut *engine, REQUEST_ROUTE)), ["v2 2"]);

    std::fs::write(&path, "def broken(:\n").expect("write broken");
    let err = engine.reload().expect_err("syntax error");
    assert_eq!(err.line, Some(1));
    // The previous callbacks stay in effect.
    assert_eq!(logs(&run_ok(&mut *engine, REQUEST_ROUTE)), ["v2 2"]);
    let _ = std::fs::remove_dir_all(&dir);
}

// --- companion modules ------------------------------------------------------------------------

/// A module beside the script is importable (the script's folder goes first on `sys.path`, as in
/// `app_python3`). Python keeps an imported module in `sys.modules` for the whole process, so a
/// new engine (a server reload) does not read a changed companion again: see the README.
#[test]
fn route_imports_a_helper_module_beside_the_script() {
    let _one_at_a_time = serial();
    let dir = std::env::temp_dir().join(format!("sipd-py-companion-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    // A name no other test (or installed package) uses, as sys.modules is process-wide.
    std::fs::write(
        dir.join("sipd_companion_helper.py"),
        "REASON = 'from helper'\n\ndef reason():\n    return REASON\n",
    )
    .expect("write helper");
    let path = dir.join("route.py");
    std::fs::write(
        &path,
        "import KSR\nimport sipd_companion_helper as helper\n\n\
         def ksr_request_route():\n    KSR.info(helper.reason())\n",
    )
    .expect("write route");
    let mut engine = load_path(&path).expect("load");
    assert_eq!(logs(&run_ok(&mut *engine, REQUEST_ROUTE)), ["from helper"]);
    let _ = std::fs::remove_dir_all(&dir);
}

// --- threads ----------------------------------------------------------------------------------

/// Two engines on two threads at once: both finish (no deadlock), each sees its own messages.
/// Prints the time of the same work on one thread and on two, to show the GIL serialization
/// (`cargo test -p kemi-runtime --test py_engine two_engines -- --nocapture`).
#[test]
fn two_engines_on_two_threads() {
    let _one_at_a_time = serial();
    const RUNS: usize = 200;
    // Load (and warm up) outside the timed part; time only the runs, after `barrier`.
    let work = |barrier: Arc<Barrier>| {
        let mut engine = load("py_loop.py");
        run_ok(&mut *engine, REQUEST_ROUTE);
        barrier.wait();
        let start = Instant::now();
        for _ in 0..RUNS {
            let m = run_ok(&mut *engine, REQUEST_ROUTE);
            assert_eq!(
                m.vars.get("$var(total)"),
                Some(&VarValue::Str("500500".into()))
            );
        }
        start.elapsed()
    };
    let one = work(Arc::new(Barrier::new(1)));

    let (tx, rx) = mpsc::channel();
    let barrier = Arc::new(Barrier::new(2));
    for _ in 0..2 {
        let tx = tx.clone();
        let barrier = Arc::clone(&barrier);
        std::thread::spawn(move || {
            let _ = tx.send(work(barrier));
        });
    }
    let mut two = Duration::ZERO;
    for _ in 0..2 {
        let took = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("a Python worker thread did not finish: deadlock or panic");
        two = two.max(took);
    }
    eprintln!(
        "python: {RUNS} runs x 1000 KSR calls: one thread {one:?}; the same on each of two threads at once {two:?} (2x = fully serialized by the GIL)"
    );
}
