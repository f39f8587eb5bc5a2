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
        self.hex_hash(parts).as_str().to_string()
    }

    /// [`Algorithm::hash`] on the stack.
    fn hex_hash(self, parts: &[&[u8]]) -> HexHash {
        let mut out = HexHash {
            buf: [0; 64],
            len: 0,
        };
        match self {
            Algorithm::Md5 => out.set(&joined::<Md5>(parts)),
            Algorithm::Sha256 => out.set(&joined::<Sha256>(parts)),
        }
        out
    }
}

/// A hash in lowercase hex, on the stack (64 digits at most: SHA-256).
struct HexHash {
    buf: [u8; 64],
    len: usize,
}

impl HexHash {
    fn set(&mut self, bytes: &[u8]) {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        self.len = 0;
        for (b, o) in bytes.iter().zip(self.buf.chunks_exact_mut(2)) {
            o[0] = DIGITS[usize::from(b >> 4)];
            o[1] = DIGITS[usize::from(b & 15)];
            self.len += 2;
        }
    }

    fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever written.
        std::str::from_utf8(self.as_bytes()).unwrap_or("")
    }
}

fn joined<D: sha2::Digest>(parts: &[&[u8]]) -> sha2::digest::Output<D> {
    let mut d = D::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            d.update(b":");
        }
        d.update(p);
    }
    d.finalize()
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
    let mut it = Scanner::new(value)?;
    let mut out = Vec::new();
    while let Some(p) = it.next_param()? {
        out.push(p);
    }
    Ok((it.scheme, out))
}

/// One pass over a credentials value: the scheme, then one parameter at a time. Values borrow
/// from the input unless a quoted string has `\x` escapes.
struct Scanner<'a> {
    value: &'a str,
    bytes: &'a [u8],
    i: usize,
    scheme: &'a str,
}

impl<'a> Scanner<'a> {
    fn new(value: &'a str) -> Result<Scanner<'a>, DigestError> {
        let mut s = Scanner {
            value,
            bytes: value.as_bytes(),
            i: 0,
            scheme: "",
        };
        s.lws();
        let start = s.i;
        s.token();
        s.scheme = s.slice(start, s.i)?;
        if s.scheme.is_empty() {
            return Err(DigestError::Syntax(s.i));
        }
        Ok(s)
    }

    fn lws(&mut self) {
        while self
            .bytes
            .get(self.i)
            .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        {
            self.i += 1;
        }
    }

    fn token(&mut self) {
        while self.bytes.get(self.i).is_some_and(|&b| is_token(b)) {
            self.i += 1;
        }
    }

    fn slice(&self, start: usize, end: usize) -> Result<&'a str, DigestError> {
        self.value.get(start..end).ok_or(DigestError::Syntax(start))
    }

    /// The next `(name, value)`, `None` at the end.
    fn next_param(&mut self) -> Result<Option<(&'a str, Cow<'a, str>)>, DigestError> {
        self.lws();
        while self.bytes.get(self.i) == Some(&b',') {
            self.i += 1;
            self.lws();
        }
        if self.i >= self.bytes.len() {
            return Ok(None);
        }
        let start = self.i;
        self.token();
        let name = self.slice(start, self.i)?;
        if name.is_empty() {
            return Err(DigestError::Syntax(self.i));
        }
        self.lws();
        if self.bytes.get(self.i) != Some(&b'=') {
            return Err(DigestError::Syntax(self.i));
        }
        self.i += 1;
        self.lws();
        let val = if self.bytes.get(self.i) == Some(&b'"') {
            self.i += 1;
            self.quoted()?
        } else {
            let start = self.i;
            self.token();
            Cow::Borrowed(self.slice(start, self.i)?)
        };
        self.lws();
        match self.bytes.get(self.i) {
            None => {}
            Some(b',') => self.i += 1,
            Some(_) => return Err(DigestError::Syntax(self.i)),
        }
        Ok(Some((name, val)))
    }

    /// The rest of a quoted string (after its opening quote), unescaped; `"` and `\\` are
    /// ASCII, so they never occur inside a multi-byte UTF-8 character.
    fn quoted(&mut self) -> Result<Cow<'a, str>, DigestError> {
        let start = self.i;
        let mut owned: Option<String> = None;
        let mut seg = start;
        loop {
            let rest = self.bytes.get(self.i..).unwrap_or(&[]);
            let Some(off) = memchr::memchr2(b'"', b'\\', rest) else {
                return Err(DigestError::Syntax(self.bytes.len()));
            };
            self.i += off;
            if self.bytes.get(self.i) == Some(&b'"') {
                let end = self.i;
                self.i += 1;
                return Ok(match owned {
                    None => Cow::Borrowed(self.slice(start, end)?),
                    Some(mut o) => {
                        o.push_str(self.slice(seg, end)?);
                        Cow::Owned(o)
                    }
                });
            }
            // A backslash: keep what precedes it, then the escaped character, whole.
            let o = owned.get_or_insert_with(String::new);
            o.push_str(self.slice(seg, self.i)?);
            let next = self.i + 1;
            let Some(&lead) = self.bytes.get(next) else {
                return Err(DigestError::Syntax(next));
            };
            let len = match lead {
                0xF0.. => 4,
                0xE0.. => 3,
                0xC0.. => 2,
                _ => 1,
            };
            o.push_str(self.slice(next, next + len)?);
            self.i = next + len;
            seg = self.i;
        }
    }
}

