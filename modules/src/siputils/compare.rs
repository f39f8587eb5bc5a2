//! Comparisons: `cmp_uri` (RFC 3261 §19.1.4 URI equality), `cmp_aor` (user, host and port
//! only) and `cmp_hdr_name` (header names, compact forms included).
//!
//! All three return 1 when equal, -1 when different and -2 when a URI does not parse.

use kemi_runtime::sip::{percent_decode, HeaderKind, Scheme, Uri};
use kemi_runtime::{kemi, SipMsg};

/// Whether a URI is one sipd routes on: `sip`, `sips` or `tel`.
pub(crate) fn routable(u: &Uri<'_>) -> bool {
    matches!(u.kind(), Scheme::Sip | Scheme::Sips | Scheme::Tel)
}

/// Parameters that make two URIs differ when only one of them has it (RFC 3261 §19.1.4).
const SIGNIFICANT: [&str; 5] = ["user", "ttl", "method", "maddr", "transport"];

/// Escapes decoded, then compared byte for byte (user and password are case-sensitive).
fn same_escaped(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => percent_decode(a) == percent_decode(b),
        _ => false,
    }
}

/// Escapes decoded, then compared ignoring ASCII case.
fn same_escaped_nocase(a: &str, b: &str) -> bool {
    percent_decode(a).eq_ignore_ascii_case(&percent_decode(b))
}

/// RFC 3261 §19.1.4 equality of two parsed URIs.
fn uri_eq(a: &Uri<'_>, b: &Uri<'_>) -> bool {
    if a.kind() != b.kind()
        || (a.kind() == Scheme::Other && !a.scheme.eq_ignore_ascii_case(b.scheme))
    {
        return false;
    }
    if a.kind() == Scheme::Other {
        return a.opaque == b.opaque;
    }
    let user_eq = if a.kind() == Scheme::Tel {
        a.user.map(str::to_ascii_lowercase) == b.user.map(str::to_ascii_lowercase)
    } else {
        same_escaped(a.user, b.user)
    };
    if !user_eq
        || !same_escaped(a.password, b.password)
        || !a.host.eq_ignore_ascii_case(b.host)
        || a.port != b.port
    {
        return false;
    }
    // A parameter present in both must match; the significant ones must also be in both.
    let one_way = |x: &Uri<'_>, y: &Uri<'_>| {
        x.params.iter().all(|p| match y.params.find(p.name) {
            Some(q) => same_escaped_nocase(p.value.unwrap_or(""), q.value.unwrap_or("")),
            None => !SIGNIFICANT.iter().any(|s| s.eq_ignore_ascii_case(p.name)),
        })
    };
    let headers_eq = match (a.headers, b.headers) {
        (None, None) => true,
        (Some(x), Some(y)) => {
            let mut x: Vec<_> = x.split('&').map(percent_decode).collect();
            let mut y: Vec<_> = y.split('&').map(percent_decode).collect();
            x.sort();
            y.sort();
            x == y
        }
        _ => false,
    };
    one_way(a, b) && one_way(b, a) && headers_eq
}

/// Both URIs parsed, or -2.
fn parse_both<'a>(a: &'a str, b: &'a str) -> Result<(Uri<'a>, Uri<'a>), i32> {
    match (Uri::parse(a), Uri::parse(b)) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        _ => Err(-2),
    }
}

fn verdict(equal: bool) -> i32 {
    if equal {
        1
    } else {
        -1
    }
}

/// Compare two URIs as RFC 3261 §19.1.4 says: scheme, user and password (escapes decoded,
/// case-sensitive), host (case-insensitive), port (absent differs from 5060), the `user`,
/// `ttl`, `method`, `maddr` and `transport` parameters (in both or in neither), any other
/// parameter present in both, and headers. Returns 1 when equal, -1 when not, -2 when a URI
/// does not parse.
#[kemi(module = "siputils")]
pub fn cmp_uri(msg: &mut SipMsg, uri1: &str, uri2: &str) -> i32 {
    let _ = msg;
    match parse_both(uri1, uri2) {
        Ok((a, b)) => verdict(uri_eq(&a, &b)),
        Err(code) => code,
    }
}

/// The port a URI's AoR stands for: the explicit one, else the scheme's default.
fn aor_port(u: &Uri<'_>) -> Option<u16> {
    u.port.or(match u.kind() {
        Scheme::Sip => Some(5060),
        Scheme::Sips => Some(5061),
        _ => None,
    })
}

/// Compare the addresses of record of two URIs: user (escapes decoded, case-sensitive), host
/// (case-insensitive) and port (a missing port is the scheme's default). Parameters and
/// headers are ignored. Returns 1 when equal, -1 when not, -2 when a URI does not parse.
#[kemi(module = "siputils")]
pub fn cmp_aor(msg: &mut SipMsg, uri1: &str, uri2: &str) -> i32 {
    let _ = msg;
    match parse_both(uri1, uri2) {
        Ok((a, b)) => verdict(
            same_escaped(a.user, b.user)
                && a.host.eq_ignore_ascii_case(b.host)
                && aor_port(&a) == aor_port(&b),
        ),
        Err(code) => code,
    }
}

/// Compare two header names: case-insensitive, and a compact form equals its long form
/// (`v` = `Via`). Returns 1 when equal, -1 when not, -2 when a name is empty.
#[kemi(module = "siputils")]
pub fn cmp_hdr_name(msg: &mut SipMsg, hname1: &str, hname2: &str) -> i32 {
    let _ = msg;
    let (a, b) = (hname1.trim(), hname2.trim());
    if a.is_empty() || b.is_empty() {
        return -2;
    }
    let (ka, kb) = (HeaderKind::from_name(a), HeaderKind::from_name(b));
    verdict(if ka == HeaderKind::Other || kb == HeaderKind::Other {
        a.eq_ignore_ascii_case(b)
    } else {
        ka == kb
    })
}
