//! Errors of script loading ([`LoadError`]) and of callback runs ([`ScriptError`]), and the
//! parsing of `file:line: message` positions out of interpreter messages.

use std::fmt;
use std::path::PathBuf;

/// A script could not be loaded or reloaded: syntax error, error at top level, missing
/// `ksr_request_route`, unreadable file.
///
/// Displays as `file:line: cause`, or `file: cause` when no line is known.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct LoadError {
    /// The script file.
    pub file: PathBuf,
    /// The line in `file` where the error is, when known.
    pub line: Option<u32>,
    /// What went wrong, without the position.
    pub cause: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file.display(), line, self.cause),
            None => write!(f, "{}: {}", self.file.display(), self.cause),
        }
    }
}

impl LoadError {
    /// An error with no line.
    pub fn new(file: impl Into<PathBuf>, cause: impl Into<String>) -> Self {
        LoadError {
            file: file.into(),
            line: None,
            cause: cause.into(),
        }
    }
}

/// A callback raised an error. The engine that returned it stays usable.
///
/// Displays as `location: message` (or just `message`), without the traceback.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ScriptError {
    /// The error message, without its position.
    pub message: String,
    /// `file:line` where the error was raised, when known.
    pub location: Option<String>,
    /// The interpreter's stack traceback (may be empty).
    pub traceback: String,
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Some(loc) => write!(f, "{loc}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// A `file:line` position found at the start of an interpreter message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position<'a> {
    /// The source name as the interpreter wrote it (may be shortened with a leading `...`).
    pub source: &'a str,
    /// The line number.
    pub line: u32,
}

/// Split `source:line: rest` into its position and the rest. Messages without a leading
/// position (`error(x, 0)`, non-string errors) give `None` and the whole text.
pub fn split_position(msg: &str) -> (Option<Position<'_>>, &str) {
    // The source name may itself contain ':' (Windows drive, odd paths): take the first
    // `:<digits>: ` and require it on the first line.
    let first_line = msg.split('\n').next().unwrap_or(msg);
    let bytes = first_line.as_bytes();
    let mut from = 0;
    while let Some(rel) = first_line[from..].find(':') {
        let colon = from + rel;
        let digits_end = bytes[colon + 1..]
            .iter()
            .position(|b| !b.is_ascii_digit())
            .map_or(bytes.len(), |p| colon + 1 + p);
        if digits_end > colon + 1 && bytes.get(digits_end) == Some(&b':') && colon > 0 {
            if let Ok(line) = first_line[colon + 1..digits_end].parse::<u32>() {
                let rest = msg[digits_end + 1..]
                    .strip_prefix(' ')
                    .unwrap_or(&msg[digits_end + 1..]);
                return (
                    Some(Position {
                        source: &first_line[..colon],
                        line,
                    }),
                    rest,
                );
            }
        }
        from = colon + 1;
    }
    (None, msg)
}

/// True when the source name of an interpreter message names `file` (interpreters shorten long
/// names to `...tail`).
pub fn source_matches(source: &str, file: &str) -> bool {
    source == file
        || source
            .strip_prefix("...")
            .is_some_and(|tail| file.ends_with(tail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_leading_position() {
        let (pos, rest) = split_position("/a/b.lua:12: attempt to call a nil value");
        assert_eq!(
            pos,
            Some(Position {
                source: "/a/b.lua",
                line: 12
            })
        );
        assert_eq!(rest, "attempt to call a nil value");
    }

    #[test]
    fn no_position() {
        assert_eq!(split_position("boom"), (None, "boom"));
        assert_eq!(split_position("a: b: c").0, None);
        assert_eq!(split_position(":3: x").0, None);
    }

    #[test]
    fn colon_in_source_name() {
        let (pos, rest) = split_position("C:\\x.lua:7: bad");
        assert_eq!(
            pos,
            Some(Position {
                source: "C:\\x.lua",
                line: 7
            })
        );
        assert_eq!(rest, "bad");
    }

    #[test]
    fn shortened_source() {
        assert!(source_matches(
            "...long/dir/route.lua",
            "/very/long/dir/route.lua"
        ));
        assert!(!source_matches("other.lua", "/x/route.lua"));
    }

    #[test]
    fn load_error_display() {
        let e = LoadError {
            file: "r.lua".into(),
            line: Some(3),
            cause: "unexpected symbol".into(),
        };
        assert_eq!(e.to_string(), "r.lua:3: unexpected symbol");
        assert_eq!(LoadError::new("r.lua", "gone").to_string(), "r.lua: gone");
    }
}
