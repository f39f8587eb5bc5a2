//! The `textops` sub-module (`KSR.textops.*`): regex searches over the message, header removal
//! and rewriting, sed-like substitutions, and string tests.
//!
//! - [`search`]: `search`, `search_body`, `search_hf`, `search_str`, `is_present_hf*`.
//! - [`headers`]: `remove_hf*`, `subst_hf`.
//! - [`replace`]: `subst`, `subst_uri`, `subst_user`, `subst_v`, `replace*` on headers,
//!   `search_append`, `regex_substring`.
//! - [`body`]: `has_body`, `has_body_type`, `is_privacy`.
//! - [`strings`]: `cmp_str`, `starts_with`, `in_list`, `str_find`, ...
//!
//! Regexes follow Kamailio: case-insensitive and line-oriented unless said otherwise, compiled
//! once per worker ([`regex_cache`]). Reads see the message as received. Changes are header
//! lumps ([`rewrite`]) or a new R-URI. sipd cannot change a message body (`RouteState` has no
//! body replacement), so the body-changing functions (`subst_body`, `replace_body*`,
//! `search_append_body`, `set_body*`, `set_reply_body*`, `filter_body`, the multipart
//! functions, `append_body_part*`, `remove_body_part`) are not exported, and `subst`/`replace*`
//! whose match falls in the body fail with -1 without changing anything.

pub mod body;
pub mod headers;
pub mod regex_cache;
pub mod replace;
pub mod rewrite;
pub mod search;
pub mod strings;
pub mod subst;

use std::rc::Rc;

use kemi_runtime::msg::LogLevel;
use kemi_runtime::SipMsg;
use regex::bytes::Regex;

use regex_cache::Flavor;

/// True when `name` can be a header name (an RFC 3261 token).
fn valid_hname(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
}

/// Check a header name argument, logging when it is unusable.
fn checked_hname(msg: &mut SipMsg, name: &str) -> bool {
    let ok = valid_hname(name);
    if !ok {
        msg.log(LogLevel::Err, &format!("invalid header name [{name}]"));
    }
    ok
}

/// Compile `pattern` (cached), logging when it does not compile.
fn regex(msg: &mut SipMsg, pattern: &str, flavor: Flavor) -> Option<Rc<Regex>> {
    match regex_cache::compile(pattern, flavor) {
        Ok(re) => Some(re),
        Err(e) => {
            msg.log(
                LogLevel::Err,
                &format!("failed to compile regex [{pattern}]: {e}"),
            );
            None
        }
    }
}

/// Parse a subst expression (cached), logging when it does not parse.
fn subst_expr(msg: &mut SipMsg, expr: &str) -> Option<Rc<subst::SubstExpr>> {
    match subst::SubstExpr::cached(expr) {
        Ok(e) => Some(e),
        Err(e) => {
            msg.log(
                LogLevel::Err,
                &format!("cannot compile subst expression [{expr}]: {e}"),
            );
            None
        }
    }
}

/// Record replacements as header lumps: 1, or -1 (logged) when they fall outside the headers.
fn record(msg: &mut SipMsg, splices: &[subst::Splice]) -> i32 {
    match rewrite::apply(msg, splices) {
        Ok(()) => 1,
        Err(e) => {
            msg.log(LogLevel::Err, &format!("textops: {e}"));
            -1
        }
    }
}
