//! [`build_request`]: one request ready to send down a branch (RFC 3261 16.6): the target
//! resolved, Max-Forwards decremented (or added), the previous hop's Via stamped with
//! `received`/`rport`, Content-Length added for streams, the Record-Route the script asked
//! for (two headers when the request changes sockets), `ksr_onsend_route` run, and our Via
//! with the given branch on top.

use kemi_runtime::msg::Proto;
use kemi_runtime::sip::{HeaderEdit, HeaderKind, Uri};
use kemi_runtime::SipMsg;
use modules::rr::{self, RrConfig, RrSocket};
use tracing::warn;

use super::txn::Hop;
use crate::router::{Routed, Router};
use crate::server::hop::{self, HopRefusal};
use crate::server::locals::Locals;
use crate::server::target::{Target, TargetError};

/// Why a request was not sent.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    /// The target does not resolve or is not sip.
    #[error("{0}")]
    Target(#[from] TargetError),
    /// No local socket serves the transport and family.
    #[error("no local socket to send over {0}")]
    NoSocket(&'static str),
    /// Max-Forwards reached 0 (answer 483).
    #[error("too many hops")]
    TooManyHops,
    /// Max-Forwards does not parse (answer 400).
    #[error("bad Max-Forwards")]
    BadMaxForwards,
    /// `ksr_onsend_route` dropped it.
    #[error("dropped by ksr_onsend_route")]
    Dropped,
}

/// What building needs from the worker.
pub struct OutboundCtx<'a> {
    /// The worker's sockets.
    pub locals: &'a Locals,
    /// The worker's engine, for `ksr_onsend_route`.
    pub router: &'a mut Router,
    /// Whether the script defines `ksr_onsend_route`.
    pub has_onsend: bool,
}

/// Build the request of `msg` for `ruri`, sent to `dst` (else the R-URI), with our Via
/// carrying `branch`. The script's edits in `msg.route` are applied and left as they were.
pub fn build_request(
    ctx: &mut OutboundCtx<'_>,
    msg: &mut SipMsg,
    ruri: &str,
    dst: Option<&str>,
    branch: &str,
) -> Result<(Hop, Vec<u8>), OutboundError> {
    let locals = ctx.locals;
    let (proto, addr) = Target::resolve_uri_in(dst.unwrap_or(ruri), locals, &msg.env.services)?;
    let local = locals
        .pick(proto, &addr, Some(msg.rcv.dst))
        .ok_or(OutboundError::NoSocket(proto.as_str()))?;
    let hop = Hop {
        proto,
        local: local.addr,
        peer: addr,
        flags: msg.route.forward_send,
    };
    let out_sent_by = local.sent_by.clone();
    let base = msg.route.edits.len();
    let result = add_edits(ctx, msg, &out_sent_by, proto);
    if let Err(e) = result {
        msg.route.edits.truncate(base);
        return Err(e);
    }
    // Our Via, without `core::fmt`.
    let mut via_line = String::with_capacity(48 + out_sent_by.len() + branch.len());
    for part in [
        "Via: SIP/2.0/",
        proto.via_name(),
        " ",
        &out_sent_by,
        ";branch=",
        branch,
        ";rport\r\n",
    ] {
        via_line.push_str(part);
    }
    let new_ruri = (msg.message.ruri() != Some(ruri)).then_some(ruri);
    let mut wire = Vec::with_capacity(msg.message.as_bytes().len() + 256);
    msg.message
        .write_request(&mut wire, new_ruri, &msg.route.edits, Some(&via_line));
    msg.route.edits.truncate(base);
    Ok((hop, wire))
}

/// The per-send edits: Max-Forwards, the Via stamp, Content-Length, Record-Route, onsend.
fn add_edits(
    ctx: &mut OutboundCtx<'_>,
    msg: &mut SipMsg,
    out_sent_by: &str,
    proto: Proto,
) -> Result<(), OutboundError> {
    hop::add_hop_edits(msg, proto).map_err(|r| match r {
        HopRefusal::TooManyHops => OutboundError::TooManyHops,
        HopRefusal::BadMaxForwards => OutboundError::BadMaxForwards,
    })?;
    if let Some(rr) = &msg.route.record_route {
        let inbound = ctx
            .locals
            .sockets()
            .iter()
            .find(|s| s.addr == msg.rcv.dst && s.proto == msg.rcv.proto)
            .map_or(out_sent_by, |s| s.sent_by.as_str());
        let cfg = RrConfig::of(&msg.env.services);
        let user = msg
            .ruri()
            .filter(|_| cfg.add_username)
            .and_then(|u| Uri::parse(u).ok())
            .and_then(|u| u.user);
        let lines = rr::header_lines(
            rr,
            &cfg,
            RrSocket {
                sent_by: inbound,
                proto: msg.rcv.proto,
            },
            RrSocket {
                sent_by: out_sent_by,
                proto,
            },
            msg.message.from_tag(),
            user,
        );
        match msg.message.first_kind(HeaderKind::RecordRoute) {
            Some(h) => msg
                .route
                .edits
                .push(HeaderEdit::InsertBefore(h.index, lines)),
            None => msg.route.edits.push(HeaderEdit::Prepend(lines)),
        }
    }
    if ctx.has_onsend {
        let dropped_before = std::mem::replace(&mut msg.route.drop, false);
        if let Routed::Failed(e) = ctx.router.onsend(msg) {
            warn!(
                call_id = msg.message.call_id().unwrap_or(""),
                "ksr_onsend_route failed: {e}"
            );
        }
        let dropped = std::mem::replace(&mut msg.route.drop, dropped_before);
        msg.outbox.clear();
        if dropped {
            return Err(OutboundError::Dropped);
        }
    }
    Ok(())
}
