//! Python exceptions turned into [`LoadError`] and [`ScriptError`], with the script position:
//! `SyntaxError` carries its own line; any other exception is placed at the innermost traceback
//! frame that runs the script file (else the innermost frame at all).

use std::path::Path;

use pyo3::exceptions::PySyntaxError;
use pyo3::prelude::*;
use pyo3::types::PyTraceback;

use crate::engine::{LoadError, ScriptError};

/// `Type: message` of an exception (`ZeroDivisionError: division by zero`).
pub(super) fn describe(py: Python<'_>, err: &PyErr) -> String {
    let value = err.value(py);
    let ty = value
        .get_type()
        .name()
        .map_or_else(|_| "Exception".to_owned(), |n| n.to_string());
    match value.str() {
        Ok(s) if !s.to_string_lossy().is_empty() => format!("{ty}: {}", s.to_string_lossy()),
        _ => ty,
    }
}

/// A frame of a traceback: file and line.
struct Frame {
    file: String,
    line: u32,
}

/// The frames of `err`'s traceback, outermost first.
fn frames(py: Python<'_>, err: &PyErr) -> Vec<Frame> {
    let mut out = Vec::new();
    let mut tb: Option<Bound<'_, PyAny>> = err.traceback(py).map(Bound::into_any);
    while let Some(t) = tb.filter(|t| !t.is_none()) {
        let file = t
            .getattr("tb_frame")
            .and_then(|f| f.getattr("f_code"))
            .and_then(|c| c.getattr("co_filename"))
            .and_then(|n| n.extract::<String>());
        let line = t.getattr("tb_lineno").and_then(|l| l.extract::<u32>());
        if let (Ok(file), Ok(line)) = (file, line) {
            out.push(Frame { file, line });
        }
        tb = t.getattr("tb_next").ok();
    }
    out
}

/// The line of the innermost frame in `script`, and the innermost `file:line` of all.
fn positions(py: Python<'_>, err: &PyErr, script: &str) -> (Option<u32>, Option<String>) {
    let frames = frames(py, err);
    let in_script = frames
        .iter()
        .rev()
        .find(|f| f.file == script)
        .map(|f| f.line);
    let innermost = frames
        .iter()
        .rev()
        .find(|f| f.file == script)
        .or(frames.last())
        .map(|f| format!("{}:{}", f.file, f.line));
    (in_script, innermost)
}

/// A load error for `err` raised while loading `path`.
pub(super) fn load_error(py: Python<'_>, path: &Path, err: &PyErr) -> LoadError {
    let script = path.display().to_string();
    if err.is_instance_of::<PySyntaxError>(py) {
        let value = err.value(py);
        let msg = value
            .getattr("msg")
            .and_then(|m| m.extract::<String>())
            .unwrap_or_else(|_| describe(py, err));
        let line = value
            .getattr("lineno")
            .and_then(|l| l.extract::<u32>())
            .ok();
        let file = value
            .getattr("filename")
            .and_then(|f| f.extract::<String>())
            .ok();
        let ty = value
            .get_type()
            .name()
            .map_or_else(|_| "SyntaxError".to_owned(), |n| n.to_string());
        return match file {
            Some(f) if f != script => {
                LoadError::new(path, format!("{ty} in {f}:{}: {msg}", line.unwrap_or(0)))
            }
            _ => LoadError {
                file: path.to_path_buf(),
                line,
                cause: format!("{ty}: {msg}"),
            },
        };
    }
    let (line, innermost) = positions(py, err, &script);
    let mut cause = describe(py, err);
    if line.is_none() {
        if let Some(at) = innermost {
            cause = format!("{cause} (at {at})");
        }
    }
    LoadError {
        file: path.to_path_buf(),
        line,
        cause,
    }
}

/// A contained callback error for `err`, placed in `path` when a frame runs it.
pub(super) fn script_error(py: Python<'_>, path: &Path, err: &PyErr) -> ScriptError {
    let script = path.display().to_string();
    let (_, location) = positions(py, err, &script);
    let traceback = err
        .traceback(py)
        .and_then(|tb: Bound<'_, PyTraceback>| tb.format().ok())
        .unwrap_or_default();
    ScriptError {
        message: describe(py, err),
        location,
        traceback,
    }
}
