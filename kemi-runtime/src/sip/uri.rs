//! [`Uri`]: a borrowed, lazily checked URI (`sip:`, `sips:`, `tel:`, and any other scheme kept
//! opaque). Escapes (`%HH`) stay as written; [`percent_decode`] decodes on demand, once.

use std::borrow::Cow;

use super::error::UriError;
use super::params::Params;
use super::via::split_byte;

/// The scheme family of a [`Uri`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// `sip:`.
    Sip,
    /// `sips:`.
    Sips,
    /// `tel:`.
    Tel,
    /// Anything else; the rest of the URI is opaque.
    Other,
}

/// A parsed URI borrowing from its text.
///
/// ```
/// use kemi_runtime::sip::Uri;
/// let u = Uri::parse("sip:alice:pw@[2001:db8::1]:5070;transport=tcp?subject=hi").unwrap();
/// assert_eq!((u.user, u.password, u.host, u.port), (Some("alice"), Some("pw"), "[2001:db8::1]", Some(5070)));
/// assert_eq!(u.param("transport"), Some("tcp"));
/// assert_eq!(u.headers, Some("subject=hi"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Uri<'a> {
    /// The whole URI as given.
    pub raw: &'a str,
    /// The scheme as written (`sip`, `SIPS`, `tel`, `soap.beep`...).
    pub scheme: &'a str,
    /// Everything after `scheme:`.
    pub opaque: &'a str,
    /// The user part (escapes kept); for `tel:` the number.
    pub user: Option<&'a str>,
    /// The password part of the userinfo.
    pub password: Option<&'a str>,
    /// The host as written; an IPv6 reference keeps its brackets. Empty for `tel:` and
    /// opaque schemes.
    pub host: &'a str,
    /// The port, when written after the host (never from inside `[...]`).
    pub port: Option<u16>,
    /// URI parameters (`;name=value`).
    pub params: Params<'a>,
    /// The headers component after `?`, as written.
    pub headers: Option<&'a str>,
}

impl<'a> Uri<'a> {
    /// Parse a URI. `sip`/`sips` URIs are checked (host present, IPv6 references bracketed,
    /// port numeric and at most 65535); `tel` keeps the number as `user`; other schemes only
    /// need a valid scheme name.
    pub fn parse(raw: &'a str) -> Result<Uri<'a>, UriError> {
        if raw
            .bytes()
            .any(|c| c.is_ascii_whitespace() || c.is_ascii_control())
        {
            return Err(UriError("whitespace or control character in URI"));
        }
        let (scheme, opaque) = split_byte(raw, b':').ok_or(UriError("no scheme"))?;
        if !is_scheme(scheme) {
            return Err(UriError("bad scheme"));
        }
        let mut uri = Uri {
            raw,
            scheme,
            opaque,
            user: None,
            password: None,
            host: "",
            port: None,
            params: Params::default(),
            headers: None,
        };
        match scheme_kind(scheme) {
            Scheme::Sip | Scheme::Sips => parse_sip(&mut uri, opaque)?,
            Scheme::Tel => {
                let (number, params) = split_byte(opaque, b';').unwrap_or((opaque, ""));
                if number.is_empty() {
                    return Err(UriError("empty telephone number"));
                }
                uri.user = Some(number);
                uri.params = Params::new(params);
            }
            Scheme::Other => {
                if opaque.is_empty() {
                    return Err(UriError("empty URI"));
                }
            }
        }
        Ok(uri)
    }

    /// The scheme family.
    pub fn kind(&self) -> Scheme {
        scheme_kind(self.scheme)
    }

    /// The value of URI parameter `name`; `Some("")` when present without a value.
    pub fn param(&self, name: &str) -> Option<&'a str> {
        self.params.get(name)
    }

    /// The host without IPv6 brackets.
    pub fn host_unbracketed(&self) -> &'a str {
        strip_brackets(self.host)
    }
}

fn parse_sip<'a>(uri: &mut Uri<'a>, rest: &'a str) -> Result<(), UriError> {
    let hostpart = match split_byte(rest, b'@') {
        Some((userinfo, hostpart)) => {
            let (user, password) = match split_byte(userinfo, b':') {
                Some((u, p)) => (u, Some(p)),
                None => (userinfo, None),
            };
            if user.is_empty() {
                return Err(UriError("empty user part"));
            }
            uri.user = Some(user);
            uri.password = password;
            hostpart
        }
        None => rest,
    };
    let (host, after) = split_host(hostpart)?;
    uri.host = host;
    let after = match after.strip_prefix(':') {
        Some(p) => {
            let end = p
                .bytes()
                .position(|c| c == b';' || c == b'?')
                .unwrap_or(p.len());
            let (port, after) = p.split_at(end);
            uri.port = Some(parse_port(port).ok_or(UriError("bad port"))?);
            after
        }
        None => after,
    };
    let (params, headers) = match split_byte(after, b'?') {
        Some((p, h)) => (p, Some(h)),
        None => (after, None),
    };
    uri.headers = headers;
    uri.params = match params.strip_prefix(';') {
        Some(p) => Params::new(p),
        None if params.is_empty() => Params::default(),
        None => return Err(UriError("junk after host")),
    };
    Ok(())
}

