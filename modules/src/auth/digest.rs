//! RFC 7616 (and RFC 2617) Digest: parsing of `Authorization`/`Proxy-Authorization` values and
//! the HA1/HA2/response computations with MD5 and SHA-256 (and their `-sess` variants).
//!
//! Parsing never panics: any malformed value is a [`DigestError`]. Quoted strings lose their
//! quotes and `\x` escapes; parameter names are case-insensitive; unknown parameters are kept
//! out of the way (RFC 7616 3.4: "auth-param" extensions are ignored).

use std::borrow::Cow;

use md5::Md5;
use sha2::Sha256;

/// Why a credentials value could not be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// The scheme is not `Digest`.
    #[error("not a Digest credentials value")]
    NotDigest,
    /// Malformed syntax at this byte offset.
    #[error("malformed credentials at byte {0}")]
    Syntax(usize),
    /// A parameter given twice.
    #[error("parameter `{0}` given twice")]
    Duplicate(String),
    /// A required parameter is missing.
    #[error("parameter `{0}` missing")]
    Missing(&'static str),
    /// An algorithm this server does not know.
    #[error("unsupported algorithm `{0}`")]
    Algorithm(String),
    /// A qop this server does not know, or qop without cnonce/nc.
    #[error("bad qop: {0}")]
    Qop(String),
    /// nc is not 8 hex digits.
    #[error("bad nc `{0}`")]
    Nc(String),
}

/// A hash algorithm of RFC 7616 3.2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// MD5 (the default when none is given).
    Md5,
    /// SHA-256.
    Sha256,
}

impl Algorithm {
    /// The algorithm named `s` (case-insensitive), and whether it is the `-sess` variant.
    pub fn parse(s: &str) -> Option<(Algorithm, bool)> {
        let (base, sess) = match s.len().checked_sub(5) {
            Some(i) if s.get(i..).is_some_and(|t| t.eq_ignore_ascii_case("-sess")) => {
                (s.get(..i)?, true)
            }
            _ => (s, false),
        };
        let alg = if base.eq_ignore_ascii_case("MD5") {
            Algorithm::Md5
        } else if base.eq_ignore_ascii_case("SHA-256") {
            Algorithm::Sha256
        } else {
            return None;
        };
        Some((alg, sess))
    }

    /// The name in challenges (`MD5`, `SHA-256`).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    /// Length of a hash in lowercase hex.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Md5 => 32,
            Algorithm::Sha256 => 64,
        }
    }

    /// The lowercase hex hash of `parts` joined by `:`.
    pub fn hash(self, parts: &[&[u8]]) -> String {
        match self {
            Algorithm::Md5 => hex(&joined::<Md5>(parts)),
            Algorithm::Sha256 => hex(&joined::<Sha256>(parts)),
        }
    }
}

fn joined<D: sha2::Digest>(parts: &[&[u8]]) -> Vec<u8> {
    let mut d = D::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            d.update(b":");
        }
        d.update(p);
    }
    d.finalize().to_vec()
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// The quality of protection of a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Qop {
    /// No qop (RFC 2069 compatibility).
    None,
    /// `qop=auth`.
    Auth,
    /// `qop=auth-int` (the body is hashed into HA2).
    AuthInt,
}

/// Parsed Digest credentials. Values are unquoted and unescaped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials<'a> {
    /// `username` (may be `user@domain`).
    pub username: Cow<'a, str>,
    /// `realm`.
    pub realm: Cow<'a, str>,
    /// `nonce`.
    pub nonce: Cow<'a, str>,
    /// `uri` (digest-uri).
    pub uri: Cow<'a, str>,
    /// `response` (hex).
    pub response: Cow<'a, str>,
    /// `algorithm` (MD5 when absent) and whether it is `-sess`.
    pub algorithm: (Algorithm, bool),
    /// `cnonce`.
    pub cnonce: Option<Cow<'a, str>>,
    /// `opaque`.
    pub opaque: Option<Cow<'a, str>>,
    /// `qop`.
    pub qop: Qop,
    /// `nc` as written (8 hex digits) and its value.
    pub nc: Option<(Cow<'a, str>, u32)>,
}

impl Credentials<'_> {
    /// The user part of `username` (before the first `@`).
    pub fn user(&self) -> &str {
        self.username
            .split_once('@')
            .map_or(&*self.username, |(u, _)| u)
    }

    /// The domain part of `username`, if it has one.
    pub fn user_domain(&self) -> Option<&str> {
        self.username.split_once('@').map(|(_, d)| d)
    }
}

