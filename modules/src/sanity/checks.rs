//! The individual sanity checks, one function per check bit, and [`run`], which runs the
//! selected ones in Kamailio's order. Nothing here sends anything: a failure says which reply
//! (if any) the caller should send.

use std::fmt;

use kemi_runtime::sip::{HeaderKind, Message, NameAddr, Scheme, Uri};

use super::digest::{self, DigestError};
use super::{SanityConfig, URI_CONTACT, URI_FROM, URI_RURI, URI_TO};

/// One check bit of `sanity_check`'s first argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// 1: the request line says `SIP/2.0`.
    RuriSipVersion = 1,
    /// 2: the R-URI parses with a scheme sipd routes (sip, sips, tel, tels, urn).
    RuriScheme = 2,
    /// 4: Via, From, To, Call-ID and CSeq are present (From/To/Call-ID/CSeq once) and parse.
    RequiredHeaders = 4,
    /// 8: Via SIP version (a no-op, as in Kamailio).
    ViaSipVersion = 8,
    /// 16: Via transport (a no-op, as in Kamailio).
    ViaProtocol = 16,
    /// 32: the CSeq method equals the request method.
    CseqMethod = 32,
    /// 64: the CSeq number is a decimal below 2^31.
    CseqValue = 64,
    /// 128: Content-Length matches the body.
    ContentLength = 128,
    /// 256: the Expires header holds a 32-bit unsigned number.
    ExpiresValue = 256,
    /// 512: every Proxy-Require option tag is supported.
    ProxyRequire = 512,
    /// 1024: the URIs selected by the URI mask parse.
    ParseUris = 1024,
    /// 2048: every credential is a complete Digest credential.
    Digest = 2048,
    /// 4096: at most one `tag` in From and in To.
    DupTags = 4096,
    /// 8192: like 2048, but non-Digest credentials pass.
    Authorization = 8192,
    /// 16384: the first Via parses and has a host.
    Via1Header = 16384,
    /// 32768: the first Via branch has the RFC 3261 cookie, every Route/Record-Route has `;lr`.
    Rfc3261 = 32768,
    /// 65536: message, header and URI sizes are within limits.
    Sizes = 65536,
}

/// Kamailio's evaluation order.
const ORDER: [Check; 17] = [
    Check::Sizes,
    Check::RuriSipVersion,
    Check::RuriScheme,
    Check::RequiredHeaders,
    Check::Via1Header,
    Check::Rfc3261,
    Check::ViaSipVersion,
    Check::ViaProtocol,
    Check::CseqMethod,
    Check::CseqValue,
    Check::ContentLength,
    Check::ExpiresValue,
    Check::ProxyRequire,
    Check::ParseUris,
    Check::Digest,
    Check::Authorization,
    Check::DupTags,
];

/// Size limits of check 65536 (Kamailio's `size_*` modparam defaults).
const MAX_MESSAGE: usize = 16384;
const MAX_HEADERS: usize = 8192;
const MAX_BODY: usize = 8192;
const MAX_HEADER: usize = 2048;
const MAX_METHOD: usize = 32;
const MAX_URI: usize = 256;

/// A failed check: which one, why, and the reply to send (`None`: fail silently).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The check that failed.
    pub check: Check,
    /// What was wrong.
    pub detail: &'static str,
    /// Status code and reason phrase to answer with.
    pub reply: Option<(u16, &'static str)>,
    /// The option tag for an `Unsupported` header (Proxy-Require failures).
    pub unsupported: Option<String>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "check {} ({:?}): {}",
            self.check as i32, self.check, self.detail
        )?;
        if let Some(tag) = &self.unsupported {
            write!(f, " [{tag}]")?;
        }
        Ok(())
    }
}

impl std::error::Error for Failure {}

/// A failure answered with `code reason`.
fn reply(check: Check, code: u16, reason: &'static str) -> Failure {
    Failure {
        check,
        detail: reason,
        reply: Some((code, reason)),
        unsupported: None,
    }
}

/// A failure that sends nothing.
fn silent(check: Check, detail: &'static str) -> Failure {
    Failure {
        check,
        detail,
        reply: None,
        unsupported: None,
    }
}

type Outcome = Result<(), Failure>;

