//! Sed-like substitution expressions, `/regex/replacement/flags`, parsed once per worker and
//! cached ([`SubstExpr::cached`]).
//!
//! The first character is the delimiter (usually `/`); `\<delimiter>` stands for the delimiter
//! itself in both parts. Flags: `i` ignore case, `g` replace every match (else the first), `s`
//! let `.` match line breaks and `^`/`$` only the ends of the text (by default they work per
//! line, as Kamailio's `REG_NEWLINE`). In the replacement, `\0`..`\9` are the match and its
//! groups, `\n` `\r` `\t` `\\` `\$` the characters, `\u` the Request-URI in effect, and a PV
//! (`$ru`, `$hdr(X)`, `$var(x)`) its value.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ops::Range;
use std::rc::Rc;

use kemi_runtime::SipMsg;
use regex::bytes::{Captures, Regex};

use super::regex_cache::{self, Flavor};
use crate::view;
use crate::xlog::format;

/// Entries before the cache is cleared.
const CACHE_LIMIT: usize = 256;

/// Why an expression does not parse.
#[derive(Debug, thiserror::Error)]
pub enum SubstError {
    /// Empty expression or missing delimiters.
    #[error("malformed subst expression (want /regex/replacement/flags)")]
    Malformed,
    /// A flag other than `i`, `g`, `s`.
    #[error("unknown subst flag '{0}'")]
    Flag(char),
    /// The regex does not compile.
    #[error("bad regex: {0}")]
    Regex(#[from] regex::Error),
}

/// One piece of a replacement.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    /// Literal bytes.
    Text(String),
    /// Group `n` of the match (0 = the whole match).
    Group(usize),
    /// The Request-URI in effect.
    Ruri,
    /// The value of a PV.
    Pv(String),
}

/// A parsed `/regex/replacement/flags`.
#[derive(Debug)]
pub struct SubstExpr {
    re: Rc<Regex>,
    repl: Vec<Piece>,
    global: bool,
}

/// One replacement to make: bytes `range` of the searched text become `text`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Splice {
    /// What is replaced (offsets into the searched text, or the message once rebased).
    pub range: Range<usize>,
    /// What replaces it.
    pub text: Vec<u8>,
}

/// Split `s` at the first `delim` not preceded by a backslash; `\<delim>` becomes the
/// delimiter, other escapes are kept as written.
fn split_part(s: &str, delim: char) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some((_, n)) if n == delim => {
                    if regex_meta(n) {
                        out.push('\\');
                    }
                    out.push(n);
                }
                Some((_, n)) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            }
        } else if c == delim {
            return Some((out, s.get(i + c.len_utf8()..)?));
        } else {
            out.push(c);
        }
    }
    None
}

fn regex_meta(c: char) -> bool {
    "\\.+*?()|[]{}^$#&-~".contains(c)
}

/// Parse the replacement text (delimiter escapes already resolved).
fn parse_repl(s: &str) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        let clen = c.len_utf8();
        if c == '\\' {
            let mut it = rest.chars().skip(1);
            let Some(n) = it.next() else {
                text.push('\\');
                break;
            };
            let special = match n {
                'n' => Some('\n'),
                'r' => Some('\r'),
                't' => Some('\t'),
                _ => None,
            };
            if let Some(d) = n.to_digit(10) {
                flush(&mut text, &mut pieces);
                pieces.push(Piece::Group(d as usize));
            } else if n == 'u' {
                flush(&mut text, &mut pieces);
                pieces.push(Piece::Ruri);
            } else {
                text.push(special.unwrap_or(n));
            }
            rest = rest.get(1 + n.len_utf8()..).unwrap_or_default();
        } else if c == '$' {
            match format::scan_pv(rest) {
                Some((len, Some(name))) => {
                    flush(&mut text, &mut pieces);
                    pieces.push(Piece::Pv(name));
                    rest = rest.get(len..).unwrap_or_default();
                }
                _ => {
                    text.push('$');
                    rest = rest.get(1..).unwrap_or_default();
                }
            }
        } else {
            text.push(c);
            rest = rest.get(clen..).unwrap_or_default();
        }
    }
    flush(&mut text, &mut pieces);
    pieces
}

fn flush(text: &mut String, pieces: &mut Vec<Piece>) {
    if !text.is_empty() {
        pieces.push(Piece::Text(std::mem::take(text)));
    }
}

thread_local! {
    static EXPRS: RefCell<HashMap<Box<str>, Rc<SubstExpr>>> = RefCell::new(HashMap::new());
}

