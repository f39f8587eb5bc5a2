//! [`Params`]: a lazily split `;name=value` parameter list (URI, Via and name-addr params),
//! and the list splitter shared by comma-separated headers. Nothing here allocates: params are
//! found by scanning the borrowed text on each lookup, which is cheaper than indexing for the
//! handful of params a SIP element carries.

/// One parameter: its name and its value (`None` when written without `=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Param<'a> {
    /// Name as written, trimmed of LWS.
    pub name: &'a str,
    /// Value as written (quotes kept), trimmed of LWS; `None` for a bare `;name`.
    pub value: Option<&'a str>,
}

/// A parameter list as written, without its leading `;`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Params<'a> {
    raw: &'a str,
}

impl<'a> Params<'a> {
    /// Wrap the text after the first `;` of a parameter list (`"a=1;b"`).
    pub const fn new(raw: &'a str) -> Self {
        Params { raw }
    }

    /// The list as written.
    pub const fn as_str(&self) -> &'a str {
        self.raw
    }

    /// Whether there is no parameter text at all.
    pub fn is_empty(&self) -> bool {
        self.raw.bytes().all(is_lws)
    }

    /// Every parameter in order; empty elements (`;;`) are skipped.
    pub fn iter(&self) -> impl Iterator<Item = Param<'a>> + 'a {
        ParamIter {
            rest: Some(self.raw),
        }
    }

    /// The first parameter named `name` (case-insensitive).
    pub fn find(&self, name: &str) -> Option<Param<'a>> {
        self.iter().find(|p| p.name.eq_ignore_ascii_case(name))
    }

    /// The value of parameter `name`: `Some("")` when present without a value.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.find(name).map(|p| p.value.unwrap_or(""))
    }

    /// Whether parameter `name` is present (with or without a value).
    pub fn has(&self, name: &str) -> bool {
        self.find(name).is_some()
    }

    /// Whether some element is empty (`;;` or a trailing `;`), which RFC 3261 forbids in Via
    /// and Contact.
    pub fn has_empty(&self) -> bool {
        if self.raw.is_empty() {
            return false;
        }
        let mut rest = self.raw;
        loop {
            let (elem, next) = match find_outside_quotes(rest, b';') {
                Some(i) => (rest.get(..i).unwrap_or_default(), rest.get(i + 1..)),
                None => (rest, None),
            };
            if elem.bytes().all(is_lws) {
                return true;
            }
            match next {
                Some(n) => rest = n,
                None => return false,
            }
        }
    }
}

/// Byte-level walk over `;`-separated parameters (no `char` decoding: every delimiter is ASCII).
struct ParamIter<'a> {
    rest: Option<&'a str>,
}

impl<'a> Iterator for ParamIter<'a> {
    type Item = Param<'a>;

    fn next(&mut self) -> Option<Param<'a>> {
        loop {
            let cur = self.rest?;
            let elem = match find_outside_quotes(cur, b';') {
                Some(i) => {
                    self.rest = cur.get(i + 1..);
                    cur.get(..i).unwrap_or_default()
                }
                None => {
                    self.rest = None;
                    cur
                }
            };
            if let Some(p) = param_of(elem) {
                return Some(p);
            }
        }
    }
}

/// One element of a parameter list (between separators) as a [`Param`]; `None` when it is
/// empty or only LWS.
#[inline]
pub(crate) fn param_of(elem: &str) -> Option<Param<'_>> {
    let p = trim_lws(elem);
    if p.is_empty() {
        return None;
    }
    Some(match p.bytes().position(|c| c == b'=') {
        Some(eq) => Param {
            name: trim_lws(p.get(..eq).unwrap_or_default()),
            value: Some(trim_lws(p.get(eq + 1..).unwrap_or_default())),
        },
        None => Param {
            name: p,
            value: None,
        },
    })
}

/// Whether `c` is linear whitespace (SP, HT, CR, LF).
#[inline]
pub(crate) const fn is_lws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

