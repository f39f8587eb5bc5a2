//! The `siputils` sub-module (`KSR.siputils.*`): tests and small edits over one message.
//!
//! This file holds the message tests (`has_totag`, `is_request`, `is_first_hop`, ...) and the
//! string classifiers (`is_numeric`, `is_tel_number`, ...); [`uri_params`] holds the R-URI
//! parameter functions and `is_gruu`, [`compare`] the URI and header-name comparisons.
//!
//! Left out: what needs authentication state (`is_user` reads the credentials an `auth`
//! module authorized), Contact encoding (`encode_contact`, `decode_contact*`,
//! `contact_param_*`), `options_reply` (needs the module's Accept/Allow parameters),
//! `hdr_date_check` and `is_first_hop_mode`.
//!
//! Functions return Kamailio's ints: 1 (true), negative (false or error).

pub mod compare;
pub mod uri_params;

use kemi_runtime::msg::LogLevel;
use kemi_runtime::sip::{HeaderKind, Uri};
use kemi_runtime::{kemi, SipMsg};

/// 1 when the To header has a non-empty tag (the request is inside a dialog), else -1 (also
/// when To is missing or does not parse).
#[kemi(module = "siputils")]
pub fn has_totag(msg: &mut SipMsg) -> i32 {
    if msg.message.to_tag().is_some_and(|t| !t.is_empty()) {
        1
    } else {
        -1
    }
}

/// 1 when the message is a request, else -1.
#[kemi(module = "siputils")]
pub fn is_request(msg: &mut SipMsg) -> i32 {
    if msg.message.is_request() {
        1
    } else {
        -1
    }
}

/// 1 when the message is a reply, else -1.
#[kemi(module = "siputils")]
pub fn is_reply(msg: &mut SipMsg) -> i32 {
    if msg.message.is_response() {
        1
    } else {
        -1
    }
}

/// 1: every message sipd routes is SIP.
#[kemi(module = "siputils")]
pub fn is_sip(msg: &mut SipMsg) -> i32 {
    let _ = msg;
    1
}

/// -1: sipd does not route HTTP messages, so no message is HTTP.
#[kemi(module = "siputils")]
pub fn is_http(msg: &mut SipMsg) -> i32 {
    let _ = msg;
    -1
}

/// Whether the message comes from the first hop. A request: 1 when it has a single Via value
/// (no parseable second Via). A reply: 1 when it has no Record-Route, or when the top
/// Record-Route URI is an IP address of this proxy and the reply did not come from that very
/// address (a loop); -1 otherwise.
#[kemi(module = "siputils")]
pub fn is_first_hop(msg: &mut SipMsg) -> i32 {
    if msg.message.is_request() {
        return match msg.message.vias().nth(1) {
            Some(Ok(_)) => -1,
            _ => 1,
        };
    }
    let Some(top) = msg.message.list(HeaderKind::RecordRoute).next() else {
        return 1;
    };
    let Some((uri, ip, port)) = rr_target(top) else {
        return -1;
    };
    if !crate::core::myself::is_myself(msg, &uri) {
        return -1;
    }
    let from_there = msg.rcv.src.ip() == ip && msg.rcv.src.port() == port.unwrap_or(5060);
    if from_there {
        -1
    } else {
        1
    }
}

/// The top Record-Route URI, its host as an IP address, and its port.
fn rr_target(value: &str) -> Option<(String, std::net::IpAddr, Option<u16>)> {
    let na = kemi_runtime::sip::NameAddr::parse(value, "Record-Route").ok()?;
    let uri = na.parsed_uri().ok()?;
    let ip = uri.host_unbracketed().parse().ok()?;
    Some((na.uri.to_string(), ip, uri.port))
}

/// 1 when `uri` parses as a SIP, SIPS or tel URI, else -1.
#[kemi(module = "siputils")]
pub fn is_uri(msg: &mut SipMsg, uri: &str) -> i32 {
    let _ = msg;
    match Uri::parse(uri) {
        Ok(u) if compare::routable(&u) => 1,
        _ => -1,
    }
}

/// 1 when `tval` is a telephone number: digits, optionally after a `+` and a non-zero digit;
/// -2 otherwise (also for `""`).
#[kemi(module = "siputils")]
pub fn is_tel_number(msg: &mut SipMsg, tval: &str) -> i32 {
    let _ = msg;
    let digits = match tval.strip_prefix('+') {
        Some(rest) if rest.starts_with(|c: char| matches!(c, '1'..='9')) => rest,
        Some(_) => return -2,
        None if tval.is_empty() => return -2,
        None => tval,
    };
    if digits.bytes().all(|c| c.is_ascii_digit()) {
        1
    } else {
        -2
    }
}

/// 1 when `tval` is made of decimal digits only, -2 otherwise (also for `""`).
#[kemi(module = "siputils")]
pub fn is_numeric(msg: &mut SipMsg, tval: &str) -> i32 {
    let _ = msg;
    if !tval.is_empty() && tval.bytes().all(|c| c.is_ascii_digit()) {
        1
    } else {
        -2
    }
}

/// 1 when `tval` is made of ASCII letters and digits only; -2 for `""`, -3 otherwise.
#[kemi(module = "siputils")]
pub fn is_alphanum(msg: &mut SipMsg, tval: &str) -> i32 {
    is_alphanumex(msg, tval, "")
}

/// 1 when every character of `tval` is an ASCII letter, a digit or one of the characters of
/// `eset`; -2 for `""`, -3 otherwise.
#[kemi(module = "siputils")]
pub fn is_alphanumex(msg: &mut SipMsg, tval: &str, eset: &str) -> i32 {
    let _ = msg;
    if tval.is_empty() {
        return -2;
    }
    if tval
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || eset.contains(c))
    {
        1
    } else {
        -3
    }
}

/// Parse every header sipd gives structure to (each Via, From, To, CSeq, Contact, Route and
/// Record-Route value): 1 when all parse, -1 (logged) when one does not.
#[kemi(module = "siputils")]
pub fn sip_parse_headers(msg: &mut SipMsg) -> i32 {
    let m = &msg.message;
    let bad = if m.vias().any(|v| v.is_err()) {
        Some("Via")
    } else if m.from_hdr().is_some_and(|f| f.is_err()) {
        Some("From")
    } else if m.to_hdr().is_some_and(|t| t.is_err()) {
        Some("To")
    } else if m.cseq().is_some_and(|c| c.is_err()) {
        Some("CSeq")
    } else if m.contacts().any(|c| c.is_err()) {
        Some("Contact")
    } else {
        [HeaderKind::Route, HeaderKind::RecordRoute]
            .into_iter()
            .find(|k| {
                m.list(*k)
                    .any(|v| kemi_runtime::sip::NameAddr::parse(v, k.name()).is_err())
            })
            .map(HeaderKind::name)
    };
    match bad {
        None => 1,
        Some(name) => {
            msg.log(LogLevel::Err, &format!("failed to parse the {name} header"));
            -1
        }
    }
}
