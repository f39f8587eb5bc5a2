//! The `kx` sub-module (`KSR.kx.*`, Kamailio's `kemix`): fast getters of message attributes
//! without going through PV names.
//!
//! Naming follows Kamailio: `get_x` gives null when the attribute is absent, `gete_x` the empty
//! string, `getw_x` the string `"<null>"`. Reads see the message as received, except the R-URI
//! (`get_ruri`, `get_ruser`, `get_rhost`) and the destination URI (`get_duri`, `get_nhuri`),
//! which reflect what the script set.
//!
//! Split by job: this file reads the SIP message, [`socket`] the transport facts (source and
//! receiving addresses, protocol), [`host`] the process (`#!define`s, environment, clock).
//! Left out because sipd has no such state yet: `get_send_sock`, `get_send_sock_name`,
//! `get_send_sock_port` (no forced send socket), `get_rcv_sock_name` (sockets have no names),
//! `get_conid` (no TCP connection table).

pub mod host;
pub mod socket;

use kemi_runtime::{kemi, SipMsg, Xval};

use crate::uri_parts::UriParts;
use crate::view;

/// What a getter gives when the attribute is absent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Absent {
    /// `get_*`: null.
    Null,
    /// `gete_*`: `""`.
    Empty,
    /// `getw_*`: `"<null>"`.
    Printed,
}

impl Absent {
    /// `value` as a string xval, or this mode's stand-in when it is `None`.
    pub(crate) fn or(self, value: Option<&str>) -> Xval {
        match (value, self) {
            (Some(v), _) => Xval::str(v),
            (None, Absent::Null) => Xval::Null,
            (None, Absent::Empty) => Xval::str(""),
            (None, Absent::Printed) => Xval::str("<null>"),
        }
    }
}

/// Which part of a URI a getter reads.
#[derive(Clone, Copy)]
enum Part {
    User,
    Host,
}

/// The user or host of `uri`; `None` when the URI does not parse or the part is empty.
fn uri_part(uri: Option<&str>, part: Part) -> Option<&str> {
    let uri = uri?;
    let parts = UriParts::parse(uri)?;
    let range = match part {
        Part::User => &parts.user,
        Part::Host => &parts.host,
    };
    Some(UriParts::part(uri, range)).filter(|s| !s.is_empty())
}

fn ruri_part(msg: &SipMsg, part: Part, absent: Absent) -> Xval {
    absent.or(uri_part(view::current_ruri(msg), part))
}

fn from_part(msg: &SipMsg, part: Part, absent: Absent) -> Xval {
    absent.or(uri_part(view::from_hdr(&msg.message).map(|f| f.uri), part))
}

fn to_part(msg: &SipMsg, part: Part, absent: Absent) -> Xval {
    absent.or(uri_part(view::to_hdr(&msg.message).map(|t| t.uri), part))
}

/// The Request-URI in effect (`$ru`): the one the script set, else the received one. Null for
/// replies.
#[kemi(module = "kx")]
pub fn get_ruri(msg: &mut SipMsg) -> Xval {
    Absent::Null.or(view::current_ruri(msg))
}

/// The Request-URI as received (`$ou`). Null for replies.
#[kemi(module = "kx")]
pub fn get_ouri(msg: &mut SipMsg) -> Xval {
    Absent::Null.or(msg.message.ruri())
}

/// The user of the Request-URI in effect (`$rU`); null when there is none.
#[kemi(module = "kx")]
pub fn get_ruser(msg: &mut SipMsg) -> Xval {
    ruri_part(msg, Part::User, Absent::Null)
}

/// The user of the Request-URI in effect; `"<null>"` when there is none.
#[kemi(module = "kx")]
pub fn getw_ruser(msg: &mut SipMsg) -> Xval {
    ruri_part(msg, Part::User, Absent::Printed)
}

/// The user of the Request-URI in effect; `""` when there is none.
#[kemi(module = "kx")]
pub fn gete_ruser(msg: &mut SipMsg) -> Xval {
    ruri_part(msg, Part::User, Absent::Empty)
}

