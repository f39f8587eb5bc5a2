//! Transaction identities.
//!
//! - [`ServerKey`]: how a request finds its server transaction (RFC 3261 17.2.3): the top Via
//!   branch with the magic cookie, its sent-by, and the method (ACK counts as INVITE); for an
//!   RFC 2543 request without the cookie, Call-ID, From tag, CSeq number, Request-URI and the
//!   top Via. Kept as the exact bytes of those parts (never a digest: two requests share a
//!   transaction only when the parts are equal), inline up to [`INLINE`] bytes so building one
//!   for a lookup allocates nothing; the table hashes them with a per-process random seed.
//! - [`TxnId`] and the branch of our Vias (`z9hG4bKsd.t<id>.<branch>`), which lead a reply
//!   straight to its transaction and branch (17.1.3).

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use kemi_runtime::sip::uri::strip_brackets;
use kemi_runtime::sip::Message;

use crate::server::via::BRANCH_PREFIX;

/// The RFC 3261 magic cookie.
const MAGIC: &str = "z9hG4bK";

/// Marks our transaction branches after [`BRANCH_PREFIX`] (stateless ones are all hex).
const TXN_MARK: char = 't';

/// Key bytes kept inline; longer keys (a very long branch or host, RFC 2543 keys) go to the
/// heap.
pub const INLINE: usize = 94;

/// A server transaction key: a kind byte, then each part as a LEB128 length and its bytes
/// (unambiguous whatever bytes the parts hold).
#[derive(Clone, Debug)]
pub struct ServerKey(Repr);

#[derive(Clone, Debug)]
enum Repr {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Arc<[u8]>),
}

/// Which transaction class a method belongs to.
fn method_class(method: &str) -> &str {
    if method == "ACK" {
        "INVITE"
    } else {
        method
    }
}

/// Writes key parts inline, moving to the heap once they do not fit.
struct KeyWriter {
    len: usize,
    bytes: [u8; INLINE],
    heap: Option<Vec<u8>>,
}

impl KeyWriter {
    fn new(kind: u8) -> KeyWriter {
        let mut w = KeyWriter {
            len: 0,
            bytes: [0; INLINE],
            heap: None,
        };
        w.raw(&[kind]);
        w
    }

    fn raw(&mut self, b: &[u8]) {
        if let Some(h) = self.heap.as_mut() {
            h.extend_from_slice(b);
            return;
        }
        match self.bytes.get_mut(self.len..self.len + b.len()) {
            Some(dst) => {
                dst.copy_from_slice(b);
                self.len += b.len();
            }
            None => {
                let mut h = Vec::with_capacity(self.len + b.len() + 64);
                h.extend_from_slice(&self.bytes[..self.len]);
                h.extend_from_slice(b);
                self.heap = Some(h);
            }
        }
    }

    /// One part: its length (LEB128), then its bytes.
    fn part(&mut self, b: &[u8]) {
        let mut n = b.len();
        let mut len = [0u8; 10];
        let mut i = 0;
        loop {
            let low = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                len[i] = low;
                i += 1;
                break;
            }
            len[i] = low | 0x80;
            i += 1;
        }
        self.raw(&len[..i]);
        self.raw(b);
    }

    fn finish(self) -> ServerKey {
        ServerKey(match self.heap {
            Some(h) => Repr::Heap(h.into()),
            None => Repr::Inline {
                len: self.len as u8,
                bytes: self.bytes,
            },
        })
    }
}

impl ServerKey {
    /// The key of `req` as the method `method` (pass `"INVITE"` to find a CANCEL's INVITE).
    /// `None` when the request has no parsable top Via.
    pub fn of(req: &Message, method: &str) -> Option<ServerKey> {
        let (host, port) = req.top_via_sent_by()?;
        let class = method_class(method).as_bytes();
        match req.top_via_branch().filter(|b| b.starts_with(MAGIC)) {
            Some(branch) => {
                let mut w = KeyWriter::new(1);
                w.part(class);
                w.part(req.wire(branch));
                w.part(req.wire(strip_brackets(host)));
                match port {
                    Some(port) => w.part(&port.to_be_bytes()),
                    None => w.part(&[]),
                }
                Some(w.finish())
            }
            None => {
                let mut w = KeyWriter::new(2);
                w.part(class);
                w.part(req.wire(req.call_id().unwrap_or("")));
                w.part(req.wire(req.from_tag().unwrap_or("")));
                let cseq = req.cseq().and_then(Result::ok).map_or(0, |c| c.number);
                w.part(&cseq.to_be_bytes());
                w.part(req.wire(req.ruri().unwrap_or("")));
                w.part(req.wire(req.top_via()?.ok()?.raw));
                Some(w.finish())
            }
        }
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Repr::Heap(h) => h,
        }
    }
}

