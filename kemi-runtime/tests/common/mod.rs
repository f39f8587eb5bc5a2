//! Scaffolding shared by the engine test binaries (`lua_engine`, `js_engine`, `py_engine`): the
//! test exports, export tables over them, sample messages, script paths and run helpers. Each
//! binary includes it with `mod common;` and so links its own copy of the exports.
#![allow(dead_code)] // each test binary uses its own part

pub mod exports;
pub mod sip;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kemi_runtime::engine::{self, Engine, EngineKind, RunOutcome};
use kemi_runtime::msg::LogRecord;
use kemi_runtime::table::{Enabled, ModuleSet};
use kemi_runtime::{ExportTable, SipMsg};

pub use exports::TEST_MODULES;

/// The table of the linked exports: [`TEST_MODULES`] and the binary's `extra` module sets.
pub fn table_with(extra: &[&ModuleSet], enabled: Enabled) -> Arc<ExportTable> {
    let sets: Vec<&ModuleSet> = std::iter::once(&TEST_MODULES)
        .chain(extra.iter().copied())
        .collect();
    let table = ExportTable::build(kemi_runtime::linked_exports(), &sets, &enabled);
    Arc::new(table.expect("test export table"))
}

/// The table of the linked exports, when they are just [`TEST_MODULES`].
pub fn table(enabled: Enabled) -> Arc<ExportTable> {
    table_with(&[], enabled)
}

/// Path of script `name` in `tests/scripts`.
pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/scripts")
        .join(name)
}

/// Script `name` loaded by engine `kind` over `table`; a load error fails the test.
pub fn load(kind: EngineKind, name: &str, table: Arc<ExportTable>) -> Box<dyn Engine> {
    engine::load(kind, &script(name), table).unwrap_or_else(|e| panic!("loading {name}: {e}"))
}

/// A sample `OPTIONS` request, capturing its logs.
pub fn msg() -> SipMsg {
    captured(sip::parse(sip::OPTIONS))
}

/// A sample `486` reply, capturing its logs.
pub fn reply_msg() -> SipMsg {
    captured(sip::parse(sip::BUSY_REPLY))
}

fn captured(mut msg: SipMsg) -> SipMsg {
    msg.captured_logs = Some(Vec::new());
    msg
}

/// The texts of the logs captured for `msg`.
pub fn logs(msg: &SipMsg) -> Vec<String> {
    msg.captured_logs
        .iter()
        .flatten()
        .map(|r: &LogRecord| r.text.clone())
        .collect()
}

/// 1-based line of the first line of script `name` containing `needle`.
pub fn line_of(name: &str, needle: &str) -> u32 {
    let text = std::fs::read_to_string(script(name)).expect("read script");
    let idx = text
        .lines()
        .position(|l| l.contains(needle))
        .expect("needle in script");
    u32::try_from(idx + 1).expect("small")
}

/// Run `callback` on a fresh [`msg`] and require a normal return (a failed script-side check is
/// an error).
pub fn run_ok(engine: &mut dyn Engine, callback: &str) -> SipMsg {
    let mut m = msg();
    match engine.run(callback, &mut m, None) {
        Ok(RunOutcome::Returned) => m,
        other => panic!("{callback}: {other:?}"),
    }
}