/// A scheme and its `(name, value)` parameters.
pub type Params<'a> = (&'a str, Vec<(&'a str, Cow<'a, str>)>);

/// Split a credentials (or challenge) value into its scheme and its `(name, value)` params.
pub fn params(value: &str) -> Result<Params<'_>, DigestError> {
    let bytes = value.as_bytes();
    let lws = |i: &mut usize| {
        while *i < bytes.len() && matches!(bytes[*i], b' ' | b'\t' | b'\r' | b'\n') {
            *i += 1;
        }
    };
    let token = |i: &mut usize| -> usize {
        let start = *i;
        while *i < bytes.len() && is_token(bytes[*i]) {
            *i += 1;
        }
        start
    };
    let mut i = 0;
    lws(&mut i);
    let start = token(&mut i);
    let scheme = value.get(start..i).ok_or(DigestError::Syntax(i))?;
    if scheme.is_empty() {
        return Err(DigestError::Syntax(i));
    }
    let mut out = Vec::new();
    loop {
        lws(&mut i);
        while i < bytes.len() && bytes[i] == b',' {
            i += 1;
            lws(&mut i);
        }
        if i >= bytes.len() {
            return Ok((scheme, out));
        }
        let start = token(&mut i);
        let name = value.get(start..i).ok_or(DigestError::Syntax(i))?;
        if name.is_empty() {
            return Err(DigestError::Syntax(i));
        }
        lws(&mut i);
        if bytes.get(i) != Some(&b'=') {
            return Err(DigestError::Syntax(i));
        }
        i += 1;
        lws(&mut i);
        let val: Cow<'_, str> = if bytes.get(i) == Some(&b'"') {
            i += 1;
            let start = i;
            let mut escaped = false;
            let mut owned: Option<String> = None;
            loop {
                let Some(&b) = bytes.get(i) else {
                    return Err(DigestError::Syntax(i));
                };
                if !escaped && b == b'"' {
                    break;
                }
                if !escaped && b == b'\\' {
                    escaped = true;
                    if owned.is_none() {
                        owned = Some(value.get(start..i).ok_or(DigestError::Syntax(i))?.into());
                    }
                    i += 1;
                    continue;
                }
                escaped = false;
                // Copy the whole UTF-8 character.
                let ch_len = value
                    .get(i..)
                    .and_then(|r| r.chars().next())
                    .map_or(1, char::len_utf8);
                if let Some(o) = owned.as_mut() {
                    o.push_str(value.get(i..i + ch_len).ok_or(DigestError::Syntax(i))?);
                }
                i += ch_len;
            }
            let v = match owned {
                Some(o) => Cow::Owned(o),
                None => Cow::Borrowed(value.get(start..i).ok_or(DigestError::Syntax(i))?),
            };
            i += 1;
            v
        } else {
            let start = token(&mut i);
            Cow::Borrowed(value.get(start..i).ok_or(DigestError::Syntax(i))?)
        };
        out.push((name, val));
        lws(&mut i);
        match bytes.get(i) {
            None => return Ok((scheme, out)),
            Some(b',') => i += 1,
            Some(_) => return Err(DigestError::Syntax(i)),
        }
    }
}

/// RFC 7230 tchar.
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/:@[]?".contains(&b)
}

