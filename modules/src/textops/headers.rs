//! Header removal (`remove_hf*`) and per-header substitution (`subst_hf`), recorded as lumps:
//! reads in the same route still see the headers as received.

use kemi_runtime::msg::LogLevel;
use kemi_runtime::sip::HeaderEdit;
use kemi_runtime::{kemi, SipMsg};
use regex::bytes::Regex;

use super::regex_cache::Flavor;
use super::rewrite::offset_in;
use super::subst::Splice;
use super::{checked_hname, record, regex, subst_expr};

/// Remove every header whose name satisfies `pred`: 1 when some were, else -1.
fn remove_where(msg: &mut SipMsg, pred: impl Fn(&str) -> bool) -> i32 {
    let SipMsg { message, route, .. } = msg;
    let before = route.edits.len();
    route.edits.extend(
        message
            .headers()
            .filter(|h| pred(h.name))
            .map(|h| HeaderEdit::Remove(h.index)),
    );
    if route.edits.len() > before {
        1
    } else {
        -1
    }
}

/// Remove every `hname` header (case-insensitive, compact forms included). Returns 1, even when
/// there is none; -1 for a bad name.
#[kemi(module = "textops")]
pub fn remove_hf(msg: &mut SipMsg, hname: &str) -> i32 {
    crate::hdr::remove(msg, hname)
}

/// Remove every header whose name matches the regex `re` (case-insensitive, unanchored: use
/// `"^X-"` for a prefix). Returns 1 when some were removed, -1 when none or on a bad regex.
#[kemi(module = "textops")]
pub fn remove_hf_re(msg: &mut SipMsg, re: &str) -> i32 {
    let Some(rx) = regex(msg, re, Flavor::TEXTOPS) else {
        return -1;
    };
    remove_where(msg, |name| rx.is_match(name.as_bytes()))
}

/// Remove every header whose name matches the regex `re_match` but not `re_skip`. Returns 1
/// when some were removed, -1 when none or on a bad regex.
#[kemi(module = "textops")]
pub fn remove_hf_exp(msg: &mut SipMsg, re_match: &str, re_skip: &str) -> i32 {
    let (Some(m), Some(skip)) = (
        regex(msg, re_match, Flavor::TEXTOPS),
        regex(msg, re_skip, Flavor::TEXTOPS),
    ) else {
        return -1;
    };
    remove_where(msg, |name| {
        !skip.is_match(name.as_bytes()) && m.is_match(name.as_bytes())
    })
}

/// Remove the `idx`-th `hname` header: 0 is the first, -1 the last. Returns 1 when removed (or
/// when a negative `idx` reaches before the first), 2 when there is no such header, -1 for a
/// bad name.
#[kemi(module = "textops")]
pub fn remove_hf_idx(msg: &mut SipMsg, hname: &str, idx: i32) -> i32 {
    if !checked_hname(msg, hname) {
        return -1;
    }
    let SipMsg { message, route, .. } = msg;
    let count = message.find(hname).count();
    let pos = if idx >= 0 {
        usize::try_from(idx).ok()
    } else {
        let back = usize::try_from(idx.unsigned_abs()).unwrap_or(usize::MAX);
        match count.checked_sub(back) {
            Some(p) => Some(p),
            None => return 1,
        }
    };
    match pos.and_then(|p| message.find(hname).nth(p)) {
        Some(h) => {
            route.edits.push(HeaderEdit::Remove(h.index));
            1
        }
        None => 2,
    }
}

/// How `remove_hf_match` compares a header value with its expression.
enum MatchOp {
    Eq,
    Ne,
    Contains,
    Regex(std::rc::Rc<Regex>),
}

/// Remove the `hname` headers whose value matches `expr` under `op`: `"eq"` equal, `"ne"` not
/// equal, `"in"` contains, `"re"` matches the regex (case-insensitive). Returns 1 when some were
/// removed, -2 when none, -1 for a bad name, operator or regex.
#[kemi(module = "textops")]
pub fn remove_hf_match(msg: &mut SipMsg, hname: &str, op: &str, expr: &str) -> i32 {
    if !checked_hname(msg, hname) {
        return -1;
    }
    let op = match op.to_ascii_lowercase().as_str() {
        "eq" => MatchOp::Eq,
        "ne" => MatchOp::Ne,
        "in" => MatchOp::Contains,
        "re" => match regex(msg, expr, Flavor::TEXTOPS) {
            Some(rx) => MatchOp::Regex(rx),
            None => return -1,
        },
        _ => {
            msg.log(LogLevel::Err, &format!("unknown operator [{op}]"));
            return -1;
        }
    };
    let SipMsg { message, route, .. } = msg;
    let before = route.edits.len();
    for h in message.find(hname) {
        let hit = match &op {
            MatchOp::Eq => h.value == expr,
            MatchOp::Ne => h.value != expr,
            MatchOp::Contains => h.value.contains(expr),
            MatchOp::Regex(rx) => rx.is_match(h.value.as_bytes()),
        };
        if hit {
            route.edits.push(HeaderEdit::Remove(h.index));
        }
    }
    if route.edits.len() > before {
        1
    } else {
        -2
    }
}

/// Apply the sed-like `subst` (`/regex/replacement/flags`) to the values of the `hname` headers.
/// `flags`: `"f"` only the first such header, `"l"` only the last, else all of them. The
/// changed headers are replaced as lumps. Returns 1 when something was replaced, -1 otherwise.
#[kemi(module = "textops")]
pub fn subst_hf(msg: &mut SipMsg, hname: &str, subst: &str, flags: &str) -> i32 {
    if subst.is_empty() || !checked_hname(msg, hname) {
        return -1;
    }
    let Some(expr) = subst_expr(msg, subst) else {
        return -1;
    };
    let m = &msg.message;
    let values: Vec<&str> = m.find(hname).map(|h| h.value).collect();
    let chosen: &[&str] = match flags.as_bytes().first() {
        Some(b'f') => values.get(..1).unwrap_or_default(),
        Some(b'l') => values
            .len()
            .checked_sub(1)
            .map_or(&[], |i| values.get(i..).unwrap_or_default()),
        _ => &values,
    };
    let mut splices = Vec::new();
    for v in chosen {
        let base = offset_in(m, v);
        splices.extend(expr.splices(msg, v.as_bytes()).into_iter().map(|s| Splice {
            range: s.range.start + base..s.range.end + base,
            text: s.text,
        }));
    }
    if splices.is_empty() {
        return -1;
    }
    record(msg, &splices)
}
