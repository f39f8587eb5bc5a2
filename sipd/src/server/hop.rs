//! The edits every request gets when sipd forwards it, statelessly or through a transaction
//! (RFC 3261 §16.6): Max-Forwards decremented (or added), the previous hop's Via stamped with
//! `received`/`rport` (`rport` added after `force_rport()` and on WebSocket), and a Content-Length
//! added on stream transports when it was missing.
//! Both `pipeline` and `tm::outbound` call [`add_hop_edits`]; nothing else writes these.

use kemi_runtime::msg::Proto;
use kemi_runtime::sip::{HeaderEdit, HeaderKind};
use kemi_runtime::SipMsg;

use super::via;

/// The Max-Forwards line added to a request that had none (RFC 3261 §16.6 step 3).
pub const DEFAULT_MAX_FORWARDS: &str = "Max-Forwards: 70\r\n";

/// Why a request may not be forwarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HopRefusal {
    /// Max-Forwards is 0: answer 483.
    #[error("Max-Forwards reached 0")]
    TooManyHops,
    /// Max-Forwards does not parse: answer 400.
    #[error("Max-Forwards does not parse")]
    BadMaxForwards,
}

/// Record the per-hop edits in `msg.route.edits` for a send over `proto`. On refusal nothing
/// is recorded.
pub fn add_hop_edits(msg: &mut SipMsg, proto: Proto) -> Result<(), HopRefusal> {
    if !script_did_maxfwd(msg) {
        let mf = msg
            .message
            .first_kind(HeaderKind::MaxForwards)
            .map(|h| (h.index, h.name));
        match (mf, msg.message.max_forwards()) {
            (Some((index, name)), Some(Ok(n))) if n > 0 => {
                let line = format!("{name}: {}\r\n", n - 1);
                msg.route.edits.extend([
                    HeaderEdit::Remove(index),
                    HeaderEdit::InsertBefore(index, line),
                ]);
            }
            (_, Some(Ok(_))) => return Err(HopRefusal::TooManyHops),
            (_, Some(Err(_))) => return Err(HopRefusal::BadMaxForwards),
            (_, None) => msg
                .route
                .edits
                .push(HeaderEdit::Prepend(DEFAULT_MAX_FORWARDS.into())),
        }
    }
    if let Some((h, v)) = via::top(&msg.message) {
        // A WebSocket client's sent-by names no reachable port (RFC 7118 5): the reply relayed
        // back must find its connection by the source port, so `rport` is always filled in.
        let rport = msg.route.force_rport || matches!(msg.rcv.proto, Proto::Ws | Proto::Wss);
        if let Some(line) = via::stamp_received(&h, &v, msg.rcv.src, rport) {
            msg.route.edits.extend([
                HeaderEdit::Remove(h.index),
                HeaderEdit::InsertBefore(h.index, line),
            ]);
        }
    }
    // Streams are framed by Content-Length, so it must be there (RFC 3261 §18.3).
    if proto != Proto::Udp && msg.message.content_length().is_none() {
        let line = format!("Content-Length: {}\r\n", msg.message.body().len());
        msg.route.edits.push(HeaderEdit::Append(line));
    }
    Ok(())
}

/// Whether the script already handled Max-Forwards (`KSR.maxfwd.*` or its own header edit).
fn script_did_maxfwd(msg: &SipMsg) -> bool {
    let names_mf = |line: &str| {
        line.split_once(':')
            .is_some_and(|(name, _)| name.trim().eq_ignore_ascii_case("Max-Forwards"))
    };
    msg.route.edits.iter().any(|e| match e {
        HeaderEdit::Remove(i) => msg
            .message
            .header(*i)
            .is_some_and(|h| h.kind == HeaderKind::MaxForwards),
        HeaderEdit::InsertBefore(_, l)
        | HeaderEdit::AppendAfter(_, l)
        | HeaderEdit::Prepend(l)
        | HeaderEdit::Append(l) => names_mf(l),
    })
}