/// Run the checks selected by `msg_checks` in Kamailio's order and return the first failure.
/// `uri_checks` selects the URIs of check 1024. Unknown bits are ignored, as Kamailio's KEMI
/// function does. Checks about the request line pass on replies.
///
/// ```
/// use kemi_runtime::sip::Message;
/// use modules::sanity::{run, Check, SanityConfig};
/// let m = Message::parse("OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
///     From: <sip:c@d>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n\r\n".into()).unwrap();
/// let failure = run(&m, 17895, 7, &SanityConfig::default()).unwrap_err();
/// assert_eq!(failure.check, Check::CseqMethod);
/// assert_eq!(failure.reply, Some((400, "CSeq method does not match request method")));
/// ```
pub fn run(m: &Message, msg_checks: i32, uri_checks: i32, cfg: &SanityConfig) -> Outcome {
    for check in ORDER {
        if msg_checks & check as i32 != 0 {
            run_one(m, check, uri_checks, cfg)?;
        }
    }
    Ok(())
}

fn run_one(m: &Message, check: Check, uri_checks: i32, cfg: &SanityConfig) -> Outcome {
    match check {
        Check::RuriSipVersion => ruri_sip_version(m),
        Check::RuriScheme => ruri_scheme(m),
        Check::RequiredHeaders => required_headers(m),
        Check::ViaSipVersion | Check::ViaProtocol => Ok(()),
        Check::CseqMethod => cseq_method(m),
        Check::CseqValue => cseq_value(m),
        Check::ContentLength => content_length(m),
        Check::ExpiresValue => expires_value(m),
        Check::ProxyRequire => proxy_require(m, &cfg.proxy_require),
        Check::ParseUris => parse_uris(m, uri_checks),
        Check::Digest => credentials(m, Check::Digest),
        Check::Authorization => credentials(m, Check::Authorization),
        Check::DupTags => dup_tags(m),
        Check::Via1Header => via1_header(m),
        Check::Rfc3261 => rfc3261(m),
        Check::Sizes => sizes(m),
    }
}

fn ruri_sip_version(m: &Message) -> Outcome {
    if !m.is_request() {
        return Ok(());
    }
    let version = m.version();
    match version.split_once('/') {
        Some((_, "2.0")) => Ok(()),
        Some(_) => Err(reply(
            Check::RuriSipVersion,
            505,
            "Version Not Supported (R-URI)",
        )),
        None => Err(silent(Check::RuriSipVersion, "no '/' in the SIP version")),
    }
}

/// Whether sipd routes R-URIs of this scheme (Kamailio's URI parser knows the same ones).
fn known_scheme(uri: &Uri<'_>) -> bool {
    matches!(uri.kind(), Scheme::Sip | Scheme::Sips | Scheme::Tel)
        || ["tels", "urn"]
            .iter()
            .any(|s| uri.scheme.eq_ignore_ascii_case(s))
}

fn ruri_scheme(m: &Message) -> Outcome {
    match m.request_uri() {
        None => Ok(()),
        Some(Err(_)) => Err(reply(Check::RuriScheme, 400, "Bad Request URI")),
        Some(Ok(uri)) if known_scheme(&uri) => Ok(()),
        Some(Ok(_)) => Err(reply(
            Check::RuriScheme,
            416,
            "Unsupported URI Scheme in Request URI",
        )),
    }
}

fn required_headers(m: &Message) -> Outcome {
    const C: Check = Check::RequiredHeaders;
    if m.check_required().is_err() {
        return Err(silent(C, "missing or duplicate Via/From/To/Call-ID/CSeq"));
    }
    if m.top_via().is_none_or(|v| v.is_err()) {
        return Err(silent(C, "first Via does not parse"));
    }
    let vias_ok = m.vias().all(|v| v.is_ok());
    // The CSeq's shape only: its number's range and its method are checks 64 and 32, which
    // answer with their own reasons.
    let cseq_ok = cseq_parts(m).is_some_and(|(number, method)| {
        !number.is_empty() && number.bytes().all(|c| c.is_ascii_digit()) && !method.is_empty()
    });
    let parties_ok =
        m.from_hdr().is_some_and(|f| f.is_ok()) && m.to_hdr().is_some_and(|t| t.is_ok());
    if vias_ok && cseq_ok && parties_ok {
        Ok(())
    } else {
        Err(reply(C, 400, "Bad Headers"))
    }
}

/// The number and method of the CSeq header as written (either may be empty).
fn cseq_parts(m: &Message) -> Option<(&str, &str)> {
    let value = m.first_kind(HeaderKind::CSeq)?.value;
    let value = value.trim_matches(LWS);
    Some(match value.find(LWS) {
        Some(at) => {
            let (number, method) = value.split_at(at);
            (number, method.trim_start_matches(LWS))
        }
        None if value.bytes().all(|c| c.is_ascii_digit()) => (value, ""),
        None => ("", value),
    })
}

