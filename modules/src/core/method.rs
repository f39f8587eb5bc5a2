//! Method tests: `is_method("A|B")`, `is_method_in("IS")` and one `is_<METHOD>` per standard
//! method. For a reply, the method is the one of its CSeq header.

use kemi_runtime::msg::LogLevel;
use kemi_runtime::{kemi, SipMsg};

use crate::view;

/// The methods Kamailio knows by id; anything else is an extension method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MethodId {
    /// INVITE
    Invite,
    /// ACK
    Ack,
    /// BYE
    Bye,
    /// CANCEL
    Cancel,
    /// REGISTER
    Register,
    /// OPTIONS
    Options,
    /// SUBSCRIBE
    Subscribe,
    /// PUBLISH
    Publish,
    /// NOTIFY
    Notify,
    /// REFER
    Refer,
    /// INFO
    Info,
    /// UPDATE
    Update,
    /// PRACK
    Prack,
    /// MESSAGE
    Message,
    /// KDMQ
    Kdmq,
    /// GET
    Get,
    /// POST
    Post,
    /// PUT
    Put,
    /// DELETE
    Delete,
}

const NAMES: [(&str, MethodId); 19] = [
    ("INVITE", MethodId::Invite),
    ("ACK", MethodId::Ack),
    ("BYE", MethodId::Bye),
    ("CANCEL", MethodId::Cancel),
    ("REGISTER", MethodId::Register),
    ("OPTIONS", MethodId::Options),
    ("SUBSCRIBE", MethodId::Subscribe),
    ("PUBLISH", MethodId::Publish),
    ("NOTIFY", MethodId::Notify),
    ("REFER", MethodId::Refer),
    ("INFO", MethodId::Info),
    ("UPDATE", MethodId::Update),
    ("PRACK", MethodId::Prack),
    ("MESSAGE", MethodId::Message),
    ("KDMQ", MethodId::Kdmq),
    ("GET", MethodId::Get),
    ("POST", MethodId::Post),
    ("PUT", MethodId::Put),
    ("DELETE", MethodId::Delete),
];

impl MethodId {
    /// The id of a method name (case-insensitive); `None` for an extension method.
    pub fn from_name(name: &str) -> Option<MethodId> {
        NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, id)| *id)
    }

    /// The id behind one `is_method_in` letter (case-insensitive); INFO has none.
    pub fn from_letter(letter: u8) -> Option<MethodId> {
        Some(match letter.to_ascii_uppercase() {
            b'I' => MethodId::Invite,
            b'A' => MethodId::Ack,
            b'B' => MethodId::Bye,
            b'C' => MethodId::Cancel,
            b'M' => MethodId::Message,
            b'R' => MethodId::Register,
            b'E' => MethodId::Prack,
            b'P' => MethodId::Publish,
            b'S' => MethodId::Subscribe,
            b'N' => MethodId::Notify,
            b'O' => MethodId::Options,
            b'F' => MethodId::Refer,
            b'G' => MethodId::Get,
            b'U' => MethodId::Update,
            b'K' => MethodId::Kdmq,
            b'D' => MethodId::Delete,
            b'T' => MethodId::Post,
            b'V' => MethodId::Put,
            _ => return None,
        })
    }
}

/// The method of the message (request line, or CSeq for a reply).
fn method_name(msg: &SipMsg) -> Option<&str> {
    view::method(&msg.message)
}

fn is(msg: &SipMsg, id: MethodId) -> bool {
    method_name(msg).and_then(MethodId::from_name) == Some(id)
}

/// True when the method is one of `methods`: a single name (any method, extensions included)
/// or a `|`-separated list of standard methods (`"INVITE|BYE"`). Case is ignored. For a reply the
/// CSeq method is tested.
#[kemi]
pub fn is_method(msg: &mut SipMsg, methods: &str) -> bool {
    if methods.is_empty() {
        return false;
    }
    let Some(name) = method_name(msg) else {
        return false;
    };
    if !methods.contains('|') {
        return name.eq_ignore_ascii_case(methods);
    }
    let mut matched = false;
    for item in methods.split('|').map(str::trim) {
        match MethodId::from_name(item) {
            Some(_) => matched |= item.eq_ignore_ascii_case(name),
            None => {
                msg.log(
                    LogLevel::Err,
                    &format!("unknown method in list [{methods}] - use only standard SIP methods"),
                );
                return false;
            }
        }
    }
    matched
}

