//! Stateless forwarding: `KSR.forward()` and `KSR.forward_uri(uri)`.
//!
//! Like every export, these do no I/O: they queue an [`Action::Forward`] in `msg.outbox` and the
//! host carries it out once the callback returns (Via, Max-Forwards, `ksr_onsend_route`, the
//! send itself). What is checked here is only what Kamailio's `forward()` would fail on before
//! sending: a request with a usable SIP target.

use kemi_runtime::msg::{Action, Forward, LogLevel};
use kemi_runtime::sip::{Scheme, Uri};
use kemi_runtime::{kemi, SipMsg};

/// True when `uri` is a `sip:`/`sips:` URI with a host: something a request can be sent to.
fn is_routable(uri: &str) -> bool {
    Uri::parse(uri)
        .is_ok_and(|u| matches!(u.kind(), Scheme::Sip | Scheme::Sips) && !u.host.is_empty())
}

/// Queue a forward of the request to `dst` (or to the R-URI when `None`).
fn queue(msg: &mut SipMsg, dst: Option<String>) -> i32 {
    if !msg.message.is_request() {
        msg.log(LogLevel::Err, "forward: not a request");
        return -1;
    }
    let Some(ruri) = msg.ruri().map(str::to_string) else {
        msg.log(LogLevel::Err, "forward: no request URI");
        return -1;
    };
    let target = dst.as_deref().unwrap_or(&ruri);
    if !is_routable(target) {
        msg.log(
            LogLevel::Err,
            &format!("forward: cannot send to [{target}]: not a sip/sips URI with a host"),
        );
        return -1;
    }
    msg.outbox.push(Action::Forward(Forward { ruri, dst }));
    1
}

/// Forward the request statelessly to `$du` when set, else to the Request-URI in effect.
/// Returns 1, or -1 when the message is not a request or the target is not a SIP URI.
#[kemi]
pub fn forward(msg: &mut SipMsg) -> i32 {
    let dst = msg.route.dst_uri.clone().filter(|d| !d.is_empty());
    queue(msg, dst)
}

/// Forward the request statelessly to `uri` (`sip:host[:port][;transport=tcp]`), keeping the
/// Request-URI in effect. Returns 1, or -1 when the message is not a request or `uri` is not a
/// SIP URI with a host.
#[kemi]
pub fn forward_uri(msg: &mut SipMsg, uri: &str) -> i32 {
    queue(msg, Some(uri.to_string()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use kemi_runtime::msg::{RecvInfo, RouteEnv};
    use kemi_runtime::sip::Message;

    use super::*;

    fn msg(text: &str) -> SipMsg {
        let message = Message::parse(text.as_bytes().to_vec().into()).expect("test message parses");
        SipMsg::new(message, RecvInfo::default(), Arc::new(RouteEnv::default()))
    }

    const REQ: &str = "OPTIONS sip:bob@b.example SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\n\
        From: <sip:a@a>;tag=1\r\nTo: <sip:bob@b.example>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";

    #[test]
    fn forward_uses_ruri_then_du() {
        let mut m = msg(REQ);
        assert_eq!(forward(&mut m), 1);
        m.route.dst_uri = Some("sip:10.0.0.1:5070;transport=tcp".into());
        m.route.new_ruri = Some("sip:carol@c.example".into());
        assert_eq!(forward(&mut m), 1);
        assert_eq!(
            m.outbox,
            vec![
                Action::Forward(Forward {
                    ruri: "sip:bob@b.example".into(),
                    dst: None
                }),
                Action::Forward(Forward {
                    ruri: "sip:carol@c.example".into(),
                    dst: Some("sip:10.0.0.1:5070;transport=tcp".into())
                }),
            ]
        );
    }

    #[test]
    fn forward_uri_refuses_non_sip_targets() {
        let mut m = msg(REQ);
        assert_eq!(forward_uri(&mut m, "tel:+123"), -1);
        assert_eq!(forward_uri(&mut m, "not a uri"), -1);
        assert_eq!(forward_uri(&mut m, "sip:[::1]:5080"), 1);
        assert_eq!(m.outbox.len(), 1);
    }

    #[test]
    fn replies_are_not_forwarded() {
        let mut m = msg(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\nContent-Length: 0\r\n\r\n",
        );
        assert_eq!(forward(&mut m), -1);
        assert!(m.outbox.is_empty());
    }
}