const LWS: [char; 4] = [' ', '\t', '\r', '\n'];

fn cseq_method(m: &Message) -> Outcome {
    const C: Check = Check::CseqMethod;
    let Some(request_method) = m.method_str() else {
        return Ok(());
    };
    let Some((_, method)) = cseq_parts(m) else {
        return Err(silent(C, "no CSeq header"));
    };
    if method.is_empty() {
        Err(reply(C, 400, "Missing method in CSeq header"))
    } else if method != request_method {
        Err(reply(C, 400, "CSeq method does not match request method"))
    } else {
        Ok(())
    }
}

fn cseq_value(m: &Message) -> Outcome {
    const C: Check = Check::CseqValue;
    let Some((number, _)) = cseq_parts(m) else {
        return Err(silent(C, "no CSeq header"));
    };
    if number.is_empty() {
        return Err(reply(C, 400, "Missing number in CSeq header"));
    }
    match decimal(number) {
        Some(n) if n < 1 << 31 => Ok(()),
        _ => Err(reply(C, 400, "CSeq number is illegal")),
    }
}

/// A decimal number of at most 10 digits (so it fits a `u64`), no sign.
fn decimal(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn content_length(m: &Message) -> Outcome {
    const C: Check = Check::ContentLength;
    let Some(h) = m.first_kind(HeaderKind::ContentLength) else {
        return Ok(());
    };
    let Some(declared) = decimal(h.value.trim_matches(LWS)) else {
        return Err(reply(C, 400, "Content-Length Failure"));
    };
    // The body the parser kept is bounded by Content-Length; what matters is whether the
    // datagram held at least that much. Octets past it are discarded (RFC 3261 18.3).
    let buf = m.as_bytes();
    let body_start = (m.body().as_ptr() as usize).wrapping_sub(buf.as_ptr() as usize);
    let available = match buf.len().checked_sub(body_start) {
        Some(n) => n,
        None => m.body().len(),
    };
    if usize::try_from(declared).is_ok_and(|d| d <= available) {
        Ok(())
    } else {
        Err(reply(C, 400, "Content-Length mis-match"))
    }
}

fn expires_value(m: &Message) -> Outcome {
    const C: Check = Check::ExpiresValue;
    let Some(h) = m.first_kind(HeaderKind::Expires) else {
        return Ok(());
    };
    let value = h.value.trim_matches(LWS);
    if value.is_empty() {
        return Err(reply(C, 400, "Missing number in Expires header"));
    }
    if !value.bytes().all(|c| c.is_ascii_digit()) {
        return Err(reply(C, 400, "Bad Expires Header"));
    }
    match decimal(value) {
        Some(n) if n <= u64::from(u32::MAX) => Ok(()),
        _ => Err(reply(C, 400, "Expires value is illegal")),
    }
}

fn proxy_require(m: &Message, supported: &[String]) -> Outcome {
    const C: Check = Check::ProxyRequire;
    for h in m.find_kind(HeaderKind::ProxyRequire) {
        if h.value.trim_matches(LWS).is_empty() {
            return Err(reply(C, 400, "Bad Proxy Require Header"));
        }
        for tag in h.value.split(',').map(|t| t.trim_matches(LWS)) {
            if !supported.iter().any(|s| s.eq_ignore_ascii_case(tag)) {
                let mut f = reply(C, 420, "Bad Proxy Require Extension");
                f.unsupported = Some(tag.to_string());
                return Err(f);
            }
        }
    }
    Ok(())
}

/// A From or To header whose URI parses with a scheme sipd knows.
fn party_ok(na: Option<Result<NameAddr<'_>, kemi_runtime::sip::ValueError>>) -> Option<bool> {
    let na = na?;
    Some(na.is_ok_and(|n| n.parsed_uri().is_ok_and(|u| known_scheme(&u))))
}

fn parse_uris(m: &Message, uri_checks: i32) -> Outcome {
    const C: Check = Check::ParseUris;
    if uri_checks & URI_RURI != 0 {
        let ok = m
            .request_uri()
            .is_none_or(|u| u.is_ok_and(|u| known_scheme(&u)));
        if !ok {
            return Err(reply(C, 400, "Bad Request URI"));
        }
    }
    for (bit, party, name, reason) in [
        (
            URI_FROM,
            m.from_hdr(),
            "no From header",
            "Invalid From Header",
        ),
        (URI_TO, m.to_hdr(), "no To header", "Invalid To Header"),
    ] {
        if uri_checks & bit != 0 {
            match party_ok(party) {
                None => return Err(silent(C, name)),
                Some(false) => return Err(reply(C, 400, reason)),
                Some(true) => {}
            }
        }
    }
    if uri_checks & URI_CONTACT != 0 {
        let mut contacts = m.contacts();
        if let Some(first) = contacts.next() {
            let Ok(first) = first else {
                return Err(reply(C, 400, "Bad Contact Header"));
            };
            if contacts.any(|c| c.is_err()) {
                return Err(reply(C, 400, "Bad Contact Header"));
            }
            if !first.is_star() && !first.parsed_uri().is_ok_and(|u| known_scheme(&u)) {
                return Err(reply(C, 400, "Bad Contact URI"));
            }
        }
    }
    Ok(())
}

fn credentials(m: &Message, check: Check) -> Outcome {
    let headers = m
        .find_kind(HeaderKind::Authorization)
        .chain(m.find_kind(HeaderKind::ProxyAuthorization));
    for h in headers {
        match digest::check(h.value) {
            Ok(()) => {}
            // Kamailio stops at the first non-Digest credential: 2048 fails, 8192 passes.
            Err(DigestError::NotDigest) if check == Check::Authorization => return Ok(()),
            Err(DigestError::NotDigest) => return Err(silent(check, "not a Digest credential")),
            Err(e) => return Err(reply(check, 400, e.reason())),
        }
    }
    Ok(())
}

fn dup_tags(m: &Message) -> Outcome {
    const C: Check = Check::DupTags;
    let (Some(Ok(from)), Some(Ok(to))) = (m.from_hdr(), m.to_hdr()) else {
        return Err(silent(C, "From or To does not parse"));
    };
    let tags = |na: &NameAddr<'_>| {
        na.params
            .iter()
            .filter(|p| p.name.eq_ignore_ascii_case("tag"))
            .count()
    };
    if tags(&from) > 1 {
        return Err(reply(C, 400, "Many From Tag Params"));
    }
    if tags(&to) > 1 {
        return Err(reply(C, 400, "Many To Tag Params"));
    }
    Ok(())
}

