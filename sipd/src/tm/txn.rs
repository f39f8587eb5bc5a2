//! [`Txn`]: one proxied request's state (RFC 3261 16): its server transaction, one
//! [`BranchLeg`] per branch sent (client transaction, CANCEL leg, the best reply so far), the
//! callback names and timeouts the script set; plus the response choice of 16.7 step 6
//! ([`Txn::best_final`]).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use kemi_runtime::msg::{Proto, RecvInfo, RouteState, SendFlags};
use kemi_runtime::sip::Message;

use super::client::{ClientState, ClientTxn};
use super::key::{ServerKey, TxnId};
use super::server::{ServerState, ServerTxn};

/// Where messages of one leg go: transport, our local socket, the peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hop {
    /// Transport.
    pub proto: Proto,
    /// Our socket.
    pub local: SocketAddr,
    /// The peer.
    pub peer: SocketAddr,
    /// Connection handling on stream transports: the request's reply flags for the upstream
    /// hop, its forward flags for branches.
    pub flags: SendFlags,
}

/// The callback names a transaction carries (kemi-reference 7.2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Callbacks {
    /// `t_on_branch`.
    pub branch: Option<String>,
    /// `t_on_reply`.
    pub reply: Option<String>,
    /// `t_on_failure` (consumed when it runs).
    pub failure: Option<String>,
    /// `t_on_branch_failure`.
    pub branch_failure: Option<String>,
}

impl Callbacks {
    /// Take the names the script set in `tm` (an empty name resets one).
    pub fn update(&mut self, tm: &kemi_runtime::msg::TmCtx) {
        let pick = |slot: &mut Option<String>, set: &Option<String>| {
            if let Some(name) = set {
                *slot = (!name.is_empty()).then(|| name.clone());
            }
        };
        pick(&mut self.branch, &tm.on_branch);
        pick(&mut self.reply, &tm.on_reply);
        pick(&mut self.failure, &tm.on_failure);
        pick(&mut self.branch_failure, &tm.on_branch_failure);
    }
}

/// The CANCEL sent down one branch and its (non-INVITE) client transaction.
#[derive(Debug)]
pub struct CancelLeg {
    /// Client transaction of the CANCEL.
    pub client: ClientTxn,
    /// The CANCEL as sent (for retransmissions).
    pub request: Bytes,
}

/// One branch: the request sent and what came back.
#[derive(Debug)]
pub struct BranchLeg {
    /// Its client transaction.
    pub client: ClientTxn,
    /// The request as sent (for retransmissions; parsed again only to write a CANCEL or
    /// an ACK, which most branches never need).
    pub request: Bytes,
    /// Where it went.
    pub hop: Hop,
    /// The final status (408 for a timeout), 0 while pending.
    pub code: u16,
    /// The final reply, as received (for `$T_rpl`).
    pub reply: Option<Message>,
    /// The final reply ready to forward upstream (our Via removed, script edits applied).
    pub reply_wire: Option<Vec<u8>>,
    /// A provisional reply came (a CANCEL may be sent).
    pub provisional: bool,
    /// The final-response timer fired.
    pub timed_out: bool,
    /// A CANCEL is due as soon as a provisional reply comes (RFC 3261 9.1).
    pub cancel_pending: bool,
    /// The CANCEL sent, if any.
    pub cancel: Option<CancelLeg>,
    /// `t_drop_replies` dropped this branch's reply from the choice.
    pub dropped: bool,
}

impl BranchLeg {
    /// Still waiting for a final reply.
    pub fn is_pending(&self) -> bool {
        self.code == 0
    }

    /// Its transactions ended.
    pub fn is_terminated(&self) -> bool {
        self.client.state() == ClientState::Terminated
            && self
                .cancel
                .as_ref()
                .is_none_or(|c| c.client.state() == ClientState::Terminated)
    }
}

