//! [`NameAddr`]: the `display-name <uri>;params` / `uri;params` value of From, To, Contact,
//! Route and friends, parsed on demand.

use super::error::{UriError, ValueError};
use super::header::is_token_char;
use super::params::{is_lws, trim_lws, trim_lws_start, Params};
use super::scan::find1;
use super::uri::Uri;
use super::via::split_byte;

/// A name-addr or addr-spec with its header parameters.
///
/// In addr-spec form (no `<>`), everything after the first `;` is a header parameter, not a
/// URI parameter (RFC 3261 20.10).
///
/// ```
/// use kemi_runtime::sip::NameAddr;
/// let n = NameAddr::parse("\"Bob\" <sip:bob@b.example;lr>;tag=abc", "To").unwrap();
/// assert_eq!((n.display, n.uri, n.tag()), (Some("\"Bob\""), "sip:bob@b.example;lr", Some("abc")));
/// let n = NameAddr::parse("sip:+1972@gw1.example.net;unknownparam", "Contact").unwrap();
/// assert_eq!((n.uri, n.param("unknownparam")), ("sip:+1972@gw1.example.net", Some("")));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NameAddr<'a> {
    /// The value as written (trimmed).
    pub raw: &'a str,
    /// The display name as written (quotes kept), if any.
    pub display: Option<&'a str>,
    /// The URI text (inside `<>` when bracketed, spaces inside the brackets trimmed).
    pub uri: &'a str,
    /// Whether the URI was written inside `<>`.
    pub bracketed: bool,
    /// Header parameters after the URI.
    pub params: Params<'a>,
}

impl<'a> NameAddr<'a> {
    /// Parse one value; `header` names the header in errors (`"From"`).
    pub fn parse(raw: &'a str, header: &'static str) -> Result<NameAddr<'a>, ValueError> {
        let raw = trim_lws(raw);
        let err = |d| ValueError::new(header, d);
        let (display, rest) = if raw.starts_with('"') {
            let end = closing_quote(raw).ok_or(err("unterminated quoted display name"))?;
            let (d, rest) = raw.split_at(end + 1);
            let rest = trim_lws_start(rest);
            if !rest.starts_with('<') {
                return Err(err("quoted display name without <uri>"));
            }
            (Some(d), rest)
        } else {
            match find1(raw.as_bytes(), b'<') {
                Some(lt) => {
                    let (d, rest) = raw.split_at(lt);
                    let d = trim_lws(d);
                    if !d
                        .bytes()
                        .all(|c| is_token_char(c) || matches!(c, b' ' | b'\t' | b'\r' | b'\n'))
                    {
                        return Err(err("display name must be quoted"));
                    }
                    ((!d.is_empty()).then_some(d), rest)
                }
                None => (None, raw),
            }
        };
        let (uri, bracketed, params) = match rest.strip_prefix('<') {
            Some(inner) => {
                let gt = find1(inner.as_bytes(), b'>').ok_or(err("unclosed <"))?;
                let (uri, after) = inner.split_at(gt);
                let after = trim_lws_start(after.get(1..).unwrap_or(""));
                let params = match after.strip_prefix(';') {
                    Some(p) => p,
                    None if after.is_empty() => "",
                    None => return Err(err("junk after >")),
                };
                (trim_lws(uri), true, params)
            }
            None => {
                let (uri, params) = split_byte(rest, b';').unwrap_or((rest, ""));
                if uri
                    .bytes()
                    .any(|c| matches!(c, b'?' | b',' | b'<' | b'>' | b'"'))
                {
                    return Err(err("URI with headers or separators needs <>"));
                }
                (trim_lws(uri), false, params)
            }
        };
        if uri.is_empty() {
            return Err(err("empty URI"));
        }
        let params = Params::new(params);
        if params.has_empty() {
            return Err(err("empty parameter"));
        }
        Ok(NameAddr {
            raw,
            display,
            uri,
            bracketed,
            params,
        })
    }

    /// The display name without its quotes (quoted-pairs kept as written).
    pub fn display_unquoted(&self) -> Option<&'a str> {
        self.display.map(|d| {
            d.strip_prefix('"')
                .and_then(|d| d.strip_suffix('"'))
                .unwrap_or(d)
        })
    }

    /// Parse the URI.
    pub fn parsed_uri(&self) -> Result<Uri<'a>, UriError> {
        Uri::parse(self.uri)
    }

    /// Whether this is the `*` of a REGISTER Contact.
    pub fn is_star(&self) -> bool {
        self.uri == "*" && !self.bracketed
    }

    /// The `tag` parameter.
    pub fn tag(&self) -> Option<&'a str> {
        self.params.get("tag")
    }

    /// The value of header parameter `name`; `Some("")` when present without a value.
    pub fn param(&self, name: &str) -> Option<&'a str> {
        self.params.get(name)
    }
}