/// Parse a Digest credentials value (`Digest username="..", realm="..", ...`).
pub fn parse(value: &str) -> Result<Credentials<'_>, DigestError> {
    let (scheme, ps) = params(value)?;
    if !scheme.eq_ignore_ascii_case("Digest") {
        return Err(DigestError::NotDigest);
    }
    const KNOWN: [&str; 10] = [
        "username",
        "realm",
        "nonce",
        "uri",
        "response",
        "algorithm",
        "cnonce",
        "opaque",
        "qop",
        "nc",
    ];
    let mut vals: [Option<Cow<'_, str>>; 10] = Default::default();
    for (name, v) in ps {
        if let Some(k) = KNOWN.iter().position(|k| k.eq_ignore_ascii_case(name)) {
            if vals[k].is_some() {
                return Err(DigestError::Duplicate(KNOWN[k].to_string()));
            }
            vals[k] = Some(v);
        }
    }
    let [username, realm, nonce, uri, response, algorithm, cnonce, opaque, qop, nc] = vals;
    let algorithm = match algorithm {
        None => (Algorithm::Md5, false),
        Some(a) => Algorithm::parse(&a).ok_or_else(|| DigestError::Algorithm(a.to_string()))?,
    };
    let qop = match qop.as_deref() {
        None => Qop::None,
        Some(q) if q.eq_ignore_ascii_case("auth") => Qop::Auth,
        Some(q) if q.eq_ignore_ascii_case("auth-int") => Qop::AuthInt,
        Some(q) => return Err(DigestError::Qop(q.to_string())),
    };
    let nc = match nc {
        None => None,
        Some(n) => {
            let v = (n.len() == 8)
                .then(|| u32::from_str_radix(&n, 16).ok())
                .flatten()
                .ok_or_else(|| DigestError::Nc(n.to_string()))?;
            Some((n, v))
        }
    };
    if qop != Qop::None && (cnonce.is_none() || nc.is_none()) {
        return Err(DigestError::Qop("qop without cnonce and nc".into()));
    }
    Ok(Credentials {
        username: username.ok_or(DigestError::Missing("username"))?,
        realm: realm.ok_or(DigestError::Missing("realm"))?,
        nonce: nonce.ok_or(DigestError::Missing("nonce"))?,
        uri: uri.ok_or(DigestError::Missing("uri"))?,
        response: response.ok_or(DigestError::Missing("response"))?,
        algorithm,
        cnonce,
        opaque,
        qop,
        nc,
    })
}

/// HA1 = H(username:realm:password).
pub fn ha1(alg: Algorithm, username: &str, realm: &str, password: &str) -> String {
    alg.hash(&[username.as_bytes(), realm.as_bytes(), password.as_bytes()])
}

/// The expected `response` for credentials `c`, with `ha1` (for the base algorithm, hex),
/// the request `method` and `body` (for auth-int).
pub fn expected_response(c: &Credentials<'_>, ha1: &str, method: &str, body: &[u8]) -> String {
    let (alg, sess) = c.algorithm;
    let cnonce = c.cnonce.as_deref().unwrap_or("");
    let ha1 = if sess {
        alg.hash(&[ha1.as_bytes(), c.nonce.as_bytes(), cnonce.as_bytes()])
    } else {
        ha1.to_ascii_lowercase()
    };
    let ha2 = match c.qop {
        Qop::AuthInt => {
            let hbody = alg.hash(&[body]);
            alg.hash(&[method.as_bytes(), c.uri.as_bytes(), hbody.as_bytes()])
        }
        _ => alg.hash(&[method.as_bytes(), c.uri.as_bytes()]),
    };
    match (c.qop, &c.nc) {
        (Qop::None, _) | (_, None) => {
            alg.hash(&[ha1.as_bytes(), c.nonce.as_bytes(), ha2.as_bytes()])
        }
        (q, Some((nc, _))) => alg.hash(&[
            ha1.as_bytes(),
            c.nonce.as_bytes(),
            nc.as_bytes(),
            cnonce.as_bytes(),
            if q == Qop::AuthInt {
                b"auth-int"
            } else {
                b"auth"
            },
            ha2.as_bytes(),
        ]),
    }
}

