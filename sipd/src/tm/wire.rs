//! Messages the transaction layer writes itself: the CANCEL of a branch (RFC 3261 9.1), the
//! ACK of a non-2xx final (17.1.1.3), both from the branch request as sent; and replies it
//! generates (100 Trying, 408, 487, 200 to a CANCEL).

use std::io::Write as _;

use kemi_runtime::msg::RouteEnv;
use kemi_runtime::sip::{reply, HeaderKind, Message};

/// Write a CANCEL (`ack_to: None`) or an ACK (with the To of the final reply) for `branch_req`:
/// its request line with the new method, its top Via only, its Route headers, From, To,
/// Call-ID, the CSeq number with the new method, Max-Forwards 70, no body.
fn write_hop(branch_req: &Message, method: &str, to: Option<&[u8]>, out: &mut Vec<u8>) {
    // Text from the branch request goes out as received ([`Message::wire`]): a From with a
    // Latin-1 display name is the same in the CANCEL as in the INVITE.
    let ruri = branch_req.ruri().unwrap_or("");
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(branch_req.wire(ruri));
    out.extend_from_slice(b" SIP/2.0\r\n");
    if let Some(Ok(v)) = branch_req.top_via() {
        out.extend_from_slice(b"Via: ");
        out.extend_from_slice(branch_req.wire(v.raw.trim()));
        out.extend_from_slice(b"\r\n");
    }
    for h in branch_req.headers() {
        let value = match h.kind {
            HeaderKind::Route | HeaderKind::From | HeaderKind::CallId => branch_req.wire(h.value),
            HeaderKind::To => to.unwrap_or(branch_req.wire(h.value)),
            _ => continue,
        };
        out.extend_from_slice(h.kind.name().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    let num = branch_req
        .cseq()
        .and_then(Result::ok)
        .map_or(0, |c| c.number);
    let _ = write!(
        out,
        "CSeq: {num} {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
}

/// The CANCEL of a branch.
pub fn cancel(branch_req: &Message) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    write_hop(branch_req, "CANCEL", None, &mut out);
    out
}

/// The ACK of a non-2xx final `reply` to a branch.
pub fn ack(branch_req: &Message, reply: &Message) -> Vec<u8> {
    let to = reply
        .first_kind(HeaderKind::To)
        .map(|h| reply.wire(h.value));
    let mut out = Vec::with_capacity(512);
    write_hop(branch_req, "ACK", to, &mut out);
    out
}

/// A reply generated here to `req`, with the `Server` header when configured.
pub fn local_reply(
    req: &Message,
    code: u16,
    reason: &str,
    env: &RouteEnv,
    src: reply::ReplySource,
) -> Vec<u8> {
    let extra: Vec<String> = env
        .server_header
        .iter()
        .map(|s| format!("Server: {s}\r\n"))
        .collect();
    let mut out = Vec::with_capacity(512);
    reply::build(req, code, reason, None, &extra, src, &mut out);
    out
}

/// `503 Service Unavailable` with `Retry-After` ([`super::RETRY_AFTER_S`]) to `req`: a new
/// transaction would exceed `max_transactions`.
pub fn overload_reply(req: &Message, env: &RouteEnv, src: reply::ReplySource) -> Vec<u8> {
    let mut extra = vec![format!("Retry-After: {}\r\n", super::RETRY_AFTER_S)];
    extra.extend(env.server_header.iter().map(|s| format!("Server: {s}\r\n")));
    let mut out = Vec::with_capacity(512);
    reply::build(req, 503, "Service Unavailable", None, &extra, src, &mut out);
    out
}

/// The usual reason phrase of the codes generated here.
pub fn reason(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        200 => "OK",
        408 => "Request Timeout",
        483 => "Too Many Hops",
        487 => "Request Terminated",
        500 => "Server Internal Error",
        _ => "Error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_and_ack_follow_the_branch() {
        let req = Message::parse(
            "INVITE sip:b@10.0.0.2 SIP/2.0\r\nVia: SIP/2.0/UDP p:5060;branch=z9hG4bKsd.t1.0, SIP/2.0/UDP a\r\n\
             Route: <sip:r;lr>\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@y>\r\nCall-ID: c\r\nCSeq: 7 INVITE\r\n\
             Max-Forwards: 69\r\nContent-Length: 0\r\n\r\n"
                .as_bytes()
                .to_vec()
                .into(),
        )
        .unwrap();
        let c = String::from_utf8(cancel(&req)).unwrap();
        assert_eq!(
            c,
            "CANCEL sip:b@10.0.0.2 SIP/2.0\r\nVia: SIP/2.0/UDP p:5060;branch=z9hG4bKsd.t1.0\r\n\
             Route: <sip:r;lr>\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@y>\r\nCall-ID: c\r\n\
             CSeq: 7 CANCEL\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        );
        let rpl = Message::parse(
            "SIP/2.0 486 Busy\r\nVia: SIP/2.0/UDP p:5060;branch=z9hG4bKsd.t1.0\r\nTo: <sip:b@y>;tag=u\r\nl: 0\r\n\r\n"
                .as_bytes()
                .to_vec()
                .into(),
        )
        .unwrap();
        let a = String::from_utf8(ack(&req, &rpl)).unwrap();
        assert!(a.starts_with("ACK sip:b@10.0.0.2 SIP/2.0\r\n"));
        assert!(a.contains("To: <sip:b@y>;tag=u\r\n") && a.contains("CSeq: 7 ACK\r\n"));
        assert!(Message::parse(a.into_bytes().into()).is_ok());
    }
}
