//! [`TmHost`]: the worker side of the transaction layer. It borrows the worker's engine,
//! sockets and output queue for one event and carries out RFC 3261 16 for it:
//!
//! - [`TmHost::after_request`]: once `ksr_request_route` returned: absorb a retransmission
//!   (resend the last reply) or an ACK to a negative reply; answer a matched CANCEL and cancel
//!   every pending branch; create the transaction, send 100 Trying to an INVITE, send the
//!   script's stateful replies, relay to the first target and every appended branch (each
//!   through the branch callback).
//! - [`TmHost::on_reply`]: a reply whose top Via names one of our branches: its client
//!   transaction decides (pass up, absorb, re-ACK), then the core reply route and the onreply
//!   callback run; provisionals and 2xx go upstream at once, a 2xx or 6xx cancels the other
//!   branches, and when every branch failed the failure callback may relay again (serial
//!   forking) before the best reply goes upstream (16.7).
//! - [`TmHost::on_timer`]: retransmissions (A, E, G), final-response timeouts (B/F/C: a
//!   CANCEL when the branch had a provisional reply, then 408 as its result), and the waits
//!   (D, H, I, J, K) after which the transaction leaves the table.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kemi_runtime::msg::{
    BranchTarget, Forward, Proto, RecvInfo, RouteEnv, SendFlags, TmCtx, TmRoute, TxnMatch,
};
use kemi_runtime::sip::reply::ReplySource;
use kemi_runtime::sip::Message;
use kemi_runtime::SipMsg;
use tracing::{debug, info, warn};

use super::client::{ClientTimer, ClientTxn, ReplyAction, TimerAction};
use super::config::FailureReplyMode;
use super::key::{self, ServerKey};
use super::outbound::{build_request, OutboundCtx, OutboundError};
use super::server::{SendOutcome, ServerTimer, ServerTxn};
use super::txn::{BranchLeg, Callbacks, CancelLeg, Hop, Txn};
use super::{lock, wire, TimerHandle, TimerKind, TimerQueue, TimerReq, TmLayer, TxnCell};
use crate::router::{Routed, Router};
use crate::server::locals::Locals;
use crate::server::pipeline::{Dest, Outgoing};
use crate::server::script_log;
use crate::server::via::Branch as StatelessBranch;

/// One event's view of the worker: what the transaction layer may use and where its output
/// goes.
pub struct TmHost<'a> {
    /// The shared layer.
    pub tm: &'a TmLayer,
    /// The worker's engine.
    pub router: &'a mut Router,
    /// Host facts for new contexts.
    pub env: &'a Arc<RouteEnv>,
    /// The worker's sockets.
    pub locals: &'a Locals,
    /// Whether the script defines `ksr_onsend_route`.
    pub has_onsend: bool,
    /// Messages to send.
    pub out: &'a mut Vec<Outgoing>,
    /// The worker's timer queue.
    pub timers: &'a mut TimerQueue,
}

/// What became of a reply given to [`TmHost::on_reply`].
#[derive(Debug)]
pub enum ReplyHandling {
    /// The transaction took it.
    Done,
    /// No live transaction: forward it statelessly (RFC 3261 16.7 for stray 2xx).
    Stateless(Message),
}

/// Where replies to a request received as `rcv` go (RFC 3261 18.2.2, RFC 3581 4): the source
/// address when the top Via has `rport` or the script called `force_rport()`.
fn upstream_hop(req: &Message, rcv: &RecvInfo, flags: SendFlags, force_rport: bool) -> Hop {
    let peer = match rcv.proto {
        Proto::Udp => crate::server::via::udp_reply_addr(req, rcv.src, force_rport),
        _ => rcv.src,
    };
    Hop {
        proto: rcv.proto,
        local: rcv.dst,
        peer,
        flags,
    }
}

/// The ACK of a non-2xx final `reply` to the branch request `sent` (as sent); `None` if the
/// request we built does not parse back, which would be our bug (logged).
fn ack_of(sent: &Bytes, reply: &Message) -> Option<Vec<u8>> {
    match Message::parse(sent.clone()) {
        Ok(req) => Some(wire::ack(&req, reply)),
        Err(e) => {
            warn!("branch request does not parse back, no ACK sent: {e}");
            None
        }
    }
}

