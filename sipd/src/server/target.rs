//! Where a message goes: [`Target`] from a request's destination URI (`$du` or the R-URI:
//! host, port, `;transport=`), or from the Via a response returns along (RFC 3261 18.2.2,
//! RFC 3581 4); and its resolution to a socket address.
//!
//! Host names are resolved with the system resolver, synchronously, as Kamailio's workers do
//! (A/AAAA only: no NAPTR/SRV yet). IP literals never touch the resolver.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

use kemi_runtime::msg::Proto;
use kemi_runtime::services::{OpenConnections, Services};
use kemi_runtime::sip::uri::strip_brackets;
use kemi_runtime::sip::{Scheme, Uri, Via};

/// Default SIP port.
pub const SIP_PORT: u16 = 5060;
/// Default SIP port over TLS (`sips:`, `;transport=tls`).
pub const SIPS_PORT: u16 = 5061;

/// Why a message cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// The URI does not parse or is not `sip:`.
    #[error("cannot send to `{0}`: not a sip URI with a host")]
    NotSip(String),
    /// The transport is one we do not serve.
    #[error("cannot send over `{0}`: only udp, tcp, tls, ws and wss are served")]
    Transport(String),
    /// The host name did not resolve to an address of a family we listen on.
    #[error("cannot resolve `{0}`")]
    Resolve(String),
}

thread_local! {
    /// The last URI [`Target::resolve_uri`] resolved whose host is an IP literal, with its
    /// transport and address (a pure function of the URI text).
    static LAST_LITERAL: std::cell::RefCell<Option<(String, Proto, SocketAddr)>> =
        const { std::cell::RefCell::new(None) };
}

/// A destination before resolution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Transport.
    pub proto: Proto,
    /// Host without IPv6 brackets.
    pub host: String,
    /// Port.
    pub port: u16,
}

fn proto_named(name: &str) -> Result<Proto, TargetError> {
    match Proto::parse(name) {
        Some(p @ (Proto::Udp | Proto::Tcp | Proto::Tls | Proto::Ws | Proto::Wss)) => Ok(p),
        _ => Err(TargetError::Transport(name.to_string())),
    }
}

/// The port a URI or Via without one means: 5061 over TLS, 80 over WebSocket and 443 over
/// secure WebSocket (RFC 7118 5.1), else 5060.
pub fn default_port(proto: Proto) -> u16 {
    match proto {
        Proto::Tls => SIPS_PORT,
        Proto::Ws => 80,
        Proto::Wss => 443,
        _ => SIP_PORT,
    }
}

impl Target {
    /// The target of a request sent to `uri`: its host and port over the `;transport=` it
    /// names (default UDP, port 5060). A `sips:` URI goes over TLS only (RFC 3261 §26.2.2:
    /// `;transport=tcp` or none means TLS; UDP is refused); TLS defaults to port 5061.
    pub fn from_uri(uri: &str) -> Result<Target, TargetError> {
        let u = Uri::parse(uri).map_err(|_| TargetError::NotSip(uri.to_string()))?;
        let secure = match u.kind() {
            Scheme::Sip | Scheme::Sips if u.host.is_empty() => {
                return Err(TargetError::NotSip(uri.to_string()))
            }
            Scheme::Sip => false,
            Scheme::Sips => true,
            _ => return Err(TargetError::NotSip(uri.to_string())),
        };
        let proto = match (u.param("transport").map(proto_named), secure) {
            (None, false) => Proto::Udp,
            (Some(p), false) => p?,
            (None | Some(Ok(Proto::Tcp | Proto::Tls)), true) => Proto::Tls,
            (Some(Ok(Proto::Wss)), true) => Proto::Wss,
            (Some(Ok(p)), true) => {
                return Err(TargetError::Transport(format!("{} with sips:", p.as_str())))
            }
            (Some(Err(e)), true) => return Err(e),
        };
        Ok(Target {
            proto,
            host: u.host_unbracketed().to_string(),
            port: u.port.unwrap_or(default_port(proto)),
        })
    }

