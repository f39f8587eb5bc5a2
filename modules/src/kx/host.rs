//! `KSR.kx.*` getters of process facts: preprocessor defines (`ifdef`, `get_def`), the
//! environment (`get_env`) and the clock (`get_timestamp`).
//!
//! sipd has no configuration preprocessor, so no name is ever defined: `ifdef` is false,
//! `ifndef` true, `get_def` gives `""` and `get_defn` 0, which is what Kamailio gives for a
//! name that is not `#!define`d.

use std::time::{SystemTime, UNIX_EPOCH};

use kemi_runtime::{kemi, SipMsg, Xval};

/// The value of define `name` (none exist in sipd).
fn define(_name: &str) -> Option<&'static str> {
    None
}

/// Leading optional sign and digits of `s` as an integer, 0 when there are none or it
/// overflows (Kamailio's `str2sint`).
fn leading_int(s: &str) -> i32 {
    let s = s.trim_start();
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, s.get(1..).unwrap_or_default()),
        Some(b'+') => (false, s.get(1..).unwrap_or_default()),
        _ => (false, s),
    };
    let end = digits.bytes().take_while(u8::is_ascii_digit).count();
    let n = digits
        .get(..end)
        .and_then(|d| d.parse::<i32>().ok())
        .unwrap_or(0);
    if neg {
        -n
    } else {
        n
    }
}

/// The value of the preprocessor define `name`. sipd has no defines: always `""`.
#[kemi(module = "kx")]
pub fn get_def(_msg: &mut SipMsg, name: &str) -> Xval {
    Xval::str(define(name).unwrap_or(""))
}

/// The value of the preprocessor define `name` as an integer. sipd has no defines: always 0.
#[kemi(module = "kx")]
pub fn get_defn(_msg: &mut SipMsg, name: &str) -> i32 {
    define(name).map_or(0, leading_int)
}

/// Whether the preprocessor define `name` exists. sipd has no defines: always false.
#[kemi(module = "kx")]
pub fn ifdef(_msg: &mut SipMsg, name: &str) -> bool {
    define(name).is_some()
}

/// Whether the preprocessor define `name` does not exist. sipd has no defines: always true.
#[kemi(module = "kx")]
pub fn ifndef(_msg: &mut SipMsg, name: &str) -> bool {
    define(name).is_none()
}

/// The process environment variable `name`; `""` when unset, empty-named or not UTF-8.
#[kemi(module = "kx")]
pub fn get_env(_msg: &mut SipMsg, name: &str) -> Xval {
    Xval::Str(env_var(name).unwrap_or_default())
}

/// The process environment variable `name` as an integer; 0 when unset or not a number.
#[kemi(module = "kx")]
pub fn get_envn(_msg: &mut SipMsg, name: &str) -> i32 {
    env_var(name).map_or(0, |v| leading_int(&v))
}

/// `std::env::var` without its panics (`=` or NUL in the name).
fn env_var(name: &str) -> Option<String> {
    if name.is_empty() || name.contains(['=', '\0']) {
        return None;
    }
    std::env::var(name).ok()
}

/// The current Unix time in seconds.
#[kemi(module = "kx")]
pub fn get_timestamp(_msg: &mut SipMsg) -> i32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|d| i32::try_from(d.as_secs()).ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn str2sint_like() {
        assert_eq!(leading_int("42"), 42);
        assert_eq!(leading_int(" -7x"), -7);
        assert_eq!(leading_int("x"), 0);
        assert_eq!(leading_int("99999999999"), 0);
    }
}
