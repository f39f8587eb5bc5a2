//! The first Contact of a message and the header edits that rewrite it (Kamailio changes the
//! Contact URI with lumps; sipd replaces the whole Contact header line, once per message).

use std::ops::Range;

use kemi_runtime::msg::LogLevel;
use kemi_runtime::sip::{HeaderEdit, HeaderKind, NameAddr};
use kemi_runtime::SipMsg;

/// Where the first Contact value sits: its header and the byte range of its URI in the
/// header's value.
#[derive(Clone, Debug)]
pub struct FirstContact {
    /// Index of the Contact header (for edits).
    pub index: usize,
    /// The header name as written.
    pub name: String,
    /// The header value as written.
    pub value: String,
    /// The URI's range in `value`.
    pub uri: Range<usize>,
    /// Whether the URI is inside `<>`.
    pub bracketed: bool,
    /// The whole first value's range in `value` (URI and header params).
    pub elem: Range<usize>,
}

impl FirstContact {
    /// The URI text.
    pub fn uri(&self) -> &str {
        self.value.get(self.uri.clone()).unwrap_or_default()
    }
}

/// Why the first Contact is not usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactError {
    /// No Contact header.
    Missing,
    /// The Contact does not parse, is `*`, or its URI has no host.
    Bad,
}

/// Byte offset of `inner` in `outer` when `inner` is a sub-slice of it.
pub fn offset_in(outer: &str, inner: &str) -> Option<usize> {
    let start = (inner.as_ptr() as usize).checked_sub(outer.as_ptr() as usize)?;
    (start + inner.len() <= outer.len()).then_some(start)
}

/// The first value of the first Contact header.
pub fn first_contact(msg: &SipMsg) -> Result<FirstContact, ContactError> {
    let m = &msg.message;
    let h = m
        .first_kind(HeaderKind::Contact)
        .ok_or(ContactError::Missing)?;
    let elem = m
        .list(HeaderKind::Contact)
        .next()
        .ok_or(ContactError::Bad)?;
    let na = NameAddr::parse(elem, "Contact").map_err(|_| ContactError::Bad)?;
    if na.is_star() {
        return Err(ContactError::Bad);
    }
    let uri = na.parsed_uri().map_err(|_| ContactError::Bad)?;
    if uri.host.is_empty() {
        return Err(ContactError::Bad);
    }
    let start = offset_in(h.value, na.uri).ok_or(ContactError::Bad)?;
    let elem_start = offset_in(h.value, elem).ok_or(ContactError::Bad)?;
    Ok(FirstContact {
        index: h.index,
        name: h.name.to_string(),
        value: h.value.to_string(),
        uri: start..start + na.uri.len(),
        bracketed: na.bracketed,
        elem: elem_start..elem_start + elem.len(),
    })
}

/// The first Contact, logging why it is not usable (as Kamailio's `get_contact_uri` does).
pub fn first_contact_logged(msg: &mut SipMsg, func: &str) -> Option<FirstContact> {
    match first_contact(msg) {
        Ok(c) => Some(c),
        Err(ContactError::Missing) => {
            msg.log(LogLevel::Debug, &format!("{func}: no Contact header"));
            None
        }
        Err(ContactError::Bad) => {
            msg.log(
                LogLevel::Err,
                &format!("{func}: failed to parse the Contact URI"),
            );
            None
        }
    }
}

/// The first Contact, or the code the alias functions return without one: 2 when there is no
/// Contact, -1 (logged) when it does not parse.
pub fn first_contact_or_code(msg: &mut SipMsg, func: &str) -> Result<FirstContact, i32> {
    match first_contact(msg) {
        Ok(c) => Ok(c),
        Err(ContactError::Missing) => Err(2),
        Err(ContactError::Bad) => {
            msg.log(
                LogLevel::Err,
                &format!("{func}: failed to get the Contact URI"),
            );
            Err(-1)
        }
    }
}

/// Whether the script already rewrote header `index` (Kamailio refuses to change the Contact
/// twice).
pub fn already_edited(msg: &SipMsg, index: usize) -> bool {
    msg.route
        .edits
        .iter()
        .any(|e| matches!(e, HeaderEdit::Remove(i) if *i == index))
}

/// Replace `range` of the Contact's value with `with`, as a header edit. False (logged) when
/// the Contact was already changed.
pub fn replace(
    msg: &mut SipMsg,
    c: &FirstContact,
    range: Range<usize>,
    with: &str,
    func: &str,
) -> bool {
    if already_edited(msg, c.index) {
        msg.log(
            LogLevel::Err,
            &format!("{func}: you can't update the Contact twice, check your script"),
        );
        return false;
    }
    let (Some(head), Some(tail)) = (c.value.get(..range.start), c.value.get(range.end..)) else {
        return false;
    };
    let line = format!("{}: {head}{with}{tail}\r\n", c.name);
    msg.route.edits.push(HeaderEdit::Remove(c.index));
    msg.route
        .edits
        .push(HeaderEdit::InsertBefore(c.index, line));
    true
}