/// The `tag` param of a From or To value: the same as `NameAddr::parse(raw, _).ok()?.tag()`
/// (`None` when the value does not parse), found in one pass over the bytes for the usual
/// form (`[token display] <uri>;params` without quotes in the params); anything else takes
/// the full parse.
///
/// ```
/// use kemi_runtime::sip::tag_of;
/// assert_eq!(tag_of("sipp <sip:sipp@127.0.0.1:5061>;tag=1-2"), Some("1-2"));
/// assert_eq!(tag_of("<sip:a@b>;tag=1;;"), None);
/// assert_eq!(tag_of("sip:a@b;TAG = x"), Some("x"));
/// ```
pub fn tag_of(raw: &str) -> Option<&str> {
    match fast_tag(raw) {
        Some(tag) => tag,
        None => NameAddr::parse(raw, "To").ok()?.tag(),
    }
}

/// [`tag_of`] for a value whose display name (if any) is tokens and LWS, whose URI is in
/// `<>` and whose params hold no `"` or `<`: `Some(tag)` for such a value that parses; `None`
/// for anything else, errors included (the caller parses it fully).
#[inline]
fn fast_tag(raw: &str) -> Option<Option<&str>> {
    let b = raw.as_bytes();
    let mut end = b.len();
    while end > 0 && b.get(end - 1).is_some_and(|&c| is_lws(c)) {
        end -= 1;
    }
    let b = b.get(..end)?;
    // Up to the `<`: a display name of tokens and LWS (what `parse` accepts unquoted).
    let mut i = 0;
    loop {
        let c = *b.get(i)?;
        if c == b'<' {
            break;
        }
        if !(is_token_char(c) || is_lws(c)) {
            return None;
        }
        i += 1;
    }
    let gt = i + 1 + find1(b.get(i + 1..)?, b'>')?;
    // A non-empty URI (its first byte not LWS: otherwise let `parse` trim and decide).
    if b.get(i + 1).is_none_or(|&c| c == b'>' || is_lws(c)) {
        return None;
    }
    let mut j = gt + 1;
    while b.get(j).is_some_and(|&c| is_lws(c)) {
        j += 1;
    }
    match b.get(j) {
        None => return Some(None),
        Some(b';') => {}
        Some(_) => return None,
    }
    let params = b.get(j + 1..)?;
    let mut tag = None;
    for elem in params.split(|&c| c == b';') {
        if elem.iter().any(|&c| c == b'"' || c == b'<') {
            return None;
        }
        let elem = trim_bytes(elem);
        if elem.is_empty() {
            // `;;` or a trailing `;`: the value does not parse.
            return None;
        }
        if tag.is_none() {
            let (name, value) = match elem.iter().position(|&c| c == b'=') {
                Some(eq) => (trim_bytes(elem.get(..eq)?), trim_bytes(elem.get(eq + 1..)?)),
                None => (elem, &elem[..0]),
            };
            if name.eq_ignore_ascii_case(b"tag") {
                tag = Some(value);
            }
        }
    }
    // The cut points are next to ASCII bytes, so `value` is a char-boundary slice of `raw`.
    Some(tag.map(|v| {
        let at = v.as_ptr() as usize - raw.as_ptr() as usize;
        raw.get(at..at + v.len()).unwrap_or_default()
    }))
}

