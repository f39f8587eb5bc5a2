//! Small text writers for the hot serializers, without `core::fmt`: decimal numbers
//! ([`Decimal`]) and IP addresses ([`IpText`]) rendered into stack buffers.

use std::io::Write as _;
use std::net::IpAddr;

/// A number in decimal, rendered on the stack.
///
/// ```
/// use kemi_runtime::sip::text::Decimal;
/// assert_eq!(Decimal::new(0).as_str(), "0");
/// assert_eq!(Decimal::new(65535).as_str(), "65535");
/// assert_eq!(Decimal::new(u64::MAX).as_str(), u64::MAX.to_string());
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Decimal {
    buf: [u8; 20],
    start: usize,
}

impl Decimal {
    /// Render `n`.
    #[inline]
    pub fn new(mut n: u64) -> Decimal {
        let mut buf = [b'0'; 20];
        let mut i = buf.len();
        loop {
            i -= 1;
            if let Some(d) = buf.get_mut(i) {
                *d = b'0' + (n % 10) as u8;
            }
            n /= 10;
            if n == 0 || i == 0 {
                break;
            }
        }
        Decimal { buf, start: i }
    }

    /// The digits.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(self.start..).unwrap_or_default()
    }

    /// The digits as text.
    #[inline]
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or("0")
    }
}

/// An IP address as `Display` writes it (IPv6 without brackets), rendered on the stack; IPv4
/// without `core::fmt`.
///
/// ```
/// use kemi_runtime::sip::text::IpText;
/// for ip in ["127.0.0.1", "0.0.0.0", "255.255.255.255", "10.20.30.4", "2001:db8::1", "::ffff:1.2.3.4"] {
///     assert_eq!(IpText::new(ip.parse().unwrap()).as_str(), ip);
/// }
/// ```
#[derive(Clone, Copy, Debug)]
pub struct IpText {
    buf: [u8; 48],
    len: usize,
}

impl IpText {
    /// Render `ip`.
    pub fn new(ip: IpAddr) -> IpText {
        let mut buf = [0u8; 48];
        let len = match ip {
            IpAddr::V4(v4) => {
                // At most 15 bytes: the digits of each octet written straight in.
                let mut n = 0;
                let mut put = |c: u8| {
                    if let Some(b) = buf.get_mut(n) {
                        *b = c;
                    }
                    n += 1;
                };
                for (i, o) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        put(b'.');
                    }
                    if o >= 100 {
                        put(b'0' + o / 100);
                    }
                    if o >= 10 {
                        put(b'0' + o / 10 % 10);
                    }
                    put(b'0' + o % 10);
                }
                n
            }
            IpAddr::V6(v6) => {
                let mut cur = std::io::Cursor::new(&mut buf[..]);
                let _ = write!(cur, "{v6}");
                cur.position() as usize
            }
        };
        IpText { buf, len }
    }

    /// The address as text.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }

    /// The address as text.
    #[inline]
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or("")
    }

    /// Whether `host` (brackets already removed) names this address: for IPv4 a text
    /// comparison (the canonical dotted quad is the only form `Ipv4Addr` parses), for IPv6 a
    /// parse.
    pub fn is_host(&self, ip: IpAddr, host: &str) -> bool {
        match ip {
            IpAddr::V4(_) => host.as_bytes() == self.as_bytes(),
            IpAddr::V6(_) => host.parse::<IpAddr>().ok() == Some(ip),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_text_agrees_with_display_for_every_octet() {
        for o in 0..=255u8 {
            for ip in [
                std::net::Ipv4Addr::new(o, 0, 255, 9),
                std::net::Ipv4Addr::new(1, o, 10, 100),
                std::net::Ipv4Addr::new(99, 200, o, 0),
                std::net::Ipv4Addr::new(255, 255, 255, o),
            ] {
                assert_eq!(IpText::new(IpAddr::V4(ip)).as_str(), ip.to_string());
            }
        }
    }

    #[test]
    fn is_host_agrees_with_parsing() {
        let ips: [IpAddr; 3] = [
            "127.0.0.1".parse().unwrap(),
            "10.0.0.10".parse().unwrap(),
            "::1".parse().unwrap(),
        ];
        let hosts = [
            "127.0.0.1",
            "127.0.0.01",
            "127.000.0.1",
            "0127.0.0.1",
            "127.0.0.1.",
            "::ffff:127.0.0.1",
            "10.0.0.10",
            "10.0.0.1",
            "::1",
            "0:0:0:0:0:0:0:1",
            "example.com",
            "",
        ];
        for ip in ips {
            let t = IpText::new(ip);
            for h in hosts {
                assert_eq!(
                    t.is_host(ip, h),
                    h.parse::<IpAddr>().ok() == Some(ip),
                    "{ip} {h}"
                );
            }
        }
    }
}
