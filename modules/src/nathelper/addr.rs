//! Address helpers of nathelper: private (RFC 1918 / RFC 6598 / RFC 7335) IPv4 ranges, source
//! URIs, Kamailio's protocol numbers, and the `c=` lines of an SDP body.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use kemi_runtime::msg::Proto;

/// Kamailio's private ranges (`nh_nets_1918`): network and prefix length.
const PRIVATE: &[([u8; 4], u32)] = &[
    ([10, 0, 0, 0], 8),
    ([172, 16, 0, 0], 12),
    ([192, 168, 0, 0], 16),
    ([100, 64, 0, 0], 10),
    ([192, 0, 0, 0], 29),
];

/// Added with `nat_addr_mode=1`: IETF protocol assignments (RFC 7335).
const EXTRA: &[([u8; 4], u32)] = &[([192, 0, 0, 0], 24)];

fn in_net(ip: Ipv4Addr, net: [u8; 4], len: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

/// Whether `ip` is in a private range (IPv6 never is, as in Kamailio).
pub fn is_private_ip(ip: IpAddr, nat_addr_mode: i64) -> bool {
    let IpAddr::V4(v4) = ip else {
        return false;
    };
    PRIVATE.iter().any(|(n, l)| in_net(v4, *n, *l))
        || (nat_addr_mode == 1 && EXTRA.iter().any(|(n, l)| in_net(v4, *n, *l)))
}

/// Whether `text` is a dotted IPv4 address in a private range; `None` when it is not an IPv4
/// address at all.
pub fn is_private_text(text: &str, nat_addr_mode: i64) -> Option<bool> {
    let ip: Ipv4Addr = text.trim().parse().ok()?;
    Some(is_private_ip(IpAddr::V4(ip), nat_addr_mode))
}

/// `ip` as written in a URI host (IPv6 in brackets).
pub fn host_of(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// Parse a URI/Via host that is an IP literal (IPv6 with or without brackets).
pub fn parse_ip(host: &str) -> Option<IpAddr> {
    kemi_runtime::sip::uri::strip_brackets(host).parse().ok()
}

/// The `transport=` value of Kamailio's protocol number (`proto_type_to_str`: WSS is `ws`);
/// `None` for an unknown number.
pub fn transport_of_number(n: u8) -> Option<&'static str> {
    Some(match n {
        1 => "udp",
        2 => "tcp",
        3 => "tls",
        4 => "sctp",
        5 | 6 => "ws",
        _ => return None,
    })
}

/// `sip:ip:port`, with `;transport=x` unless UDP (Kamailio's `get_src_uri`, short form).
pub fn src_uri(proto: Proto, src: SocketAddr) -> String {
    let mut uri = format!("sip:{}:{}", host_of(src.ip()), src.port());
    if proto != Proto::Udp {
        uri.push_str(";transport=");
        uri.push_str(proto.as_str());
    }
    uri
}

/// The connection addresses of an SDP body: the session-level `c=` and, per `m=` stream, its
/// own `c=` (each as `(addrtype, address)`, the TTL/count suffix removed).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SdpAddrs<'a> {
    /// The session-level connection address.
    pub session: Option<(&'a str, &'a str)>,
    /// One entry per `m=` line: its media-level connection address.
    pub streams: Vec<Option<(&'a str, &'a str)>>,
}

/// Scan an SDP body for its `c=` lines; `None` when it holds no `v=` line (not SDP).
pub fn sdp_addrs(body: &str) -> Option<SdpAddrs<'_>> {
    let mut out = SdpAddrs::default();
    let mut seen_v = false;
    for line in body.lines() {
        let line = line.trim_end_matches('\r');
        if line.starts_with("v=") {
            seen_v = true;
        } else if line.starts_with("m=") {
            out.streams.push(None);
        } else if let Some(c) = line.strip_prefix("c=") {
            let mut f = c.split_ascii_whitespace();
            let (_net, kind, addr) = (f.next(), f.next(), f.next());
            let (Some(kind), Some(addr)) = (kind, addr) else {
                continue;
            };
            let addr = addr.split('/').next().unwrap_or(addr);
            match out.streams.last_mut() {
                Some(slot) => *slot = Some((kind, addr)),
                None => out.session = Some((kind, addr)),
            }
        }
    }
    seen_v.then_some(out)
}

/// Whether an SDP address is the null address (`0.0.0.0`, or all zeros in IPv6).
pub fn is_null_addr(kind: &str, addr: &str) -> bool {
    if kind.eq_ignore_ascii_case("IP6") {
        addr.bytes().all(|c| c == b'0' || c == b':')
    } else {
        addr == "0.0.0.0"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_ranges() {
        for (ip, want) in [
            ("10.1.2.3", true),
            ("172.16.0.1", true),
            ("172.31.255.255", true),
            ("172.32.0.1", false),
            ("192.168.1.1", true),
            ("100.64.0.1", true),
            ("100.127.255.255", true),
            ("100.128.0.1", false),
            ("192.0.0.5", true),
            ("192.0.0.200", true),
            ("8.8.8.8", false),
            ("127.0.0.1", false),
        ] {
            assert_eq!(is_private_text(ip, 1), Some(want), "{ip}");
        }
        assert_eq!(is_private_text("192.0.0.200", 0), Some(false));
        assert_eq!(is_private_text("host.example", 1), None);
        assert_eq!(is_private_text("::1", 1), None);
    }

    #[test]
    fn sdp_scan() {
        let body = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\nm=video 4002 RTP/AVP 31\r\nc=IN IP4 224.2.1.1/127\r\n";
        let a = sdp_addrs(body).unwrap();
        assert_eq!(a.session, Some(("IP4", "10.0.0.1")));
        assert_eq!(a.streams, vec![None, Some(("IP4", "224.2.1.1"))]);
        assert!(sdp_addrs("hello").is_none());
        assert_eq!(
            src_uri(Proto::Tcp, "[::1]:5070".parse().unwrap()),
            "sip:[::1]:5070;transport=tcp"
        );
    }
}