/// `b` without leading and trailing LWS.
#[inline]
fn trim_bytes(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&c| !is_lws(c)).unwrap_or(b.len());
    let end = b.iter().rposition(|&c| !is_lws(c)).map_or(start, |e| e + 1);
    b.get(start..end).unwrap_or_default()
}

/// Index of the quote closing the quoted string `s` starts with.
fn closing_quote(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 1;
    while let Some(&c) = b.get(i) {
        match c {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_forms() {
        let n = NameAddr::parse("caller<sip:caller@example.com>;tag=323", "From").unwrap();
        assert_eq!(
            (n.display, n.uri, n.tag()),
            (Some("caller"), "sip:caller@example.com", Some("323"))
        );
        let n = NameAddr::parse("\"Watson, Thomas\" < sip:t.watson@example.org >", "To").unwrap();
        assert_eq!(
            (n.display_unquoted(), n.uri),
            (Some("Watson, Thomas"), "sip:t.watson@example.org")
        );
        let n = NameAddr::parse("\"BEL:\\\x07 NUL:\\\0 DEL:\\\x7f\" <sip:x@y>", "To").unwrap();
        assert_eq!(n.uri, "sip:x@y");
    }

    #[test]
    fn rejects_malformed() {
        assert!(NameAddr::parse("\"Mr. J. User <sip:j.user@example.com>", "To").is_err());
        assert!(
            NameAddr::parse("Bell, Alexander <sip:a.g.bell@example.com>;tag=43", "From").is_err()
        );
        assert!(NameAddr::parse(
            "sip:user@example.com?Route=%3Csip:example.com%3E",
            "Contact"
        )
        .is_err());
        assert!(NameAddr::parse("<sip:a@b>;;;", "Contact").is_err());
        assert!(NameAddr::parse("<sip:a@b", "To").is_err());
        assert!(NameAddr::parse("", "To").is_err());
    }

    /// `tag_of` agrees with the full parse, on the forms its one pass takes and on those it
    /// hands over.
    #[test]
    fn tag_of_agrees_with_the_full_parse() {
        for v in [
            "sipp <sip:sipp@127.0.0.1:5061>;tag=21467SIPpTag001",
            "<sip:a@b>",
            "<sip:a@b>  ",
            "<sip:a@b>;tag=x",
            " <sip:a@b> ; TAG = x ; other",
            "<sip:a@b>;other;tag;tag=y",
            "<sip:a@b>;tag=",
            "<sip:a@b>;tag=x;",
            "<sip:a@b>;;tag=x",
            "<sip:a@b>;tag=x; ;",
            "<sip:a@b>;tag=\"x;y\"",
            "<sip:a@b>;x=\"a\";tag=1",
            "<sip:a@b>;x=<y>;tag=1",
            "<sip:a@b>junk;tag=1",
            "<>;tag=1",
            "< >;tag=1",
            "< sip:a@b >;tag=1",
            "<sip:a@b;tag=uri>;tag=hdr",
            "<sip:a@b",
            "caller<sip:caller@example.com>;tag=323",
            "Bell, Alexander <sip:a@b>;tag=43",
            "\"Bob\" <sip:bob@b>;tag=q",
            "\"Bob <sip:bob@b>;tag=q",
            "sip:a@b;tag=z",
            "sip:a@b",
            "sip:a@b;;tag=z",
            "",
            "  ",
            "<sip:a@b>;tag=x\r\n ;y",
            "Jos\u{1a} <sip:j@b>;tag=1",
            "<sip:\u{e9}@b>;tag=\u{e9}t\u{e9}",
        ] {
            let full = NameAddr::parse(v, "To").ok().and_then(|n| n.tag());
            assert_eq!(tag_of(v), full, "{v:?}");
        }
    }

    #[test]
    fn star_contact() {
        assert!(NameAddr::parse("*", "Contact").unwrap().is_star());
    }
}
