//! HEP version 3 (the Homer Encapsulation Protocol, as Kamailio's `siptrace` and sngrep speak
//! it): one packet per SIP message, a `HEP3` header and typed chunks (vendor 0, the generic
//! chunk types): address family, transport, addresses, ports, time, capture agent id, the SIP
//! payload and the correlation id (the Call-ID).

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

/// The transport of a traced message, as HEP numbers it (IP protocol ids).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// UDP (17).
    Udp,
    /// TCP, TLS, WebSocket (6).
    Tcp,
}

/// One traced SIP message.
#[derive(Clone, Copy, Debug)]
pub struct Captured<'a> {
    /// Its transport.
    pub transport: Transport,
    /// Who sent it.
    pub src: SocketAddr,
    /// Where it went.
    pub dst: SocketAddr,
    /// When.
    pub time: SystemTime,
    /// The capture agent id (`hep_capture_id`).
    pub capture_id: u32,
    /// The SIP message as on the wire.
    pub payload: &'a [u8],
    /// The correlation id: the Call-ID.
    pub correlation: &'a [u8],
}

const CHUNK_HEADER: usize = 6;

fn chunk(out: &mut Vec<u8>, kind: u16, value: &[u8]) {
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&kind.to_be_bytes());
    // Lengths over u16 are cut by the caller (a SIP message is far below 64 KiB on UDP; a
    // larger TCP message is truncated rather than mis-framed).
    let len = (CHUNK_HEADER + value.len()).min(usize::from(u16::MAX)) as u16;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&value[..usize::from(len) - CHUNK_HEADER]);
}

/// The HEP v3 packet for `m`, written into `out` (cleared first).
pub fn encode(m: &Captured<'_>, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(b"HEP3\0\0");
    let (family, src_kind, dst_kind) = match m.src {
        SocketAddr::V4(_) => (2u8, 0x0003, 0x0004),
        SocketAddr::V6(_) => (10u8, 0x0005, 0x0006),
    };
    chunk(out, 0x0001, &[family]);
    let proto = match m.transport {
        Transport::Udp => 17u8,
        Transport::Tcp => 6u8,
    };
    chunk(out, 0x0002, &[proto]);
    match (m.src, m.dst) {
        (SocketAddr::V4(s), SocketAddr::V4(d)) => {
            chunk(out, src_kind, &s.ip().octets());
            chunk(out, dst_kind, &d.ip().octets());
        }
        (s, d) => {
            chunk(out, 0x0005, &v6_octets(s));
            chunk(out, 0x0006, &v6_octets(d));
        }
    }
    chunk(out, 0x0007, &m.src.port().to_be_bytes());
    chunk(out, 0x0008, &m.dst.port().to_be_bytes());
    let since = m.time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = u32::try_from(since.as_secs()).unwrap_or(u32::MAX);
    chunk(out, 0x0009, &secs.to_be_bytes());
    chunk(out, 0x000a, &since.subsec_micros().to_be_bytes());
    chunk(out, 0x000b, &[1]); // SIP
    chunk(out, 0x000c, &m.capture_id.to_be_bytes());
    chunk(out, 0x000f, m.payload);
    if !m.correlation.is_empty() {
        chunk(out, 0x0011, m.correlation);
    }
    let total = u16::try_from(out.len()).unwrap_or(u16::MAX);
    out[4..6].copy_from_slice(&total.to_be_bytes());
}

fn v6_octets(a: SocketAddr) -> [u8; 16] {
    match a {
        SocketAddr::V6(v6) => v6.ip().octets(),
        SocketAddr::V4(v4) => v4.ip().to_ipv6_mapped().octets(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_layout() {
        let m = Captured {
            transport: Transport::Udp,
            src: "127.0.0.1:5070".parse().unwrap(),
            dst: "127.0.0.2:5060".parse().unwrap(),
            time: UNIX_EPOCH + std::time::Duration::from_micros(1_700_000_000_000_123),
            capture_id: 7,
            payload: b"OPTIONS sip:a SIP/2.0\r\n\r\n",
            correlation: b"abc",
        };
        let mut out = Vec::new();
        encode(&m, &mut out);
        assert_eq!(&out[..4], b"HEP3");
        assert_eq!(usize::from(u16::from_be_bytes([out[4], out[5]])), out.len());
        // First chunk: vendor 0, type 1 (family), length 7, IPv4.
        assert_eq!(&out[6..13], &[0, 0, 0, 1, 0, 7, 2]);
        let tail = &out[out.len() - 9..];
        assert_eq!(tail, &[0, 0, 0, 0x11, 0, 9, b'a', b'b', b'c']);
    }
}
