//! Via handling of a stateless proxy: the branch of our Via ([`Branch`]), derived from the
//! request so that retransmissions get the same branch without keeping state (RFC 3261 16.11);
//! the `received`/`rport` stamp on the previous hop's Via (RFC 3261 18.2.1, RFC 3581 4); and
//! the test that a reply's top Via is ours.

use std::net::SocketAddr;

use kemi_runtime::sip::text::{Decimal, IpText};
use kemi_runtime::sip::{HeaderKind, HeaderRef, Message, Via};

/// Branch prefix of every Via we add: the RFC 3261 magic cookie and our mark, so replies to
/// other elements' branches are told apart cheaply.
pub const BRANCH_PREFIX: &str = "z9hG4bKsd.";

/// The RFC 3261 magic cookie.
const MAGIC: &str = "z9hG4bK";

/// A stateless branch: [`BRANCH_PREFIX`] and 16 hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Branch([u8; 16]);

impl Branch {
    /// The branch for forward number `index` of `req`. With an RFC 3261 branch on the top Via
    /// the hash covers that branch only (a CANCEL and a non-2xx ACK then map to the INVITE's
    /// branch, as RFC 3261 16.11 asks); otherwise Call-ID, From tag, To tag, CSeq number,
    /// Request-URI and the top Via as written.
    pub fn for_request(req: &Message, index: usize) -> Branch {
        let mut h = Fnv::new();
        match req.top_via_branch().filter(|b| b.starts_with(MAGIC)) {
            Some(b) => h.part(req.wire(b)),
            None => {
                // Hashed as received ([`Message::wire`]): stable, and lossless for a head
                // that is not UTF-8.
                let top = req.top_via().and_then(Result::ok);
                h.part(req.wire(req.call_id().unwrap_or("")));
                h.part(req.wire(req.from_tag().unwrap_or("")));
                h.part(req.wire(req.to_tag().unwrap_or("")));
                h.num(
                    req.cseq()
                        .and_then(Result::ok)
                        .map_or(0, |c| u64::from(c.number)),
                );
                h.part(req.wire(req.ruri().unwrap_or("")));
                h.part(req.wire(top.map_or("", |v| v.raw)));
            }
        }
        h.num(index as u64);
        let mut out = [b'0'; 16];
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for (i, o) in out.iter_mut().enumerate() {
            *o = HEX
                .get(((h.0 >> (60 - 4 * i)) & 0xf) as usize)
                .copied()
                .unwrap_or(b'0');
        }
        Branch(out)
    }

    /// The hex part.
    pub fn hex(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("0")
    }
}

