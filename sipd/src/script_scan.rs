//! `sipd check`'s static scan of a script for `KSR.*` names that sipd cannot call: a user porting
//! a Kamailio script sees what is missing before the first message. The scan reads the text, not
//! the program: it finds `KSR.module.function` and `KSR.function` outside comments, and names
//! each missing one once, at its first line.

use std::collections::BTreeSet;

use kemi_runtime::engine::EngineKind;
use kemi_runtime::ExportTable;

/// One name the script uses that sipd cannot call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Missing {
    /// The line of its first use (1-based).
    pub line: usize,
    /// As written: `KSR.rtpproxy.rtpproxy_manage`, `KSR.rtpproxy`.
    pub name: String,
    /// Why it cannot be called.
    pub why: String,
}

/// The `KSR.*` names in `text` (a script for `engine`) that the `enabled` table cannot call, with
/// why; `all` is the table of every module sipd has.
pub fn scan(
    text: &str,
    engine: EngineKind,
    enabled: &ExportTable,
    all: &ExportTable,
) -> Vec<Missing> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let code = strip_comment(line, engine);
        for (name, called) in ksr_names(code) {
            if !seen.insert(name.to_string()) {
                continue;
            }
            if let Some(why) = verdict(name, called, enabled, all) {
                out.push(Missing {
                    line: i + 1,
                    name: name.to_string(),
                    why,
                });
            }
        }
    }
    out
}

/// What every engine binds itself, outside the export table (`KSR.x`).
const ENGINE_NAMES: [&str; 4] = ["x", "x.exit", "x.drop", "x.modf"];

/// Why `name` (`KSR.a` or `KSR.a.b`) cannot be called, or `None` when it can.
fn verdict(name: &str, called: bool, enabled: &ExportTable, all: &ExportTable) -> Option<String> {
    let path = name.strip_prefix("KSR.")?;
    if ENGINE_NAMES.contains(&path) {
        return None;
    }
    match path.split_once('.') {
        Some((module, function)) => {
            if enabled.lookup(module, function).is_some() {
                None
            } else if all.lookup(module, function).is_some() {
                Some(format!("module `{module}` is not in `modules`"))
            } else if all.has_module(module) {
                Some(format!("sipd's `{module}` has no function `{function}`"))
            } else {
                Some(format!("module `{module}` is not implemented in sipd"))
            }
        }
        None => {
            let name = path;
            if enabled.lookup("", name).is_some() || enabled.has_module(name) {
                None
            } else if all.has_module(name) {
                Some(format!("module `{name}` is not in `modules`"))
            } else if called {
                Some(format!("sipd has no core function `{name}`"))
            } else {
                Some(format!(
                    "module `{name}` is not implemented in sipd (the script may test for it)"
                ))
            }
        }
    }
}

/// `line` without a trailing comment (`--` in Lua, `#` in Python, `//` in JavaScript) that
/// starts outside a string literal.
fn strip_comment(line: &str, engine: EngineKind) -> &str {
    let marker: &[u8] = match engine {
        EngineKind::Lua => b"--",
        EngineKind::Python => b"#",
        EngineKind::Jsdt => b"//",
    };
    let bytes = line.as_bytes();
    let mut quote = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(_) if b == b'\\' => i += 1,
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'"' || b == b'\'' => quote = Some(b),
            None if bytes[i..].starts_with(marker) => return &line[..i],
            None => {}
        }
        i += 1;
    }
    line
}

/// Each `KSR.a` or `KSR.a.b` in `code`, and whether a call (`(`) follows it.
fn ksr_names(code: &str) -> impl Iterator<Item = (&str, bool)> {
    let bytes = code.as_bytes();
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    code.match_indices("KSR.").filter_map(move |(at, _)| {
        if at > 0 && (ident(bytes[at - 1]) || bytes[at - 1] == b'.') {
            return None;
        }
        let mut end = at + 4;
        let mut parts = 0;
        loop {
            let start = end;
            while end < bytes.len() && ident(bytes[end]) {
                end += 1;
            }
            if end == start {
                // `KSR.` followed by no name, or `KSR.a.` with nothing after the dot.
                if parts == 0 {
                    return None;
                }
                end -= 1;
                break;
            }
            parts += 1;
            if parts == 2 || end >= bytes.len() || bytes[end] != b'.' {
                break;
            }
            end += 1;
        }
        let rest = code[end..].trim_start();
        Some((&code[at..end], rest.starts_with('(')))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_calls_outside_comments() {
        let names: Vec<_> =
            ksr_names("if KSR.is_INVITE() and not KSR.rtpproxy then KSR.tm.t_relay() end")
                .collect();
        assert_eq!(
            names,
            [
                ("KSR.is_INVITE", true),
                ("KSR.rtpproxy", false),
                ("KSR.tm.t_relay", true)
            ]
        );
        assert_eq!(
            strip_comment("KSR.a() -- KSR.b()", EngineKind::Lua),
            "KSR.a() "
        );
        assert_eq!(strip_comment("x('--') -- c", EngineKind::Lua), "x('--') ");
        assert_eq!(
            strip_comment("KSR.a() # no", EngineKind::Python),
            "KSR.a() "
        );
        assert_eq!(ksr_names("myKSR.a() KSR.").count(), 0);
    }
}