/// True when the method is one of the methods coded by `letters`: I=INVITE, A=ACK, B=BYE,
/// C=CANCEL, M=MESSAGE, R=REGISTER, E=PRACK, P=PUBLISH, S=SUBSCRIBE, N=NOTIFY, O=OPTIONS,
/// F=REFER, G=GET, U=UPDATE, K=KDMQ, D=DELETE, T=POST, V=PUT (case ignored; INFO has no letter).
/// For a reply the CSeq method is tested.
#[kemi]
pub fn is_method_in(msg: &mut SipMsg, letters: &str) -> bool {
    let Some(id) = method_name(msg).and_then(MethodId::from_name) else {
        return false;
    };
    letters
        .bytes()
        .any(|l| MethodId::from_letter(l) == Some(id))
}

macro_rules! is_method_exports {
    ($($fn_name:ident => $id:ident, $doc:literal;)*) => {$(
        #[doc = $doc]
        #[kemi]
        #[allow(non_snake_case)]
        pub fn $fn_name(msg: &mut SipMsg) -> bool {
            is(msg, MethodId::$id)
        }
    )*};
}

is_method_exports! {
    is_INVITE => Invite, "True for an INVITE (or a reply to one).";
    is_ACK => Ack, "True for an ACK.";
    is_BYE => Bye, "True for a BYE (or a reply to one).";
    is_CANCEL => Cancel, "True for a CANCEL (or a reply to one).";
    is_REGISTER => Register, "True for a REGISTER (or a reply to one).";
    is_OPTIONS => Options, "True for an OPTIONS (or a reply to one).";
    is_SUBSCRIBE => Subscribe, "True for a SUBSCRIBE (or a reply to one).";
    is_PUBLISH => Publish, "True for a PUBLISH (or a reply to one).";
    is_NOTIFY => Notify, "True for a NOTIFY (or a reply to one).";
    is_REFER => Refer, "True for a REFER (or a reply to one).";
    is_INFO => Info, "True for an INFO (or a reply to one).";
    is_UPDATE => Update, "True for an UPDATE (or a reply to one).";
    is_PRACK => Prack, "True for a PRACK (or a reply to one).";
    is_MESSAGE => Message, "True for a MESSAGE (or a reply to one).";
    is_KDMQ => Kdmq, "True for a KDMQ (or a reply to one).";
    is_GET => Get, "True for an HTTP GET.";
    is_POST => Post, "True for an HTTP POST.";
    is_PUT => Put, "True for an HTTP PUT.";
    is_DELETE => Delete, "True for an HTTP DELETE.";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_letter_maps_to_its_method() {
        let pairs = "IABCMREPSNOFGUKDTV";
        let ids = [
            MethodId::Invite,
            MethodId::Ack,
            MethodId::Bye,
            MethodId::Cancel,
            MethodId::Message,
            MethodId::Register,
            MethodId::Prack,
            MethodId::Publish,
            MethodId::Subscribe,
            MethodId::Notify,
            MethodId::Options,
            MethodId::Refer,
            MethodId::Get,
            MethodId::Update,
            MethodId::Kdmq,
            MethodId::Delete,
            MethodId::Post,
            MethodId::Put,
        ];
        for (l, id) in pairs.bytes().zip(ids) {
            assert_eq!(MethodId::from_letter(l), Some(id));
            assert_eq!(MethodId::from_letter(l.to_ascii_lowercase()), Some(id));
        }
        assert_eq!(MethodId::from_letter(b'X'), None);
        assert_eq!(MethodId::from_name("invite"), Some(MethodId::Invite));
        assert_eq!(MethodId::from_name("FOO"), None);
    }
}
