//! The cross-engine behaviour suite (`tests/engines/`, see its README): every script of every case
//! goes through `sipd route-test`'s code with the engine its extension names, and must give the
//! case's expected report. Plus the one case a single report cannot show: an error in one message
//! leaves the worker's engine routing the next.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kemi_runtime::engine::EngineKind;
use kemi_runtime::sip::Message;
use kemi_runtime::table::Enabled;
use kemi_runtime::ExportTable;
use serde_json::Value;
use sipd::route_test::{self, RouteTestError};
use sipd::router::Router;

/// Report fields compared for equality when `expected.json` has them.
const EQUAL_FIELDS: [&str; 7] = [
    "outcome", "replies", "forwards", "ruri", "dst_uri", "flags", "logs",
];

/// Cases that must exist, so that a lost folder fails instead of passing quietly.
const REQUIRED_CASES: [&str; 12] = [
    "argument_errors",
    "drop",
    "exit_nested",
    "forward",
    "header_edits",
    "int_vs_bool",
    "load_error_missing_route",
    "load_error_syntax",
    "modf",
    "pv_read_write",
    "reply_exit",
    "script_error",
];

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("engines")
}

fn table() -> Arc<ExportTable> {
    Arc::new(sipd::exports::build_table(&Enabled::All).expect("export table"))
}

/// The case folders, sorted.
fn cases() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(suite_dir())
        .expect("tests/engines")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// The scripts of a case (`route.*`, `route_*.*`) with the engine their extension names.
fn scripts(case: &Path) -> Vec<(PathBuf, EngineKind)> {
    let mut found: Vec<(PathBuf, EngineKind)> = std::fs::read_dir(case)
        .expect("case folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_stem()
                .and_then(|s| s.to_str())
                .is_some_and(|s| s == "route" || s.starts_with("route_"))
        })
        .filter_map(|p| EngineKind::from_path(&p).map(|k| (p, k)))
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

/// Everything in which `script`'s result differs from `expected` (empty when it matches).
fn check(
    table: &Arc<ExportTable>,
    script: &Path,
    kind: EngineKind,
    msg: &Path,
    expected: &Value,
) -> Vec<String> {
    let mut diffs = Vec::new();
    let result = route_test::run(table.clone(), kind, script, msg, None);
    let wants_load_error =
        expected.get("load_error").is_some() || expected.get("load_error_line").is_some();
    let report = match result {
        Err(RouteTestError::Load(e)) if wants_load_error => {
            if let Some(cause) = expected.get("load_error").and_then(Value::as_str) {
                if e.cause != cause {
                    diffs.push(format!(
                        "load error cause: got {:?}, want {cause:?}",
                        e.cause
                    ));
                }
            }
            if let Some(line) = expected.get("load_error_line").and_then(Value::as_u64) {
                if e.line.map(u64::from) != Some(line) {
                    diffs.push(format!(
                        "load error line: got {:?}, want {line} ({e})",
                        e.line
                    ));
                }
            }
            if e.file != script {
                diffs.push(format!(
                    "load error names {}, not the script",
                    e.file.display()
                ));
            }
            return diffs;
        }
        Err(e) => return vec![format!("route-test failed: {e}")],
        Ok(_) if wants_load_error => {
            return vec!["loaded, but a load error was expected".to_string()]
        }
        Ok(r) => serde_json::to_value(&r).expect("report as JSON"),
    };
    for field in EQUAL_FIELDS {
        if let Some(want) = expected.get(field) {
            if report[field] != *want {
                diffs.push(format!("{field}: got {}, want {want}", report[field]));
            }
        }
    }
    let message = report["message"].as_str().unwrap_or_default();
    for (key, must_have) in [("message_contains", true), ("message_lacks", false)] {
        for part in expected
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let part = part.as_str().unwrap_or_default();
            if message.contains(part) != must_have {
                diffs.push(format!("{key} {part:?}: message is {message:?}"));
            }
        }
    }
    if report["outcome"] == "error" && report["error"].is_null() {
        diffs.push("outcome error without an error text".to_string());
    }
    diffs
}

#[test]
fn every_engine_gives_every_case_its_expected_report() {
    let table = table();
    let cases = cases();
    let names: Vec<String> = cases
        .iter()
        .filter_map(|c| c.file_name().and_then(|n| n.to_str()).map(str::to_string))
        .collect();
    for required in REQUIRED_CASES {
        assert!(
            names.iter().any(|n| n == required),
            "case {required} is missing from tests/engines"
        );
    }
    let mut failures = Vec::new();
    let mut runs = 0;
    for case in &cases {
        let name = case.file_name().and_then(|n| n.to_str()).unwrap_or("?");
        let scripts = scripts(case);
        if scripts.len() < 2 {
            failures.push(format!(
                "{name}: {} script(s); a case needs at least two",
                scripts.len()
            ));
        }
        let expected: Value = match std::fs::read_to_string(case.join("expected.json"))
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
        {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!("{name}: expected.json: {e}"));
                continue;
            }
        };
        for (script, kind) in &scripts {
            runs += 1;
            let file = script.file_name().and_then(|n| n.to_str()).unwrap_or("?");
            for diff in check(&table, script, *kind, &case.join("msg.sip"), &expected) {
                failures.push(format!("{name}/{file} ({kind}): {diff}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {runs} runs differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(runs >= 2 * REQUIRED_CASES.len(), "only {runs} runs");
}

#[test]
fn a_script_error_is_contained_to_its_message() {
    let case = suite_dir().join("script_error");
    let failing = std::fs::read(case.join("msg.sip")).expect("msg.sip");
    let text = String::from_utf8(failing.clone()).expect("text message");
    assert!(
        text.contains("sip:fail@"),
        "the case message must make the script fail"
    );
    let fine = text.replace("sip:fail@", "sip:ok@").into_bytes();
    let table = table();
    let scripts = scripts(&case);
    assert!(scripts.len() >= 2);
    for (script, kind) in scripts {
        let mut router =
            Router::load(kind, &script, table.clone()).unwrap_or_else(|e| panic!("{e}"));
        let parse = |raw: &[u8]| Message::parse(raw.to_vec().into()).expect("parse");
        let first = route_test::route_one(&mut router, parse(&failing), None);
        assert_eq!(first.outcome, "error", "{}", script.display());
        let error = first.error.unwrap_or_default();
        let file = script.file_name().and_then(|n| n.to_str()).unwrap_or("?");
        assert!(
            error.contains(file),
            "{kind}: error {error:?} names the script"
        );
        let second = route_test::route_one(&mut router, parse(&fine), None);
        assert_eq!(second.outcome, "return", "{kind}: {:?}", second.error);
        let codes: Vec<u16> = second.replies.iter().map(|r| r.code).collect();
        assert_eq!(codes, [100, 404], "{kind}");
    }
}
