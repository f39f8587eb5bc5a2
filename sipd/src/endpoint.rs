//! `proto:ip:port` endpoints, as written in `listen = [...]`, `--listen` and `route-test --src`.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use kemi_runtime::msg::Proto;

/// A transport endpoint: `udp:127.0.0.1:5060`, `tcp:[::1]:5060`, `tls:127.0.0.1:5061`,
/// `ws:127.0.0.1:8080`, `wss:127.0.0.1:8443`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// Transport protocol.
    pub proto: Proto,
    /// Address and port.
    pub addr: SocketAddr,
}

/// Why an endpoint string was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EndpointError {
    /// No `proto:` prefix.
    #[error("`{0}`: expected proto:ip:port, e.g. udp:127.0.0.1:5060 or tcp:[::1]:5060")]
    Shape(String),
    /// Unknown protocol name.
    #[error("`{0}`: unknown protocol `{1}` (udp, tcp, tls, ws or wss)")]
    Proto(String, String),
    /// The address part is not `ip:port` (IPv6 in brackets).
    #[error("`{0}`: `{1}` is not ip:port (write IPv6 as [::1]:5060)")]
    Addr(String, String),
}

impl FromStr for Endpoint {
    type Err = EndpointError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (proto, rest) = s
            .split_once(':')
            .ok_or_else(|| EndpointError::Shape(s.to_string()))?;
        let proto = match Proto::parse(proto) {
            Some(p @ (Proto::Udp | Proto::Tcp | Proto::Tls | Proto::Ws | Proto::Wss)) => p,
            _ => return Err(EndpointError::Proto(s.to_string(), proto.to_string())),
        };
        let addr = SocketAddr::from_str(rest)
            .map_err(|_| EndpointError::Addr(s.to_string(), rest.to_string()))?;
        Ok(Endpoint { proto, addr })
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.proto.as_str(), self.addr)
    }
}

impl Endpoint {
    /// The IP address.
    pub fn ip(&self) -> IpAddr {
        self.addr.ip()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_v4_and_v6() {
        let e: Endpoint = "udp:127.0.0.1:5060".parse().unwrap();
        assert_eq!(e.proto, Proto::Udp);
        assert_eq!(e.addr.port(), 5060);
        let e: Endpoint = "TCP:[::1]:5070".parse().unwrap();
        assert_eq!(e.proto, Proto::Tcp);
        assert!(e.addr.is_ipv6());
        assert_eq!(e.to_string(), "tcp:[::1]:5070");
        let e: Endpoint = "tls:127.0.0.1:5061".parse().unwrap();
        assert_eq!(
            (e.proto, e.to_string().as_str()),
            (Proto::Tls, "tls:127.0.0.1:5061")
        );
    }

    #[test]
    fn refuses_bad_shapes() {
        assert!(matches!(
            "udp:127.0.0.1".parse::<Endpoint>(),
            Err(EndpointError::Addr(..))
        ));
        assert!(matches!(
            "sctp:127.0.0.1:5060".parse::<Endpoint>(),
            Err(EndpointError::Proto(..))
        ));
        assert!(matches!(
            "udp:::1:5060".parse::<Endpoint>(),
            Err(EndpointError::Addr(..))
        ));
        assert!(matches!(
            "nothing".parse::<Endpoint>(),
            Err(EndpointError::Shape(..))
        ));
    }
}