/// FNV-1a, 64 bits; parts separated by a NUL so ("ab","c") and ("a","bc") differ.
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn part(&mut self, s: &[u8]) {
        for b in s.iter().copied().chain(std::iter::once(0)) {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    fn num(&mut self, n: u64) {
        for b in n.to_le_bytes() {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// Write our Via header line into `out`: `Via: SIP/2.0/<PROTO> <sent-by>;branch=...;rport`.
pub fn write_line(out: &mut String, transport: &str, sent_by: &str, branch: &Branch) {
    for part in [
        "Via: SIP/2.0/",
        transport,
        " ",
        sent_by,
        ";branch=",
        BRANCH_PREFIX,
        branch.hex(),
        ";rport\r\n",
    ] {
        out.push_str(part);
    }
}

/// The top Via header line with `received` and `rport` filled in for a request from `src`, or
/// `None` when nothing needs to change: `received` is added when the sent-by host is not the
/// source address or an empty `rport` is present; an empty `rport` gets the source port. With
/// `force_rport` (the script called `force_rport()`) a Via without `rport` gets
/// `;rport=<source port>`, so the reply relayed back goes to the source port as well.
pub fn stamp_received(
    header: &HeaderRef<'_>,
    top: &Via<'_>,
    src: SocketAddr,
    force_rport: bool,
) -> Option<String> {
    let raw = top.raw;
    // One pass over the params: the first `rport` without a value, any `rport`, any `received`.
    let (mut empty_rport, mut has_rport, mut has_received) = (None, false, false);
    for p in top.params.iter() {
        if p.name.eq_ignore_ascii_case("rport") {
            has_rport = true;
            if empty_rport.is_none() && p.value.is_none() {
                empty_rport = Some(p);
            }
        } else if !has_received && p.name.eq_ignore_ascii_case("received") {
            has_received = true;
        }
    }
    let ip = IpText::new(src.ip());
    let same_ip = ip.is_host(src.ip(), top.host_unbracketed());
    let add_received = !has_received && (empty_rport.is_some() || !same_ip);
    let append_rport = force_rport && !has_rport;
    if !add_received && empty_rport.is_none() && !append_rport {
        return None;
    }
    // `raw` and the param names borrow from the header value: offsets by pointer difference.
    let value = header.value;
    let at = (raw.as_ptr() as usize).checked_sub(value.as_ptr() as usize)?;
    let rest = value.get(at + raw.len()..)?;
    let mut line = String::with_capacity(header.line.len() + 48);
    line.push_str(header.name);
    line.push_str(": ");
    line.push_str(value.get(..at)?);
    match empty_rport {
        Some(p) => {
            let end = (p.name.as_ptr() as usize).checked_sub(raw.as_ptr() as usize)? + p.name.len();
            line.push_str(raw.get(..end)?);
            line.push('=');
            line.push_str(Decimal::new(u64::from(src.port())).as_str());
            line.push_str(raw.get(end..)?);
        }
        None => line.push_str(raw),
    }
    if append_rport {
        line.push_str(";rport=");
        line.push_str(Decimal::new(u64::from(src.port())).as_str());
    }
    if add_received {
        line.push_str(";received=");
        line.push_str(ip.as_str());
    }
    line.push_str(rest);
    line.push_str("\r\n");
    Some(line)
}

/// Where a reply to `req`, received over UDP from `src`, goes (RFC 3261 18.2.2, RFC 3581 4):
/// the source address when the top Via has `rport` or the script called `force_rport()`, else
/// the source IP at the Via's sent-by port. Shared by stateless replies and tm's upstream hop.
pub fn udp_reply_addr(req: &Message, src: SocketAddr, force_rport: bool) -> SocketAddr {
    if force_rport || req.top_via_rport().is_some() {
        return src;
    }
    match req.top_via_sent_by() {
        Some((_, port)) => SocketAddr::new(src.ip(), port.unwrap_or(super::target::SIP_PORT)),
        None => src,
    }
}

/// The first Via header of `msg` and its first value, parsed.
pub fn top(msg: &Message) -> Option<(HeaderRef<'_>, Via<'_>)> {
    let header = msg.first_kind(HeaderKind::Via)?;
    let via = msg.top_via()?.ok()?;
    Some((header, via))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(via: &str) -> Message {
        let text = format!(
            "INVITE sip:b@b SIP/2.0\r\nVia: {via}\r\nFrom: <sip:a@a>;tag=f\r\nTo: <sip:b@b>\r\n\
             Call-ID: c1\r\nCSeq: 7 INVITE\r\nContent-Length: 0\r\n\r\n"
        );
        Message::parse(text.into_bytes().into()).unwrap()
    }

    #[test]
    fn branch_is_stable_and_follows_the_incoming_branch() {
        let a = Branch::for_request(&req("SIP/2.0/UDP h;branch=z9hG4bK1"), 0);
        assert_eq!(
            a,
            Branch::for_request(&req("SIP/2.0/UDP h;branch=z9hG4bK1"), 0)
        );
        assert_ne!(
            a,
            Branch::for_request(&req("SIP/2.0/UDP h;branch=z9hG4bK2"), 0)
        );
        assert_ne!(
            a,
            Branch::for_request(&req("SIP/2.0/UDP h;branch=z9hG4bK1"), 1)
        );
        let old = Branch::for_request(&req("SIP/2.0/UDP h;branch=1"), 0);
        assert_ne!(old, Branch::for_request(&req("SIP/2.0/UDP h2;branch=1"), 0));
        let mut line = String::new();
        write_line(&mut line, "UDP", "127.0.0.1:5060", &a);
        assert!(
            line.starts_with("Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKsd.")
                && line.ends_with(";rport\r\n")
        );
    }

    #[test]
    fn stamps_received_and_rport() {
        let m = req("SIP/2.0/UDP host.example;rport;branch=z9hG4bK1, SIP/2.0/UDP x");
        let (h, v) = top(&m).unwrap();
        let line = stamp_received(&h, &v, "192.0.2.1:5062".parse().unwrap(), false).unwrap();
        assert_eq!(line, "Via: SIP/2.0/UDP host.example;rport=5062;branch=z9hG4bK1;received=192.0.2.1, SIP/2.0/UDP x\r\n");
        let m = req("SIP/2.0/UDP 192.0.2.1:5062;branch=z9hG4bK1");
        let (h, v) = top(&m).unwrap();
        assert_eq!(
            stamp_received(&h, &v, "192.0.2.1:5062".parse().unwrap(), false),
            None
        );
        let m = req("SIP/2.0/UDP [::1]:5062;branch=z9hG4bK1");
        let (h, v) = top(&m).unwrap();
        let line = stamp_received(&h, &v, "[::2]:5062".parse().unwrap(), false).unwrap();
        assert_eq!(
            line,
            "Via: SIP/2.0/UDP [::1]:5062;branch=z9hG4bK1;received=::2\r\n"
        );
    }

    #[test]
    fn force_rport_stamps_the_source_port() {
        let src: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let m = req("SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK1");
        let (h, v) = top(&m).unwrap();
        assert_eq!(stamp_received(&h, &v, src, false), None);
        assert_eq!(
            stamp_received(&h, &v, src, true).unwrap(),
            "Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK1;rport=4000\r\n"
        );
        let m = req("SIP/2.0/UDP 10.0.0.1:5999;branch=z9hG4bK1, SIP/2.0/UDP x");
        let (h, v) = top(&m).unwrap();
        assert_eq!(
            stamp_received(&h, &v, src, true).unwrap(),
            "Via: SIP/2.0/UDP 10.0.0.1:5999;branch=z9hG4bK1;rport=4000;received=127.0.0.1, SIP/2.0/UDP x\r\n"
        );
        // A Via that already has rport keeps its own.
        let m = req("SIP/2.0/UDP 127.0.0.1:5999;rport=5999;branch=z9hG4bK1");
        let (h, v) = top(&m).unwrap();
        assert_eq!(stamp_received(&h, &v, src, true), None);
    }
}