/// One proxied request.
#[derive(Debug)]
pub struct Txn {
    /// Its id (in our branches).
    pub id: TxnId,
    /// Its server key (in the table).
    pub key: ServerKey,
    /// An INVITE transaction.
    pub invite: bool,
    /// The request as received.
    pub request: Message,
    /// Where it came from.
    pub rcv: RecvInfo,
    /// The script called `force_rport()` on the request: replies generated here get
    /// `rport=<source port>` on the top Via.
    pub force_rport: bool,
    /// The first branch of the current serial-forking leg (branches a failure callback
    /// added start a new one), for `failure_reply_mode` 2.
    pub leg_start: usize,
    /// Where replies go upstream.
    pub upstream: Hop,
    /// The server transaction.
    pub server: ServerTxn,
    /// The branches, in the order sent (serial forking appends).
    pub branches: Vec<BranchLeg>,
    /// Callback names.
    pub callbacks: Callbacks,
    /// Final-response timeout before a provisional reply (and for non-INVITE).
    pub fr: Duration,
    /// Final-response timeout of an INVITE after a provisional reply.
    pub fr_inv: Duration,
    /// A CANCEL arrived.
    pub canceled: bool,
    /// The request route's state when the transaction was created (for failure callbacks).
    pub route: Option<RouteState>,
    /// The request's message flags and branch flags when the transaction was created: an
    /// onreply callback sees them, as Kamailio's `onreply_route` sees the transaction's.
    pub flags: (u64, u64),
    /// Removed from the table.
    pub removed: bool,
    /// Its armed timers (which timer, where), cancelled when they can no longer do anything
    /// ([`Txn::is_live`]) and when the transaction is removed.
    pub timers: Vec<(super::TimerKind, super::TimerHandle)>,
    /// [`Txn::shrink_if_waiting`] freed what the wait does not need.
    pub lean: bool,
    /// A module following this transaction's replies (the dialog of `dlg_manage`).
    pub watch: Option<kemi_runtime::msg::Watcher>,
}

/// A request with nothing in it, standing in for a finished transaction's request (no
/// allocation: an empty header list, a static buffer).
fn placeholder() -> Option<Message> {
    static EMPTY: std::sync::OnceLock<Option<Message>> = std::sync::OnceLock::new();
    EMPTY
        .get_or_init(|| Message::parse(Bytes::from_static(b"ACK sip:x SIP/2.0\r\n\r\n")).ok())
        .clone()
}

impl Txn {
    /// Whether some branch still waits for a final reply.
    pub fn has_pending(&self) -> bool {
        self.branches.iter().any(BranchLeg::is_pending)
    }

    /// Once the final reply went upstream and every branch has its own, what remains of the
    /// transaction only absorbs retransmissions until its timers end (RFC 3261 17: I, J, K,
    /// D, and Accepted): the server transaction with its last reply, the client transactions,
    /// and an INVITE branch's request while it may still need to ACK a retransmitted non-2xx
    /// final (timer D). Everything else (the request as received, the other branch requests,
    /// the replies kept for failure callbacks, the route state) is freed here at once.
    pub fn shrink_if_waiting(&mut self) {
        if self.lean || !self.server.is_final() || self.has_pending() {
            return;
        }
        self.lean = true;
        if let Some(empty) = placeholder() {
            self.request = empty;
        }
        self.route = None;
        self.callbacks = Callbacks::default();
        let invite = self.invite;
        for b in &mut self.branches {
            b.reply = None;
            b.reply_wire = None;
            if !(invite && b.client.state() == ClientState::Completed) {
                b.request = Bytes::new();
            }
            if b.cancel
                .as_ref()
                .is_some_and(|c| c.client.state() == ClientState::Terminated)
            {
                b.cancel = None;
            }
        }
        self.branches.shrink_to_fit();
        self.timers.shrink_to_fit();
    }

    /// Whether timer `kind` can still do something when it fires.
    pub fn is_live(&self, kind: super::TimerKind) -> bool {
        match kind {
            super::TimerKind::Server(t) => self.server.is_live(t),
            super::TimerKind::Client {
                branch,
                cancel,
                timer,
            } => self.branches.get(branch).is_some_and(|b| {
                if cancel {
                    b.cancel.as_ref().is_some_and(|c| c.client.is_live(timer))
                } else {
                    b.client.is_live(timer)
                }
            }),
        }
    }

    /// Whether every part ended, so the transaction can go.
    pub fn is_finished(&self) -> bool {
        self.server.state() == ServerState::Terminated
            && self.branches.iter().all(BranchLeg::is_terminated)
    }

