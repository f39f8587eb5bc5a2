//! The `hdr` sub-module (`KSR.hdr.*`): read headers, and add or remove them.
//!
//! Header changes are lumps: they are recorded in `msg.route.edits` and applied when the message
//! is sent, so reads in the same route (`hdr.get`, `pv.get("$hdr(...)")`, `hdr.is_present`) still
//! see the message as received. Names match case-insensitively, and compact forms are the same
//! header (`v` is `Via`). Functions that take a full header line accept it with or without the
//! trailing `\r\n`.

use kemi_runtime::msg::LogLevel;
use kemi_runtime::sip::HeaderEdit;
use kemi_runtime::{kemi, SipMsg, Xval};

mod content;
pub use content::match_content;

/// True when `name` can be a header name (an RFC 3261 token).
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
}

/// Check a header name argument, logging when it is unusable.
fn checked_name(msg: &mut SipMsg, name: &str) -> bool {
    let ok = valid_name(name);
    if !ok {
        msg.log(
            LogLevel::Err,
            &format!("error parsing header name [{name}]"),
        );
    }
    ok
}

/// A full header line ending in exactly one CRLF; `None` (logged) when empty.
fn header_line(msg: &mut SipMsg, text: &str) -> Option<String> {
    let body = text.trim_end_matches(['\r', '\n']);
    if body.is_empty() {
        msg.log(LogLevel::Err, "empty header line");
        return None;
    }
    let mut line = String::with_capacity(body.len() + 2);
    line.push_str(body);
    line.push_str("\r\n");
    Some(line)
}

/// Index of the first header named `name`.
fn first_index(msg: &SipMsg, name: &str) -> Option<usize> {
    msg.message.first(name).map(|h| h.index)
}

/// Add the header line `text` after the last header. Returns 1, or -1 for an empty line.
#[kemi(module = "hdr")]
pub fn append(msg: &mut SipMsg, text: &str) -> i32 {
    let Some(line) = header_line(msg, text) else {
        return -1;
    };
    msg.route.edits.push(HeaderEdit::Append(line));
    1
}

/// Add the header line `text` after the first `name` header, or after the last header when there
/// is none. Returns 1, or -1 for an empty line or a bad name.
#[kemi(module = "hdr")]
pub fn append_after(msg: &mut SipMsg, text: &str, name: &str) -> i32 {
    if !checked_name(msg, name) {
        return -1;
    }
    let Some(line) = header_line(msg, text) else {
        return -1;
    };
    let edit = match first_index(msg, name) {
        Some(idx) => HeaderEdit::AppendAfter(idx, line),
        None => HeaderEdit::Append(line),
    };
    msg.route.edits.push(edit);
    1
}

/// Add the header line `text` before the first header. Returns 1, or -1 for an empty line.
#[kemi(module = "hdr")]
pub fn insert(msg: &mut SipMsg, text: &str) -> i32 {
    let Some(line) = header_line(msg, text) else {
        return -1;
    };
    msg.route.edits.push(HeaderEdit::Prepend(line));
    1
}

/// Add the header line `text` before the first `name` header, or before the first header when
/// there is none. Returns 1, or -1 for an empty line or a bad name.
#[kemi(module = "hdr")]
pub fn insert_before(msg: &mut SipMsg, text: &str, name: &str) -> i32 {
    if !checked_name(msg, name) {
        return -1;
    }
    let Some(line) = header_line(msg, text) else {
        return -1;
    };
    let edit = match first_index(msg, name) {
        Some(idx) => HeaderEdit::InsertBefore(idx, line),
        None => HeaderEdit::Prepend(line),
    };
    msg.route.edits.push(edit);
    1
}

/// Remove every `name` header. Returns 1 even when there is none, -1 for a bad name.
#[kemi(module = "hdr")]
pub fn remove(msg: &mut SipMsg, name: &str) -> i32 {
    if !checked_name(msg, name) {
        return -1;
    }
    let SipMsg { message, route, .. } = msg;
    route
        .edits
        .extend(message.find(name).map(|h| HeaderEdit::Remove(h.index)));
    1
}

