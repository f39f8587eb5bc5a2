//! [`ServerTxn`]: the server transaction state machines of RFC 3261 17.2 (INVITE, figure 7;
//! non-INVITE, figure 8), socket-free. Inputs are replies the proxy core sends, request
//! retransmissions, ACKs and timer expiries; outputs are what to send and which
//! [`ServerTimer`]s to arm. The 2xx of an INVITE leaves the transaction in RFC 6026's
//! Accepted state, where retransmitted INVITEs are absorbed without a reply.
//!
//! Like Kamailio (its `wait_timer`), the Accepted state and timer J last T4 rather than
//! 64*T1: a proxy that keeps every finished transaction for 32 s holds far more memory under
//! load, and 2xx retransmissions are forwarded statelessly anyway.

use std::time::Duration;

use super::config::TmConfig;

/// Server transaction states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerState {
    /// Non-INVITE: no reply sent yet.
    Trying,
    /// A provisional reply was sent (INVITE starts here: it sends 100 at once).
    Proceeding,
    /// A final reply was sent (non-2xx for INVITE); retransmissions get it again.
    Completed,
    /// INVITE: the ACK arrived (timer I running).
    Confirmed,
    /// INVITE: a 2xx was sent (RFC 6026); INVITE retransmissions are absorbed.
    Accepted,
    /// Done.
    Terminated,
}

/// Timers a server transaction arms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerTimer {
    /// G: retransmit the final non-2xx reply to an INVITE (unreliable transports); the
    /// interval that elapsed.
    Retransmit(Duration),
    /// H: give up waiting for the ACK.
    AckTimeout,
    /// I (INVITE, after the ACK), J (non-INVITE, after the final), or the end of Accepted.
    Wait,
}

/// One server transaction.
#[derive(Clone, Debug)]
pub struct ServerTxn {
    invite: bool,
    reliable: bool,
    state: ServerState,
    last_reply: Option<Vec<u8>>,
    status: u16,
}

/// What [`ServerTxn::send_reply`] decided.
#[derive(Debug, PartialEq, Eq)]
pub enum SendOutcome {
    /// Send the reply and arm these timers (with their delays).
    Send(Vec<(ServerTimer, Duration)>),
    /// Not allowed in this state (a final reply was sent already): drop it.
    Refused,
}

impl ServerTxn {
    /// A new server transaction for an INVITE (`invite`) or another request, received over a
    /// reliable transport or not.
    pub fn new(invite: bool, reliable: bool) -> ServerTxn {
        ServerTxn {
            invite,
            reliable,
            state: if invite {
                ServerState::Proceeding
            } else {
                ServerState::Trying
            },
            last_reply: None,
            status: 0,
        }
    }

    /// The state.
    pub fn state(&self) -> ServerState {
        self.state
    }

    /// The highest status sent (0 for none).
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Whether a final reply was sent.
    pub fn is_final(&self) -> bool {
        self.status >= 200
    }

    /// The last reply sent, for retransmission.
    pub fn last_reply(&self) -> Option<&[u8]> {
        self.last_reply.as_deref()
    }

    /// The proxy core sends reply `code` (serialized as `wire`, kept for retransmissions).
    /// A 2xx to an INVITE may follow another 2xx (forked 2xx are all forwarded).
    pub fn send_reply(&mut self, code: u16, wire: &[u8], t: &TmConfig) -> SendOutcome {
        let allowed = match self.state {
            ServerState::Trying | ServerState::Proceeding => true,
            ServerState::Accepted => (200..300).contains(&code),
            _ => false,
        };
        if !allowed {
            return SendOutcome::Refused;
        }
        self.status = self.status.max(code);
        let mut timers = Vec::new();
        if code < 200 {
            self.state = ServerState::Proceeding;
            self.last_reply = Some(wire.to_vec());
        } else if self.invite && code < 300 {
            self.state = ServerState::Accepted;
            self.last_reply = None;
            timers.push((ServerTimer::Wait, t.t4));
        } else if self.invite {
            self.state = ServerState::Completed;
            self.last_reply = Some(wire.to_vec());
            if !self.reliable {
                timers.push((ServerTimer::Retransmit(t.t1), t.t1));
            }
            timers.push((ServerTimer::AckTimeout, t.t1x64()));
        } else {
            self.state = ServerState::Completed;
            self.last_reply = Some(wire.to_vec());
            timers.push((ServerTimer::Wait, t.wait_t4(self.reliable)));
        }
        SendOutcome::Send(timers)
    }

    /// A retransmission of the request arrived: the reply to resend, if any.
    pub fn on_retransmission(&self) -> Option<&[u8]> {
        match self.state {
            ServerState::Proceeding | ServerState::Completed => self.last_reply.as_deref(),
            _ => None,
        }
    }

