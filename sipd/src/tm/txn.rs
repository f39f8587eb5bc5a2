//! [`Txn`]: one proxied request's state (RFC 3261 16): its server transaction, one
//! [`BranchLeg`] per branch sent (client transaction, CANCEL leg, the best reply so far), the
//! callback names and timeouts the script set; plus the response choice of 16.7 step 6
//! ([`Txn::best_final`]).

use std::net::SocketAddr;
use std::time::Duration;

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
    /// The CANCEL as sent.
    pub request: Message,
}

/// One branch: the request sent and what came back.
#[derive(Debug)]
pub struct BranchLeg {
    /// Its client transaction.
    pub client: ClientTxn,
    /// The request as sent (for retransmissions, CANCEL and ACK).
    pub request: Message,
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
    /// Removed from the table.
    pub removed: bool,
}

impl Txn {
    /// Whether some branch still waits for a final reply.
    pub fn has_pending(&self) -> bool {
        self.branches.iter().any(BranchLeg::is_pending)
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

    fn leg(code: u16) -> BranchLeg {
        let m = Message::parse(
            "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nl: 0\r\n\r\n"
                .as_bytes()
                .to_vec()
                .into(),
        )
        .unwrap();
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        BranchLeg {
            client: ClientTxn::new(true, true),
            request: m,
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
        let m = leg(0).request;
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
            removed: false,
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
}