/// Remove every `name` header, then add the header line `text` after the last header. Returns
/// 1, or -1 for a bad name or an empty line.
#[kemi(module = "hdr")]
pub fn rmappend(msg: &mut SipMsg, name: &str, text: &str) -> i32 {
    match remove(msg, name) {
        r if r < 0 => r,
        _ => append(msg, text),
    }
}

/// Remove every `name` header, then add the header line `text` before the first header.
/// Returns 1, or -1 for a bad name or an empty line.
#[kemi(module = "hdr")]
pub fn rminsert(msg: &mut SipMsg, name: &str, text: &str) -> i32 {
    match remove(msg, name) {
        r if r < 0 => r,
        _ => insert(msg, text),
    }
}

/// 1 when the message has a `name` header, -1 otherwise.
#[kemi(module = "hdr")]
pub fn is_present(msg: &mut SipMsg, name: &str) -> i32 {
    if checked_name(msg, name) && first_index(msg, name).is_some() {
        1
    } else {
        -1
    }
}

/// Add the header line `text` to the replies this proxy generates for the message
/// (`sl.send_reply` and friends). Returns 1, or -1 for an empty line.
#[kemi(module = "hdr")]
pub fn append_to_reply(msg: &mut SipMsg, text: &str) -> i32 {
    let Some(line) = header_line(msg, text) else {
        return -1;
    };
    msg.route.reply_headers.push(line);
    1
}

/// What a getter gives when the header is missing.
#[derive(Clone, Copy)]
enum NullAs {
    Null,
    Empty,
    Printed,
}

/// The value of the `idx`-th `name` header (negative counts from the end: -1 is the last).
fn get_mode(msg: &mut SipMsg, name: &str, idx: i32, null: NullAs) -> Xval {
    let found = if !checked_name(msg, name) {
        None
    } else if let Ok(i) = usize::try_from(idx) {
        msg.message.find(name).nth(i)
    } else {
        let back = usize::try_from(idx.unsigned_abs()).unwrap_or(usize::MAX);
        let count = msg.message.find(name).count();
        count
            .checked_sub(back)
            .and_then(|i| msg.message.find(name).nth(i))
    };
    match (found, null) {
        (Some(h), _) => Xval::str(h.value),
        (None, NullAs::Null) => Xval::Null,
        (None, NullAs::Empty) => Xval::str(""),
        (None, NullAs::Printed) => Xval::str("<null>"),
    }
}

/// The value of the first `name` header, or null when there is none.
#[kemi(module = "hdr")]
pub fn get(msg: &mut SipMsg, name: &str) -> Xval {
    get_mode(msg, name, 0, NullAs::Null)
}

/// The value of the first `name` header, or `""` when there is none.
#[kemi(module = "hdr")]
pub fn gete(msg: &mut SipMsg, name: &str) -> Xval {
    get_mode(msg, name, 0, NullAs::Empty)
}

/// The value of the first `name` header, or `"<null>"` when there is none.
#[kemi(module = "hdr")]
pub fn getw(msg: &mut SipMsg, name: &str) -> Xval {
    get_mode(msg, name, 0, NullAs::Printed)
}

/// The value of the `idx`-th `name` header (0 is the first, -1 the last), or null.
#[kemi(module = "hdr")]
pub fn get_idx(msg: &mut SipMsg, name: &str, idx: i32) -> Xval {
    get_mode(msg, name, idx, NullAs::Null)
}

/// The value of the `idx`-th `name` header (0 is the first, -1 the last), or `""`.
#[kemi(module = "hdr")]
pub fn gete_idx(msg: &mut SipMsg, name: &str, idx: i32) -> Xval {
    get_mode(msg, name, idx, NullAs::Empty)
}

/// The value of the `idx`-th `name` header (0 is the first, -1 the last), or `"<null>"`.
#[kemi(module = "hdr")]
pub fn getw_idx(msg: &mut SipMsg, name: &str, idx: i32) -> Xval {
    get_mode(msg, name, idx, NullAs::Printed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_are_tokens() {
        assert!(valid_name("X-Foo"));
        assert!(valid_name("v"));
        assert!(!valid_name(""));
        assert!(!valid_name("X Foo"));
        assert!(!valid_name("X-Foo:"));
    }
}