/// Split a `host[:port]...` text into the host (IPv6 reference with brackets) and the rest.
pub(crate) fn split_host(s: &str) -> Result<(&str, &str), UriError> {
    let b = s.as_bytes();
    if b.first() == Some(&b'[') {
        let close = b
            .iter()
            .position(|&c| c == b']')
            .ok_or(UriError("unclosed IPv6 reference"))?;
        let inner = b.get(1..close).unwrap_or_default();
        if inner.is_empty()
            || !inner
                .iter()
                .all(|c| c.is_ascii_hexdigit() || *c == b':' || *c == b'.')
        {
            return Err(UriError("bad IPv6 reference"));
        }
        return Ok(s.split_at(close + 1));
    }
    let mut end = b.len();
    for (i, &c) in b.iter().enumerate() {
        if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_') {
            continue;
        }
        if matches!(c, b':' | b';' | b'?' | b' ' | b'\t' | b'\r' | b'\n' | b',') {
            end = i;
            break;
        }
        // Neither a host character nor a delimiter, before the first delimiter: the host
        // (up to that delimiter) is not empty and has a bad character.
        return Err(UriError("bad character in host"));
    }
    if end == 0 {
        return Err(UriError("empty host"));
    }
    Ok(s.split_at(end))
}

/// A port: 1 to 5 digits, at most 65535.
pub(crate) fn parse_port(s: &str) -> Option<u16> {
    if s.is_empty() || s.len() > 5 {
        return None;
    }
    let mut n: u32 = 0;
    for c in s.bytes() {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u32::from(c - b'0');
    }
    u16::try_from(n).ok()
}

/// `host` without the brackets of an IPv6 reference.
pub fn strip_brackets(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

fn is_scheme(s: &str) -> bool {
    let mut b = s.bytes();
    b.next().is_some_and(|c| c.is_ascii_alphabetic())
        && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
}

/// Whether `s` starts like an absolute URI (`scheme:`), the cheap check the start-line parser
/// does on a Request-URI.
pub(crate) fn has_scheme(s: &[u8]) -> bool {
    s.iter().position(|&c| c == b':').is_some_and(|colon| {
        let scheme = s.get(..colon).unwrap_or_default();
        scheme.first().is_some_and(u8::is_ascii_alphabetic)
            && scheme
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
    })
}

fn scheme_kind(s: &str) -> Scheme {
    if s.eq_ignore_ascii_case("sip") {
        Scheme::Sip
    } else if s.eq_ignore_ascii_case("sips") {
        Scheme::Sips
    } else if s.eq_ignore_ascii_case("tel") {
        Scheme::Tel
    } else {
        Scheme::Other
    }
}

/// Decode `%HH` escapes once; a `%` not followed by two hex digits stays as written. The
/// result is bytes: an escape may produce NUL or non-UTF-8 octets. Borrows when there is
/// nothing to decode.
///
/// ```
/// use kemi_runtime::sip::uri::percent_decode;
/// assert_eq!(&*percent_decode("n%61me%25%34%31"), b"name%41");
/// ```
pub fn percent_decode(s: &str) -> Cow<'_, [u8]> {
    if !s.contains('%') {
        return Cow::Borrowed(s.as_bytes());
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            if let (Some(h), Some(l)) = (b.get(i + 1).and_then(hex), b.get(i + 2).and_then(hex)) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    Cow::Owned(out)
}

fn hex(c: &u8) -> Option<u8> {
    (*c as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_port_only_outside_brackets() {
        let u = Uri::parse("sip:[2001:db8::10:5070]").unwrap();
        assert_eq!((u.host, u.port), ("[2001:db8::10:5070]", None));
        let u = Uri::parse("sip:[2001:db8::10]:5070").unwrap();
        assert_eq!((u.host_unbracketed(), u.port), ("2001:db8::10", Some(5070)));
        assert!(Uri::parse("sip:2001:db8::10").is_err());
        assert!(Uri::parse("sip:[2001:db8:::192.0.2.1]").is_ok());
    }

    #[test]
    fn user_part_keeps_semicolons_and_escapes() {
        let u = Uri::parse("sip:user;par=u%40example.net@example.com").unwrap();
        assert_eq!(u.user, Some("user;par=u%40example.net"));
        assert_eq!(u.host, "example.com");
        assert!(u.params.is_empty());
        assert_eq!(
            &*percent_decode(u.user.unwrap_or_default()),
            b"user;par=u@example.net"
        );
        let u = Uri::parse("sip:null-%00-null@example.com").unwrap();
        assert_eq!(
            &*percent_decode(u.user.unwrap_or_default()),
            b"null-\0-null"
        );
    }

    #[test]
    fn schemes() {
        let t = Uri::parse("tel:+1-201-555-0123;phone-context=x").unwrap();
        assert_eq!(
            (t.kind(), t.user, t.param("phone-context")),
            (Scheme::Tel, Some("+1-201-555-0123"), Some("x"))
        );
        let o = Uri::parse("soap.beep://192.0.2.103:3002").unwrap();
        assert_eq!((o.kind(), o.opaque), (Scheme::Other, "//192.0.2.103:3002"));
        assert!(Uri::parse("<sip:a@b>").is_err());
        assert!(Uri::parse("sip:@host").is_err());
        assert!(Uri::parse("sip:host:65536").is_err());
        assert_eq!(Uri::parse("sip:host:0").unwrap().port, Some(0));
        assert!(Uri::parse("sip:a@b; lr").is_err());
    }

    #[test]
    fn decode_is_lenient_on_broken_escapes() {
        assert_eq!(&*percent_decode("100%"), b"100%");
        assert_eq!(&*percent_decode("%4g%41"), b"%4gA");
    }
}
