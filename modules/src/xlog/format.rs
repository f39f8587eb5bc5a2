//! xlog format strings: `"ruri=$ru from=$hdr(From) n=$var(n) cost=$$5"` parsed once into
//! [`Segment`]s, cached per worker thread, and printed against a message.
//!
//! A PV is `$` followed by a name of letters, digits and `_`, optionally followed by a
//! parenthesised argument (`$hdr(X-Foo)`); `$(name)` is the same as `$name`. `$$` prints one `$`.
//! A null value, a PV this crate does not know, and transformations (`$(ru{s.len})`) all print
//! `<null>`, as Kamailio prints a null value. A `$` that starts no PV at all (`"5$ "`) is kept
//! as text.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::rc::Rc;

use kemi_runtime::SipMsg;

use crate::pv::spec::PvSpec;
use crate::pv::value::{self, PvValue};

/// What a null or unknown PV prints as.
pub const NULL_TEXT: &str = "<null>";

/// Formats cached per worker; the cache is cleared when it reaches this size so that scripts
/// building format strings dynamically cannot grow it without bound.
const CACHE_LIMIT: usize = 512;

/// One piece of a parsed format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment {
    /// Text printed as is (`$$` already folded to `$`).
    Text(String),
    /// A PV name in its canonical `$name` / `$name(arg)` form.
    Pv(String),
    /// Something that prints `<null>`: a transformation or an unterminated `$(`.
    Null,
}

/// A parsed format string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Format {
    segments: Vec<Segment>,
}

/// Length of the PV reference starting at the `$` of `s`, and the canonical PV name when it is
/// a plain one (`None` for a transformation). `None` when `s` does not start a PV.
pub fn scan_pv(s: &str) -> Option<(usize, Option<String>)> {
    let rest = s.strip_prefix('$')?;
    if let Some(inner) = rest.strip_prefix('(') {
        let close = matching_paren(inner)?;
        let body = inner.get(..close)?;
        let name = (!body.contains('{')).then(|| format!("${body}"));
        return Some((close + 3, name));
    }
    let ident = rest
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
        .count();
    if ident == 0 {
        return None;
    }
    let after = rest.get(ident..).unwrap_or_default();
    let len = match after.strip_prefix('(') {
        Some(inner) => match matching_paren(inner) {
            Some(close) => 1 + ident + close + 2,
            None => 1 + ident,
        },
        None => 1 + ident,
    };
    let name = s.get(..len)?.to_string();
    Some((len, Some(name)))
}

/// Index of the `)` closing an already opened `(` in `s`.
fn matching_paren(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, b) in s.bytes().enumerate() {
        match b {
            b'(' => depth += 1,
            b')' if depth == 0 => return Some(i),
            b')' => depth -= 1,
            _ => {}
        }
    }
    None
}

impl Format {
    /// Parse a format string. Never fails: anything that is not a PV is text.
    pub fn parse(fmt: &str) -> Format {
        let mut segments = Vec::new();
        let mut text = String::new();
        let mut rest = fmt;
        while let Some(dollar) = rest.find('$') {
            text.push_str(rest.get(..dollar).unwrap_or_default());
            let at = rest.get(dollar..).unwrap_or_default();
            if at.starts_with("$$") {
                text.push('$');
                rest = at.get(2..).unwrap_or_default();
                continue;
            }
            match scan_pv(at) {
                Some((len, name)) => {
                    if !text.is_empty() {
                        segments.push(Segment::Text(std::mem::take(&mut text)));
                    }
                    segments.push(name.map_or(Segment::Null, Segment::Pv));
                    rest = at.get(len..).unwrap_or_default();
                }
                None => {
                    text.push('$');
                    rest = at.get(1..).unwrap_or_default();
                }
            }
        }
        text.push_str(rest);
        if !text.is_empty() {
            segments.push(Segment::Text(text));
        }
        Format { segments }
    }

    /// The parsed pieces.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Print the format for `msg` into `out`.
    pub fn print(&self, msg: &SipMsg, out: &mut String) {
        for seg in &self.segments {
            match seg {
                Segment::Text(t) => out.push_str(t),
                Segment::Pv(name) => push_pv(msg, name, out),
                Segment::Null => out.push_str(NULL_TEXT),
            }
        }
    }
}

/// Print the value of PV `name` (`$ru`, `$hdr(X)`) into `out`; `<null>` when it is null or not
/// a PV this crate knows.
pub fn push_pv(msg: &SipMsg, name: &str, out: &mut String) {
    match PvSpec::parse(name).map(|spec| value::read(msg, &spec)) {
        Some(PvValue::Str(s)) => out.push_str(&s),
        Some(PvValue::Int(n)) => {
            let _ = write!(out, "{n}");
        }
        Some(PvValue::Null) | None => out.push_str(NULL_TEXT),
    }
}

thread_local! {
    static FORMATS: RefCell<HashMap<Box<str>, Rc<Format>>> = RefCell::new(HashMap::new());
}

/// The parsed form of `fmt`, from this worker's cache when it was seen before.
pub fn cached(fmt: &str) -> Rc<Format> {
    FORMATS.with(|cell| {
        let mut map = cell.borrow_mut();
        if let Some(f) = map.get(fmt) {
            return Rc::clone(f);
        }
        if map.len() >= CACHE_LIMIT {
            map.clear();
        }
        let f = Rc::new(Format::parse(fmt));
        map.insert(fmt.into(), Rc::clone(&f));
        f
    })
}

/// Whether `fmt` is already in this worker's cache (for tests).
pub fn is_cached(fmt: &str) -> bool {
    FORMATS.with(|cell| cell.borrow().contains_key(fmt))
}

/// `fmt` printed for `msg`. A format without `$` is returned as is, without parsing or caching.
pub fn render(msg: &SipMsg, fmt: &str) -> String {
    if !fmt.contains('$') {
        return fmt.to_string();
    }
    let f = cached(fmt);
    let mut out = String::with_capacity(fmt.len() + 32);
    f.print(msg, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Segment {
        Segment::Text(s.into())
    }
    fn pv(s: &str) -> Segment {
        Segment::Pv(s.into())
    }

    #[test]
    fn splits_text_and_pvs() {
        let f = Format::parse("a $ru b $hdr(X-Foo) c$var(n)!");
        assert_eq!(
            f.segments(),
            [
                text("a "),
                pv("$ru"),
                text(" b "),
                pv("$hdr(X-Foo)"),
                text(" c"),
                pv("$var(n)"),
                text("!")
            ]
        );
    }

    #[test]
    fn dollar_escapes_and_strays() {
        assert_eq!(Format::parse("cost $$5").segments(), [text("cost $5")]);
        assert_eq!(Format::parse("5$ end$").segments(), [text("5$ end$")]);
        assert_eq!(Format::parse("$(ru)").segments(), [pv("$ru")]);
        assert_eq!(
            Format::parse("$(ru{s.len})x").segments(),
            [Segment::Null, text("x")]
        );
        assert_eq!(Format::parse("$(ru").segments(), [text("$(ru")]);
        assert_eq!(Format::parse("$hdr(X").segments(), [pv("$hdr"), text("(X")]);
    }
}
