//! R-URI parameter tests and edits: `uri_param`, `uri_param_value`, `uri_param_any`,
//! `uri_param_rm`, `add_uri_param`, and `is_gruu`. They work on the R-URI in effect (`$ru`); the
//! edits replace it as `seturi` does. Parameter names compare case-insensitively, values
//! case-sensitively.

use kemi_runtime::msg::LogLevel;
use kemi_runtime::sip::{Param, Uri};
use kemi_runtime::{kemi, SipMsg};

use crate::core::uri::set_ruri;
use crate::view;

/// Why an R-URI parameter function cannot work.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
enum RuriError {
    /// The message is a reply.
    #[error("no r-uri (the message is a reply)")]
    Missing,
    /// The R-URI does not parse.
    #[error("r-uri does not parse")]
    Unparsable,
}

/// The R-URI in effect, parsed.
fn ruri(msg: &SipMsg) -> Result<Uri<'_>, RuriError> {
    let text = view::current_ruri(msg).ok_or(RuriError::Missing)?;
    Uri::parse(text).map_err(|_| RuriError::Unparsable)
}

/// Log the error and give -1.
fn fail(msg: &mut SipMsg, e: RuriError) -> i32 {
    msg.log(LogLevel::Err, &format!("siputils: {e}"));
    -1
}

/// Look parameter `name` up in the R-URI; -1 (logged) when the R-URI is missing or bad.
fn with_param(msg: &mut SipMsg, name: &str, test: impl Fn(Option<Param<'_>>) -> bool) -> i32 {
    let verdict = ruri(msg).map(|u| test(u.params.find(name)));
    match verdict {
        Ok(true) => 1,
        Ok(false) => -1,
        Err(e) => fail(msg, e),
    }
}

/// 1 when the R-URI has parameter `param` without a value (`;lr`), else -1.
#[kemi(module = "siputils")]
pub fn uri_param(msg: &mut SipMsg, param: &str) -> i32 {
    with_param(msg, param, |p| {
        p.is_some_and(|p| p.value.is_none_or(str::is_empty))
    })
}

/// 1 when the R-URI has parameter `param` equal to `value` (`;transport=tcp`), else -1.
#[kemi(module = "siputils")]
pub fn uri_param_value(msg: &mut SipMsg, param: &str, value: &str) -> i32 {
    with_param(msg, param, |p| {
        p.is_some_and(|p| p.value.unwrap_or("") == value)
    })
}

/// 1 when the R-URI has parameter `param`, with or without a value, else -1.
#[kemi(module = "siputils")]
pub fn uri_param_any(msg: &mut SipMsg, param: &str) -> i32 {
    with_param(msg, param, |p| p.is_some())
}

/// Byte offset of `part` inside `whole`, when `part` borrows from it.
fn offset_in(whole: &str, part: &str) -> Option<usize> {
    let at = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    (at + part.len() <= whole.len()).then_some(at)
}

/// `uri` without the first parameter named `name` (and its `;`), or `None` when it has none.
fn without_param(uri: &Uri<'_>, name: &str) -> Option<String> {
    let p = uri.params.find(name)?;
    let raw = uri.raw;
    let start = offset_in(raw, p.name)?;
    let end = match p.value {
        Some(v) => offset_in(raw, v)? + v.len(),
        None => start + p.name.len(),
    };
    let semi = raw.get(..start)?.rfind(';')?;
    Some([raw.get(..semi)?, raw.get(end..)?].concat())
}

/// Remove parameter `param` from the R-URI. Returns 1 (also when it is not there), -1 when the
/// R-URI is missing or does not parse.
#[kemi(module = "siputils")]
pub fn uri_param_rm(msg: &mut SipMsg, param: &str) -> i32 {
    let new = match ruri(msg) {
        Ok(u) => without_param(&u, param),
        Err(e) => return fail(msg, e),
    };
    match new {
        Some(uri) if !set_ruri(msg, &uri) => -1,
        _ => 1,
    }
}

/// Add `;param` (`"name"` or `"name=value"`) to the R-URI, before its headers if it has any.
/// Returns 1 (also for `""`, which adds nothing), -1 when the R-URI is missing or does not
/// parse.
#[kemi(module = "siputils")]
pub fn add_uri_param(msg: &mut SipMsg, param: &str) -> i32 {
    if param.is_empty() {
        return 1;
    }
    let new = match ruri(msg) {
        Ok(u) => match u.headers {
            Some(h) => {
                let before = u.raw.len().saturating_sub(h.len() + 1);
                format!("{};{param}?{h}", u.raw.get(..before).unwrap_or(u.raw))
            }
            None => format!("{};{param}", u.raw),
        },
        Err(e) => return fail(msg, e),
    };
    if set_ruri(msg, &new) {
        1
    } else {
        -1
    }
}

/// Whether the R-URI is a GRUU (RFC 5627): 1 when it has a `gr` parameter with a value, 2 when
/// `gr` has no value, -1 when there is none or the R-URI is missing or bad.
#[kemi(module = "siputils")]
pub fn is_gruu(msg: &mut SipMsg) -> i32 {
    let gr = match ruri(msg) {
        Ok(u) => u
            .params
            .find("gr")
            .map(|p| p.value.is_some_and(|v| !v.is_empty())),
        Err(e) => return fail(msg, e),
    };
    match gr {
        Some(true) => 1,
        Some(false) => 2,
        None => -1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_one_param_and_keeps_the_rest() {
        let rm = |uri: &str, name: &str| without_param(&Uri::parse(uri).unwrap(), name);
        assert_eq!(rm("sip:a@b;lr;x=1", "LR").as_deref(), Some("sip:a@b;x=1"));
        assert_eq!(
            rm("sip:a@b;lr;x=1?h=v", "x").as_deref(),
            Some("sip:a@b;lr?h=v")
        );
        assert_eq!(rm("sip:a@b;lr", "x"), None);
    }
}
