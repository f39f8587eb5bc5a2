//! `sipd trace`: a live, filtered view of SIP traffic in the terminal, like a small sngrep. It
//! listens for the HEP v3 packets that `siptrace` sends (point `duplicate_uri` at it, switch
//! tracing on with `sipd rpc siptrace.status on`) and prints one line per message: time,
//! source and destination, transport, method or status, Call-ID.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};

/// One decoded HEP v3 packet (the chunks `sipd trace` shows).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HepPacket {
    /// IP protocol id: 17 UDP, 6 TCP.
    pub ip_proto: u8,
    /// Sender.
    pub src: SocketAddr,
    /// Receiver.
    pub dst: SocketAddr,
    /// Capture time, seconds since the epoch.
    pub secs: u32,
    /// Its microseconds.
    pub micros: u32,
    /// The SIP message.
    pub payload: Vec<u8>,
    /// The correlation id (the Call-ID).
    pub correlation: Vec<u8>,
}

/// Decode a HEP v3 packet; `None` when it is not one or lacks addresses or payload.
pub fn decode(packet: &[u8]) -> Option<HepPacket> {
    let rest = packet.strip_prefix(b"HEP3")?;
    let total = usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?]));
    let mut chunks = packet.get(6..total.min(packet.len()))?;
    let (mut src_ip, mut dst_ip, mut sport, mut dport) = (None, None, 0u16, 0u16);
    let mut p = HepPacket {
        ip_proto: 0,
        src: SocketAddr::from(([0, 0, 0, 0], 0)),
        dst: SocketAddr::from(([0, 0, 0, 0], 0)),
        secs: 0,
        micros: 0,
        payload: Vec::new(),
        correlation: Vec::new(),
    };
    while chunks.len() >= 6 {
        let kind = u16::from_be_bytes([chunks[2], chunks[3]]);
        let len = usize::from(u16::from_be_bytes([chunks[4], chunks[5]]));
        let value = chunks.get(6..len)?;
        let u32_of = |v: &[u8]| v.try_into().ok().map(u32::from_be_bytes);
        let u16_of = |v: &[u8]| v.try_into().ok().map(u16::from_be_bytes);
        match kind {
            0x0002 => p.ip_proto = *value.first()?,
            0x0003 => src_ip = Some(IpAddr::V4(Ipv4Addr::from(u32_of(value)?))),
            0x0004 => dst_ip = Some(IpAddr::V4(Ipv4Addr::from(u32_of(value)?))),
            0x0005 => {
                src_ip = Some(IpAddr::V6(Ipv6Addr::from(
                    <[u8; 16]>::try_from(value).ok()?,
                )))
            }
            0x0006 => {
                dst_ip = Some(IpAddr::V6(Ipv6Addr::from(
                    <[u8; 16]>::try_from(value).ok()?,
                )))
            }
            0x0007 => sport = u16_of(value)?,
            0x0008 => dport = u16_of(value)?,
            0x0009 => p.secs = u32_of(value)?,
            0x000a => p.micros = u32_of(value)?,
            0x000f => p.payload = value.to_vec(),
            0x0011 => p.correlation = value.to_vec(),
            _ => {}
        }
        chunks = chunks.get(len.max(6)..)?;
    }
    p.src = SocketAddr::new(src_ip?, sport);
    p.dst = SocketAddr::new(dst_ip?, dport);
    (!p.payload.is_empty()).then_some(p)
}

/// What `sipd trace` shows.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Only this Call-ID.
    pub call_id: Option<String>,
    /// Only requests of this method and replies to it (by CSeq).
    pub method: Option<String>,
    /// Only messages from or to this IP.
    pub ip: Option<IpAddr>,
}

/// The start line's summary: the method, or the status code and reason.
fn summary(payload: &[u8]) -> String {
    let line = payload
        .split(|b| *b == b'\r' || *b == b'\n')
        .next()
        .unwrap_or(b"");
    let line = String::from_utf8_lossy(line);
    match line.strip_prefix("SIP/2.0 ") {
        Some(status) => status.to_string(),
        None => line.split(' ').next().unwrap_or("").to_string(),
    }
}

/// The CSeq method of `payload`.
fn cseq_method(payload: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(payload);
    text.lines().take_while(|l| !l.is_empty()).find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("cseq")
            .then(|| value.split_whitespace().nth(1).map(str::to_string))?
    })
}

impl Filter {
    /// Whether `p` is to be shown.
    pub fn matches(&self, p: &HepPacket) -> bool {
        if let Some(c) = &self.call_id {
            if p.correlation != c.as_bytes() {
                return false;
            }
        }
        if let Some(ip) = self.ip {
            if p.src.ip() != ip && p.dst.ip() != ip {
                return false;
            }
        }
        if let Some(m) = &self.method {
            if !cseq_method(&p.payload).is_some_and(|c| c.eq_ignore_ascii_case(m)) {
                return false;
            }
        }
        true
    }
}

/// One line for `p`: `HH:MM:SS.mmm src -> dst proto summary call-id`.
pub fn render(p: &HepPacket) -> String {
    let day = p.secs % 86_400;
    let proto = match p.ip_proto {
        17 => "UDP",
        6 => "TCP",
        _ => "?",
    };
    format!(
        "{:02}:{:02}:{:02}.{:03} {} -> {} {proto} {} {}",
        day / 3600,
        day / 60 % 60,
        day % 60,
        p.micros / 1000,
        p.src,
        p.dst,
        summary(&p.payload),
        String::from_utf8_lossy(&p.correlation)
    )
}

/// Listen on `addr` and print each matching message until `count` were printed (forever when
/// `None`). Packets that are not HEP v3 are skipped.
pub fn run(addr: SocketAddr, filter: &Filter, count: Option<u64>) -> std::io::Result<()> {
    let sock = UdpSocket::bind(addr)?;
    let mut buf = vec![0u8; 65_536];
    let mut shown = 0u64;
    while count.is_none_or(|c| shown < c) {
        let n = sock.recv(&mut buf)?;
        let Some(p) = decode(&buf[..n]) else {
            continue;
        };
        if filter.matches(&p) {
            println!("{}", render(&p));
            shown += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use modules::siptrace::hep;

    #[test]
    fn decodes_what_siptrace_encodes() {
        let mut packet = Vec::new();
        hep::encode(
            &hep::Captured {
                transport: hep::Transport::Udp,
                src: "127.0.0.1:5070".parse().unwrap(),
                dst: "[::1]:5060".parse().unwrap(),
                time: std::time::UNIX_EPOCH + std::time::Duration::from_millis(3_723_004),
                capture_id: 1,
                payload: b"INVITE sip:b@h SIP/2.0\r\nCSeq: 1 INVITE\r\n\r\n",
                correlation: b"c1",
            },
            &mut packet,
        );
        let p = decode(&packet).expect("decodes");
        assert_eq!(p.src, "[::ffff:127.0.0.1]:5070".parse().unwrap());
        assert_eq!(p.dst, "[::1]:5060".parse().unwrap());
        assert_eq!(
            render(&p),
            "01:02:03.004 [::ffff:127.0.0.1]:5070 -> [::1]:5060 UDP INVITE c1"
        );
        let f = Filter {
            method: Some("invite".into()),
            ..Filter::default()
        };
        assert!(f.matches(&p));
        assert!(decode(b"HEP3\x00\x06").is_none());
        assert!(decode(b"garbage").is_none());
    }
}
