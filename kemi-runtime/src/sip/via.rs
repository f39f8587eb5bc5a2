//! [`Via`]: one Via value (`SIP/2.0/UDP host:port;params`), parsed on demand. A Via header
//! may carry several comma-separated values; [`Message::vias`](super::Message::vias) walks
//! them all, across headers.

use super::error::ValueError;
use super::params::{is_balanced, is_lws, param_of, trim_lws, trim_lws_start, Param, Params};
use super::scan::find2;
use super::uri::{parse_port, split_host, strip_brackets};

const VIA: &str = "Via";

/// One Via value.
///
/// ```
/// use kemi_runtime::sip::Via;
/// let v = Via::parse("SIP/2.0/UDP [2001:db8::9:1]:6050;branch=z9hG4bKx;rport").unwrap();
/// assert_eq!((v.transport, v.host, v.port), ("UDP", "[2001:db8::9:1]", Some(6050)));
/// assert_eq!((v.branch(), v.rport()), (Some("z9hG4bKx"), Some("")));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Via<'a> {
    /// The value as written (trimmed).
    pub raw: &'a str,
    /// Protocol name (`SIP`).
    pub protocol: &'a str,
    /// Protocol version (`2.0`).
    pub version: &'a str,
    /// Transport as written (`UDP`, `tcp`, `SCTP`, an extension token...).
    pub transport: &'a str,
    /// The sent-by host as written; IPv6 references keep their brackets.
    pub host: &'a str,
    /// The sent-by port, if written.
    pub port: Option<u16>,
    /// The parameters.
    pub params: Params<'a>,
}

impl<'a> Via<'a> {
    /// Parse one Via value. LWS (folding included) is allowed around `/`, `:` and `;`. Empty
    /// parameters (`;;`) are an error.
    pub fn parse(raw: &'a str) -> Result<Via<'a>, ValueError> {
        Via::parse_with(raw, |_| {})
    }

    /// [`Via::parse`], handing each parameter to `each` in order while the list is checked
    /// (one walk over it for the usual list without quotes or `<`). When the result is an
    /// error, `each` may have seen some parameters.
    pub(crate) fn parse_with(
        raw: &'a str,
        mut each: impl FnMut(Param<'a>),
    ) -> Result<Via<'a>, ValueError> {
        let raw = trim_lws(raw);
        let (protocol, rest) =
            split_byte(raw, b'/').ok_or(ValueError::new(VIA, "no sent-protocol"))?;
        let (version, rest) =
            split_byte(rest, b'/').ok_or(ValueError::new(VIA, "no sent-protocol"))?;
        let (protocol, version) = (trim_lws(protocol), trim_lws(version));
        let rest = trim_lws_start(rest);
        let tend = rest
            .bytes()
            .position(is_lws)
            .ok_or(ValueError::new(VIA, "no sent-by"))?;
        let (transport, rest) = rest.split_at(tend);
        if !(is_token(protocol) && is_token(version) && is_token(transport)) {
            return Err(ValueError::new(VIA, "bad sent-protocol"));
        }
        let rest = trim_lws_start(rest);
        let (host, rest) = split_host(rest).map_err(|e| ValueError::new(VIA, e.0))?;
        let rest = trim_lws_start(rest);
        let (port, rest) = match rest.strip_prefix(':') {
            Some(p) => {
                let p = trim_lws_start(p);
                let end = p
                    .bytes()
                    .position(|c| !c.is_ascii_digit())
                    .unwrap_or(p.len());
                let (digits, rest) = p.split_at(end);
                (
                    Some(parse_port(digits).ok_or(ValueError::new(VIA, "bad port"))?),
                    rest,
                )
            }
            None => (None, rest),
        };
        let rest = trim_lws_start(rest);
        let params = match rest.strip_prefix(';') {
            // `raw` ends without LWS, so nothing after the `;` is a trailing `;`: an empty
            // parameter, which `has_empty` cannot see in an empty list.
            Some("") => return Err(ValueError::new(VIA, "empty parameter")),
            Some(p) => Params::new(p),
            None if rest.is_empty() => Params::default(),
            None => return Err(ValueError::new(VIA, "junk after sent-by")),
        };
        let list = params.as_str();
        if list.is_empty() {
            // No params.
        } else if find2(list.as_bytes(), b'"', b'<').is_none() {
            // No quoted string or `<`: every `;` separates, and the list is balanced. One walk
            // checks each element and hands it over (what `has_empty` and `iter` see).
            let mut rest = list;
            loop {
                // Byte search: `;` is ASCII, so both sides are `str`s.
                let (elem, next) = match rest.bytes().position(|c| c == b';') {
                    Some(i) => (rest.get(..i).unwrap_or_default(), rest.get(i + 1..)),
                    None => (rest, None),
                };
                match param_of(elem) {
                    Some(p) => each(p),
                    None => return Err(ValueError::new(VIA, "empty parameter")),
                }
                match next {
                    Some(n) => rest = n,
                    None => break,
                }
            }
        } else {
            if params.has_empty() {
                return Err(ValueError::new(VIA, "empty parameter"));
            }
            // An open quoted string (or `<`) would swallow whatever follows, such as the
            // `;received` a reply adds.
            if !is_balanced(list) {
                return Err(ValueError::new(VIA, "unterminated quoted string"));
            }
            params.iter().for_each(each);
        }
        Ok(Via {
            raw,
            protocol,
            version,
            transport,
            host,
            port,
            params,
        })
    }

    /// The `branch` parameter.
    pub fn branch(&self) -> Option<&'a str> {
        self.params.get("branch")
    }