fn status_of(wire: &[u8]) -> u16 {
    wire.get(8..11)
        .and_then(|d| std::str::from_utf8(d).ok())
        .and_then(|d| d.parse().ok())
        .unwrap_or(500)
}

impl TmHost<'_> {
    fn send(&mut self, hop: Hop, wire: impl Into<crate::transport::Wire>) {
        self.out.push(Outgoing {
            proto: hop.proto,
            local: hop.local,
            dest: Dest::Addr(hop.peer),
            wire: wire.into(),
            flags: hop.flags,
        });
    }

    /// Arm a timer of `cell`, recording it in `handles` (the transaction's `timers`).
    fn arm(
        &mut self,
        cell: &Arc<TxnCell>,
        handles: &mut Vec<(TimerKind, TimerHandle)>,
        kind: TimerKind,
        after: Duration,
    ) {
        let req = TimerReq {
            txn: Arc::downgrade(cell),
            kind,
        };
        handles.push((kind, self.timers.arm(req, after)));
    }

    /// Cancel the timers of `txn` that can no longer do anything (a retransmission timer once
    /// a reply came, a final-response timer once the final came or it was re-armed, G and H
    /// once the ACK came), so they neither fire nor stay in a queue.
    fn prune(&mut self, txn: &mut Txn) {
        let mut i = 0;
        while let Some(&(kind, h)) = txn.timers.get(i) {
            if txn.is_live(kind) {
                i += 1;
            } else {
                txn.timers.swap_remove(i);
                self.tm.cancel_timer(self.timers, h);
            }
        }
    }

    fn arm_client(
        &mut self,
        cell: &Arc<TxnCell>,
        handles: &mut Vec<(TimerKind, TimerHandle)>,
        branch: usize,
        cancel: bool,
        timers: Vec<(ClientTimer, Duration)>,
    ) {
        for (timer, after) in timers {
            self.arm(
                cell,
                handles,
                TimerKind::Client {
                    branch,
                    cancel,
                    timer,
                },
                after,
            );
        }
    }

    /// Send `wire` (status `code`) upstream through the server transaction.
    fn reply_upstream(&mut self, cell: &Arc<TxnCell>, txn: &mut Txn, code: u16, wire: Vec<u8>) {
        match txn.server.send_reply(code, &wire, &self.tm.config) {
            SendOutcome::Send(timers) => {
                for (t, after) in timers {
                    self.arm(cell, &mut txn.timers, TimerKind::Server(t), after);
                }
                if code >= 300 {
                    if let Some(w) = &txn.watch {
                        w.0.reply_out(code, None);
                    }
                }
                self.send(txn.upstream, wire);
            }
            // A 2xx is forwarded even when a final went up already (RFC 3261 16.7 step 5).
            SendOutcome::Refused if (200..300).contains(&code) && txn.invite => {
                self.send(txn.upstream, wire)
            }
            SendOutcome::Refused => {
                debug!(
                    code,
                    "reply not sent: the transaction already has a final reply"
                )
            }
        }
    }

    /// A reply generated here.
    fn local_reply(&mut self, cell: &Arc<TxnCell>, txn: &mut Txn, code: u16) {
        let wire = wire::local_reply(
            &txn.request,
            code,
            wire::reason(code),
            self.env,
            ReplySource {
                addr: txn.rcv.src,
                force_rport: txn.force_rport,
            },
        );
        self.reply_upstream(cell, txn, code, wire);
    }

    /// Remove the transaction when everything in it ended, and cancel its timers; once it
    /// only waits for retransmissions, free what the wait does not need.
    fn cleanup(&mut self, txn: &mut Txn) {
        if txn.is_finished() {
            self.tm.remove(txn);
            self.tm.cancel_timers(self.timers, &mut txn.timers);
        } else {
            self.prune(txn);
            txn.shrink_if_waiting();
        }
    }

    /// Refuse to start a transaction over `max_transactions`: `503 Service Unavailable` with
    /// `Retry-After`, sent statelessly.
    fn refuse(&mut self, msg: &SipMsg) {
        debug!(
            call_id = msg.message.call_id().unwrap_or(""),
            "503: max_transactions ({}) reached", self.tm.config.max_transactions
        );
        let w = wire::overload_reply(
            &msg.message,
            self.env,
            ReplySource {
                addr: msg.rcv.src,
                force_rport: msg.route.force_rport,
            },
        );
        let hop = upstream_hop(
            &msg.message,
            &msg.rcv,
            msg.route.reply_send,
            msg.route.force_rport,
        );
        self.send(hop, w);
    }

    /// Carry out what the request route asked of the transaction layer. Returns true when
    /// the layer took the request (nothing else is to be done with it).
    pub fn after_request(&mut self, msg: &mut SipMsg, found: Option<Arc<TxnCell>>) -> bool {
        let is_ack = msg.message.method_str() == Some("ACK");
        if msg.tm.absorb {
            if let Some(cell) = found {
                let mut txn = lock(&cell);
                match msg.tm.lookup {
                    TxnMatch::AckToNegative => {
                        for (t, after) in txn.server.on_ack(&self.tm.config) {
                            self.arm(&cell, &mut txn.timers, TimerKind::Server(t), after);
                        }
                        self.cleanup(&mut txn);
                    }
                    _ => {
                        if let Some(w) = txn.server.on_retransmission().map(<[u8]>::to_vec) {
                            let hop = txn.upstream;
                            self.send(hop, w);
                        }
                    }
                }
            }
            return true;
        }
        let Some(relay) = msg.tm.relay.take() else {
            if msg.tm.new_tran || !msg.tm.replies.is_empty() {
                self.create(msg, None);
                return true;
            }
            return false;
        };
        match (msg.tm.lookup, found) {
            (TxnMatch::CancelOfInvite, Some(cell)) => {
                self.cancel_request(msg, &cell);
                return true;
            }
            _ if is_ack || msg.tm.lookup == TxnMatch::CancelUnmatched => {
                // End-to-end ACK, unmatched CANCEL: forwarded statelessly.
                self.stateless(msg, &relay);
                return true;
            }
            _ => {}
        }
        self.create(msg, Some(relay));
        true
    }

    /// Forward statelessly (an ACK to a 2xx, a CANCEL without a transaction).
    fn stateless(&mut self, msg: &mut SipMsg, f: &Forward) {
        let branch = format!(
            "{}{}",
            crate::server::via::BRANCH_PREFIX,
            StatelessBranch::for_request(&msg.message, 0).hex()
        );
        let mut ctx = OutboundCtx {
            locals: self.locals,
            router: self.router,
            has_onsend: self.has_onsend,
        };
        match build_request(&mut ctx, msg, &f.ruri, f.dst.as_deref(), &branch) {
            Ok((hop, wire)) => self.send(hop, wire),
            Err(e) => info!(
                call_id = msg.message.call_id().unwrap_or(""),
                "stateless relay failed: {e}"
            ),
        }
    }

    /// Answer a CANCEL 200 and cancel the pending branches of its INVITE.
    fn cancel_request(&mut self, msg: &SipMsg, cell: &Arc<TxnCell>) {
        let ok = wire::local_reply(
            &msg.message,
            200,
            "canceling",
            self.env,
            ReplySource {
                addr: msg.rcv.src,
                force_rport: msg.route.force_rport,
            },
        );
        let hop = upstream_hop(
            &msg.message,
            &msg.rcv,
            msg.route.reply_send,
            msg.route.force_rport,
        );
        self.send(hop, ok);
        let mut txn = lock(cell);
        txn.canceled = true;
        self.cancel_branches(cell, &mut txn, None);
        if !txn.has_pending() && !txn.server.is_final() {
            self.local_reply(cell, &mut txn, 487);
        }
        self.cleanup(&mut txn);
    }

    /// Send a CANCEL down every pending branch but `except` (delayed until a provisional
    /// reply for branches that had none).
    fn cancel_branches(&mut self, cell: &Arc<TxnCell>, txn: &mut Txn, except: Option<usize>) {
        if !txn.invite {
            return;
        }
        for i in 0..txn.branches.len() {
            if Some(i) == except {
                continue;
            }
            self.cancel_branch(cell, txn, i);
        }
    }

    fn cancel_branch(&mut self, cell: &Arc<TxnCell>, txn: &mut Txn, i: usize) {
        let t = self.tm.config;
        let fr = txn.fr;
        let Some(b) = txn.branches.get_mut(i) else {
            return;
        };
        if !b.is_pending() && !b.timed_out || b.cancel.is_some() {
            return;
        }
        if !b.provisional {
            b.cancel_pending = true;
            return;
        }
        let Ok(sent) = Message::parse(b.request.clone()) else {
            return;
        };
        let w = wire::cancel(&sent);
        let mut client = ClientTxn::new(false, b.hop.proto != Proto::Udp);
        let timers = client.start(&t, fr);
        let hop = b.hop;
        let request = Bytes::from(w);
        b.cancel = Some(CancelLeg {
            client,
            request: request.clone(),
        });
        b.cancel_pending = false;
        self.send(hop, request);
        self.arm_client(cell, &mut txn.timers, i, true, timers);
    }

    /// Create the transaction and carry out the script's replies and relay.
    fn create(&mut self, msg: &mut SipMsg, relay: Option<Forward>) {
        let Some(method) = msg.message.method_str() else {
            return;
        };
        let Some(key) = ServerKey::of(&msg.message, method) else {
            return;
        };
        if !self
            .tm
            .admit(msg.message.to_tag().is_some_and(|t| !t.is_empty()))
        {
            self.refuse(msg);
            return;
        }
        let invite = method == "INVITE";
        let watch = msg.tm.watch.take();
        let (fr, fr_inv) = self.timeouts(&msg.tm, self.tm.config.fr, self.tm.config.fr_inv);
        let mut callbacks = Callbacks::default();
        callbacks.update(&msg.tm);
        let txn = Txn {
            id: self.tm.new_id(),
            key,
            invite,
            request: msg.message.clone(),
            rcv: msg.rcv,
            force_rport: msg.route.force_rport,
            leg_start: 0,
            upstream: upstream_hop(
                &msg.message,
                &msg.rcv,
                msg.route.reply_send,
                msg.route.force_rport,
            ),
            server: ServerTxn::new(invite, msg.rcv.proto != Proto::Udp),
            // Room for one branch, the usual case (a `Vec`'s first push reserves four).
            branches: Vec::with_capacity(1),
            route: callbacks.failure.is_some().then(|| msg.route.clone()),
            flags: (msg.route.flags, msg.route.bflags),
            callbacks,
            fr,
            fr_inv,
            canceled: false,
            removed: false,
            timers: Vec::new(),
            lean: false,
            watch: watch.clone(),
        };
        let (cell, fresh) = self.tm.insert(txn);
        let mut txn = lock(&cell);
        if fresh {
            if let Some(w) = &watch {
                w.0.bound();
            }
        } else {
            // Another worker created it meanwhile: this copy is a retransmission.
            if let Some(w) = txn.server.on_retransmission().map(<[u8]>::to_vec) {
                let hop = txn.upstream;
                self.send(hop, w);
            }
            return;
        }
        if invite && relay.is_some() && msg.tm.replies.is_empty() && self.tm.config.auto_inv_100 {
            self.local_reply(&cell, &mut txn, 100);
        }
        for r in std::mem::take(&mut msg.tm.replies) {
            self.reply_upstream(&cell, &mut txn, r.code, r.wire);
        }
        if let Some(first) = relay {
            let extra = std::mem::take(&mut msg.tm.branches);
            self.relay_all(&cell, &mut txn, msg, first, extra);
        }
        self.cleanup(&mut txn);
    }

    /// The final-response timeouts after the script's `t_set_fr`/`t_reset_fr`.
    fn timeouts(&self, tm: &TmCtx, fr: Duration, fr_inv: Duration) -> (Duration, Duration) {
        if tm.fr_reset {
            return (self.tm.config.fr, self.tm.config.fr_inv);
        }
        match tm.fr_ms {
            Some((inv, non)) => (
                if non > 0 {
                    Duration::from_millis(non.into())
                } else {
                    fr
                },
                if inv > 0 {
                    Duration::from_millis(inv.into())
                } else {
                    fr_inv
                },
            ),
            None => (fr, fr_inv),
        }
    }

    /// Send the first target and the appended branches; with none sent and no final reply
    /// upstream, answer 500 (or 483 when Max-Forwards ran out).
    fn relay_all(
        &mut self,
        cell: &Arc<TxnCell>,
        txn: &mut Txn,
        msg: &mut SipMsg,
        first: Forward,
        extra: Vec<BranchTarget>,
    ) -> usize {
        let mut sent = 0;
        let mut failure = 500;
        let targets = std::iter::once(BranchTarget {
            uri: first.ruri,
            dst: first.dst,
        })
        .chain(extra);
        for target in targets {
            match self.add_branch(cell, txn, msg, &target) {
                Ok(true) => sent += 1,
                Ok(false) => {}
                Err(OutboundError::TooManyHops) => failure = 483,
                Err(e) => warn!(
                    call_id = msg.message.call_id().unwrap_or(""),
                    "relay to {} failed: {e}", target.uri
                ),
            }
        }
        if sent == 0 && !txn.has_pending() && !txn.server.is_final() {
            self.local_reply(cell, txn, failure);
        }
        sent
    }

    /// Build and send one branch (through the branch callback); Ok(false) when the callback
    /// dropped it.
    fn add_branch(
        &mut self,
        cell: &Arc<TxnCell>,
        txn: &mut Txn,
        msg: &mut SipMsg,
        target: &BranchTarget,
    ) -> Result<bool, OutboundError> {
        let index = txn.branches.len();
        let branch = key::branch_param(txn.id, index);
        let mut ctx = OutboundCtx {
            locals: self.locals,
            router: self.router,
            has_onsend: self.has_onsend,
        };
        let built = match txn.callbacks.branch.clone() {
            Some(name) => {
                let mut bmsg = SipMsg::new(msg.message.clone(), msg.rcv, Arc::clone(self.env));
                bmsg.route = msg.route.clone();
                bmsg.route.new_ruri = Some(target.uri.clone());
                bmsg.route.dst_uri = target.dst.clone();
                bmsg.route.drop = false;
                bmsg.tm.route = TmRoute::Branch;
                bmsg.tm.exists = true;
                bmsg.tm.branch_index = u32::try_from(index).ok();
                if let Routed::Failed(e) = ctx.router.run(&name, &mut bmsg, None) {
                    script_log::script_failed(
                        &name,
                        bmsg.message.call_id().unwrap_or(""),
                        None,
                        &e,
                    );
                }
                if bmsg.route.drop {
                    debug!("branch {index} dropped by {name}");
                    return Ok(false);
                }
                txn.callbacks.update(&bmsg.tm);
                let ruri = bmsg.ruri().unwrap_or(&target.uri).to_string();
                let dst = bmsg.route.dst_uri.clone().filter(|d| !d.is_empty());
                build_request(&mut ctx, &mut bmsg, &ruri, dst.as_deref(), &branch)?
            }
            None => build_request(&mut ctx, msg, &target.uri, target.dst.as_deref(), &branch)?,
        };
        // Kept as bytes, not parsed again: only a CANCEL or an ACK of this branch needs its
        // headers, and those re-read it then.
        let (hop, wire) = built;
        // One buffer for the send and the transaction (no copy of the request).
        let request = Bytes::from(wire);
        let mut client = ClientTxn::new(txn.invite, hop.proto != Proto::Udp);
        let timers = client.start(&self.tm.config, txn.fr);
        self.send(hop, request.clone());
        txn.branches.push(BranchLeg {
            client,
            request,
            hop,
            code: 0,
            reply: None,
            reply_wire: None,
            provisional: false,
            timed_out: false,
            cancel_pending: false,
            cancel: None,
            dropped: false,
        });
        self.arm_client(cell, &mut txn.timers, index, false, timers);
        Ok(true)
    }

    /// A reply to branch `index` of transaction `id` (from its top Via). Gives the reply back
    /// when no such transaction lives (the caller forwards it statelessly, as RFC 3261 16.7
    /// asks for stray 2xx).
    pub fn on_reply(
        &mut self,
        id: key::TxnId,
        index: usize,
        message: Message,
        rcv: RecvInfo,
    ) -> ReplyHandling {
        let Some(cell) = self.tm.by_id(id) else {
            return ReplyHandling::Stateless(message);
        };
        let mut txn = lock(&cell);
        if txn.removed || index >= txn.branches.len() {
            return ReplyHandling::Stateless(message);
        }
        let Some(code) = message.status() else {
            return ReplyHandling::Done;
        };
        let t = self.tm.config;
        let is_cancel_reply = message
            .cseq()
            .and_then(Result::ok)
            .is_some_and(|c| c.method.as_str() == "CANCEL");
        if is_cancel_reply {
            let parts = &mut *txn;
            if let Some(c) = parts
                .branches
                .get_mut(index)
                .and_then(|b| b.cancel.as_mut())
            {
                let (_, timers) = c.client.on_reply(code, &t, t.fr_inv);
                self.arm_client(&cell, &mut parts.timers, index, true, timers);
            }
            self.cleanup(&mut txn);
            return ReplyHandling::Done;
        }
        let mut rmsg = SipMsg::new(message, rcv, Arc::clone(self.env));
        rmsg.route.dialog.clone_from(&txn.watch);
        if let Routed::Failed(e) = self.router.route(&mut rmsg) {
            script_log::script_failed("ksr_reply_route (reply dropped)", "", Some(rcv.src), &e);
            return ReplyHandling::Done;
        }
        if rmsg.route.drop {
            debug!("reply dropped by ksr_reply_route");
            return ReplyHandling::Done;
        }
        if let Some(name) = txn.callbacks.reply.clone() {
            rmsg.tm.route = TmRoute::Reply;
            rmsg.tm.exists = true;
            (rmsg.route.flags, rmsg.route.bflags) = txn.flags;
            rmsg.tm.branch_index = u32::try_from(index).ok();
            rmsg.tm.canceled = txn.canceled;
            rmsg.tm.status = txn.server.status();
            if let Routed::Failed(e) = self.router.run(&name, &mut rmsg, None) {
                script_log::script_failed(&name, "", None, &e);
            }
            if rmsg.route.drop {
                debug!("reply dropped by {name}");
                return ReplyHandling::Done;
            }
        }
        let fr_inv = txn.fr_inv;
        let parts = &mut *txn;
        let Some(b) = parts.branches.get_mut(index) else {
            return ReplyHandling::Done;
        };
        let (action, timers) = b.client.on_reply(code, &t, fr_inv);
        self.arm_client(&cell, &mut parts.timers, index, false, timers);
        match action {
            ReplyAction::Absorb => {}
            ReplyAction::Reack => {
                if let Some(w) = ack_of(&b.request, &rmsg.message) {
                    let hop = b.hop;
                    self.send(hop, w);
                }
            }
            ReplyAction::PassUp { ack } => {
                if ack {
                    if let Some(w) = ack_of(&b.request, &rmsg.message) {
                        let hop = b.hop;
                        self.send(hop, w);
                    }
                }
                self.pass_up(&cell, &mut txn, index, rmsg);
            }
        }
        self.cleanup(&mut txn);
        ReplyHandling::Done
    }

    /// The proxy core's part for a reply its client transaction passed up (16.7).
    fn pass_up(&mut self, cell: &Arc<TxnCell>, txn: &mut Txn, index: usize, rmsg: SipMsg) {
        let Some(code) = rmsg.message.status() else {
            return;
        };
        if code < 300 {
            if let Some(w) = &txn.watch {
                w.0.reply_out(code, Some((&rmsg.message, &rmsg.rcv)));
            }
        }
        let mut w = Vec::with_capacity(rmsg.message.as_bytes().len());
        rmsg.message.write_response(&mut w, &rmsg.route.edits, true);
        let Some(b) = txn.branches.get_mut(index) else {
            return;
        };
        if code < 200 {
            b.provisional = true;
            if b.cancel_pending {
                self.cancel_branch(cell, txn, index);
            }
            if code > 100 {
                self.reply_upstream(cell, txn, code, w);
            }
            return;
        }
        b.code = code;
        b.reply_wire = Some(w);
        if code < 300 {
            let w = b.reply_wire.take().unwrap_or_default();
            self.reply_upstream(cell, txn, code, w);
            self.cancel_branches(cell, txn, Some(index));
            return;
        }
        b.reply = Some(rmsg.message);
        if code >= 600 {
            self.cancel_branches(cell, txn, Some(index));
        }
        self.branch_failed(txn, index);
        self.maybe_finish(cell, txn);
    }

    /// Run the branch-failure callback for branch `index`.
    fn branch_failed(&mut self, txn: &mut Txn, index: usize) {
        let Some(name) = txn.callbacks.branch_failure.clone() else {
            return;
        };
        let mut fmsg = self.failure_msg(txn, Some(index));
        fmsg.tm.route = TmRoute::BranchFailure;
        if let Routed::Failed(e) = self.router.run(&name, &mut fmsg, None) {
            script_log::script_failed(&name, "", None, &e);
        }
    }

    /// The request context for a failure callback about branch `index` (the best one).
    fn failure_msg(&self, txn: &Txn, index: Option<usize>) -> SipMsg {
        let mut fmsg = SipMsg::new(txn.request.clone(), txn.rcv, Arc::clone(self.env));
        if let Some(r) = &txn.route {
            fmsg.route = r.clone();
            fmsg.route.drop = false;
        }
        let b = index.and_then(|i| txn.branches.get(i));
        fmsg.tm = TmCtx {
            route: TmRoute::Failure,
            exists: true,
            on_branch: txn.callbacks.branch.clone(),
            on_reply: txn.callbacks.reply.clone(),
            on_failure: None,
            on_branch_failure: txn.callbacks.branch_failure.clone(),
            branch_index: index.and_then(|i| u32::try_from(i).ok()),
            reply: b.and_then(|b| b.reply.clone()),
            reply_code: b.map(|b| b.code).or(Some(408)),
            canceled: txn.canceled,
            branch_timeout: b.is_some_and(|b| b.timed_out),
            branch_replied: b.is_some_and(|b| b.reply.is_some() || b.provisional),
            any_timeout: txn.branches.iter().any(|b| b.timed_out),
            any_replied: txn
                .branches
                .iter()
                .any(|b| b.reply.is_some() || b.provisional),
            status: txn.server.status(),
            ..TmCtx::default()
        };
        fmsg
    }

    /// When every branch failed: the failure callback (which may relay again), then the best
    /// reply upstream.
    fn maybe_finish(&mut self, cell: &Arc<TxnCell>, txn: &mut Txn) {
        if txn.server.is_final() || txn.has_pending() {
            return;
        }
        let best = txn.best_final();
        if let Some(name) = txn.callbacks.failure.take() {
            let mut fmsg = self.failure_msg(txn, best);
            if let Routed::Failed(e) = self.router.run(&name, &mut fmsg, None) {
                script_log::script_failed(&name, fmsg.message.call_id().unwrap_or(""), None, &e);
            }
            txn.callbacks.update(&fmsg.tm);
            if let Some(r) = txn.route.as_mut() {
                // AVPs and XAVPs belong to the transaction, as in Kamailio: what the failure
                // callback left there (dispatcher's remaining candidates after `ds_next_dst`)
                // is what the next failure callback sees.
                r.avps.clone_from(&fmsg.route.avps);
                r.xavps.clone_from(&fmsg.route.xavps);
            }
            let (fr, fr_inv) = self.timeouts(&fmsg.tm, txn.fr, txn.fr_inv);
            txn.fr = fr;
            txn.fr_inv = fr_inv;
            if fmsg.tm.drop_replies {
                for b in &mut txn.branches {
                    b.dropped = true;
                }
            }
            for r in std::mem::take(&mut fmsg.tm.replies) {
                self.reply_upstream(cell, txn, r.code, r.wire);
            }
            if let Some(first) = fmsg.tm.relay.take() {
                if !txn.server.is_final() && !txn.canceled {
                    let extra = std::mem::take(&mut fmsg.tm.branches);
                    let before = txn.branches.len();
                    if self.relay_all(cell, txn, &mut fmsg, first, extra) > 0 {
                        self.new_leg(txn, before);
                        return;
                    }
                }
            }
            if txn.server.is_final() {
                return;
            }
        }
        let best = txn.best_final();
        let forward = best
            .and_then(|i| txn.branches.get_mut(i))
            .and_then(|b| b.reply_wire.take());
        match forward {
            Some(w) => {
                let code = status_of(&w);
                if code == 503 {
                    // RFC 3261 16.7 step 6: a 503 is not passed on as such.
                    self.local_reply(cell, txn, 500);
                } else {
                    self.reply_upstream(cell, txn, code, w);
                }
            }
            None if txn.canceled => self.local_reply(cell, txn, 487),
            None => self.local_reply(cell, txn, 408),
        }
    }

    /// A failure callback started a new serial-forking leg at branch `start`: drop the earlier
    /// replies `failure_reply_mode` says to drop.
    fn new_leg(&self, txn: &mut Txn, start: usize) {
        let dropped = match self.tm.config.failure_reply_mode {
            FailureReplyMode::KeepAll => 0..0,
            FailureReplyMode::DropLastLeg => txn.leg_start..start,
            FailureReplyMode::DropAll | FailureReplyMode::DropPrevious => 0..start,
        };
        for b in txn.branches.get_mut(dropped).into_iter().flatten() {
            b.dropped = true;
        }
        txn.leg_start = start;
    }

    /// A timer armed earlier (`handle`) expired.
    pub fn on_timer(&mut self, handle: TimerHandle, req: TimerReq) {
        let Some(cell) = req.txn.upgrade() else {
            return;
        };
        let mut txn = lock(&cell);
        if txn.removed {
            return;
        }
        txn.timers.retain(|(_, h)| *h != handle);
        let t = self.tm.config;
        match req.kind {
            TimerKind::Server(timer) => {
                let (resend, next) = txn.server.on_timer(timer, &t);
                if let Some(w) = resend.map(<[u8]>::to_vec) {
                    let hop = txn.upstream;
                    self.send(hop, w);
                }
                if let Some((timer, after)) = next {
                    self.arm(&cell, &mut txn.timers, TimerKind::Server(timer), after);
                }
                if matches!(timer, ServerTimer::AckTimeout) {
                    debug!("no ACK for the final reply");
                }
            }
            TimerKind::Client {
                branch,
                cancel: true,
                timer,
            } => {
                let parts = &mut *txn;
                if let Some(b) = parts.branches.get_mut(branch) {
                    if let Some(c) = b.cancel.as_mut() {
                        let (action, next) = c.client.on_timer(timer, &t);
                        let (hop, w) = (b.hop, c.request.to_vec());
                        if action == TimerAction::Retransmit {
                            self.send(hop, w);
                        }
                        if let Some(n) = next {
                            self.arm_client(&cell, &mut parts.timers, branch, true, vec![n]);
                        }
                    }
                }
            }
            TimerKind::Client {
                branch,
                cancel: false,
                timer,
            } => {
                let parts = &mut *txn;
                let Some(b) = parts.branches.get_mut(branch) else {
                    return;
                };
                let (action, next) = b.client.on_timer(timer, &t);
                if let Some(n) = next {
                    self.arm_client(&cell, &mut parts.timers, branch, false, vec![n]);
                }
                match action {
                    TimerAction::Nothing => {}
                    TimerAction::Retransmit => {
                        let (hop, w) = (b.hop, b.request.to_vec());
                        self.send(hop, w);
                    }
                    TimerAction::Timeout => {
                        b.timed_out = true;
                        if b.is_pending() {
                            b.code = 408;
                        }
                        if txn.invite {
                            self.cancel_branch(&cell, &mut txn, branch);
                        }
                        self.branch_failed(&mut txn, branch);
                        self.maybe_finish(&cell, &mut txn);
                    }
                }
            }
        }
        self.cleanup(&mut txn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_from_wire() {
        assert_eq!(status_of(b"SIP/2.0 486 Busy Here\r\n"), 486);
        assert_eq!(status_of(b"junk"), 500);
    }
}
