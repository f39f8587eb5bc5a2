//! Transaction identities.
//!
//! - [`ServerKey`]: how a request finds its server transaction (RFC 3261 17.2.3): the top Via
//!   branch with the magic cookie, its sent-by, and the method (ACK counts as INVITE); for an
//!   RFC 2543 request without the cookie, Call-ID, From tag, CSeq number, Request-URI and the
//!   top Via. Kept as a 128-bit hash so a lookup allocates nothing.
//! - [`TxnId`] and the branch of our Vias (`z9hG4bKsd.t<id>.<branch>`), which lead a reply
//!   straight to its transaction and branch (17.1.3).

use kemi_runtime::sip::Message;

use crate::server::via::BRANCH_PREFIX;

/// The RFC 3261 magic cookie.
const MAGIC: &str = "z9hG4bK";

/// Marks our transaction branches after [`BRANCH_PREFIX`] (stateless ones are all hex).
const TXN_MARK: char = 't';

/// A server transaction key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ServerKey(u128);

/// Which transaction class a method belongs to.
fn method_class(method: &str) -> &str {
    if method == "ACK" {
        "INVITE"
    } else {
        method
    }
}

struct Fnv128(u64, u64);

impl Fnv128 {
    fn new() -> Fnv128 {
        Fnv128(0xcbf2_9ce4_8422_2325, 0x6c62_272e_07bb_0142)
    }
    fn part(&mut self, s: &str) {
        for b in s.bytes().chain(std::iter::once(0)) {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
            self.1 = (self.1 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_0193);
        }
    }
    fn finish(&self) -> u128 {
        (u128::from(self.0) << 64) | u128::from(self.1)
    }
}

impl ServerKey {
    /// The key of `req` as the method `method` (pass `"INVITE"` to find a CANCEL's INVITE).
    /// `None` when the request has no parsable top Via.
    pub fn of(req: &Message, method: &str) -> Option<ServerKey> {
        let top = req.top_via()?.ok()?;
        let mut h = Fnv128::new();
        h.part(method_class(method));
        match top.branch().filter(|b| b.starts_with(MAGIC)) {
            Some(branch) => {
                h.part(branch);
                h.part(top.host_unbracketed());
                h.part(&top.port.map_or(String::new(), |p| p.to_string()));
            }
            None => {
                h.part("2543");
                h.part(req.call_id().unwrap_or(""));
                h.part(req.from_tag().unwrap_or(""));
                let cseq = req.cseq().and_then(Result::ok).map_or(0, |c| c.number);
                h.part(&cseq.to_string());
                h.part(req.ruri().unwrap_or(""));
                h.part(top.raw);
            }
        }
        Some(ServerKey(h.finish()))
    }
}

/// A transaction's id, unique in this process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TxnId(pub u64);

/// The Via branch of branch `index` of transaction `id`.
pub fn branch_param(id: TxnId, index: usize) -> String {
    format!("{BRANCH_PREFIX}{TXN_MARK}{:016x}.{index:x}", id.0)
}

/// The transaction and branch a reply's top Via branch names, if it is one of ours.
pub fn parse_branch(branch: &str) -> Option<(TxnId, usize)> {
    let rest = branch.strip_prefix(BRANCH_PREFIX)?.strip_prefix(TXN_MARK)?;
    let (id, index) = rest.split_once('.')?;
    let id = u64::from_str_radix(id, 16).ok()?;
    let index = usize::from_str_radix(index, 16).ok()?;
    Some((TxnId(id), index))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, via: &str) -> Message {
        let text = format!(
            "{method} sip:b@h SIP/2.0\r\nVia: {via}\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\n\
             Call-ID: c\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
        );
        Message::parse(text.into_bytes().into()).unwrap()
    }

    #[test]
    fn ack_matches_invite_cancel_does_not() {
        let inv = req("INVITE", "SIP/2.0/UDP a:5060;branch=z9hG4bK1");
        let ack = req("ACK", "SIP/2.0/UDP a:5060;branch=z9hG4bK1");
        let can = req("CANCEL", "SIP/2.0/UDP a:5060;branch=z9hG4bK1");
        let k = ServerKey::of(&inv, "INVITE").unwrap();
        assert_eq!(ServerKey::of(&ack, "ACK"), Some(k));
        assert_ne!(ServerKey::of(&can, "CANCEL"), Some(k));
        assert_eq!(ServerKey::of(&can, "INVITE"), Some(k));
        let other = req("INVITE", "SIP/2.0/UDP b:5060;branch=z9hG4bK1");
        assert_ne!(ServerKey::of(&other, "INVITE"), Some(k));
        let old = req("INVITE", "SIP/2.0/UDP a:5060;branch=1");
        let old_ack = req("ACK", "SIP/2.0/UDP a:5060;branch=1");
        assert_eq!(
            ServerKey::of(&old, "INVITE"),
            ServerKey::of(&old_ack, "ACK")
        );
    }

    #[test]
    fn branches_round_trip() {
        let b = branch_param(TxnId(0xabc), 3);
        assert_eq!(parse_branch(&b), Some((TxnId(0xabc), 3)));
        assert_eq!(parse_branch("z9hG4bKsd.0123456789abcdef"), None);
        assert_eq!(parse_branch("z9hG4bKother"), None);
    }
}