    /// The `received` parameter, brackets removed if the sender wrote them (RFC 5118 4.5).
    pub fn received(&self) -> Option<&'a str> {
        self.params.get("received").map(strip_brackets)
    }

    /// The `rport` parameter: `Some("")` when present without a value (RFC 3581 request).
    pub fn rport(&self) -> Option<&'a str> {
        self.params.get("rport")
    }

    /// The value of parameter `name`; `Some("")` when present without a value.
    pub fn param(&self, name: &str) -> Option<&'a str> {
        self.params.get(name)
    }

    /// The sent-by host without IPv6 brackets.
    pub fn host_unbracketed(&self) -> &'a str {
        strip_brackets(self.host)
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(super::header::is_token_char)
}

/// `s` split around the first `sep` (an ASCII byte, so both sides are valid `str`s).
#[inline]
pub(crate) fn split_byte(s: &str, sep: u8) -> Option<(&str, &str)> {
    let i = s.bytes().position(|c| c == sep)?;
    Some((s.get(..i)?, s.get(i + 1..)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by fuzzing (fuzz/fuzz_targets/sip_message.rs): a param with an open quoted
    /// string (or `<`) parsed, and the `;received` a reply appends then landed inside it,
    /// changing the branch the client matches the reply by.
    /// Found by fuzzing: a trailing `;` parsed as "no params", and a reply's `;received`
    /// then made `;;`, a Via that does not parse.
    #[test]
    fn a_trailing_semicolon_is_an_empty_parameter() {
        for bad in [
            "SIP/2.0/UDP h;",
            "SIP/2.0/UDP h:5060 ; \r\n ",
            "SIP/2.0/UDP h;lr;",
        ] {
            assert_eq!(
                Via::parse(bad),
                Err(ValueError::new(VIA, "empty parameter")),
                "{bad:?}"
            );
        }
    }

    /// The one-walk param check must not take "no params" for one empty param (the RFC 4475
    /// corpus test caught it).
    #[test]
    fn no_params_is_not_an_empty_parameter() {
        let v = Via::parse("SIP/2.0/TCP sip33.example.com").unwrap();
        assert_eq!(
            (v.host, v.params.as_str(), v.branch()),
            ("sip33.example.com", "", None)
        );
        assert!(Via::parse("SIP/2.0/UDP h:5060").is_ok());
    }

    #[test]
    fn unterminated_quotes_in_params_are_an_error() {
        for bad in [
            "SIP/2.0/UDP h;branch=z9hG4bK\"x",
            "SIP/2.0/UDP h;branch=z9hG4bKx;a=\"b\\\"",
            "SIP/2.0/UDP h;branch=z9hG4bK<x",
        ] {
            assert_eq!(
                Via::parse(bad),
                Err(ValueError::new(VIA, "unterminated quoted string")),
                "{bad}"
            );
        }
        let v = Via::parse("SIP/2.0/UDP h;x=\"a;\\\"b<\";branch=z9hG4bK1").unwrap();
        assert_eq!(
            (v.param("x"), v.branch()),
            (Some("\"a;\\\"b<\""), Some("z9hG4bK1"))
        );
    }

    #[test]
    fn lws_everywhere() {
        let v = Via::parse(
            "SIP  /   2.0  / TCP     spindle.example.com   ;\r\n  branch  =   z9hG4bK9ikj8",
        )
        .unwrap();
        assert_eq!(
            (v.protocol, v.version, v.transport, v.host, v.port),
            ("SIP", "2.0", "TCP", "spindle.example.com", None)
        );
        assert_eq!(v.branch(), Some("z9hG4bK9ikj8"));
        let v = Via::parse("SIP/2.0/UDP host : 5060 ; rport").unwrap();
        assert_eq!((v.port, v.rport()), (Some(5060), Some("")));
    }

    #[test]
    fn received_with_and_without_brackets() {
        let a = Via::parse(
            "SIP/2.0/UDP [2001:db8::9:1];received=[2001:db8::9:255];branch=z9hG4bKas3-111",
        )
        .unwrap();
        let b =
            Via::parse("SIP/2.0/UDP [2001:db8::9:1];received=2001:db8::9:255;branch=z9hG4bKas3")
                .unwrap();
        assert_eq!(a.received(), Some("2001:db8::9:255"));
        assert_eq!(b.received(), Some("2001:db8::9:255"));
        assert_eq!(b.branch(), Some("z9hG4bKas3"));
        assert_eq!(a.host_unbracketed(), "2001:db8::9:1");
    }

    #[test]
    fn rejects_broken_values() {
        assert!(Via::parse("SIP/2.0/UDP 192.0.2.15;;").is_err());
        assert!(Via::parse("SIP/2.0/UDP").is_err());
        assert!(Via::parse("SIP/2.0/UDP host:99999").is_err());
        assert!(Via::parse("SIP/2.0/UDP [::1").is_err());
        assert!(Via::parse("garbage").is_err());
    }
}