    /// Where a response goes back along `via` (the Via below ours): `received` (else the
    /// sent-by host) at the `rport` value (else the sent-by port, else 5060), over the Via's
    /// transport. `maddr` is ignored.
    pub fn from_via(via: &Via<'_>) -> Result<Target, TargetError> {
        let proto = proto_named(via.transport)?;
        // `Via::received` and `Via::rport` in one walk over the params (the first of each,
        // as they take it): this runs for every relayed reply.
        let (mut received, mut rport) = (None, None);
        for p in via.params.iter() {
            if received.is_none() && p.name.eq_ignore_ascii_case("received") {
                received = Some(strip_brackets(p.value.unwrap_or("")));
            } else if rport.is_none() && p.name.eq_ignore_ascii_case("rport") {
                rport = Some(p.value.unwrap_or(""));
            }
            if received.is_some() && rport.is_some() {
                break;
            }
        }
        let host = received
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| via.host_unbracketed());
        let port = rport
            .and_then(|p| p.parse::<u16>().ok())
            .filter(|p| *p != 0);
        Ok(Target {
            proto,
            host: host.to_string(),
            port: port.or(via.port).unwrap_or(default_port(proto)),
        })
    }

    /// Resolve over the sockets of `locals` to the transport and address to send to. ws and
    /// wss are one family here: Kamailio writes both as `transport=ws` (an `alias` of a wss
    /// client included), so a WebSocket target goes over whichever of the two has the open
    /// connection to the address (the host's [`OpenConnections`] in `services`).
    pub fn resolve_in(
        &self,
        locals: &super::locals::Locals,
        services: &Services,
    ) -> Result<(Proto, SocketAddr), TargetError> {
        let other = match self.proto {
            Proto::Ws => Proto::Wss,
            Proto::Wss => Proto::Ws,
            p => return Ok((p, self.resolve(|a| locals.serves(p, a))?)),
        };
        let addr = self.resolve(|a| locals.serves(self.proto, a) || locals.serves(other, a))?;
        let proto = match services.get::<OpenConnections>() {
            Some(c) if !c.is_open(self.proto, addr) && c.is_open(other, addr) => other,
            _ if !locals.serves(self.proto, &addr) => other,
            _ => self.proto,
        };
        Ok((proto, addr))
    }

    /// [`Target::from_uri`] and [`Target::resolve`] in one: the transport and address a
    /// request sent to `uri` goes to. A URI whose host is an IP literal is remembered per
    /// thread (the last one): a proxy relaying to one next hop parses it once, not per
    /// request. Host names are resolved each time, as before.
    pub fn resolve_uri(
        uri: &str,
        usable: impl Fn(Proto, &SocketAddr) -> bool,
    ) -> Result<(Proto, SocketAddr), TargetError> {
        let hit = LAST_LITERAL.with_borrow(|last| {
            last.as_ref()
                .filter(|(u, _, _)| u == uri)
                .map(|(_, proto, addr)| (*proto, *addr))
        });
        if let Some((proto, addr)) = hit {
            if usable(proto, &addr) {
                return Ok((proto, addr));
            }
        }
        let t = Target::from_uri(uri)?;
        let addr = t.resolve(|a| usable(t.proto, a))?;
        if t.host.parse::<IpAddr>().is_ok() {
            LAST_LITERAL.with_borrow_mut(|last| match last {
                Some((u, proto, a)) => {
                    u.clear();
                    u.push_str(uri);
                    *proto = t.proto;
                    *a = addr;
                }
                None => *last = Some((uri.to_string(), t.proto, addr)),
            });
        }
        Ok((t.proto, addr))
    }

    /// [`Target::resolve_uri`] (the per-thread remembered IP literal) for UDP, TCP and TLS;
    /// a WebSocket target, or one the fast path cannot resolve, goes through
    /// [`Target::resolve_in`], which picks ws or wss by the open connection.
    pub fn resolve_uri_in(
        uri: &str,
        locals: &super::locals::Locals,
        services: &Services,
    ) -> Result<(Proto, SocketAddr), TargetError> {
        match Target::resolve_uri(uri, |p, a| locals.serves(p, a)) {
            Ok((Proto::Ws | Proto::Wss, _)) | Err(_) => {
                Target::from_uri(uri)?.resolve_in(locals, services)
            }
            ok => ok,
        }
    }

    /// Resolve to one address, preferring the first one whose family `usable` accepts.
    pub fn resolve(&self, usable: impl Fn(&SocketAddr) -> bool) -> Result<SocketAddr, TargetError> {
        if let Ok(ip) = self.host.parse::<IpAddr>() {
            let addr = SocketAddr::new(ip, self.port);
            return if usable(&addr) {
                Ok(addr)
            } else {
                Err(TargetError::Resolve(self.host.clone()))
            };
        }
        (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|_| TargetError::Resolve(self.host.clone()))?
            .find(|a| usable(a))
            .ok_or_else(|| TargetError::Resolve(self.host.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_uri_agrees_with_from_uri_and_resolve() {
        for uri in [
            "sip:127.0.0.1:5099",
            "sip:127.0.0.1:5099",
            "sip:a@127.0.0.1;transport=tcp",
            "sip:a@127.0.0.1;transport=tcp",
            "sips:[::1]:5071",
            "sip:127.0.0.1:5099",
            "sip:localhost:5098",
        ] {
            let t = Target::from_uri(uri).unwrap();
            let want = t.resolve(|a| a.is_ipv4() || a.is_ipv6()).unwrap();
            let got = Target::resolve_uri(uri, |_, a| a.is_ipv4() || a.is_ipv6()).unwrap();
            assert_eq!(got, (t.proto, want), "{uri}");
        }
        // A remembered URI is still checked against `usable`.
        assert!(Target::resolve_uri("sip:127.0.0.1:5099", |_, _| true).is_ok());
        assert!(Target::resolve_uri("sip:127.0.0.1:5099", |_, a| a.is_ipv6()).is_err());
        assert!(Target::resolve_uri("sip:127.0.0.1:5099", |p, _| p == Proto::Tcp).is_err());
        assert!(Target::resolve_uri("tel:+1", |_, _| true).is_err());
    }

    #[test]
    fn from_uri_defaults_and_transport() {
        let t = Target::from_uri("sip:bob@192.0.2.1").unwrap();
        assert_eq!(
            t,
            Target {
                proto: Proto::Udp,
                host: "192.0.2.1".into(),
                port: 5060
            }
        );
        let t = Target::from_uri("sip:[::1]:5080;transport=TCP").unwrap();
        assert_eq!(
            t,
            Target {
                proto: Proto::Tcp,
                host: "::1".into(),
                port: 5080
            }
        );
        let t = Target::from_uri("sips:a@b").unwrap();
        assert_eq!((t.proto, t.port), (Proto::Tls, 5061));
        let t = Target::from_uri("sips:a@b:5070;transport=tcp").unwrap();
        assert_eq!((t.proto, t.port), (Proto::Tls, 5070));
        let t = Target::from_uri("sip:a@192.0.2.1;transport=TLS").unwrap();
        assert_eq!((t.proto, t.port), (Proto::Tls, 5061));
        assert!(matches!(
            Target::from_uri("sips:a@b;transport=udp"),
            Err(TargetError::Transport(_))
        ));
        assert!(matches!(
            Target::from_uri("sip:a@b;transport=sctp"),
            Err(TargetError::Transport(_))
        ));
        assert!(matches!(
            Target::from_uri("tel:+1"),
            Err(TargetError::NotSip(_))
        ));
    }

    #[test]
    fn from_via_follows_received_and_rport() {
        let v = Via::parse("SIP/2.0/UDP h.example:5070;rport=6000;received=192.0.2.9").unwrap();
        assert_eq!(
            Target::from_via(&v).unwrap(),
            Target {
                proto: Proto::Udp,
                host: "192.0.2.9".into(),
                port: 6000
            }
        );
        let v = Via::parse("SIP/2.0/TCP 192.0.2.1:5070;rport").unwrap();
        assert_eq!(Target::from_via(&v).unwrap().port, 5070);
        let v = Via::parse("SIP/2.0/UDP 192.0.2.1").unwrap();
        assert_eq!(Target::from_via(&v).unwrap().port, 5060);
        let v = Via::parse("SIP/2.0/TLS 192.0.2.1;rport=40000").unwrap();
        let t = Target::from_via(&v).unwrap();
        assert_eq!((t.proto, t.port), (Proto::Tls, 40000));
        let v = Via::parse("SIP/2.0/TLS 192.0.2.1").unwrap();
        assert_eq!(Target::from_via(&v).unwrap().port, 5061);
        // RFC 7118: a WebSocket client's Via names a host that does not exist; the reply goes
        // to `received`/`rport`, over the connection to that address.
        let v =
            Via::parse("SIP/2.0/WSS df7jal23ls0d.invalid;rport=50000;received=127.0.0.1").unwrap();
        let t = Target::from_via(&v).unwrap();
        assert_eq!(
            (t.proto, t.host.as_str(), t.port),
            (Proto::Wss, "127.0.0.1", 50000)
        );
    }

    #[test]
    fn from_via_agrees_with_via_received_and_rport() {
        for raw in [
            "SIP/2.0/UDP h.example:5070;RPORT=6000;Received=192.0.2.9;branch=z9hG4bK1",
            "SIP/2.0/UDP h.example;received=192.0.2.9;received=192.0.2.8;rport=1;rport=2",
            "SIP/2.0/UDP h.example;received=[::1];rport=7000",
            "SIP/2.0/UDP [::1]:5071;received;rport=0",
            "SIP/2.0/UDP h.example;x=\"a;rport=9\";rport=8",
            "SIP/2.0/UDP h.example;rport=notaport;received=",
        ] {
            let v = Via::parse(raw).unwrap();
            let host = v
                .received()
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| v.host_unbracketed());
            let port = v
                .rport()
                .and_then(|p| p.parse::<u16>().ok())
                .filter(|p| *p != 0)
                .or(v.port)
                .unwrap_or(5060);
            let t = Target::from_via(&v).unwrap();
            assert_eq!((t.host.as_str(), t.port), (host, port), "{raw}");
        }
    }

    #[test]
    fn websocket_transports() {
        let t = Target::from_uri("sip:a@192.0.2.1:40000;transport=ws").unwrap();
        assert_eq!((t.proto, t.port), (Proto::Ws, 40000));
        let t = Target::from_uri("sip:a@192.0.2.1;transport=WSS").unwrap();
        assert_eq!((t.proto, t.port), (Proto::Wss, 443));
        let t = Target::from_uri("sip:a@192.0.2.1;transport=ws").unwrap();
        assert_eq!(t.port, 80);
        let t = Target::from_uri("sips:a@192.0.2.1;transport=wss").unwrap();
        assert_eq!(t.proto, Proto::Wss);
    }

    #[test]
    fn resolves_literals_and_localhost() {
        let t = Target::from_uri("sip:127.0.0.1:5099").unwrap();
        assert_eq!(
            t.resolve(|_| true).unwrap(),
            "127.0.0.1:5099".parse().unwrap()
        );
        assert!(t.resolve(|a| a.is_ipv6()).is_err());
        let t = Target::from_uri("sip:localhost:5099").unwrap();
        assert_eq!(t.resolve(|a| a.is_ipv4()).unwrap().port(), 5099);
    }
}
