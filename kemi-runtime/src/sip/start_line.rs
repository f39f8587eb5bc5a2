//! The start line: `Method SP Request-URI SP SIP-Version` or `SIP-Version SP Status-Code SP
//! Reason-Phrase`, and the version check that separates 400 from 505 from "not SIP".

use super::scan::find1;

use super::error::{ParseError, ParseErrorKind as K};
use super::header::is_token_char;
use super::parse::{trim_end, Span, StartLine};
use super::uri::has_scheme;

/// Parse the start line `buf[from..end]` (terminator excluded).
pub(crate) fn start_line(buf: &[u8], from: usize, end: usize) -> Result<StartLine, ParseError> {
    let line = buf.get(from..end).unwrap_or_default();
    if line.len() >= 4
        && line
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"SIP/"))
    {
        return status_line(line, from).map_err(|e| e.in_response(true));
    }
    let line = trim_end(line);
    let sp = find1(line, b' ').ok_or(ParseError::new(K::NotSip, "no SIP start line"))?;
    let method = line.get(..sp).unwrap_or_default();
    if method.is_empty() || !method.iter().all(|&c| is_token_char(c)) {
        return Err(ParseError::new(K::NotSip, "no SIP start line"));
    }
    let rest = line.get(sp + 1..).unwrap_or_default();
    let vsp = memchr::memrchr(b' ', rest).ok_or(ParseError::new(
        K::BadStartLine,
        "no SIP version in request line",
    ))?;
    let version = rest.get(vsp + 1..).unwrap_or_default();
    check_version(version)?;
    let ruri = rest.get(..vsp).unwrap_or_default();
    if ruri.is_empty() || ruri.iter().any(|c| c.is_ascii_whitespace()) {
        return Err(ParseError::new(
            K::BadStartLine,
            "whitespace in or around the Request-URI",
        ));
    }
    if !(has_scheme(ruri) && (ruri.is_ascii() || std::str::from_utf8(ruri).is_ok())) {
        return Err(ParseError::new(
            K::BadStartLine,
            "Request-URI has no scheme",
        ));
    }
    let ruri_start = from + sp + 1;
    Ok(StartLine::Request {
        method: Span::new(from, from + sp),
        ruri: Span::new(ruri_start, ruri_start + vsp),
        version: Span::new(ruri_start + vsp + 1, from + line.len()),
    })
}

fn status_line(line: &[u8], from: usize) -> Result<StartLine, ParseError> {
    let sp = find1(line, b' ').ok_or(ParseError::new(K::BadStartLine, "no status code"))?;
    check_version(line.get(..sp).unwrap_or_default())?;
    let rest = line.get(sp + 1..).unwrap_or_default();
    let csp = find1(rest, b' ').unwrap_or(rest.len());
    let code = match rest.get(..csp) {
        Some(&[a, b, c]) if [a, b, c].iter().all(u8::is_ascii_digit) => {
            u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0')
        }
        _ => {
            return Err(ParseError::new(
                K::BadStatusCode,
                "status code is not three digits",
            ))
        }
    };
    if !(100..=699).contains(&code) {
        return Err(ParseError::new(
            K::BadStatusCode,
            "status code out of range",
        ));
    }
    let reason_start = (from + sp + 1 + csp + 1).min(from + line.len());
    Ok(StartLine::Response {
        version: Span::new(from, from + sp),
        code,
        reason: Span::new(reason_start, from + line.len()),
    })
}

/// `SIP/2.0` (the name is case-insensitive). A well-formed other version is
/// [`UnsupportedVersion`](super::ParseErrorKind::UnsupportedVersion).
fn check_version(v: &[u8]) -> Result<(), ParseError> {
    let Some(num) = v
        .get(..4)
        .filter(|p| p.eq_ignore_ascii_case(b"SIP/"))
        .and(v.get(4..))
    else {
        return Err(ParseError::new(K::NotSip, "not a SIP version"));
    };
    if num == b"2.0" {
        return Ok(());
    }
    let well_formed = num
        .split(|&c| c == b'.')
        .map(|p| !p.is_empty() && p.iter().all(u8::is_ascii_digit))
        .eq([true, true]);
    if well_formed {
        Err(ParseError::new(
            K::UnsupportedVersion,
            "unsupported SIP version",
        ))
    } else {
        Err(ParseError::new(K::BadStartLine, "malformed SIP version"))
    }
}
