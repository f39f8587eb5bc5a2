//! `hdr.match_content`: compare the values of one header with a text.

use kemi_runtime::msg::LogLevel;
use kemi_runtime::{kemi, SipMsg};

use super::checked_name;

/// How `match_content` compares a header value with the given text (case-insensitive).
#[derive(Clone, Copy)]
enum MatchOp {
    Eq,
    Ne,
    StartsWith,
    Contains,
}

/// Which of the `name` headers must match.
#[derive(Clone, Copy, PartialEq, Eq)]
enum MatchWhich {
    First,
    Last,
    All,
    One,
}

fn contains_ignore_case(hay: &str, needle: &str) -> bool {
    needle.is_empty()
        || hay
            .as_bytes()
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

fn starts_with_ignore_case(hay: &str, prefix: &str) -> bool {
    hay.as_bytes()
        .get(..prefix.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(prefix.as_bytes()))
}

/// Compare the value of `name` headers with `value`. `op` is `eq`, `ne`, `sw` (starts with) or
/// `in` (contains), all case-insensitive; `which` is `f` (the first header must match), `l` (the
/// last), `a` (all) or `o` (at least one). False when there is no such header or an argument is
/// invalid (`re` is not implemented, as in Kamailio).
#[kemi(module = "hdr")]
pub fn match_content(msg: &mut SipMsg, name: &str, op: &str, value: &str, which: &str) -> bool {
    if !checked_name(msg, name) {
        return false;
    }
    let op = match op {
        _ if op.eq_ignore_ascii_case("eq") => MatchOp::Eq,
        _ if op.eq_ignore_ascii_case("ne") => MatchOp::Ne,
        _ if op.eq_ignore_ascii_case("sw") => MatchOp::StartsWith,
        _ if op.eq_ignore_ascii_case("in") => MatchOp::Contains,
        _ => {
            msg.log(
                LogLevel::Err,
                &format!("invalid or unsupported operator: {op}"),
            );
            return false;
        }
    };
    let which = match which.bytes().next().map(|b| b.to_ascii_lowercase()) {
        Some(b'f') => MatchWhich::First,
        Some(b'l') => MatchWhich::Last,
        Some(b'a') => MatchWhich::All,
        Some(b'o') => MatchWhich::One,
        _ => {
            msg.log(LogLevel::Err, &format!("invalid header index: {which}"));
            return false;
        }
    };
    let mut last = false;
    for h in msg.message.find(name) {
        let matched = match op {
            MatchOp::Eq => h.value.eq_ignore_ascii_case(value),
            MatchOp::Ne => !h.value.eq_ignore_ascii_case(value),
            MatchOp::StartsWith => starts_with_ignore_case(h.value, value),
            MatchOp::Contains => contains_ignore_case(h.value, value),
        };
        match which {
            MatchWhich::First => return matched,
            MatchWhich::All if !matched => return false,
            MatchWhich::One if matched => return true,
            _ => {}
        }
        last = matched;
    }
    // `l`: the last header decided; `a`: all matched (if any); `o`: none matched.
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_insensitive_search() {
        assert!(contains_ignore_case("Hello World", "o w"));
        assert!(!contains_ignore_case("Hi", "hello"));
        assert!(starts_with_ignore_case("Digest realm", "digest"));
        assert!(!starts_with_ignore_case("Di", "digest"));
    }
}
