//! Changing textops: sed-like substitutions (`subst`, `subst_uri`, `subst_user`, `subst_v`),
//! regex and plain-string replacements (`replace*`), `search_append` and `regex_substring`.
//!
//! Message changes start after the start line, as in Kamailio, and become header lumps
//! ([`super::rewrite`]); one whose match falls in the body fails with -1 and changes nothing.
//! `subst_uri`/`subst_user` set a new R-URI; `subst_v`/`regex_substring` write a PV.

use std::ops::Range;

use kemi_runtime::msg::LogLevel;
use kemi_runtime::{kemi, SipMsg};

use super::regex_cache::Flavor;
use super::rewrite::{header_lines, header_section};
use super::subst::Splice;
use super::{record, regex, subst_expr};
use crate::pv::spec::PvSpec;
use crate::pv::write::{self, Assign};
use crate::view;

/// Where message rewrites search: the headers only, or from the first header to the end.
#[derive(Clone, Copy)]
enum Region {
    Headers,
    AfterStartLine,
}

/// The byte range of `region`; `None` when the message has no headers.
fn region(msg: &SipMsg, region: Region) -> Option<Range<usize>> {
    let section = header_section(&header_lines(&msg.message))?;
    Some(match region {
        Region::Headers => section,
        Region::AfterStartLine => section.start..msg.message.as_bytes().len(),
    })
}

/// Move splices found in a slice starting at `base` to message offsets.
fn rebase(splices: Vec<Splice>, base: usize) -> Vec<Splice> {
    splices
        .into_iter()
        .map(|s| Splice {
            range: s.range.start + base..s.range.end + base,
            text: s.text,
        })
        .collect()
}

/// Apply the sed-like `subst` (`/regex/replacement/flags`, see the module docs of
/// `textops::subst`) to the headers and body, after the start line. Replacements are recorded as
/// header lumps. Returns 1 when something was replaced, -1 when nothing matched, the expression
/// is bad, or a match falls in the body (which sipd cannot change).
#[kemi(module = "textops")]
pub fn subst(msg: &mut SipMsg, subst: &str) -> i32 {
    let Some(expr) = subst_expr(msg, subst) else {
        return -1;
    };
    let Some(r) = region(msg, Region::AfterStartLine) else {
        return -1;
    };
    let hay = msg.message.as_bytes().get(r.clone()).unwrap_or_default();
    let splices = rebase(expr.splices(msg, hay), r.start);
    if splices.is_empty() {
        return -1;
    }
    record(msg, &splices)
}

/// Apply the sed-like `subst` to the Request-URI in effect and make the result the new R-URI
/// (`subst_uri("/^sip:([0-9]+)@.*$/sip:\\1@gw.example.com/")`). Returns 1 when it matched,
/// -1 otherwise (and for replies).
#[kemi(module = "textops")]
pub fn subst_uri(msg: &mut SipMsg, subst: &str) -> i32 {
    let Some(expr) = subst_expr(msg, subst) else {
        return -1;
    };
    let Some(ruri) = view::current_ruri(msg) else {
        return -1;
    };
    match expr.apply_str(msg, ruri) {
        Some(new) if crate::core::uri::seturi(msg, &new) => 1,
        _ => -1,
    }
}

/// Apply the sed-like `subst` to the user of the Request-URI in effect (the empty string when
/// it has none) and set the result as the new user. Returns 1 when it matched, -1 otherwise.
#[kemi(module = "textops")]
pub fn subst_user(msg: &mut SipMsg, subst: &str) -> i32 {
    let Some(expr) = subst_expr(msg, subst) else {
        return -1;
    };
    let Some(ruri) = view::current_ruri(msg) else {
        return -1;
    };
    let Some(parts) = crate::uri_parts::UriParts::parse(ruri) else {
        msg.log(LogLevel::Err, "bad R-URI");
        return -1;
    };
    let user = crate::uri_parts::UriParts::part(ruri, &parts.user);
    match expr.apply_str(msg, user) {
        Some(new) if crate::core::uri::setuser(msg, &new) => 1,
        _ => -1,
    }
}

/// Write string `value` to PV `pv`, logging when it is not a writable PV.
fn set_pv(msg: &mut SipMsg, pv: &str, value: &str) -> bool {
    match PvSpec::parse(pv) {
        Some(spec) => write::write(msg, &spec, pv, Assign::Str(value)),
        None => {
            msg.log(LogLevel::Err, &format!("invalid pv [{pv}]"));
            false
        }
    }
}

/// Apply the sed-like `subst` to the string `text` and store the result in PV `pv`
/// (`"$var(x)"`, `"$ru"`, ...). Returns 1 when it matched and was stored, -1 otherwise.
#[kemi(module = "textops")]
pub fn subst_v(msg: &mut SipMsg, text: &str, subst: &str, pv: &str) -> i32 {
    let Some(expr) = subst_expr(msg, subst) else {
        return -1;
    };
    match expr.apply_str(msg, text) {
        Some(new) if set_pv(msg, pv, &new) => 1,
        _ => -1,
    }
}

