//! String tests that do not look at the message: comparisons, prefix/suffix, list membership,
//! substring and character-set searches. Byte-wise, as Kamailio compares.

use std::cmp::Ordering;

use kemi_runtime::{kemi, SipMsg};

/// Kamailio's comparison result: 1 equal, -1 first greater, -2 first smaller.
fn ordering(o: Ordering) -> i32 {
    match o {
        Ordering::Equal => 1,
        Ordering::Greater => -1,
        Ordering::Less => -2,
    }
}

/// Compare `a` and `b` byte-wise. Returns 1 when equal, -1 when `a` sorts after `b`, -2 when
/// before.
#[kemi(module = "textops")]
pub fn cmp_str(_msg: &mut SipMsg, a: &str, b: &str) -> i32 {
    ordering(a.as_bytes().cmp(b.as_bytes()))
}

/// Compare `a` and `b` ignoring ASCII case. Returns 1 when equal, -1 when `a` sorts after `b`,
/// -2 when before.
#[kemi(module = "textops")]
pub fn cmp_istr(_msg: &mut SipMsg, a: &str, b: &str) -> i32 {
    let b = b.bytes().map(|c| c.to_ascii_lowercase());
    ordering(a.bytes().map(|c| c.to_ascii_lowercase()).cmp(b))
}

/// Whether `text` starts with `prefix`. Returns 1, or -1/-2 (the text's start sorts after/before
/// the prefix; -1 also when `text` is shorter).
#[kemi(module = "textops")]
pub fn starts_with(_msg: &mut SipMsg, text: &str, prefix: &str) -> i32 {
    match text.as_bytes().get(..prefix.len()) {
        Some(head) => ordering(head.cmp(prefix.as_bytes())),
        None => -1,
    }
}

/// Whether `text` ends with `suffix`. Returns 1, or -1/-2 (the text's end sorts after/before
/// the suffix; -1 also when `text` is shorter).
#[kemi(module = "textops")]
pub fn ends_with(_msg: &mut SipMsg, text: &str, suffix: &str) -> i32 {
    let Some(start) = text.len().checked_sub(suffix.len()) else {
        return -1;
    };
    match text.as_bytes().get(start..) {
        Some(tail) => ordering(tail.cmp(suffix.as_bytes())),
        None => -1,
    }
}

/// Position of `needle` in `hay` as Kamailio reports it: 1-based, -1 when absent.
fn position(hay: &[u8], needle: &[u8], icase: bool) -> i32 {
    if needle.len() > hay.len() {
        return -1;
    }
    if needle.is_empty() {
        return 1;
    }
    hay.windows(needle.len())
        .position(|w| {
            if icase {
                w.eq_ignore_ascii_case(needle)
            } else {
                w == needle
            }
        })
        .and_then(|p| i32::try_from(p + 1).ok())
        .unwrap_or(-1)
}

/// Find `needle` in `text`. Returns its 1-based byte position, or -1 when absent.
#[kemi(module = "textops")]
pub fn str_find(_msg: &mut SipMsg, text: &str, needle: &str) -> i32 {
    position(text.as_bytes(), needle.as_bytes(), false)
}

/// Find `needle` in `text` ignoring ASCII case. Returns its 1-based byte position, or -1.
#[kemi(module = "textops")]
pub fn str_ifind(_msg: &mut SipMsg, text: &str, needle: &str) -> i32 {
    position(text.as_bytes(), needle.as_bytes(), true)
}

/// Whether any character (byte) of `chars` occurs in `text`. Returns 1 or -1 (also for empty
/// arguments).
#[kemi(module = "textops")]
pub fn str_any_in(_msg: &mut SipMsg, text: &str, chars: &str) -> i32 {
    let hit = !text.is_empty() && text.bytes().any(|b| chars.as_bytes().contains(&b));
    if hit {
        1
    } else {
        -1
    }
}

/// Whether every character (byte) of `chars` occurs in `text`. Returns 1 or -1 (also for empty
/// arguments).
#[kemi(module = "textops")]
pub fn str_all_in(_msg: &mut SipMsg, text: &str, chars: &str) -> i32 {
    let hit = !text.is_empty()
        && !chars.is_empty()
        && chars.bytes().all(|c| text.as_bytes().contains(&c));
    if hit {
        1
    } else {
        -1
    }
}

/// The elements of `list` split at the first byte of `sep`, trimmed of whitespace; `None` for
/// an empty separator.
fn elements<'a>(list: &'a str, sep: &str) -> Option<impl Iterator<Item = &'a str>> {
    let sep = char::from(*sep.as_bytes().first()?);
    Some(
        list.split(sep)
            .map(|e| e.trim_matches([' ', '\t', '\r', '\n'])),
    )
}

/// Whether `subject` equals one element of `list`, elements separated by the first character
/// of `sep` and trimmed of whitespace (`in_list("b", "a, b, c", ",")`). Returns 1 or -1.
#[kemi(module = "textops")]
pub fn in_list(_msg: &mut SipMsg, subject: &str, list: &str, sep: &str) -> i32 {
    if subject.is_empty() || list.is_empty() {
        return -1;
    }
    let hit = elements(list, sep).is_some_and(|mut it| it.any(|e| e == subject));
    if hit {
        1
    } else {
        -1
    }
}

/// Whether a non-empty element of `list` is a prefix of `subject` (`in_list_prefix("+4930123",
/// "+49, +33", ",")`). Returns 1 or -1.
#[kemi(module = "textops")]
pub fn in_list_prefix(_msg: &mut SipMsg, subject: &str, list: &str, sep: &str) -> i32 {
    if subject.is_empty() || list.is_empty() {
        return -1;
    }
    let hit = elements(list, sep)
        .is_some_and(|mut it| it.any(|e| !e.is_empty() && subject.starts_with(e)));
    if hit {
        1
    } else {
        -1
    }
}
