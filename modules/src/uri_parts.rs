//! Byte ranges of the parts of a SIP URI (`sip:user:password@host:port;params?headers`), enough
//! to read `$rU`/`$rd`/`$rp` from a rewritten R-URI and to rewrite one part (`setuser`,
//! `sethost`, `$rp = ...`) without re-serializing the rest.

use std::ops::Range;

/// Where each part of one URI string lies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UriParts {
    /// `sip`, `sips`, `tel`, ... (without the colon).
    pub scheme: Range<usize>,
    /// The user (without password); empty range when absent, placed right after `scheme:`.
    pub user: Range<usize>,
    /// True when the URI has a `user@` part.
    pub has_user: bool,
    /// The host (IPv6 references keep their brackets).
    pub host: Range<usize>,
    /// The port digits; empty range right after the host when absent.
    pub port: Range<usize>,
    /// True when the URI has a `:port`.
    pub has_port: bool,
}

impl UriParts {
    /// Split `uri`; `None` when it has no scheme or no host.
    pub fn parse(uri: &str) -> Option<UriParts> {
        let colon = uri.find(':')?;
        let scheme = 0..colon;
        let rest_start = colon + 1;
        let rest = uri.get(rest_start..)?;
        // The host part ends at the first ';' or '?' after the userinfo.
        let at = rest
            .find('@')
            .filter(|&at| !rest.get(..at).unwrap_or("").contains([';', '?']));
        let (user, has_user, hp_start) = match at {
            Some(at) => {
                let userinfo = rest.get(..at)?;
                let ulen = userinfo.find(':').unwrap_or(userinfo.len());
                (rest_start..rest_start + ulen, true, rest_start + at + 1)
            }
            None => (rest_start..rest_start, false, rest_start),
        };
        let hostport = uri.get(hp_start..)?;
        let hp_len = hostport.find([';', '?']).unwrap_or(hostport.len());
        let hostport = hostport.get(..hp_len)?;
        let host_len = if hostport.starts_with('[') {
            hostport.find(']').map(|i| i + 1)?
        } else {
            hostport.find(':').unwrap_or(hostport.len())
        };
        if host_len == 0 {
            return None;
        }
        let host = hp_start..hp_start + host_len;
        let has_port = hostport.get(host_len..)?.starts_with(':');
        let port = if has_port {
            host.end + 1..hp_start + hp_len
        } else {
            host.end..host.end
        };
        Some(UriParts {
            scheme,
            user,
            has_user,
            host,
            port,
            has_port,
        })
    }

    /// `uri` with the user replaced (`""` removes the user and its `@`).
    pub fn with_user(&self, uri: &str, user: &str) -> Option<String> {
        let mut out = String::with_capacity(uri.len() + user.len() + 1);
        out.push_str(uri.get(..self.user.start)?);
        if self.has_user {
            if user.is_empty() {
                // Drop `user[:password]@` entirely.
                out.push_str(uri.get(self.host.start..)?);
                return Some(out);
            }
            out.push_str(user);
            out.push_str(uri.get(self.user.end..)?);
        } else {
            if !user.is_empty() {
                out.push_str(user);
                out.push('@');
            }
            out.push_str(uri.get(self.user.start..)?);
        }
        Some(out)
    }

    /// `uri` with the host replaced.
    pub fn with_host(&self, uri: &str, host: &str) -> Option<String> {
        Some([uri.get(..self.host.start)?, host, uri.get(self.host.end..)?].concat())
    }

    /// `uri` with the port replaced (`""` removes it).
    pub fn with_port(&self, uri: &str, port: &str) -> Option<String> {
        let tail = uri.get(self.port.end..)?;
        let head = uri.get(..self.host.end)?;
        Some(if port.is_empty() {
            [head, tail].concat()
        } else {
            [head, ":", port, tail].concat()
        })
    }

    /// The text of `range` in `uri`.
    pub fn part<'a>(uri: &'a str, range: &Range<usize>) -> &'a str {
        uri.get(range.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_full_uri() {
        let u = "sip:alice:pw@example.com:5080;transport=tcp?x=y";
        let p = UriParts::parse(u).unwrap();
        assert_eq!(UriParts::part(u, &p.scheme), "sip");
        assert_eq!(UriParts::part(u, &p.user), "alice");
        assert_eq!(UriParts::part(u, &p.host), "example.com");
        assert_eq!(UriParts::part(u, &p.port), "5080");
        assert!(p.has_port && p.has_user);
    }

    #[test]
    fn ipv6_host_and_no_user() {
        let u = "sips:[2001:db8::1]:5061";
        let p = UriParts::parse(u).unwrap();
        assert_eq!(UriParts::part(u, &p.host), "[2001:db8::1]");
        assert_eq!(UriParts::part(u, &p.port), "5061");
        assert!(!p.has_user);
    }

    #[test]
    fn rewrites_parts() {
        let u = "sip:bob@example.com;lr";
        let p = UriParts::parse(u).unwrap();
        assert_eq!(p.with_user(u, "carol").unwrap(), "sip:carol@example.com;lr");
        assert_eq!(p.with_user(u, "").unwrap(), "sip:example.com;lr");
        assert_eq!(p.with_host(u, "10.0.0.1").unwrap(), "sip:bob@10.0.0.1;lr");
        assert_eq!(
            p.with_port(u, "5070").unwrap(),
            "sip:bob@example.com:5070;lr"
        );
        let u2 = "sip:example.com:5070";
        let p2 = UriParts::parse(u2).unwrap();
        assert_eq!(
            p2.with_user(u2, "dave").unwrap(),
            "sip:dave@example.com:5070"
        );
        assert_eq!(p2.with_port(u2, "").unwrap(), "sip:example.com");
    }

    #[test]
    fn rejects_garbage() {
        assert!(UriParts::parse("nocolon").is_none());
        assert!(UriParts::parse("sip:").is_none());
        assert!(UriParts::parse("sip:user@").is_none());
    }
}
