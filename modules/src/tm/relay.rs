//! `t_relay` and its variants: queue a stateful relay of the request in `msg.tm.relay`. The
//! host creates the transaction (or absorbs a retransmission), runs the branch callback, sends
//! the branches and manages their client transactions.

use kemi_runtime::msg::{Forward, LogLevel, Proto, TmRoute, TxnMatch};
use kemi_runtime::sip::{Scheme, Uri};
use kemi_runtime::{kemi, SipMsg};

/// Why a relay was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelayError {
    /// The message is a reply.
    #[error("not a request")]
    NotARequest,
    /// No Request-URI in effect.
    #[error("no request URI")]
    NoRuri,
    /// The target cannot be sent to.
    #[error("cannot send to [{0}]: not a sip URI with a host")]
    NotRoutable(String),
    /// The protocol is not one sipd can send over.
    #[error("unknown transport [{0}]")]
    Proto(String),
    /// The transaction was canceled: no new branches (failure callbacks).
    #[error("transaction canceled")]
    Canceled,
    /// t_relay cannot run in branch and onreply callbacks.
    #[error("not allowed in this callback")]
    WrongRoute,
}

thread_local! {
    /// The last URI [`is_routable`] accepted on this thread: a script relaying to one next
    /// hop has it checked by one string comparison instead of a parse per request.
    static LAST_ROUTABLE: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// True when `uri` is a `sip:`/`sips:` URI with a host.
fn is_routable(uri: &str) -> bool {
    if !uri.is_empty() && LAST_ROUTABLE.with_borrow(|last| last == uri) {
        return true;
    }
    let ok = Uri::parse(uri)
        .is_ok_and(|u| matches!(u.kind(), Scheme::Sip | Scheme::Sips) && !u.host.is_empty());
    if ok {
        LAST_ROUTABLE.with_borrow_mut(|last| {
            last.clear();
            last.push_str(uri);
        });
    }
    ok
}

/// `host[:port]` of a URI, IPv6 kept in brackets.
fn hostport(uri: &str) -> Option<String> {
    let u = Uri::parse(uri).ok()?;
    Some(match u.port {
        Some(p) => format!("{}:{p}", u.host),
        None => u.host.to_string(),
    })
}

/// Queue the relay; `dst` overrides `$du`/the R-URI as destination. 0 for an absorbed
/// retransmission, 1 when queued.
fn queue(msg: &mut SipMsg, dst: Option<String>) -> Result<i32, RelayError> {
    if !msg.message.is_request() {
        return Err(RelayError::NotARequest);
    }
    match msg.tm.route {
        TmRoute::Branch | TmRoute::Reply => return Err(RelayError::WrongRoute),
        TmRoute::Failure | TmRoute::BranchFailure if msg.tm.canceled => {
            return Err(RelayError::Canceled)
        }
        _ => {}
    }
    if matches!(
        msg.tm.lookup,
        TxnMatch::Retransmission | TxnMatch::AckToNegative
    ) && msg.tm.route == TmRoute::Request
    {
        msg.tm.absorb = true;
        return Ok(0);
    }
    let ruri = msg.ruri().map(str::to_string).ok_or(RelayError::NoRuri)?;
    let dst = dst.or_else(|| msg.route.dst_uri.clone().filter(|d| !d.is_empty()));
    let target = dst.as_deref().unwrap_or(&ruri);
    if !is_routable(target) {
        return Err(RelayError::NotRoutable(target.to_string()));
    }
    msg.tm.relay = Some(Forward { ruri, dst });
    msg.tm.exists = true;
    Ok(1)
}

/// Run `queue`, logging a refusal and mapping it to -1.
fn relay_result(msg: &mut SipMsg, dst: Option<String>) -> i32 {
    match queue(msg, dst) {
        Ok(n) => n,
        Err(e) => {
            msg.log(LogLevel::Err, &format!("t_relay: {e}"));
            -1
        }
    }
}

/// A destination URI for `proto` and `hostport`.
fn dst_uri(proto: Proto, hostport: &str) -> String {
    match proto {
        Proto::Udp => format!("sip:{hostport}"),
        p => format!("sip:{hostport};transport={}", p.as_str()),
    }
}

/// Parse `[proto:]host[:port]` (Kamailio's proxy string) into a destination URI.
fn proxy_uri(proxy: &str) -> Result<String, RelayError> {
    let proxy = proxy.strip_prefix("sip:").unwrap_or(proxy);
    let (proto, rest) = match proxy.split_once(':') {
        Some((p, rest)) if Proto::parse(p).is_some() && !p.is_empty() => {
            (Proto::parse(p).unwrap_or_default(), rest)
        }
        _ => (Proto::Udp, proxy),
    };
    let uri = dst_uri(proto, rest);
    if is_routable(&uri) {
        Ok(uri)
    } else {
        Err(RelayError::NotRoutable(proxy.to_string()))
    }
}

/// Relay the request statefully to `$du` when set, else to the R-URI in effect. In the request
/// route a retransmission (or an ACK to a negative reply) is absorbed and 0 returned. Returns
/// 1 when queued, -1 on error (a reply, no usable target, a canceled transaction).
#[kemi(module = "tm")]
pub fn t_relay(msg: &mut SipMsg) -> i32 {
    relay_result(msg, None)
}

/// Like `t_relay`; `flags` (Kamailio's no-100/no-error-reply bits) are accepted and ignored.
#[kemi(module = "tm")]
pub fn t_relay_to_flags(msg: &mut SipMsg, flags: i32) -> i32 {
    let _ = flags;
    relay_result(msg, None)
}

/// Relay to `proxy` (`[proto:]host[:port]`), keeping the R-URI. 1, 0 or -1 as `t_relay`.
#[kemi(module = "tm")]
pub fn t_relay_to_proxy(msg: &mut SipMsg, proxy: &str) -> i32 {
    match proxy_uri(proxy) {
        Ok(uri) => relay_result(msg, Some(uri)),
        Err(e) => {
            msg.log(LogLevel::Err, &format!("t_relay_to_proxy: {e}"));
            -1
        }
    }
}

/// `t_relay_to_proxy` with ignored `flags`.
#[kemi(module = "tm")]
pub fn t_relay_to_proxy_flags(msg: &mut SipMsg, proxy: &str, flags: i32) -> i32 {
    let _ = flags;
    t_relay_to_proxy(msg, proxy)
}

/// Relay to `$du`/the R-URI in effect over transport `proto` (`udp`, `tcp`).
#[kemi(module = "tm")]
pub fn t_relay_to_proto(msg: &mut SipMsg, proto: &str) -> i32 {
    let Some(p) = Proto::parse(proto) else {
        msg.log(
            LogLevel::Err,
            &format!("t_relay_to_proto: {}", RelayError::Proto(proto.into())),
        );
        return -1;
    };
    let target = msg
        .route
        .dst_uri
        .clone()
        .filter(|d| !d.is_empty())
        .or_else(|| msg.ruri().map(str::to_string));
    match target.as_deref().and_then(hostport) {
        Some(hp) => relay_result(msg, Some(dst_uri(p, &hp))),
        None => {
            msg.log(LogLevel::Err, "t_relay_to_proto: no usable target");
            -1
        }
    }
}

/// Relay to `addr`:`port` over `proto`, keeping the R-URI.
#[kemi(module = "tm")]
pub fn t_relay_to_proto_addr(msg: &mut SipMsg, proto: &str, addr: &str, port: i32) -> i32 {
    let Some(p) = Proto::parse(proto) else {
        msg.log(
            LogLevel::Err,
            &format!("t_relay_to_proto_addr: {}", RelayError::Proto(proto.into())),
        );
        return -1;
    };
    let Ok(port) = u16::try_from(port) else {
        msg.log(
            LogLevel::Err,
            &format!("t_relay_to_proto_addr: bad port {port}"),
        );
        return -1;
    };
    let host = if addr.contains(':') && !addr.starts_with('[') {
        format!("[{addr}]")
    } else {
        addr.to_string()
    };
    relay_result(msg, Some(dst_uri(p, &format!("{host}:{port}"))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_strings() {
        assert_eq!(
            proxy_uri("tcp:10.0.0.1:5070").unwrap(),
            "sip:10.0.0.1:5070;transport=tcp"
        );
        assert_eq!(proxy_uri("10.0.0.1:5070").unwrap(), "sip:10.0.0.1:5070");
        assert_eq!(proxy_uri("udp:h.example").unwrap(), "sip:h.example");
        assert!(proxy_uri("").is_err());
    }

    #[test]
    fn routable_remembered_only_when_accepted() {
        for _ in 0..2 {
            assert!(is_routable("sip:bob@127.0.0.1:5070"));
            assert!(!is_routable("tel:+15551234"));
            assert!(!is_routable("sip:"));
            assert!(!is_routable(""));
            assert!(is_routable("sips:h.example"));
        }
    }
}
