//! Small reads of the message that several modules share, on top of `kemi_runtime::sip`: the
//! method of a request or reply, the R-URI in effect, From/To split into parts.

use kemi_runtime::sip::{HeaderKind, Message};
use kemi_runtime::SipMsg;

/// The method of a request, or the CSeq method of a reply (as written).
pub fn method(m: &Message) -> Option<&str> {
    match m.method_str() {
        Some(method) => Some(method),
        None => m.cseq()?.ok().map(|c| c.method.as_str()),
    }
}

/// The CSeq number as written.
pub fn cseq_number(m: &Message) -> Option<&str> {
    let v = m.first_kind(HeaderKind::CSeq)?.value;
    v.split(|c: char| c.is_ascii_whitespace())
        .next()
        .filter(|n| !n.is_empty())
}

/// The Request-URI in effect: the one the script set, else the received one (`$ru`). `None` for
/// replies.
pub fn current_ruri(msg: &SipMsg) -> Option<&str> {
    if !msg.message.is_request() {
        return None;
    }
    msg.route.new_ruri.as_deref().or_else(|| msg.message.ruri())
}

/// The parts of a From or To header that PVs and `is_myself_*` read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Party<'a> {
    /// The URI.
    pub uri: &'a str,
    /// The display name without quotes.
    pub display: Option<&'a str>,
    /// The `tag` parameter.
    pub tag: Option<&'a str>,
}

/// The From header, when present and well-formed.
pub fn from_hdr(m: &Message) -> Option<Party<'_>> {
    let na = m.from_hdr()?.ok()?;
    Some(Party {
        uri: na.uri,
        display: na.display_unquoted(),
        tag: na.tag(),
    })
}

/// The To header, when present and well-formed.
pub fn to_hdr(m: &Message) -> Option<Party<'_>> {
    let na = m.to_hdr()?.ok()?;
    Some(Party {
        uri: na.uri,
        display: na.display_unquoted(),
        tag: na.tag(),
    })
}
