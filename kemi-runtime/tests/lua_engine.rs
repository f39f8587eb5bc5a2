//! The Lua engine against real scripts (`tests/scripts/`), with the test exports of `common`:
//! KSR call semantics, exit/drop/modf, loading and reloading, error containment.

mod common;

use std::path::Path;

use kemi_runtime::engine::{
    self, Engine, EngineKind, LoadError, RunOutcome, REPLY_ROUTE, REQUEST_ROUTE,
};
use kemi_runtime::table::Enabled;
use kemi_runtime::SipMsg;

use common::{line_of, logs, msg, run_ok, script, table};

/// Script `name` of `tests/scripts`, loaded.
fn load(name: &str) -> Box<dyn Engine> {
    common::load(EngineKind::Lua, name, table(Enabled::All))
}

/// The script at `path`, loaded with every test module enabled.
fn load_path(path: &Path) -> Result<Box<dyn Engine>, LoadError> {
    engine::load(EngineKind::Lua, path, table(Enabled::All))
}

/// Run `callback` of `semantics.lua` and require a normal return.
fn semantics(callback: &str) -> SipMsg {
    run_ok(&mut *load("semantics.lua"), callback)
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
fn none_result_quirk() {
    let m = semantics("test_none_quirk");
    assert!(m.route.drop, "set_drop ran");
    assert_eq!(logs(&m), ["x"]);
}

#[test]
fn xval_results_convert() {
    semantics("test_xval");
}

#[test]
fn argument_types_and_counts() {
    semantics("test_args");
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
    let m = semantics("test_exit_pcall");
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
    let m = semantics("test_modf");
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
    // Lua 5.1 names a function called from C by where it is defined, not by its global name.
    let defined = line_of("semantics.lua", "function test_runtime_error()");
    assert!(
        err.traceback.contains(&format!(
            "{}:{line}: in function <{}:{defined}>",
            path.display(),
            path.display()
        )),
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
    let err = load_path(&path).expect_err("syntax error");
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
    let err = load_path(&path).expect_err("error");
    assert_eq!(err.line, Some(3));
    assert!(err.cause.contains("attempt to index"), "{}", err.cause);
}

#[test]
fn missing_request_route_fails_to_load() {
    let path = script("no_request_route.lua");
    let err = load_path(&path).expect_err("error");
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
    let err = load_path(&script("does_not_exist.lua")).expect_err("error");
    assert!(err.cause.contains("cannot read"), "{}", err.cause);
}

#[test]
fn reload_replaces_callbacks_and_keeps_them_on_failure() {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("lua_engine_reload.lua");
    std::fs::write(&path, "function ksr_request_route() KSR.info('v1') end\n").expect("write");
    let mut engine = load_path(&path).expect("load");
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

// --- companion files: the script's folder on package.path -----------------------------------

/// A fresh folder `name` under the test temp dir, holding `files` (name, text).
fn companion_dir(name: &str, files: &[(&str, &str)]) -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    for (file, text) in files {
        let path = dir.join(file);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, text).expect("write");
    }
    dir
}

#[test]
fn package_path_puts_the_script_folder_first() {
    use kemi_runtime::engine::lua::companion_path;
    assert_eq!(
        companion_path(Path::new("/etc/sipd/route.lua")).as_deref(),
        Some(&b"/etc/sipd/?.lua;/etc/sipd/?/init.lua;"[..])
    );
    assert_eq!(
        companion_path(Path::new("route.lua")).as_deref(),
        Some(&b"./?.lua;./?/init.lua;"[..])
    );
    assert_eq!(companion_path(Path::new("/odd;dir/route.lua")), None);
    assert_eq!(companion_path(Path::new("/odd?dir/route.lua")), None);

    let dir = companion_dir(
        "lua_companion_path",
        &[(
            "route.lua",
            "function ksr_request_route() KSR.info(package.path) end\n",
        )],
    );
    let mut engine = load_path(&dir.join("route.lua")).expect("load");
    let path = logs(&run_ok(&mut *engine, REQUEST_ROUTE)).remove(0);
    let d = dir.display();
    let first = format!("{d}/?.lua;{d}/?/init.lua;");
    assert!(path.starts_with(&first), "{path}");
    assert!(path.len() > first.len(), "the default path follows: {path}");
}

#[test]
fn require_finds_companions_beside_the_script() {
    let dir = companion_dir(
        "lua_companion_require",
        &[
            ("helper.lua", "return { answer = 'from helper' }\n"),
            ("pkg/init.lua", "return { answer = 'from pkg' }\n"),
            (
                "route.lua",
                "local helper = require('helper')\nlocal pkg = require('pkg')\n\
                 function ksr_request_route() KSR.info(helper.answer) KSR.info(pkg.answer) end\n",
            ),
        ],
    );
    let mut engine = load_path(&dir.join("route.lua")).expect("load");
    assert_eq!(
        logs(&run_ok(&mut *engine, REQUEST_ROUTE)),
        ["from helper", "from pkg"]
    );

    // A new interpreter (what a server reload builds) reads the changed companion.
    std::fs::write(dir.join("helper.lua"), "return { answer = 'changed' }\n").expect("write");
    let mut engine = load_path(&dir.join("route.lua")).expect("reload");
    assert_eq!(
        logs(&run_ok(&mut *engine, REQUEST_ROUTE)),
        ["changed", "from pkg"]
    );
}

#[test]
fn companion_syntax_error_names_the_companion_file_and_line() {
    let dir = companion_dir(
        "lua_companion_syntax",
        &[
            ("helper.lua", "local M = {}\nM.answer = = 1\nreturn M\n"),
            (
                "route.lua",
                "-- uses a companion\nlocal helper = require('helper')\n\
                 function ksr_request_route() end\n",
            ),
        ],
    );
    let err = load_path(&dir.join("route.lua")).expect_err("syntax error");
    assert_eq!(err.file, dir.join("helper.lua"), "{err}");
    assert_eq!(err.line, Some(2), "{err}");
    assert!(err.cause.contains("unexpected symbol"), "{err}");
    assert!(err.cause.contains("module 'helper'"), "{err}");
    assert!(
        err.cause.contains(&format!(
            "required at {}:2",
            dir.join("route.lua").display()
        )),
        "{err}"
    );
}

#[test]
fn companion_error_at_top_level_names_the_companion_file_and_line() {
    let dir = companion_dir(
        "lua_companion_toplevel",
        &[
            ("helper.lua", "local M = {}\n\nerror('helper is broken')\n"),
            (
                "route.lua",
                "require('helper')\nfunction ksr_request_route() end\n",
            ),
        ],
    );
    let err = load_path(&dir.join("route.lua")).expect_err("error at top level");
    assert_eq!(err.file, dir.join("helper.lua"), "{err}");
    assert_eq!(err.line, Some(3), "{err}");
    assert_eq!(err.cause, "helper is broken");
}

#[test]
fn companion_error_in_a_long_path_names_the_companion_file() {
    // Lua shortens a file name over 60 bytes to `...` and its tail in messages.
    let long = format!("lua_companion_{}", "long_folder_name_".repeat(5));
    let dir = companion_dir(
        &long,
        &[
            ("helper.lua", "local M = {}\n\nerror('helper is broken')\n"),
            (
                "route.lua",
                "require('helper')\nfunction ksr_request_route() end\n",
            ),
        ],
    );
    assert!(dir.join("helper.lua").as_os_str().len() > 60);
    let err = load_path(&dir.join("route.lua")).expect_err("error at top level");
    assert_eq!(err.file, dir.join("helper.lua"), "{err}");
    assert_eq!(err.line, Some(3), "{err}");
    assert_eq!(err.cause, "helper is broken");
}

#[test]
fn runtime_error_in_a_long_path_names_the_script_in_full() {
    let long = format!("lua_runtime_{}", "long_folder_name_".repeat(5));
    let text = std::fs::read_to_string(script("semantics.lua")).expect("read");
    let dir = companion_dir(&long, &[("semantics.lua", &text)]);
    let path = dir.join("semantics.lua");
    let mut engine = load_path(&path).expect("load");
    let err = engine
        .run("test_runtime_error", &mut msg(), None)
        .expect_err("error");
    let line = line_of("semantics.lua", "return t.field");
    assert_eq!(err.location, Some(format!("{}:{line}", path.display())));
    assert!(
        err.traceback.contains(&format!(
            "{}:{line}: in function <{}:",
            path.display(),
            path.display()
        )),
        "{}",
        err.traceback
    );
}

#[test]
fn companions_run_from_the_recorded_text_not_the_file() {
    let dir = companion_dir(
        "lua_companion_snapshot",
        &[
            ("helper.lua", "return { word = 'first' }\n"),
            (
                "route.lua",
                "local h = require('helper')\nfunction ksr_request_route() KSR.info(h.word) end\n",
            ),
        ],
    );
    let route = dir.join("route.lua");
    let staging = load_path(&route).expect("load");
    let recorded = staging.companions();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].name, "helper");
    assert_eq!(recorded[0].path, dir.join("helper.lua"));
    assert_eq!(&*recorded[0].text, b"return { word = 'first' }\n");

    std::fs::write(dir.join("helper.lua"), "error('changed since')\n").expect("write");
    let text = std::fs::read(&route).expect("read");
    let mut worker = engine::load_with_options(
        EngineKind::Lua,
        &route,
        Some(&text),
        &recorded,
        table(Enabled::All),
        Default::default(),
        Default::default(),
    )
    .expect("the recorded companion runs, not the changed file");
    let lines = logs(&run_ok(&mut *worker, REQUEST_ROUTE));
    assert!(lines.iter().any(|l| l.contains("first")), "{lines:?}");
    // Without the record, the file as it is now is what loads.
    assert!(load_path(&route).is_err());
}

#[test]
fn missing_companion_names_the_script_line_and_the_paths_searched() {
    let dir = companion_dir(
        "lua_companion_missing",
        &[(
            "route.lua",
            "\nrequire('nowhere')\nfunction ksr_request_route() end\n",
        )],
    );
    let err = load_path(&dir.join("route.lua")).expect_err("missing module");
    assert_eq!(err.file, dir.join("route.lua"), "{err}");
    assert_eq!(err.line, Some(2), "{err}");
    assert!(err.cause.contains("module 'nowhere' not found"), "{err}");
    assert!(
        err.cause
            .contains(&dir.join("nowhere.lua").display().to_string()),
        "{err}"
    );
}

// --- Lua 5.1 ----------------------------------------------------------------------------------

#[test]
fn lua51_era_globals_work() {
    let mut engine = load("lua51.lua");
    run_ok(&mut *engine, "test_lua51_globals");
    // The module's functions stay callable on later runs.
    run_ok(&mut *engine, "test_lua51_globals");
}

#[test]
fn ffi_is_out_of_reach() {
    run_ok(&mut *load("lua51.lua"), "test_no_ffi");
}