fn via1_header(m: &Message) -> Outcome {
    match m.top_via() {
        Some(Ok(v)) if !v.host.is_empty() => Ok(()),
        _ => Err(silent(
            Check::Via1Header,
            "first Via missing or does not parse",
        )),
    }
}

fn rfc3261(m: &Message) -> Outcome {
    const C: Check = Check::Rfc3261;
    let branch_ok = m
        .top_via()
        .and_then(Result::ok)
        .and_then(|v| v.branch())
        .is_some_and(|b| b.starts_with("z9hG4bK"));
    if !branch_ok {
        return Err(silent(C, "first Via branch lacks the z9hG4bK cookie"));
    }
    for kind in [HeaderKind::Route, HeaderKind::RecordRoute] {
        for value in m.list(kind) {
            let lr = NameAddr::parse(value, kind.name())
                .ok()
                .and_then(|na| na.parsed_uri().ok())
                .is_some_and(|u| u.params.has("lr"));
            if !lr {
                return Err(silent(C, "Route or Record-Route URI without ;lr"));
            }
        }
    }
    Ok(())
}

fn sizes(m: &Message) -> Outcome {
    const C: Check = Check::Sizes;
    let too_big = |len: usize, max: usize| len > max;
    let body_len = m.body().len();
    let head_len = m.as_bytes().len().saturating_sub(body_len);
    let uri_too_long = |kind: HeaderKind| {
        m.list(kind)
            .any(|v| NameAddr::parse(v, kind.name()).is_ok_and(|na| too_big(na.uri.len(), MAX_URI)))
    };
    let failed = too_big(m.as_bytes().len(), MAX_MESSAGE)
        || too_big(head_len, MAX_HEADERS)
        || too_big(body_len, MAX_BODY)
        || m.headers().any(|h| too_big(h.line.len(), MAX_HEADER))
        || m.method_str().is_some_and(|s| too_big(s.len(), MAX_METHOD))
        || m.ruri().is_some_and(|s| too_big(s.len(), MAX_URI))
        || [
            HeaderKind::From,
            HeaderKind::To,
            HeaderKind::Contact,
            HeaderKind::Route,
            HeaderKind::RecordRoute,
            HeaderKind::Path,
            HeaderKind::PAssertedIdentity,
        ]
        .into_iter()
        .any(uri_too_long);
    if failed {
        Err(silent(C, "size limit exceeded"))
    } else {
        Ok(())
    }
}
