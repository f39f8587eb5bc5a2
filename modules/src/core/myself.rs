//! `is_myself*`: does a URI, host or address name this proxy?
//!
//! A host is "myself" when it is the address of a listen socket or one of the configured aliases
//! (`RouteEnv::listen`, `RouteEnv::aliases`; an alias is `host` or `host:port`). A port is only
//! compared when the URI gives one explicitly, and a `transport` parameter restricts the listen
//! sockets to that transport, as Kamailio's `check_self` does.

use std::net::IpAddr;

use kemi_runtime::msg::{Proto, RouteEnv};
use kemi_runtime::{kemi, SipMsg};

use crate::uri_parts::UriParts;
use crate::view;

/// What to look for: a host, and optionally a port and a transport.
struct Target<'a> {
    host: &'a str,
    /// The host as an IP address, when it is a literal.
    ip: Option<IpAddr>,
    port: Option<u16>,
    proto: Option<Proto>,
}

impl<'a> Target<'a> {
    /// A `sip:`/`sips:` URI, or else a bare host.
    fn parse(text: &'a str) -> Option<Target<'a>> {
        let is_uri = text.len() > 4
            && (text
                .get(..4)
                .is_some_and(|s| s.eq_ignore_ascii_case("sip:"))
                || text
                    .get(..5)
                    .is_some_and(|s| s.eq_ignore_ascii_case("sips:")));
        if !is_uri {
            return Some(Target {
                host: text,
                ip: ip_literal(text),
                port: None,
                proto: None,
            });
        }
        let parts = UriParts::parse(text)?;
        let port = if parts.has_port {
            Some(UriParts::part(text, &parts.port).parse().ok()?)
        } else {
            None
        };
        let proto = uri_param(text, parts.host.end, "transport").and_then(Proto::parse);
        let host = UriParts::part(text, &parts.host);
        Some(Target {
            host,
            ip: ip_literal(host),
            port,
            proto,
        })
    }
}

/// The value of URI parameter `name`, looking after byte `from` (the end of the host).
fn uri_param<'a>(uri: &'a str, from: usize, name: &str) -> Option<&'a str> {
    let rest = uri.get(from..)?;
    let rest = rest.split('?').next().unwrap_or(rest);
    rest.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case(name).then_some(v.trim())
    })
}

/// The IP address a host string names, if it is a literal (IPv6 with or without brackets).
fn ip_literal(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// Kamailio's `check_self`: the target is a listen socket or an alias.
fn check_self(env: &RouteEnv, target: &Target<'_>) -> bool {
    let ip = target.ip;
    let on_socket = env.listen.iter().any(|(proto, addr)| {
        target.proto.is_none_or(|p| p == *proto)
            && target.port.is_none_or(|p| p == addr.port())
            && ip == Some(addr.ip())
    });
    on_socket
        || env.aliases.iter().any(|alias| {
            let (host, port) = split_alias(alias);
            let host_matches = match (ip, ip_literal(host)) {
                (Some(a), Some(b)) => a == b,
                _ => host.eq_ignore_ascii_case(target.host),
            };
            host_matches && (port.is_none() || target.port.is_none() || port == target.port)
        })
}

/// `host` or `host:port` (IPv6 aliases in brackets).
fn split_alias(alias: &str) -> (&str, Option<u16>) {
    let port_sep = if alias.starts_with('[') {
        alias
            .find(']')
            .and_then(|i| alias.get(i + 1..))
            .filter(|r| r.starts_with(':'))
    } else if alias.matches(':').count() == 1 {
        alias.find(':').and_then(|i| alias.get(i..))
    } else {
        None
    };
    match port_sep
        .and_then(|p| p.get(1..))
        .and_then(|p| p.parse().ok())
    {
        Some(port) => {
            let host_len = alias.len() - port_sep.map_or(0, str::len);
            (alias.get(..host_len).unwrap_or(alias), Some(port))
        }
        None => (alias, None),
    }
}

/// Whether `uri` names this proxy (a listen socket or an alias of `env`), as `is_myself`.
pub fn names_us(env: &RouteEnv, uri: &str) -> bool {
    Target::parse(uri).is_some_and(|t| check_self(env, &t))
}

fn is_myself_text(msg: &SipMsg, text: Option<&str>) -> bool {
    text.and_then(Target::parse)
        .is_some_and(|t| check_self(&msg.env, &t))
}

/// True when `uri` (a `sip:`/`sips:` URI, or a bare host or IP address) names this proxy: its
/// host is a listen address or an alias, its explicit port (if any) matches, and its `transport`
/// parameter (if any) matches the socket's transport.
#[kemi]
pub fn is_myself(msg: &mut SipMsg, uri: &str) -> bool {
    is_myself_text(msg, Some(uri))
}

/// True when the Request-URI in effect (`$ru`) names this proxy. False for replies.
#[kemi]
pub fn is_myself_ruri(msg: &mut SipMsg) -> bool {
    is_myself_text(msg, view::current_ruri(msg))
}

/// True when the destination URI (`$du`) is set and names this proxy.
#[kemi]
pub fn is_myself_duri(msg: &mut SipMsg) -> bool {
    is_myself_text(msg, msg.route.dst_uri.as_deref())
}

/// True when the next hop names this proxy: `$du` when set, else the Request-URI.
#[kemi]
pub fn is_myself_nhuri(msg: &mut SipMsg) -> bool {
    match msg.route.dst_uri.as_deref() {
        Some(du) => is_myself_text(msg, Some(du)),
        None => is_myself_text(msg, view::current_ruri(msg)),
    }
}

/// True when the From URI names this proxy.
#[kemi]
pub fn is_myself_furi(msg: &mut SipMsg) -> bool {
    is_myself_text(msg, view::from_hdr(&msg.message).map(|f| f.uri))
}

/// True when the To URI names this proxy.
#[kemi]
pub fn is_myself_turi(msg: &mut SipMsg) -> bool {
    is_myself_text(msg, view::to_hdr(&msg.message).map(|t| t.uri))
}

/// True when the source address and port of the message (with its transport) are a listen
/// socket or an alias of this proxy.
#[kemi]
pub fn is_myself_suri(msg: &mut SipMsg) -> bool {
    let target = Target {
        host: "",
        ip: Some(msg.rcv.src.ip()),
        port: Some(msg.rcv.src.port()),
        proto: Some(msg.rcv.proto),
    };
    check_self(&msg.env, &target)
}

/// True when the source IP address of the message is a listen address or an alias of this
/// proxy (any port).
#[kemi]
pub fn is_myself_srcip(msg: &mut SipMsg) -> bool {
    let target = Target {
        host: "",
        ip: Some(msg.rcv.src.ip()),
        port: None,
        proto: None,
    };
    check_self(&msg.env, &target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_split_host_and_port() {
        assert_eq!(split_alias("example.com"), ("example.com", None));
        assert_eq!(split_alias("example.com:5080"), ("example.com", Some(5080)));
        assert_eq!(split_alias("[::1]:5060"), ("[::1]", Some(5060)));
        assert_eq!(split_alias("2001:db8::1"), ("2001:db8::1", None));
    }

    #[test]
    fn targets_parse_uris_and_hosts() {
        let t = Target::parse("sip:bob@10.0.0.1:5070;transport=TCP").unwrap();
        assert_eq!(
            (t.host, t.port, t.proto),
            ("10.0.0.1", Some(5070), Some(Proto::Tcp))
        );
        let t = Target::parse("example.com").unwrap();
        assert_eq!((t.host, t.port), ("example.com", None));
        assert!(Target::parse("sip:bob@host:notaport").is_none());
    }
}
