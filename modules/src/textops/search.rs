//! Read-only textops: regex searches over the message, a header or a string, and header
//! presence tests. They see the message as received.

use kemi_runtime::{kemi, SipMsg};

use super::regex_cache::Flavor;
use super::{checked_hname, regex};

/// 1 when `found`, else -1.
fn found(found: bool) -> i32 {
    if found {
        1
    } else {
        -1
    }
}

/// Search the whole message as received (start line, headers, body) for the regex `re`
/// (case-insensitive, `^`/`$` per line). Returns 1 when found, -1 when not or on a bad regex;
/// an empty `re` gives 1.
#[kemi(module = "textops")]
pub fn search(msg: &mut SipMsg, re: &str) -> i32 {
    if re.is_empty() {
        return 1;
    }
    let Some(rx) = regex(msg, re, Flavor::TEXTOPS) else {
        return -1;
    };
    found(rx.is_match(msg.message.as_bytes()))
}

/// Search the message body for the regex `re`. Returns 1 when found, -1 when not, when there is
/// no body, or on a bad regex; an empty `re` gives 1.
#[kemi(module = "textops")]
pub fn search_body(msg: &mut SipMsg, re: &str) -> i32 {
    if re.is_empty() {
        return 1;
    }
    let Some(rx) = regex(msg, re, Flavor::TEXTOPS) else {
        return -1;
    };
    let body = msg.message.body();
    found(!body.is_empty() && rx.is_match(body))
}

/// Search the values of the `hname` headers for the regex `re`. `flags`: `"f"` only the first
/// such header, `"l"` only the last, anything else (`""`) any of them. Returns 1 when found,
/// -1 otherwise.
#[kemi(module = "textops")]
pub fn search_hf(msg: &mut SipMsg, hname: &str, re: &str, flags: &str) -> i32 {
    if re.is_empty() || !checked_hname(msg, hname) {
        return -1;
    }
    let Some(rx) = regex(msg, re, Flavor::TEXTOPS) else {
        return -1;
    };
    let mut values = msg.message.find(hname).map(|h| h.value);
    let hit = match flags.as_bytes().first() {
        Some(b'f') => values.next().is_some_and(|v| rx.is_match(v.as_bytes())),
        Some(b'l') => values.last().is_some_and(|v| rx.is_match(v.as_bytes())),
        _ => values.any(|v| rx.is_match(v.as_bytes())),
    };
    found(hit)
}

/// Search the string `text` for the regex `re` (case-insensitive). Returns 1 when found, -1 when
/// not, -2 for an empty `text` or a bad regex, 2 for an empty `re`.
#[kemi(module = "textops")]
pub fn search_str(msg: &mut SipMsg, text: &str, re: &str) -> i32 {
    if re.is_empty() {
        return 2;
    }
    if text.is_empty() {
        return -2;
    }
    match regex(msg, re, Flavor::TEXTOPS) {
        Some(rx) => found(rx.is_match(text.as_bytes())),
        None => -2,
    }
}

/// Whether a header named `hname` is present (case-insensitive, compact forms included).
/// Returns 1 or -1.
#[kemi(module = "textops")]
pub fn is_present_hf(msg: &mut SipMsg, hname: &str) -> i32 {
    if !checked_hname(msg, hname) {
        return -1;
    }
    found(msg.message.first(hname).is_some())
}

/// Whether a header whose name matches the regex `re` is present (`"^X-"`). Returns 1 or -1.
#[kemi(module = "textops")]
pub fn is_present_hf_re(msg: &mut SipMsg, re: &str) -> i32 {
    let Some(rx) = regex(msg, re, Flavor::TEXTOPS) else {
        return -1;
    };
    found(
        msg.message
            .headers()
            .any(|h| rx.is_match(h.name.as_bytes())),
    )
}
