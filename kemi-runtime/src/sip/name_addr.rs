//! [`NameAddr`]: the `display-name <uri>;params` / `uri;params` value of From, To, Contact,
//! Route and friends, parsed on demand.

use super::error::{UriError, ValueError};
use super::header::is_token_char;
use super::params::{trim_lws, trim_lws_start, Params};
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
            match memchr::memchr(b'<', raw.as_bytes()) {
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
                let gt = memchr::memchr(b'>', inner.as_bytes()).ok_or(err("unclosed <"))?;
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

    #[test]
    fn star_contact() {
        assert!(NameAddr::parse("*", "Contact").unwrap().is_star());
    }
}
