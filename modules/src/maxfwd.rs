//! The `maxfwd` sub-module (`KSR.maxfwd.*`): Max-Forwards processing (RFC 3261 §16.6 step 3).
//!
//! The header change is a lump like any `hdr` edit: later reads in the same route still see
//! the value as received.

use std::sync::Arc;

use kemi_runtime::msg::LogLevel;
use kemi_runtime::sip::text::Decimal;
use kemi_runtime::sip::{HeaderEdit, HeaderKind};
use kemi_runtime::{kemi, SipMsg};

use crate::setup::{SetupCtx, SetupError};

/// Kamailio's `max_limit` default: a received value above it is lowered to it when forwarding.
pub const MAX_LIMIT: u16 = 70;

/// `[modparam.maxfwd]`: `max_limit`, the highest Max-Forwards a forwarded request keeps
/// (0..255, default 70).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxfwdConfig {
    /// `max_limit`.
    pub max_limit: u16,
}

/// Setup of `maxfwd`: read `max_limit` into the services; any other parameter is refused.
pub fn setup(ctx: &mut SetupCtx<'_>) -> Result<(), SetupError> {
    let p = ctx.params("maxfwd");
    p.check_known(&["max_limit"])?;
    let limit = p.int("max_limit", i64::from(MAX_LIMIT))?;
    let max_limit = u16::try_from(limit)
        .ok()
        .filter(|l| *l <= 255)
        .ok_or_else(|| p.error("max_limit", format!("must be 0..255, got {limit}")))?;
    ctx.services.insert(Arc::new(MaxfwdConfig { max_limit }));
    Ok(())
}

/// The server's `max_limit` (70 when the module was not set up).
fn max_limit(msg: &SipMsg) -> u16 {
    msg.env
        .services
        .get::<MaxfwdConfig>()
        .map_or(MAX_LIMIT, |c| c.max_limit)
}

/// The first Max-Forwards header: its index, name as written and value.
enum Found<'a> {
    Missing,
    Unparsable,
    Value {
        index: usize,
        name: &'a str,
        value: u16,
    },
}

fn find(msg: &SipMsg) -> Found<'_> {
    let Some(h) = msg.message.first_kind(HeaderKind::MaxForwards) else {
        return Found::Missing;
    };
    let digits = h.value.trim();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Found::Unparsable;
    }
    match digits.parse() {
        Ok(value) => Found::Value {
            index: h.index,
            name: h.name,
            value,
        },
        Err(_) => Found::Unparsable,
    }
}

fn limit_ok(msg: &mut SipMsg, limit: i32) -> bool {
    let ok = (0..=255).contains(&limit);
    if !ok {
        msg.log(LogLevel::Err, &format!("invalid param value: {limit}"));
    }
    ok
}

/// Process the Max-Forwards header of a request about to be forwarded:
/// - no header: add `Max-Forwards: <limit>` and return 2;
/// - value 0: return -1 (the script should answer `483 Too Many Hops`);
/// - otherwise decrement it and return 1; a value above `max_limit` (modparam, default 70) is
///   lowered to `max_limit` instead.
///
/// Returns -2 when the value cannot be parsed, -1 when `limit` is outside 0..255.
#[kemi(module = "maxfwd")]
pub fn process_maxfwd(msg: &mut SipMsg, limit: i32) -> i32 {
    if !limit_ok(msg, limit) {
        return -1;
    }
    let edits = match find(msg) {
        Found::Missing => {
            let line = format!("Max-Forwards: {limit}\r\n");
            msg.route.edits.push(HeaderEdit::Prepend(line));
            return 2;
        }
        Found::Unparsable => None,
        Found::Value { value: 0, .. } => return -1,
        Found::Value { index, name, value } => {
            let new = (value - 1).min(max_limit(msg));
            let new = Decimal::new(u64::from(new));
            let mut line = String::with_capacity(name.len() + 8);
            for part in [name, ": ", new.as_str(), "\r\n"] {
                line.push_str(part);
            }
            Some([
                HeaderEdit::Remove(index),
                HeaderEdit::InsertBefore(index, line),
            ])
        }
    };
    match edits {
        Some(edits) => {
            msg.route.edits.extend(edits);
            1
        }
        None => {
            msg.log(LogLevel::Err, "unable to parse the max forwards number");
            -2
        }
    }
}

/// Test the Max-Forwards value against `limit`: 1 when it is lower than `limit`, -1 when it is
/// not (or `limit` is outside 0..255), -2 when the header is missing, -3 when it cannot be
/// parsed.
#[kemi(module = "maxfwd")]
pub fn is_maxfwd_lt(msg: &mut SipMsg, limit: i32) -> i32 {
    if !limit_ok(msg, limit) {
        return -1;
    }
    match find(msg) {
        Found::Missing => -2,
        Found::Unparsable => -3,
        Found::Value { value, .. } if i32::from(value) >= limit => -1,
        Found::Value { .. } => 1,
    }
}