    /// The branch whose final reply is forwarded when all failed (RFC 3261 16.7 step 6): a
    /// 6xx if any, else the lowest status; `None` when no branch has one.
    pub fn best_final(&self) -> Option<usize> {
        let finals = self
            .branches
            .iter()
            .enumerate()
            .filter(|(_, b)| b.code >= 300 && !b.dropped);
        let six = finals.clone().find(|(_, b)| b.code >= 600);
        six.or_else(|| finals.min_by_key(|(_, b)| b.code))
            .map(|(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tm::config::TmConfig;

    const REQ: &str =
        "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nl: 0\r\n\r\n";

    fn leg(code: u16) -> BranchLeg {
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        BranchLeg {
            client: ClientTxn::new(true, true),
            request: Bytes::from_static(REQ.as_bytes()),
            hop: Hop {
                proto: Proto::Udp,
                local: a,
                peer: a,
                flags: SendFlags::default(),
            },
            code,
            reply: None,
            reply_wire: None,
            provisional: false,
            timed_out: false,
            cancel_pending: false,
            cancel: None,
            dropped: false,
        }
    }

    fn txn(codes: &[u16]) -> Txn {
        let m = Message::parse(Bytes::from_static(REQ.as_bytes())).unwrap();
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        Txn {
            id: TxnId(1),
            key: ServerKey::of(&m, "OPTIONS").unwrap(),
            invite: true,
            request: m,
            rcv: RecvInfo::default(),
            force_rport: false,
            leg_start: 0,
            upstream: Hop {
                proto: Proto::Udp,
                local: a,
                peer: a,
                flags: SendFlags::default(),
            },
            server: ServerTxn::new(true, true),
            branches: codes.iter().map(|c| leg(*c)).collect(),
            callbacks: Callbacks::default(),
            fr: Duration::from_secs(1),
            fr_inv: Duration::from_secs(1),
            canceled: false,
            route: None,
            flags: (0, 0),
            removed: false,
            timers: Vec::new(),
            lean: false,
            watch: None,
        }
    }

    #[test]
    fn best_response_prefers_6xx_then_lowest() {
        assert_eq!(txn(&[486, 404, 503]).best_final(), Some(1));
        assert_eq!(txn(&[486, 603, 302]).best_final(), Some(1));
        assert_eq!(txn(&[0, 0]).best_final(), None);
        let mut t = txn(&[404, 486]);
        t.branches[0].dropped = true;
        assert_eq!(t.best_final(), Some(1));
        assert!(!t.has_pending());
        assert!(txn(&[0, 486]).has_pending());
    }

    #[test]
    fn a_waiting_transaction_keeps_only_what_absorbs_retransmissions() {
        let t = TmConfig::default();
        let mut w = txn(&[0]);
        w.shrink_if_waiting();
        assert!(!w.lean, "a pending branch keeps everything");
        w.branches[0].code = 200;
        w.branches[0].client.on_reply(200, &t, t.fr_inv);
        w.branches[0].reply_wire = Some(b"SIP/2.0 200 OK\r\n\r\n".to_vec());
        w.shrink_if_waiting();
        assert!(!w.lean, "no final reply upstream yet");
        assert!(matches!(
            w.server.send_reply(200, b"SIP/2.0 200 OK\r\n\r\n", &t),
            crate::tm::server::SendOutcome::Send(_)
        ));
        w.shrink_if_waiting();
        assert!(w.lean);
        assert!(w.branches[0].request.is_empty() && w.branches[0].reply_wire.is_none());
        assert_eq!(w.request.headers().count(), 0);
        assert!(placeholder().is_some());
        // An INVITE branch that got a non-2xx keeps its request for the ACK of a
        // retransmitted final (timer D).
        let mut f = txn(&[0]);
        f.branches[0].client = ClientTxn::new(true, false);
        f.branches[0].client.on_reply(486, &t, t.fr_inv);
        f.branches[0].code = 486;
        let _ = f.server.send_reply(486, b"SIP/2.0 486 Busy\r\n\r\n", &t);
        f.shrink_if_waiting();
        assert!(f.lean && !f.branches[0].request.is_empty());
    }
}