/// The host of the Request-URI in effect (`$rd`); null when there is none.
#[kemi(module = "kx")]
pub fn get_rhost(msg: &mut SipMsg) -> Xval {
    ruri_part(msg, Part::Host, Absent::Null)
}

/// The host of the Request-URI in effect; `"<null>"` when there is none.
#[kemi(module = "kx")]
pub fn getw_rhost(msg: &mut SipMsg) -> Xval {
    ruri_part(msg, Part::Host, Absent::Printed)
}

/// The host of the Request-URI in effect; `""` when there is none.
#[kemi(module = "kx")]
pub fn gete_rhost(msg: &mut SipMsg) -> Xval {
    ruri_part(msg, Part::Host, Absent::Empty)
}

/// The From URI (`$fu`); null when From is missing or malformed.
#[kemi(module = "kx")]
pub fn get_furi(msg: &mut SipMsg) -> Xval {
    Absent::Null.or(view::from_hdr(&msg.message).map(|f| f.uri))
}

/// The user of the From URI (`$fU`); null when there is none.
#[kemi(module = "kx")]
pub fn get_fuser(msg: &mut SipMsg) -> Xval {
    from_part(msg, Part::User, Absent::Null)
}

/// The user of the From URI; `"<null>"` when there is none.
#[kemi(module = "kx")]
pub fn getw_fuser(msg: &mut SipMsg) -> Xval {
    from_part(msg, Part::User, Absent::Printed)
}

/// The user of the From URI; `""` when there is none.
#[kemi(module = "kx")]
pub fn gete_fuser(msg: &mut SipMsg) -> Xval {
    from_part(msg, Part::User, Absent::Empty)
}

/// The host of the From URI (`$fd`); null when there is none.
#[kemi(module = "kx")]
pub fn get_fhost(msg: &mut SipMsg) -> Xval {
    from_part(msg, Part::Host, Absent::Null)
}

/// The host of the From URI; `"<null>"` when there is none.
#[kemi(module = "kx")]
pub fn getw_fhost(msg: &mut SipMsg) -> Xval {
    from_part(msg, Part::Host, Absent::Printed)
}

/// The host of the From URI; `""` when there is none.
#[kemi(module = "kx")]
pub fn gete_fhost(msg: &mut SipMsg) -> Xval {
    from_part(msg, Part::Host, Absent::Empty)
}

/// The To URI (`$tu`); null when To is missing or malformed.
#[kemi(module = "kx")]
pub fn get_turi(msg: &mut SipMsg) -> Xval {
    Absent::Null.or(view::to_hdr(&msg.message).map(|t| t.uri))
}

/// The user of the To URI (`$tU`); null when there is none.
#[kemi(module = "kx")]
pub fn get_tuser(msg: &mut SipMsg) -> Xval {
    to_part(msg, Part::User, Absent::Null)
}

/// The user of the To URI; `""` when there is none.
#[kemi(module = "kx")]
pub fn gete_tuser(msg: &mut SipMsg) -> Xval {
    to_part(msg, Part::User, Absent::Empty)
}

/// The user of the To URI; `"<null>"` when there is none.
#[kemi(module = "kx")]
pub fn getw_tuser(msg: &mut SipMsg) -> Xval {
    to_part(msg, Part::User, Absent::Printed)
}

/// The host of the To URI (`$td`); null when there is none.
#[kemi(module = "kx")]
pub fn get_thost(msg: &mut SipMsg) -> Xval {
    to_part(msg, Part::Host, Absent::Null)
}

/// The host of the To URI; `""` when there is none.
#[kemi(module = "kx")]
pub fn gete_thost(msg: &mut SipMsg) -> Xval {
    to_part(msg, Part::Host, Absent::Empty)
}

/// The host of the To URI; `"<null>"` when there is none.
#[kemi(module = "kx")]
pub fn getw_thost(msg: &mut SipMsg) -> Xval {
    to_part(msg, Part::Host, Absent::Printed)
}