/// `s` without leading and trailing LWS; byte-level, so only ASCII is looked at and the cut
/// points are char boundaries.
#[inline]
pub(crate) fn trim_lws(s: &str) -> &str {
    trim_lws_end(trim_lws_start(s))
}

/// `s` without leading LWS.
#[inline]
pub(crate) fn trim_lws_start(s: &str) -> &str {
    let n = s.bytes().take_while(|c| is_lws(*c)).count();
    s.get(n..).unwrap_or_default()
}

/// `s` without trailing LWS.
#[inline]
pub(crate) fn trim_lws_end(s: &str) -> &str {
    let n = s.bytes().rev().take_while(|c| is_lws(*c)).count();
    s.get(..s.len() - n).unwrap_or_default()
}

/// Split `s` at every `sep` that is outside a quoted string (with `\` escapes) and outside
/// `<...>`.
pub(crate) fn split_outside_quotes(s: &str, sep: u8) -> impl Iterator<Item = &str> {
    let mut rest = Some(s);
    std::iter::from_fn(move || {
        let cur = rest?;
        match find_outside_quotes(cur, sep) {
            Some(i) => {
                rest = cur.get(i + 1..);
                cur.get(..i)
            }
            None => {
                rest = None;
                Some(cur)
            }
        }
    })
}

/// Position of the first `sep` in `s` outside quotes and angle brackets.
#[inline]
pub(crate) fn find_outside_quotes(s: &str, sep: u8) -> Option<usize> {
    let b = s.as_bytes();
    // Fast path: up to the first `sep`, `"` or `<`; only a quote or bracket needs the state
    // machine.
    let i = super::scan::find3(b, sep, b'"', b'<')?;
    if b.get(i) == Some(&sep) {
        return Some(i);
    }
    find_outside_quotes_from(b, sep, i)
}

/// Whether `s` ends outside any quoted string and `<...>`, as [`find_outside_quotes`] reads
/// it: text appended after an unbalanced `"` or `<` would be read as part of it.
pub(crate) fn is_balanced(s: &str) -> bool {
    let b = s.as_bytes();
    let Some(i) = super::scan::find2(b, b'"', b'<') else {
        return true;
    };
    // A separator that never occurs: the scan runs to the end and reports its state there.
    scan_outside_quotes(b, None, i).1
}

/// The state machine of [`find_outside_quotes`], from `i` (outside quotes and brackets).
fn find_outside_quotes_from(b: &[u8], sep: u8, i: usize) -> Option<usize> {
    scan_outside_quotes(b, Some(sep), i).0
}

/// From `i` (outside quotes and brackets): the first `sep` outside both, and whether the
/// scan ended outside both (meaningful when no `sep` was found).
fn scan_outside_quotes(b: &[u8], sep: Option<u8>, mut i: usize) -> (Option<usize>, bool) {
    let (mut quoted, mut angle) = (false, false);
    while let Some(&c) = b.get(i) {
        if quoted {
            match c {
                b'\\' => i += 1,
                b'"' => quoted = false,
                _ => {}
            }
        } else if angle {
            if c == b'>' {
                angle = false;
            }
        } else if Some(c) == sep {
            return (Some(i), true);
        } else if c == b'"' {
            quoted = true;
        } else if c == b'<' {
            angle = true;
        }
        i += 1;
    }
    (None, !quoted && !angle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_trim_lws_and_keep_valueless() {
        let p = Params::new(" branch =\r\n z9hG4bK1 ;rport; received=[2001:db8::1]");
        assert_eq!(p.get("BRANCH"), Some("z9hG4bK1"));
        assert_eq!(p.get("rport"), Some(""));
        assert_eq!(p.get("received"), Some("[2001:db8::1]"));
        assert_eq!(p.get("nope"), None);
        assert!(!p.has_empty());
        assert!(Params::new("a;;b").has_empty());
    }

    #[test]
    fn split_respects_quotes_and_brackets() {
        let parts: Vec<_> = split_outside_quotes(r#""a,\"b" <sip:x,y>, c"#, b',').collect();
        assert_eq!(parts, [r#""a,\"b" <sip:x,y>"#, " c"]);
    }
}