/// Replace matches of `re` in `region` with the literal `text`: the first, or all.
fn replace_re(msg: &mut SipMsg, re: &str, text: &str, reg: Region, all: bool) -> i32 {
    let Some(rx) = regex(msg, re, Flavor::TEXTOPS) else {
        return -1;
    };
    let Some(r) = region(msg, reg) else {
        return -1;
    };
    let hay = msg.message.as_bytes().get(r.clone()).unwrap_or_default();
    let mut splices = Vec::new();
    for m in rx.find_iter(hay) {
        if m.is_empty() {
            msg.log(LogLevel::Err, "matched string is empty... invalid regexp?");
            return -1;
        }
        splices.push(Splice {
            range: m.start() + r.start..m.end() + r.start,
            text: text.as_bytes().to_vec(),
        });
        if !all {
            break;
        }
    }
    if splices.is_empty() {
        return -1;
    }
    record(msg, &splices)
}

/// Replace the first match of the regex `re` (case-insensitive, per line) after the start line
/// with the literal `text`. Returns 1, or -1 when nothing matched or the match is in the body.
#[kemi(module = "textops")]
pub fn replace(msg: &mut SipMsg, re: &str, text: &str) -> i32 {
    replace_re(msg, re, text, Region::AfterStartLine, false)
}

/// Replace every match of the regex `re` after the start line with the literal `text`.
/// Returns 1, or -1 when nothing matched or a match is in the body (nothing is changed then).
#[kemi(module = "textops")]
pub fn replace_all(msg: &mut SipMsg, re: &str, text: &str) -> i32 {
    replace_re(msg, re, text, Region::AfterStartLine, true)
}

/// Replace the first match of the regex `re` in the headers with the literal `text`. Returns
/// 1, or -1 when nothing matched.
#[kemi(module = "textops")]
pub fn replace_hdrs(msg: &mut SipMsg, re: &str, text: &str) -> i32 {
    replace_re(msg, re, text, Region::Headers, false)
}

/// Replace occurrences of the plain string `needle` in `region` with `text`.
fn replace_plain(msg: &mut SipMsg, needle: &str, text: &str, mode: &str, reg: Region) -> i32 {
    if needle.is_empty() {
        return 1;
    }
    let Some(r) = region(msg, reg) else {
        return -1;
    };
    let all = matches!(mode.as_bytes().first(), Some(c) if !c.eq_ignore_ascii_case(&b'f'));
    let hay = msg.message.as_bytes().get(r.clone()).unwrap_or_default();
    let n = needle.as_bytes();
    let mut splices = Vec::new();
    let mut at = 0;
    while let Some(pos) = find_bytes(hay.get(at..).unwrap_or_default(), n) {
        let start = r.start + at + pos;
        splices.push(Splice {
            range: start..start + n.len(),
            text: text.as_bytes().to_vec(),
        });
        at += pos + n.len();
        if !all {
            break;
        }
    }
    if splices.is_empty() {
        return 1;
    }
    record(msg, &splices)
}

/// First position of `needle` in `hay`.
fn find_bytes(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Replace the plain string `needle` after the start line with `text`: the first occurrence
/// when `mode` is `"f"` (or empty), every one when it is `"a"`. Returns 1 (also when not
/// found), -1 when an occurrence is in the body.
#[kemi(module = "textops")]
pub fn replace_str(msg: &mut SipMsg, needle: &str, text: &str, mode: &str) -> i32 {
    replace_plain(msg, needle, text, mode, Region::AfterStartLine)
}

/// Replace the plain string `needle` in the headers with `text`: the first occurrence when
/// `mode` is `"f"` (or empty), every one when it is `"a"`. Returns 1 (also when not found).
#[kemi(module = "textops")]
pub fn replace_hdrs_str(msg: &mut SipMsg, needle: &str, text: &str, mode: &str) -> i32 {
    replace_plain(msg, needle, text, mode, Region::Headers)
}

/// Insert `text` right after the first match of the regex `re` after the start line. Returns 1,
/// or -1 when nothing matched or the match is in the body.
#[kemi(module = "textops")]
pub fn search_append(msg: &mut SipMsg, re: &str, text: &str) -> i32 {
    let Some(rx) = regex(msg, re, Flavor::TEXTOPS) else {
        return -1;
    };
    let Some(r) = region(msg, Region::AfterStartLine) else {
        return -1;
    };
    let hay = msg.message.as_bytes().get(r.clone()).unwrap_or_default();
    let Some(m) = rx.find(hay) else {
        return -1;
    };
    let at = r.start + m.end();
    record(
        msg,
        &[Splice {
            range: at..at,
            text: text.as_bytes().to_vec(),
        }],
    )
}

/// Match the regex `re` (case-sensitive, POSIX extended) against `text` and store group
/// `index` (0 = the whole match) in PV `pv`; `count` is how many groups the caller expects and
/// must exceed `index`. Returns 1 when stored, -2 when nothing matched, -1 for bad arguments, an
/// empty or non-participating group, or a PV that cannot be written.
#[kemi(module = "textops")]
pub fn regex_substring(
    msg: &mut SipMsg,
    text: &str,
    re: &str,
    index: i32,
    count: i32,
    pv: &str,
) -> i32 {
    if pv.is_empty() || index < 0 || index > count.saturating_sub(1) {
        msg.log(LogLevel::Err, "regex_substring: bad index, count or pv");
        return -1;
    }
    let Some(rx) = regex(msg, re, Flavor::PLAIN) else {
        return -1;
    };
    let Some(caps) = rx.captures(text.as_bytes()) else {
        return -2;
    };
    let group = usize::try_from(index)
        .ok()
        .and_then(|i| caps.get(i))
        .filter(|g| !g.is_empty())
        .and_then(|g| text.get(g.range()));
    match group {
        Some(value) => {
            let value = value.to_string();
            if set_pv(msg, pv, &value) {
                1
            } else {
                -1
            }
        }
        None => -1,
    }
}