impl PartialEq for ServerKey {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for ServerKey {}

impl Hash for ServerKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // As `[u8]` hashes, so a table of keys can be probed with `&[u8]` (Borrow).
        self.as_bytes().hash(state);
    }
}

impl Borrow<[u8]> for ServerKey {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

/// A transaction's id, unique in this process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TxnId(pub u64);

/// The Via branch of branch `index` of transaction `id`.
pub fn branch_param(id: TxnId, index: usize) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(BRANCH_PREFIX.len() + 1 + 16 + 1 + 16);
    s.push_str(BRANCH_PREFIX);
    s.push(TXN_MARK);
    for shift in (0..16).rev() {
        s.push(char::from(HEX[((id.0 >> (shift * 4)) & 0xf) as usize]));
    }
    s.push('.');
    let digits = (usize::BITS - index.leading_zeros()).div_ceil(4).max(1);
    for shift in (0..digits).rev() {
        s.push(char::from(HEX[(index >> (shift * 4)) & 0xf]));
    }
    s
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
        assert_eq!(ServerKey::of(&ack, "ACK"), Some(k.clone()));
        assert_ne!(ServerKey::of(&can, "CANCEL"), Some(k.clone()));
        assert_eq!(ServerKey::of(&can, "INVITE"), Some(k.clone()));
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
    fn keys_compare_their_parts_exactly() {
        // Parts are length-prefixed: moving bytes from one part to the next is another key.
        let a = req("INVITE", "SIP/2.0/UDP ab:5060;branch=z9hG4bK1");
        let b = req("INVITE", "SIP/2.0/UDP b:5060;branch=z9hG4bK1a");
        assert_ne!(ServerKey::of(&a, "INVITE"), ServerKey::of(&b, "INVITE"));
        let no_port = req("INVITE", "SIP/2.0/UDP a;branch=z9hG4bK1");
        let port = req("INVITE", "SIP/2.0/UDP a:5060;branch=z9hG4bK1");
        assert_ne!(
            ServerKey::of(&no_port, "INVITE"),
            ServerKey::of(&port, "INVITE")
        );
    }

    #[test]
    fn long_keys_go_to_the_heap_and_still_match() {
        let long = format!("SIP/2.0/UDP a:5060;branch=z9hG4bK{}", "x".repeat(200));
        let inv = req("INVITE", &long);
        let ack = req("ACK", &long);
        let k = ServerKey::of(&inv, "INVITE").unwrap();
        assert!(k.as_bytes().len() > INLINE);
        assert!(matches!(k.0, Repr::Heap(_)));
        assert_eq!(ServerKey::of(&ack, "ACK"), Some(k.clone()));
        let other = req("INVITE", &format!("{long}y"));
        assert_ne!(ServerKey::of(&other, "INVITE"), Some(k));
        // A key that just fits stays inline.
        let short = ServerKey::of(
            &req("INVITE", "SIP/2.0/UDP a:5060;branch=z9hG4bK1"),
            "INVITE",
        );
        assert!(matches!(short.map(|k| k.0), Some(Repr::Inline { .. })));
    }

    #[test]
    fn key_hashes_as_its_bytes() {
        use std::hash::BuildHasher;
        let k = ServerKey::of(
            &req("INVITE", "SIP/2.0/UDP a:5060;branch=z9hG4bK1"),
            "INVITE",
        )
        .unwrap();
        let s = std::hash::RandomState::new();
        assert_eq!(s.hash_one(&k), s.hash_one(k.as_bytes()));
    }

    #[test]
    fn branches_round_trip() {
        let b = branch_param(TxnId(0xabc), 3);
        assert_eq!(b, format!("{BRANCH_PREFIX}t0000000000000abc.3"));
        assert_eq!(parse_branch(&b), Some((TxnId(0xabc), 3)));
        for index in [0, 9, 10, 0xff, 0x100, usize::MAX] {
            let b = branch_param(TxnId(u64::MAX), index);
            assert_eq!(b, format!("{BRANCH_PREFIX}tffffffffffffffff.{index:x}"));
            assert_eq!(parse_branch(&b), Some((TxnId(u64::MAX), index)));
        }
        assert_eq!(parse_branch("z9hG4bKsd.0123456789abcdef"), None);
        assert_eq!(parse_branch("z9hG4bKother"), None);
    }
}
