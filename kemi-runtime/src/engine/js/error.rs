//! Turning JavaScript exceptions into [`ScriptError`]s and [`LoadError`]s.
//!
//! QuickJS gives an `Error` a `stack` of frames like `    at f (/path/route.js:4:13)`, or
//! `    at /path/route.js:3:10` for syntax errors, and `    at echo (native)` for native
//! functions. The position of an error is its first frame with a source position.

use std::path::Path;

use rquickjs::{Ctx, Value};

use crate::engine::{LoadError, ScriptError, EXIT_MARKER};

/// What a caught exception was.
#[derive(Debug)]
pub(super) enum Thrown {
    /// The exit marker string (`KSR.x.exit()`, `KSR.x.drop()`).
    Exit,
    /// `null`: what QuickJS throws for an allocation failure when it cannot even allocate the
    /// error object (or what the script threw).
    Null,
    /// Anything else: an `Error` object or another thrown value.
    Error(ScriptError),
}

/// Classify the exception pending in `js` after a call failed with `err`.
pub(super) fn caught(js: &Ctx<'_>, err: rquickjs::Error) -> Thrown {
    if !matches!(err, rquickjs::Error::Exception) {
        return Thrown::Error(ScriptError {
            message: err.to_string(),
            location: None,
            traceback: String::new(),
        });
    }
    let value = js.catch();
    if value.is_null() {
        return Thrown::Null;
    }
    if let Some(s) = value.as_string() {
        if s.to_string().is_ok_and(|s| s == EXIT_MARKER) {
            return Thrown::Exit;
        }
    }
    Thrown::Error(describe(&value))
}

/// The error of a thrown `null` (as `describe` gives it).
pub(super) fn null_error() -> ScriptError {
    ScriptError {
        message: "null".into(),
        location: None,
        traceback: String::new(),
    }
}

/// Message, position and stack of a thrown value. `Error` objects give `Name: message` and the
/// position of their first frame; other values give their ToString and no position.
fn describe(value: &Value<'_>) -> ScriptError {
    let Some(obj) = value.as_object() else {
        return ScriptError {
            message: to_text(value),
            location: None,
            traceback: String::new(),
        };
    };
    let stack: Option<String> = obj.get("stack").ok();
    let message: Option<String> = obj.get("message").ok();
    let name: Option<String> = obj.get("name").ok();
    let message = match (name, message) {
        (Some(n), Some(m)) if !n.is_empty() && !m.is_empty() => format!("{n}: {m}"),
        (Some(n), _) if !n.is_empty() => n,
        (_, Some(m)) => m,
        _ => to_text(value),
    };
    let traceback = stack.unwrap_or_default();
    let location = traceback
        .lines()
        .find_map(frame_position)
        .map(|(file, line)| format!("{file}:{line}"));
    ScriptError {
        message,
        location,
        traceback,
    }
}

/// ToString of any value, for messages (never fails: unprintable values give a placeholder).
fn to_text(value: &Value<'_>) -> String {
    match value.as_string() {
        Some(s) => s.to_string().unwrap_or_default(),
        None => rquickjs::Coerced::<String>::from_js(value.ctx(), value.clone())
            .map(|c| c.0)
            .unwrap_or_else(|_| format!("<thrown {}>", value.type_name())),
    }
}

use rquickjs::FromJs;

/// The file and line of one stack frame line, when it has a source position.
pub(super) fn frame_position(frame: &str) -> Option<(&str, u32)> {
    let rest = frame.trim_start().strip_prefix("at ")?;
    let pos = match rest.strip_suffix(')') {
        Some(inner) => &inner[inner.rfind('(')? + 1..],
        None => rest,
    };
    let (before_col, col) = pos.rsplit_once(':')?;
    let (file, line) = before_col.rsplit_once(':')?;
    if file.is_empty() || !col.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((file, line.parse().ok()?))
}

/// A load error for `path`: the line when the error's position is in `path` itself.
pub(super) fn load_error(path: &Path, thrown: Thrown) -> LoadError {
    let err = match thrown {
        Thrown::Exit => {
            return LoadError::new(path, "KSR.x.exit() called while loading the script");
        }
        Thrown::Null => null_error(),
        Thrown::Error(e) => e,
    };
    let file = path.display().to_string();
    let line = err
        .traceback
        .lines()
        .find_map(frame_position)
        .and_then(|(source, line)| (source == file).then_some(line));
    LoadError {
        file: path.to_path_buf(),
        line,
        cause: err.message,
    }
}

#[cfg(test)]
mod tests {
    use super::frame_position;

    #[test]
    fn frames() {
        assert_eq!(
            frame_position("    at f (/x/route.js:4:13)"),
            Some(("/x/route.js", 4))
        );
        assert_eq!(
            frame_position("    at /x/route.js:3:10"),
            Some(("/x/route.js", 3))
        );
        assert_eq!(
            frame_position("    at <eval> (C:\\x\\r.js:7:1)"),
            Some(("C:\\x\\r.js", 7))
        );
        assert_eq!(frame_position("    at echo_int (native)"), None);
        assert_eq!(frame_position("boom"), None);
    }
}
