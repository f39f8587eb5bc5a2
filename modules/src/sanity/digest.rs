//! Digest credentials (`Authorization`, `Proxy-Authorization`; RFC 3261 §22.4, RFC 2617 §3.2.2)
//! as sanity checks 2048 and 8192 see them: the scheme, the required parameters, and that
//! username, nonce and response are not empty. Nothing is verified cryptographically.

/// Why a credential fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// The scheme is not `Digest` (check 2048 fails silently, 8192 passes).
    #[error("not a Digest credential")]
    NotDigest,
    /// The parameter list does not parse.
    #[error("malformed credential")]
    Malformed,
    /// A required parameter is absent (username, realm, nonce, uri, response; cnonce and nc
    /// with qop).
    #[error("required Digest parameter missing")]
    Incomplete,
    /// `username` is empty.
    #[error("empty username")]
    EmptyUser,
    /// `nonce` is empty.
    #[error("empty nonce")]
    EmptyNonce,
    /// `response` is empty.
    #[error("empty response")]
    EmptyResponse,
}

impl DigestError {
    /// The reason phrase Kamailio's sanity module answers with.
    pub fn reason(self) -> &'static str {
        match self {
            DigestError::NotDigest | DigestError::Malformed => "Bad Auth Header",
            DigestError::Incomplete => "Bad Auth Credentials",
            DigestError::EmptyUser => "Auth Empty User",
            DigestError::EmptyNonce => "Auth Empty Nonce",
            DigestError::EmptyResponse => "Auth Empty Response",
        }
    }
}

/// The parameters sanity looks at.
#[derive(Default)]
struct Cred<'a> {
    username: Option<&'a str>,
    realm: bool,
    nonce: Option<&'a str>,
    uri: bool,
    response: Option<&'a str>,
    qop: Option<&'a str>,
    cnonce: bool,
    nc: bool,
}

/// Check one credential header value.
pub fn check(value: &str) -> Result<(), DigestError> {
    let value = value.trim();
    let (scheme, params) = value
        .split_once(|c: char| c.is_ascii_whitespace())
        .unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("Digest") {
        return Err(DigestError::NotDigest);
    }
    let mut cred = Cred::default();
    for param in split_params(params)? {
        let (name, raw) = param.split_once('=').ok_or(DigestError::Malformed)?;
        let (name, raw) = (name.trim(), raw.trim());
        let v = unquote(raw)?;
        match name.to_ascii_lowercase().as_str() {
            "username" => cred.username = Some(v),
            "realm" => cred.realm = true,
            "nonce" => cred.nonce = Some(v),
            "uri" => cred.uri = true,
            "response" => cred.response = Some(v),
            "qop" => cred.qop = Some(v),
            "cnonce" => cred.cnonce = true,
            "nc" => cred.nc = true,
            _ => {}
        }
    }
    let with_qop = cred
        .qop
        .is_some_and(|q| q.eq_ignore_ascii_case("auth") || q.eq_ignore_ascii_case("auth-int"));
    let (Some(username), true, Some(nonce), true, Some(response)) = (
        cred.username,
        cred.realm,
        cred.nonce,
        cred.uri,
        cred.response,
    ) else {
        return Err(DigestError::Incomplete);
    };
    if with_qop && !(cred.cnonce && cred.nc) {
        return Err(DigestError::Incomplete);
    }
    if username.is_empty() {
        Err(DigestError::EmptyUser)
    } else if nonce.is_empty() {
        Err(DigestError::EmptyNonce)
    } else if response.is_empty() {
        Err(DigestError::EmptyResponse)
    } else {
        Ok(())
    }
}

/// Split `a=1, b="x,y"` at commas outside quoted strings; empty elements are skipped.
fn split_params(s: &str) -> Result<Vec<&str>, DigestError> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(s.get(start..i).unwrap_or_default());
                start = i + 1;
            }
            _ => {}
        }
    }
    if quoted {
        return Err(DigestError::Malformed);
    }
    out.push(s.get(start..).unwrap_or_default());
    Ok(out
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect())
}

/// The value without its quotes.
fn unquote(raw: &str) -> Result<&str, DigestError> {
    match raw.strip_prefix('"') {
        Some(inner) => inner.strip_suffix('"').ok_or(DigestError::Malformed),
        None => Ok(raw),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = "Digest username=\"bob\", realm=\"b.example\", nonce=\"n1\", \
        uri=\"sip:b.example\", response=\"0123456789abcdef0123456789abcdef\"";

    #[test]
    fn complete_digest_passes() {
        assert_eq!(check(FULL), Ok(()));
        assert_eq!(
            check(&format!("{FULL}, qop=auth, cnonce=\"c\", nc=00000001")),
            Ok(())
        );
    }

    #[test]
    fn faults_are_told_apart() {
        assert_eq!(
            check("NoOneKnowsThisScheme opaque-data=here"),
            Err(DigestError::NotDigest)
        );
        assert_eq!(
            check(&FULL.replace("nonce=\"n1\", ", "")),
            Err(DigestError::Incomplete)
        );
        assert_eq!(
            check(&format!("{FULL}, qop=auth")),
            Err(DigestError::Incomplete)
        );
        assert_eq!(
            check(&FULL.replace("\"bob\"", "\"\"")),
            Err(DigestError::EmptyUser)
        );
        assert_eq!(
            check(&FULL.replace("\"n1\"", "\"\"")),
            Err(DigestError::EmptyNonce)
        );
        assert_eq!(check("Digest username=\"bob"), Err(DigestError::Malformed));
        assert_eq!(check("Digest username"), Err(DigestError::Malformed));
    }
}