    /// An ACK matched this (INVITE) transaction: the timers to arm (I), if it moved.
    pub fn on_ack(&mut self, t: &TmConfig) -> Vec<(ServerTimer, Duration)> {
        if self.invite && self.state == ServerState::Completed {
            self.state = ServerState::Confirmed;
            vec![(ServerTimer::Wait, t.wait_t4(self.reliable))]
        } else {
            Vec::new()
        }
    }

    /// Whether `timer` can still do something when it fires (else it may be cancelled).
    pub fn is_live(&self, timer: ServerTimer) -> bool {
        match (timer, self.state) {
            (ServerTimer::Retransmit(_) | ServerTimer::AckTimeout, ServerState::Completed) => {
                self.invite
            }
            (ServerTimer::Wait, ServerState::Confirmed | ServerState::Accepted) => true,
            (ServerTimer::Wait, ServerState::Completed) => !self.invite,
            _ => false,
        }
    }

    /// A timer fired: the reply to resend and the timer to re-arm, if any.
    pub fn on_timer(
        &mut self,
        timer: ServerTimer,
        t: &TmConfig,
    ) -> (Option<&[u8]>, Option<(ServerTimer, Duration)>) {
        match (timer, self.state) {
            (ServerTimer::Retransmit(after), ServerState::Completed) => {
                let next = (after * 2).min(t.t2);
                (
                    self.last_reply.as_deref(),
                    Some((ServerTimer::Retransmit(next), next)),
                )
            }
            (ServerTimer::AckTimeout, ServerState::Completed)
            | (ServerTimer::Wait, ServerState::Confirmed | ServerState::Accepted) => {
                self.state = ServerState::Terminated;
                (None, None)
            }
            (ServerTimer::Wait, ServerState::Completed) if !self.invite => {
                self.state = ServerState::Terminated;
                (None, None)
            }
            _ => (None, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> TmConfig {
        TmConfig {
            t1: Duration::from_millis(10),
            t2: Duration::from_millis(40),
            t4: Duration::from_millis(50),
            fr: Duration::from_millis(100),
            fr_inv: Duration::from_millis(200),
            ..TmConfig::default()
        }
    }

    #[test]
    fn invite_non_2xx_retransmits_until_ack() {
        let t = t();
        let mut s = ServerTxn::new(true, false);
        assert_eq!(s.state(), ServerState::Proceeding);
        assert!(matches!(s.send_reply(100, b"100", &t), SendOutcome::Send(v) if v.is_empty()));
        assert_eq!(s.on_retransmission(), Some(&b"100"[..]));
        let SendOutcome::Send(timers) = s.send_reply(486, b"486", &t) else {
            panic!("final refused")
        };
        assert_eq!(
            timers,
            vec![
                (ServerTimer::Retransmit(t.t1), t.t1),
                (ServerTimer::AckTimeout, t.t1x64())
            ]
        );
        assert_eq!(s.send_reply(500, b"500", &t), SendOutcome::Refused);
        assert_eq!(s.on_retransmission(), Some(&b"486"[..]));
        let mut after = t.t1;
        for want in [20, 40, 40] {
            let (resend, next) = s.on_timer(ServerTimer::Retransmit(after), &t);
            assert_eq!(resend, Some(&b"486"[..]));
            let (timer, d) = next.unwrap();
            assert_eq!(d, Duration::from_millis(want));
            after = d;
            assert_eq!(timer, ServerTimer::Retransmit(d));
        }
        assert_eq!(s.on_ack(&t), vec![(ServerTimer::Wait, t.t4)]);
        assert_eq!(s.on_timer(ServerTimer::Retransmit(after), &t).0, None);
        s.on_timer(ServerTimer::Wait, &t);
        assert_eq!(s.state(), ServerState::Terminated);
    }

    #[test]
    fn invite_2xx_accepts_and_absorbs() {
        let t = t();
        let mut s = ServerTxn::new(true, true);
        assert!(matches!(
            s.send_reply(200, b"200", &t),
            SendOutcome::Send(_)
        ));
        assert_eq!(s.state(), ServerState::Accepted);
        assert!(matches!(
            s.send_reply(200, b"200b", &t),
            SendOutcome::Send(_)
        ));
        assert_eq!(s.send_reply(486, b"486", &t), SendOutcome::Refused);
        assert_eq!(s.on_retransmission(), None);
    }

    #[test]
    fn non_invite_completes_and_waits_j() {
        let t = t();
        let mut s = ServerTxn::new(false, false);
        assert_eq!(s.on_retransmission(), None);
        let SendOutcome::Send(timers) = s.send_reply(200, b"200", &t) else {
            panic!()
        };
        assert_eq!(timers, vec![(ServerTimer::Wait, t.t4)]);
        assert_eq!(s.on_retransmission(), Some(&b"200"[..]));
        s.on_timer(ServerTimer::Wait, &t);
        assert_eq!(s.state(), ServerState::Terminated);
        let mut s = ServerTxn::new(true, false);
        let _ = s.send_reply(404, b"404", &t);
        s.on_timer(ServerTimer::AckTimeout, &t);
        assert_eq!(s.state(), ServerState::Terminated);
    }
}
