//! [`Locals`]: the sockets this server is bound to and the names it answers to, built once at
//! startup and shared read-only by every worker: which local socket sends to a destination,
//! what sent-by our Via carries, and whether a Via names us.

use std::net::{IpAddr, SocketAddr};

use kemi_runtime::msg::Proto;

/// One bound listen socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalSocket {
    /// Transport.
    pub proto: Proto,
    /// Bound address (the real port when 0 was asked).
    pub addr: SocketAddr,
    /// `host:port` as our Via's sent-by writes it (IPv6 in brackets; for a wildcard address,
    /// the first alias).
    pub sent_by: String,
}

/// Every bound socket and alias.
#[derive(Clone, Debug, Default)]
pub struct Locals {
    sockets: Vec<LocalSocket>,
    aliases: Vec<String>,
}

impl Locals {
    /// Index `bound` sockets and `aliases`.
    pub fn new(bound: &[(Proto, SocketAddr)], aliases: &[String]) -> Locals {
        let sockets = bound
            .iter()
            .map(|&(proto, addr)| {
                let host = match (addr.ip().is_unspecified(), aliases.first()) {
                    (true, Some(alias)) => alias.clone(),
                    _ => match addr.ip() {
                        IpAddr::V6(ip) => format!("[{ip}]"),
                        IpAddr::V4(ip) => ip.to_string(),
                    },
                };
                LocalSocket {
                    proto,
                    addr,
                    sent_by: format!("{host}:{}", addr.port()),
                }
            })
            .collect();
        Locals {
            sockets,
            aliases: aliases.to_vec(),
        }
    }

    /// Every socket.
    pub fn sockets(&self) -> &[LocalSocket] {
        &self.sockets
    }

    /// The socket that sends over `proto` to `dst`: same transport and address family,
    /// preferring `preferred` (the socket a request arrived on) when it fits.
    pub fn pick(
        &self,
        proto: Proto,
        dst: &SocketAddr,
        preferred: Option<SocketAddr>,
    ) -> Option<&LocalSocket> {
        let fits = |s: &&LocalSocket| s.proto == proto && s.addr.is_ipv6() == dst.is_ipv6();
        preferred
            .and_then(|p| self.sockets.iter().filter(fits).find(|s| s.addr == p))
            .or_else(|| self.sockets.iter().find(fits))
    }

    /// Whether any socket serves `proto` in the family of `addr`.
    pub fn serves(&self, proto: Proto, addr: &SocketAddr) -> bool {
        self.pick(proto, addr, None).is_some()
    }

    /// Whether a Via sent-by (`host` without brackets, `port` if written) names this server.
    pub fn is_sent_by_us(&self, host: &str, port: Option<u16>) -> bool {
        let port = port.unwrap_or(super::target::SIP_PORT);
        let ip = host.parse::<IpAddr>().ok();
        let host_ours = self.aliases.iter().any(|a| a.eq_ignore_ascii_case(host))
            || self.sockets.iter().any(|s| Some(s.addr.ip()) == ip);
        host_ours && self.sockets.iter().any(|s| s.addr.port() == port)
            || self
                .sockets
                .iter()
                .any(|s| s.addr.port() == port && s.addr.ip().is_unspecified())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_by_proto_and_family() {
        let l = Locals::new(
            &[
                (Proto::Udp, "127.0.0.1:5060".parse().unwrap()),
                (Proto::Udp, "[::1]:5062".parse().unwrap()),
                (Proto::Tcp, "127.0.0.1:5061".parse().unwrap()),
            ],
            &["sip.example".into()],
        );
        let v6: SocketAddr = "[::1]:9".parse().unwrap();
        assert_eq!(l.pick(Proto::Udp, &v6, None).unwrap().sent_by, "[::1]:5062");
        let v4: SocketAddr = "10.0.0.1:9".parse().unwrap();
        assert_eq!(
            l.pick(Proto::Tcp, &v4, None).unwrap().sent_by,
            "127.0.0.1:5061"
        );
        assert!(l.pick(Proto::Tcp, &v6, None).is_none());
        assert!(l.is_sent_by_us("127.0.0.1", Some(5060)));
        assert!(l.is_sent_by_us("SIP.example", Some(5061)));
        assert!(!l.is_sent_by_us("127.0.0.1", Some(5070)));
        assert!(!l.is_sent_by_us("10.0.0.1", Some(5060)));
    }
}