/// The destination URI (`$du`); null when not set.
#[kemi(module = "kx")]
pub fn get_duri(msg: &mut SipMsg) -> Xval {
    Absent::Null.or(msg.route.dst_uri.as_deref())
}

/// The destination URI; `""` when not set.
#[kemi(module = "kx")]
pub fn gete_duri(msg: &mut SipMsg) -> Xval {
    Absent::Empty.or(msg.route.dst_uri.as_deref())
}

/// The destination URI; `"<null>"` when not set.
#[kemi(module = "kx")]
pub fn getw_duri(msg: &mut SipMsg) -> Xval {
    Absent::Printed.or(msg.route.dst_uri.as_deref())
}

/// The next hop: the destination URI when set, else the Request-URI in effect.
#[kemi(module = "kx")]
pub fn get_nhuri(msg: &mut SipMsg) -> Xval {
    match msg.route.dst_uri.as_deref() {
        Some(du) if !du.is_empty() => Xval::str(du),
        _ => Absent::Null.or(view::current_ruri(msg)),
    }
}

/// The URI of the first Contact, or `None` for no Contact, a malformed one, or `*`.
fn contact_uri(msg: &SipMsg) -> Option<&str> {
    let first = msg.message.contacts().next()?.ok()?;
    Some(first.uri).filter(|u| !u.is_empty() && *u != "*")
}

/// The URI of the first Contact; null when there is none or the Contact is `*`.
#[kemi(module = "kx")]
pub fn get_cturi(msg: &mut SipMsg) -> Xval {
    Absent::Null.or(contact_uri(msg))
}

/// The URI of the first Contact; `""` when there is none or the Contact is `*`.
#[kemi(module = "kx")]
pub fn gete_cturi(msg: &mut SipMsg) -> Xval {
    Absent::Empty.or(contact_uri(msg))
}

/// The URI of the first Contact; `"<null>"` when there is none or the Contact is `*`.
#[kemi(module = "kx")]
pub fn getw_cturi(msg: &mut SipMsg) -> Xval {
    Absent::Printed.or(contact_uri(msg))
}

/// The User-Agent header value (`$ua`); null when absent.
#[kemi(module = "kx")]
pub fn get_ua(msg: &mut SipMsg) -> Xval {
    Absent::Null.or(msg.message.user_agent())
}

/// The User-Agent header value; `""` when absent.
#[kemi(module = "kx")]
pub fn gete_ua(msg: &mut SipMsg) -> Xval {
    Absent::Empty.or(msg.message.user_agent())
}

/// The User-Agent header value; `"<null>"` when absent.
#[kemi(module = "kx")]
pub fn getw_ua(msg: &mut SipMsg) -> Xval {
    Absent::Printed.or(msg.message.user_agent())
}

/// The user of the `username` in the Proxy-Authorization (preferred) or Authorization
/// header: the part before `@` when the username has a domain. `None` for ACK and CANCEL.
fn auth_user(msg: &SipMsg) -> Option<&str> {
    let m = &msg.message;
    if matches!(m.method_str(), Some("ACK" | "CANCEL")) {
        return None;
    }
    let hdr = m
        .first("Proxy-Authorization")
        .or_else(|| m.first("Authorization"))?;
    let username = digest_param(hdr.value, "username")?;
    Some(username.split('@').next().unwrap_or(username))
}

/// The value of parameter `name` in a `Digest a="b", c=d` credentials value, unquoted.
fn digest_param<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    let (scheme, params) = value.trim_start().split_once([' ', '\t'])?;
    if !scheme.eq_ignore_ascii_case("Digest") {
        return None;
    }
    params.split(',').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        if !k.trim().eq_ignore_ascii_case(name) {
            return None;
        }
        let v = v.trim();
        Some(
            v.strip_prefix('"')
                .and_then(|q| q.strip_suffix('"'))
                .unwrap_or(v),
        )
    })
}

