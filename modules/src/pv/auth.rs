//! `$au`, `$aU`, `$ad`, `$ar`: fields of the Digest credentials of a request.
//!
//! The credentials are those of the first Proxy-Authorization header, else of the first
//! Authorization header, as Kamailio picks them; ACK and CANCEL carry none. Only the `Digest`
//! scheme is understood. Values borrow from the message: quoted values lose their quotes but
//! are not unescaped.

use kemi_runtime::sip::{HeaderKind, Message, Method};

/// The credentials header value to read, if any.
fn credentials(m: &Message) -> Option<&str> {
    if matches!(m.method(), Some(Method::Ack | Method::Cancel)) {
        return None;
    }
    m.first_kind(HeaderKind::ProxyAuthorization)
        .or_else(|| m.first_kind(HeaderKind::Authorization))
        .map(|h| h.value)
}

/// The value of Digest parameter `want` (case-insensitive name) in a credentials value.
pub fn digest_param<'m>(value: &'m str, want: &str) -> Option<&'m str> {
    let value = value.trim_start();
    let split = value.find([' ', '\t'])?;
    let (scheme, mut rest) = value.split_at(split);
    if !scheme.eq_ignore_ascii_case("Digest") {
        return None;
    }
    loop {
        rest = rest.trim_start_matches([' ', '\t', '\r', '\n', ',']);
        if rest.is_empty() {
            return None;
        }
        let eq = rest.find('=')?;
        let name = rest.get(..eq)?.trim();
        let after = rest.get(eq + 1..)?.trim_start();
        let (val, next) = match after.strip_prefix('"') {
            Some(q) => {
                let end = closing_quote(q)?;
                (q.get(..end)?, q.get(end + 1..)?)
            }
            None => {
                let end = after.find(',').unwrap_or(after.len());
                (after.get(..end)?.trim_end(), after.get(end..)?)
            }
        };
        if name.eq_ignore_ascii_case(want) {
            return Some(val);
        }
        rest = next;
    }
}

/// Index of the closing `"` in `s` (just after the opening one), skipping `\"` escapes.
fn closing_quote(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, b) in s.bytes().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' => escaped = true,
            b'"' => return Some(i),
            _ => {}
        }
    }
    None
}

/// The Digest `username` of the message's credentials.
pub fn username(m: &Message) -> Option<&str> {
    digest_param(credentials(m)?, "username")
}

/// The Digest `realm` of the message's credentials.
pub fn realm(m: &Message) -> Option<&str> {
    digest_param(credentials(m)?, "realm")
}

/// `username` split at its first `@`: (user, domain).
pub fn split_username(username: &str) -> (&str, Option<&str>) {
    match username.split_once('@') {
        Some((user, domain)) => (user, Some(domain)),
        None => (username, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_digest_params() {
        let v = "Digest username=\"alice@example.com\", realm=\"atlanta \\\"x\\\" com\",\r\n nonce=abc,uri=\"sip:a\", response=\"0f\"";
        assert_eq!(digest_param(v, "username"), Some("alice@example.com"));
        assert_eq!(digest_param(v, "REALM"), Some("atlanta \\\"x\\\" com"));
        assert_eq!(digest_param(v, "nonce"), Some("abc"));
        assert_eq!(digest_param(v, "response"), Some("0f"));
        assert_eq!(digest_param(v, "opaque"), None);
        assert_eq!(digest_param("Basic YWxpY2U6c2VjcmV0", "username"), None);
        assert_eq!(digest_param("Digest username=\"open", "username"), None);
        assert_eq!(digest_param("Digest", "username"), None);
        assert_eq!(split_username("alice@x"), ("alice", Some("x")));
        assert_eq!(split_username("alice"), ("alice", None));
    }
}