impl SubstExpr {
    /// Parse `/regex/replacement/flags`.
    pub fn parse(expr: &str) -> Result<SubstExpr, SubstError> {
        let delim = expr.chars().next().ok_or(SubstError::Malformed)?;
        let body = expr.get(delim.len_utf8()..).ok_or(SubstError::Malformed)?;
        let (pattern, rest) = split_part(body, delim).ok_or(SubstError::Malformed)?;
        let (repl, flags) = split_part(rest, delim).ok_or(SubstError::Malformed)?;
        let mut flavor = Flavor {
            icase: false,
            newline: true,
        };
        let mut global = false;
        for f in flags.chars() {
            match f {
                'i' => flavor.icase = true,
                'g' => global = true,
                's' => flavor.newline = false,
                other => return Err(SubstError::Flag(other)),
            }
        }
        Ok(SubstExpr {
            re: regex_cache::compile(&pattern, flavor)?,
            repl: parse_repl(&repl),
            global,
        })
    }

    /// The parsed form of `expr`, from this worker's cache when it was seen before.
    pub fn cached(expr: &str) -> Result<Rc<SubstExpr>, SubstError> {
        if let Some(e) = EXPRS.with(|c| c.borrow().get(expr).cloned()) {
            return Ok(e);
        }
        let e = Rc::new(SubstExpr::parse(expr)?);
        EXPRS.with(|c| {
            let mut map = c.borrow_mut();
            if map.len() >= CACHE_LIMIT {
                map.clear();
            }
            map.insert(expr.into(), Rc::clone(&e));
        });
        Ok(e)
    }

    /// The replacements for `hay`: the first match, or every match with `g`. Empty when
    /// nothing matches.
    pub fn splices(&self, msg: &SipMsg, hay: &[u8]) -> Vec<Splice> {
        let mut out = Vec::new();
        for caps in self.re.captures_iter(hay) {
            let Some(whole) = caps.get(0) else { continue };
            let mut text = Vec::new();
            self.expand(msg, &caps, &mut text);
            out.push(Splice {
                range: whole.range(),
                text,
            });
            if !self.global {
                break;
            }
        }
        out
    }

    /// `text` with the substitution applied, or `None` when nothing matches.
    pub fn apply_str(&self, msg: &SipMsg, text: &str) -> Option<String> {
        let splices = self.splices(msg, text.as_bytes());
        if splices.is_empty() {
            return None;
        }
        let out = splice_bytes(text.as_bytes(), &splices);
        Some(String::from_utf8_lossy(&out).into_owned())
    }

    fn expand(&self, msg: &SipMsg, caps: &Captures<'_>, out: &mut Vec<u8>) {
        for p in &self.repl {
            match p {
                Piece::Text(t) => out.extend_from_slice(t.as_bytes()),
                Piece::Group(n) => {
                    if let Some(g) = caps.get(*n) {
                        out.extend_from_slice(g.as_bytes());
                    }
                }
                Piece::Ruri => {
                    if let Some(ru) = view::current_ruri(msg) {
                        out.extend_from_slice(ru.as_bytes());
                    }
                }
                Piece::Pv(name) => {
                    let mut s = String::new();
                    format::push_pv(msg, name, &mut s);
                    out.extend_from_slice(s.as_bytes());
                }
            }
        }
    }
}

/// `hay` with sorted, non-overlapping `splices` applied (overlapping ones are skipped).
pub fn splice_bytes(hay: &[u8], splices: &[Splice]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len() + 32);
    let mut at = 0;
    for s in splices {
        if s.range.start < at {
            continue;
        }
        out.extend_from_slice(hay.get(at..s.range.start).unwrap_or_default());
        out.extend_from_slice(&s.text);
        at = s.range.end.max(at);
    }
    out.extend_from_slice(hay.get(at..).unwrap_or_default());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_parts_and_flags() {
        let e = SubstExpr::parse("/a\\/b/x\\1y\\u$ru\\n/gi").unwrap_or_else(|e| panic!("{e}"));
        assert!(e.global);
        assert_eq!(e.re.as_str(), "a/b");
        assert_eq!(
            e.repl,
            [
                Piece::Text("x".into()),
                Piece::Group(1),
                Piece::Text("y".into()),
                Piece::Ruri,
                Piece::Pv("$ru".into()),
                Piece::Text("\n".into()),
            ]
        );
        let e = SubstExpr::parse("#a.b#\\##").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(e.repl, [Piece::Text("#".into())]);
    }

    #[test]
    fn rejects_malformed() {
        for bad in ["", "/", "/a", "/a/b", "/a/b/q", "/(/x/"] {
            assert!(SubstExpr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn splice_applies_in_order() {
        let s = [
            Splice {
                range: 0..1,
                text: b"X".to_vec(),
            },
            Splice {
                range: 3..3,
                text: b"+".to_vec(),
            },
        ];
        assert_eq!(splice_bytes(b"abcd", &s), b"Xbc+d");
    }
}