/// The user from the credentials (`$au`): the `username` of the Proxy-Authorization (else
/// Authorization) header, without a `@domain`. Null when there are no credentials.
#[kemi(module = "kx")]
pub fn get_au(msg: &mut SipMsg) -> Xval {
    Absent::Null.or(auth_user(msg))
}

/// Like `get_au`, but `"<null>"` when there are no credentials.
#[kemi(module = "kx")]
pub fn getw_au(msg: &mut SipMsg) -> Xval {
    Absent::Printed.or(auth_user(msg))
}

/// Like `get_au`, but `""` when there are no credentials.
#[kemi(module = "kx")]
pub fn gete_au(msg: &mut SipMsg) -> Xval {
    Absent::Empty.or(auth_user(msg))
}

/// The method of a request, or the CSeq method of a reply (`$rm`); null when unknown.
#[kemi(module = "kx")]
pub fn get_method(msg: &mut SipMsg) -> Xval {
    Absent::Null.or(view::method(&msg.message))
}

/// The status code of a reply (`$rs`); -1 for a request.
#[kemi(module = "kx")]
pub fn get_status(msg: &mut SipMsg) -> i32 {
    msg.message.status().map_or(-1, i32::from)
}

/// The status code of a reply as a string (`"180"`); null for a request.
#[kemi(module = "kx")]
pub fn gets_status(msg: &mut SipMsg) -> Xval {
    match msg.message.status() {
        Some(code) => Xval::Str(code.to_string()),
        None => Xval::Null,
    }
}

/// The body (lossy UTF-8), or `None` when empty.
fn body(msg: &SipMsg) -> Option<String> {
    let b = msg.message.body();
    (!b.is_empty()).then(|| String::from_utf8_lossy(b).into_owned())
}

/// The message body (`$rb`); null when there is none. Invalid UTF-8 is replaced by U+FFFD.
#[kemi(module = "kx")]
pub fn get_body(msg: &mut SipMsg) -> Xval {
    body(msg).map_or(Xval::Null, Xval::Str)
}

/// The message body; `"<null>"` when there is none.
#[kemi(module = "kx")]
pub fn getw_body(msg: &mut SipMsg) -> Xval {
    Xval::Str(body(msg).unwrap_or_else(|| "<null>".into()))
}

/// The message body; `""` when there is none.
#[kemi(module = "kx")]
pub fn gete_body(msg: &mut SipMsg) -> Xval {
    Xval::Str(body(msg).unwrap_or_default())
}

/// The length of the message body in bytes; 0 when there is none.
#[kemi(module = "kx")]
pub fn get_bodylen(msg: &mut SipMsg) -> i32 {
    i32::try_from(msg.message.body().len()).unwrap_or(i32::MAX)
}

/// The Call-ID (`$ci`); `""` when absent.
#[kemi(module = "kx")]
pub fn get_callid(msg: &mut SipMsg) -> Xval {
    Absent::Empty.or(msg.message.call_id())
}

/// The message as received, whole (lossy UTF-8).
#[kemi(module = "kx")]
pub fn get_msgbuf(msg: &mut SipMsg) -> Xval {
    Xval::Str(String::from_utf8_lossy(msg.message.as_bytes()).into_owned())
}

/// The length of the message as received, in bytes (`$ml`).
#[kemi(module = "kx")]
pub fn get_msglen(msg: &mut SipMsg) -> i32 {
    i32::try_from(msg.message.as_bytes().len()).unwrap_or(i32::MAX)
}

/// 1 for a request, 2 for a reply.
#[kemi(module = "kx")]
pub fn get_msgtype(msg: &mut SipMsg) -> i32 {
    if msg.message.is_request() {
        1
    } else {
        2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_username() {
        let v = r#"Digest username="bob@example.com", realm="example.com", nonce="a,b""#;
        assert_eq!(digest_param(v, "username"), Some("bob@example.com"));
        assert_eq!(digest_param(v, "realm"), Some("example.com"));
        assert_eq!(digest_param("Basic Ym9i", "username"), None);
        assert_eq!(digest_param("Digest", "username"), None);
    }
}