/// Whether `response` matches `expected` (hex, case-insensitive), in time independent of
/// where they differ.
pub fn response_matches(response: &str, expected: &str) -> bool {
    if response.len() != expected.len() {
        return false;
    }
    response
        .bytes()
        .zip(expected.bytes())
        .fold(0u8, |acc, (a, b)| {
            acc | (a.to_ascii_lowercase() ^ b.to_ascii_lowercase())
        })
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7616 3.9.1: the SHA-256 and MD5 examples (qop=auth, "Mufasa", "Circle of Life").
    #[test]
    fn rfc7616_examples() {
        let base = |alg: &str, response: &str| {
            format!(
                "Digest username=\"Mufasa\", realm=\"http-auth@example.org\", uri=\"/dir/index.html\", \
                 algorithm={alg}, nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", nc=00000001, \
                 cnonce=\"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ\", qop=auth, response=\"{response}\", \
                 opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""
            )
        };
        let sha = base(
            "SHA-256",
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
        );
        let c = parse(&sha).unwrap();
        assert_eq!(c.algorithm, (Algorithm::Sha256, false));
        let h = ha1(Algorithm::Sha256, &c.username, &c.realm, "Circle of Life");
        let exp = expected_response(&c, &h, "GET", b"");
        assert!(response_matches(&c.response, &exp), "{exp}");

        let md5 = base("MD5", "8ca523f5e9506fed4657c9700eebdbec");
        let c = parse(&md5).unwrap();
        let h = ha1(Algorithm::Md5, &c.username, &c.realm, "Circle of Life");
        let exp = expected_response(&c, &h, "GET", b"");
        assert!(response_matches(&c.response, &exp), "{exp}");
        assert!(!response_matches(
            &c.response,
            &ha1(Algorithm::Md5, "x", "y", "z")
        ));
    }

    /// RFC 2617 3.5: the MD5 qop=auth example.
    #[test]
    fn rfc2617_example() {
        let v = "Digest username=\"Mufasa\",\r\n realm=\"testrealm@host.com\",\r\n \
                 nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\",\r\n uri=\"/dir/index.html\",\r\n \
                 qop=auth,\r\n nc=00000001,\r\n cnonce=\"0a4f113b\",\r\n \
                 response=\"6629fae49393a05397450978507c4ef1\",\r\n \
                 opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"";
        let c = parse(v).unwrap();
        assert_eq!(c.nc.as_ref().map(|n| n.1), Some(1));
        let h = ha1(
            Algorithm::Md5,
            "Mufasa",
            "testrealm@host.com",
            "Circle Of Life",
        );
        assert!(response_matches(
            &c.response,
            &expected_response(&c, &h, "GET", b"")
        ));
    }

    #[test]
    fn no_qop_sess_and_auth_int() {
        // RFC 2069 style: H(HA1:nonce:HA2).
        let h = ha1(Algorithm::Md5, "alice", "r", "pw");
        let ha2 = Algorithm::Md5.hash(&[b"REGISTER", b"sip:r"]);
        let want = Algorithm::Md5.hash(&[h.as_bytes(), b"n1", ha2.as_bytes()]);
        let v = format!(
            "Digest username=\"alice\", realm=\"r\", nonce=\"n1\", uri=\"sip:r\", response=\"{}\"",
            want.to_uppercase()
        );
        let c = parse(&v).unwrap();
        assert_eq!(c.qop, Qop::None);
        assert!(response_matches(
            &c.response,
            &expected_response(&c, &h, "REGISTER", b"")
        ));
        let v = "Digest username=a,realm=r,nonce=n,uri=u,response=x,algorithm=md5-SESS,qop=\"auth-int\",nc=0000000a,cnonce=c";
        let c = parse(v).unwrap();
        assert_eq!(c.algorithm, (Algorithm::Md5, true));
        assert_eq!(c.qop, Qop::AuthInt);
        assert_eq!(c.nc.as_ref().map(|n| n.1), Some(10));
        let e = expected_response(&c, "00", "M", b"body");
        assert_eq!(e.len(), 32);
    }

    #[test]
    fn escapes_and_bad_input() {
        let c = parse(
            "digest USERNAME=\"a\\\"b\\\\c@d\", realm=\"x\", nonce=n, uri=\"sip:é\", response=r, foo=\"bar,baz\"",
        )
        .unwrap();
        assert_eq!(c.username, "a\"b\\c@d");
        assert_eq!(c.user(), "a\"b\\c");
        assert_eq!(c.user_domain(), Some("d"));
        assert_eq!(c.uri, "sip:é");
        for bad in [
            "",
            "Digest",
            "Basic dXNlcjpwdw==",
            "Digest username=\"open",
            "Digest username",
            "Digest =x",
            "Digest username=a realm=b",
            "Digest username=a, username=b, realm=r, nonce=n, uri=u, response=x",
            "Digest username=a, realm=r, nonce=n, uri=u, response=x, algorithm=SHA-1",
            "Digest username=a, realm=r, nonce=n, uri=u, response=x, qop=auth",
            "Digest username=a, realm=r, nonce=n, uri=u, response=x, qop=auth, nc=1, cnonce=c",
            "Digest username=a, realm=r, nonce=n, uri=u, response=x, qop=auth, nc=zzzzzzzz, cnonce=c",
            "Digest realm=r, nonce=n, uri=u, response=x",
            "Digest username=\"\\",
            "Digest username=\"é\\é",
        ] {
            let r = parse(bad);
            if bad == "Digest" {
                assert_eq!(r, Err(DigestError::Missing("username")));
            } else {
                assert!(r.is_err(), "{bad}: {r:?}");
            }
        }
        assert_eq!(
            Algorithm::parse("sha-256-sess"),
            Some((Algorithm::Sha256, true))
        );
        assert_eq!(Algorithm::parse("-sess"), None);
        assert_eq!(Algorithm::parse("é"), None);
    }
}