/// RFC 7230 tchar (plus `/:@[]?`, seen unquoted in the wild), as a table.
const TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let extra = b"!#$%&'*+-.^_`|~/:@[]?";
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric();
        i += 1;
    }
    let mut j = 0;
    while j < extra.len() {
        t[extra[j] as usize] = true;
        j += 1;
    }
    t
};

fn is_token(b: u8) -> bool {
    TOKEN[usize::from(b)]
}

/// Parse a Digest credentials value (`Digest username="..", realm="..", ...`) in one pass,
/// borrowing every value that has no escapes. Another scheme is [`DigestError::NotDigest`]
/// whatever follows it.
pub fn parse(value: &str) -> Result<Credentials<'_>, DigestError> {
    let mut sc = Scanner::new(value)?;
    if !sc.scheme.eq_ignore_ascii_case("Digest") {
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
    while let Some((name, v)) = sc.next_param()? {
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
    expected(c, ha1, method, body).as_str().to_string()
}

/// Whether credentials `c` carry the right `response` for `ha1` (hex, of the credentials'
/// base algorithm), `method` and `body` ([`expected_response`] compared in constant time,
/// without allocating).
pub fn response_ok(c: &Credentials<'_>, ha1: &str, method: &str, body: &[u8]) -> bool {
    ha1.len() == c.algorithm.0.hex_len()
        && response_matches_bytes(
            c.response.as_bytes(),
            expected(c, ha1, method, body).as_bytes(),
        )
}

fn expected(c: &Credentials<'_>, ha1: &str, method: &str, body: &[u8]) -> HexHash {
    let (alg, sess) = c.algorithm;
    let cnonce = c.cnonce.as_deref().unwrap_or("");
    let ha1 = if sess {
        alg.hex_hash(&[ha1.as_bytes(), c.nonce.as_bytes(), cnonce.as_bytes()])
    } else {
        let mut h = HexHash {
            buf: [0; 64],
            len: 0,
        };
        for (o, b) in h.buf.iter_mut().zip(ha1.bytes()) {
            *o = b.to_ascii_lowercase();
            h.len += 1;
        }
        h
    };
    let ha2 = match c.qop {
        Qop::AuthInt => {
            let hbody = alg.hex_hash(&[body]);
            alg.hex_hash(&[method.as_bytes(), c.uri.as_bytes(), hbody.as_bytes()])
        }
        _ => alg.hex_hash(&[method.as_bytes(), c.uri.as_bytes()]),
    };
    match (c.qop, &c.nc) {
        (Qop::None, _) | (_, None) => {
            alg.hex_hash(&[ha1.as_bytes(), c.nonce.as_bytes(), ha2.as_bytes()])
        }
        (q, Some((nc, _))) => alg.hex_hash(&[
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
    response_matches_bytes(response.as_bytes(), expected.as_bytes())
}

fn response_matches_bytes(response: &[u8], expected: &[u8]) -> bool {
    if response.len() != expected.len() {
        return false;
    }
    response.iter().zip(expected).fold(0u8, |acc, (a, b)| {
        acc | (a.to_ascii_lowercase() ^ b.to_ascii_lowercase())
    }) == 0
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
        // Another scheme is not ours, whatever its syntax (a Basic header is skipped, not a 400).
        assert_eq!(parse("Basic dXNlcjpwdw=="), Err(DigestError::NotDigest));
        // Escaped multi-byte characters, escapes next to each other, values borrowed otherwise.
        let c =
            parse("Digest username=\"\\é\\\\x\", realm=r, nonce=\"n\", uri=u, response=x").unwrap();
        assert_eq!(c.username, "é\\x");
        assert!(matches!(c.nonce, Cow::Borrowed("n")));
        assert_eq!(
            params("Digest a=1,, b=\"2\"").unwrap(),
            (
                "Digest",
                vec![("a", Cow::Borrowed("1")), ("b", Cow::Borrowed("2"))]
            )
        );
        assert_eq!(
            Algorithm::parse("sha-256-sess"),
            Some((Algorithm::Sha256, true))
        );
        assert_eq!(Algorithm::parse("-sess"), None);
        assert_eq!(Algorithm::parse("é"), None);
    }
}
