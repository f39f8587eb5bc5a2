//! Body and privacy tests: `has_body`, `has_body_type`, `is_privacy`. Read-only.

use kemi_runtime::msg::LogLevel;
use kemi_runtime::sip::HeaderKind;
use kemi_runtime::{kemi, SipMsg};

/// The `type/subtype` of a Content-Type value, parameters and whitespace dropped.
fn mime(value: &str) -> &str {
    value.split(';').next().unwrap_or_default().trim()
}

/// Whether `s` is one `type/subtype` token pair.
fn valid_mime(s: &str) -> bool {
    let token = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
    };
    matches!(s.split_once('/'), Some((t, st)) if token(t) && token(st))
}

/// Whether the message has a body: a Content-Length header greater than 0. Returns 1 or -1.
#[kemi(module = "textops")]
pub fn has_body(msg: &mut SipMsg) -> i32 {
    match msg.message.content_length() {
        Some(n) if n > 0 => 1,
        _ => -1,
    }
}

/// Whether the message has a body of MIME type `ctype` (`"application/sdp"`), compared without
/// case and parameters. No Content-Type counts as `application/sdp` (RFC 3261); an empty
/// `ctype` is any type. Returns 1, or -1 when not (or for a malformed `ctype`).
#[kemi(module = "textops")]
pub fn has_body_type(msg: &mut SipMsg, ctype: &str) -> i32 {
    if has_body(msg) < 0 {
        return -1;
    }
    if ctype.is_empty() {
        return 1;
    }
    if !valid_mime(ctype) {
        msg.log(LogLevel::Err, &format!("unsupported mime [{ctype}]"));
        return -1;
    }
    let actual = msg.message.content_type().map_or("application/sdp", mime);
    if actual.eq_ignore_ascii_case(ctype) {
        1
    } else {
        -1
    }
}

/// The privacy values RFC 3323/3325 define.
const PRIV_VALUES: &[&str] = &[
    "header", "session", "user", "none", "critical", "id", "history",
];

/// Whether the Privacy header lists `value` (`"id"`, `"user"`, `"header"`, `"session"`,
/// `"none"`, `"critical"`, `"history"`; several may be given separated by `;`, any of them
/// matches). Returns 1, or -1 when not listed, when there is no Privacy header, or for an
/// unknown value.
#[kemi(module = "textops")]
pub fn is_privacy(msg: &mut SipMsg, value: &str) -> i32 {
    let wanted: Vec<&str> = value.split(';').map(str::trim).collect();
    if value.is_empty()
        || wanted
            .iter()
            .any(|w| !PRIV_VALUES.iter().any(|p| p.eq_ignore_ascii_case(w)))
    {
        msg.log(LogLevel::Err, &format!("invalid privacy value [{value}]"));
        return -1;
    }
    let listed = msg
        .message
        .find_kind(HeaderKind::Privacy)
        .flat_map(|h| h.value.split([';', ',']))
        .map(str::trim)
        .any(|v| wanted.iter().any(|w| w.eq_ignore_ascii_case(v)));
    if listed {
        1
    } else {
        -1
    }
}
