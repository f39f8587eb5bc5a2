//! [`ClientTxn`]: the client transaction state machines of RFC 3261 17.1 (INVITE, figure 5;
//! non-INVITE, figure 6), socket-free. Timer B and F are the proxy's final-response timers
//! (`fr_timer`, then `fr_inv_timer` once an INVITE got a provisional reply: 16.6's timer C);
//! an epoch number makes a re-armed final timer void the old one.

use std::time::Duration;

use super::config::TmConfig;

/// Client transaction states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientState {
    /// Request sent, no reply yet (INVITE "Calling", non-INVITE "Trying").
    Calling,
    /// A provisional reply came.
    Proceeding,
    /// A final reply came (non-2xx for INVITE); finals are absorbed (INVITE: re-ACKed).
    Completed,
    /// Done.
    Terminated,
}

/// Timers a client transaction arms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientTimer {
    /// A or E: retransmit the request; the interval that elapsed.
    Retransmit(Duration),
    /// The final-response timer of `epoch` (B/F, C).
    Final(u32),
    /// D or K: stop absorbing retransmitted finals.
    Wait,
}

/// What a reply means to the proxy core.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyAction {
    /// Pass it to the proxy core; `ack`: also send an ACK (INVITE non-2xx, hop by hop).
    PassUp {
        /// Send the ACK for a non-2xx final.
        ack: bool,
    },
    /// A retransmitted non-2xx final: resend the ACK only.
    Reack,
    /// Absorb it.
    Absorb,
}

/// What a timer expiry asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerAction {
    /// Resend the request.
    Retransmit,
    /// No final reply in time: the branch failed with a timeout (408).
    Timeout,
    /// Nothing to do.
    Nothing,
}

/// One client transaction.
#[derive(Clone, Debug)]
pub struct ClientTxn {
    invite: bool,
    reliable: bool,
    state: ClientState,
    epoch: u32,
}

/// Timers to arm, with their delays.
pub type Timers = Vec<(ClientTimer, Duration)>;

impl ClientTxn {
    /// A client transaction for a request just sent.
    pub fn new(invite: bool, reliable: bool) -> ClientTxn {
        ClientTxn {
            invite,
            reliable,
            state: ClientState::Calling,
            epoch: 0,
        }
    }

    /// The state.
    pub fn state(&self) -> ClientState {
        self.state
    }

    /// Whether a final reply came or the transaction ended.
    pub fn is_done(&self) -> bool {
        matches!(self.state, ClientState::Completed | ClientState::Terminated)
    }

    /// Timers for the request just sent: retransmissions over unreliable transports (A/E at
    /// T1) and the final-response timer `fr`.
    pub fn start(&mut self, t: &TmConfig, fr: Duration) -> Timers {
        let mut v = Vec::with_capacity(2);
        if !self.reliable {
            v.push((ClientTimer::Retransmit(t.t1), t.t1));
        }
        v.push((ClientTimer::Final(self.epoch), fr));
        v
    }

    /// Re-arm the final-response timer with `after` (a new epoch voids the running one).
    pub fn rearm_final(&mut self, after: Duration) -> (ClientTimer, Duration) {
        self.epoch = self.epoch.wrapping_add(1);
        (ClientTimer::Final(self.epoch), after)
    }

    /// A reply with status `code` matched. `fr_inv` is the INVITE final timeout after a
    /// provisional reply.
    pub fn on_reply(&mut self, code: u16, t: &TmConfig, fr_inv: Duration) -> (ReplyAction, Timers) {
        let mut timers = Vec::new();
        let action = match (self.invite, self.state, code) {
            (_, ClientState::Calling | ClientState::Proceeding, 100..=199) => {
                if self.invite && self.state == ClientState::Calling {
                    timers.push(self.rearm_final(fr_inv));
                }
                self.state = ClientState::Proceeding;
                ReplyAction::PassUp { ack: false }
            }
            (true, ClientState::Calling | ClientState::Proceeding, 200..=299) => {
                self.state = ClientState::Terminated;
                ReplyAction::PassUp { ack: false }
            }
            (true, ClientState::Calling | ClientState::Proceeding, _) => {
                self.state = ClientState::Completed;
                timers.push((ClientTimer::Wait, t.timer_d(self.reliable)));
                ReplyAction::PassUp { ack: true }
            }
            (true, ClientState::Completed, 300..) => ReplyAction::Reack,
            // A 2xx after the transaction ended (another 2xx, a retransmission): forwarded
            // statelessly by the proxy core (RFC 3261 16.7 step 5 for 2xx).
            (true, _, 200..=299) => ReplyAction::PassUp { ack: false },
            (false, ClientState::Calling | ClientState::Proceeding, _) => {
                self.state = ClientState::Completed;
                timers.push((ClientTimer::Wait, t.wait_t4(self.reliable)));
                ReplyAction::PassUp { ack: false }
            }
            _ => ReplyAction::Absorb,
        };
        (action, timers)
    }

    /// Whether `timer` can still do something when it fires (else it may be cancelled): a
    /// retransmission while retransmissions go on, the final-response timer of the current
    /// epoch before a final reply, the wait while completed.
    pub fn is_live(&self, timer: ClientTimer) -> bool {
        match timer {
            ClientTimer::Retransmit(_) => matches!(
                (self.invite, self.state),
                (true, ClientState::Calling)
                    | (false, ClientState::Calling | ClientState::Proceeding)
            ),
            ClientTimer::Final(epoch) => {
                epoch == self.epoch
                    && matches!(self.state, ClientState::Calling | ClientState::Proceeding)
            }
            ClientTimer::Wait => self.state == ClientState::Completed,
        }
    }

    /// A timer fired; returns the action and the timer to re-arm, if any.
    pub fn on_timer(
        &mut self,
        timer: ClientTimer,
        t: &TmConfig,
    ) -> (TimerAction, Option<(ClientTimer, Duration)>) {
        match timer {
            ClientTimer::Retransmit(after) => {
                let again = match (self.invite, self.state) {
                    (true, ClientState::Calling) => Some(after * 2),
                    (false, ClientState::Calling) => Some((after * 2).min(t.t2)),
                    (false, ClientState::Proceeding) => Some(t.t2),
                    _ => None,
                };
                match again {
                    Some(d) => (
                        TimerAction::Retransmit,
                        Some((ClientTimer::Retransmit(d), d)),
                    ),
                    None => (TimerAction::Nothing, None),
                }
            }
            ClientTimer::Final(epoch) if epoch == self.epoch => match self.state {
                ClientState::Calling | ClientState::Proceeding => {
                    // An INVITE with a provisional reply stays to take (and ACK) the 487 its
                    // CANCEL brings, for at most 64*T1 more.
                    if self.invite && self.state == ClientState::Proceeding {
                        let next = self.rearm_final(t.t1x64());
                        self.state = ClientState::Completed;
                        (TimerAction::Timeout, Some((ClientTimer::Wait, next.1)))
                    } else {
                        self.state = ClientState::Terminated;
                        (TimerAction::Timeout, None)
                    }
                }
                _ => (TimerAction::Nothing, None),
            },
            ClientTimer::Final(_) => (TimerAction::Nothing, None),
            ClientTimer::Wait => {
                if self.state == ClientState::Completed {
                    self.state = ClientState::Terminated;
                }
                (TimerAction::Nothing, None)
            }
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
    fn timers_that_can_no_longer_act_are_not_live() {
        let t = t();
        let mut c = ClientTxn::new(true, false);
        c.start(&t, t.fr);
        assert!(c.is_live(ClientTimer::Retransmit(t.t1)) && c.is_live(ClientTimer::Final(0)));
        c.on_reply(180, &t, t.fr_inv);
        assert!(
            !c.is_live(ClientTimer::Retransmit(t.t1)),
            "A stops at a provisional"
        );
        assert!(!c.is_live(ClientTimer::Final(0)) && c.is_live(ClientTimer::Final(1)));
        c.on_reply(486, &t, t.fr_inv);
        assert!(!c.is_live(ClientTimer::Final(1)) && c.is_live(ClientTimer::Wait));
        let mut n = ClientTxn::new(false, false);
        n.start(&t, t.fr);
        n.on_reply(100, &t, t.fr_inv);
        assert!(
            n.is_live(ClientTimer::Retransmit(t.t2)),
            "E goes on while proceeding"
        );
        n.on_reply(200, &t, t.fr_inv);
        assert!(!n.is_live(ClientTimer::Retransmit(t.t2)) && n.is_live(ClientTimer::Wait));
    }

    #[test]
    fn invite_over_udp() {
        let t = t();
        let mut c = ClientTxn::new(true, false);
        let timers = c.start(&t, t.fr);
        assert_eq!(
            timers,
            vec![
                (ClientTimer::Retransmit(t.t1), t.t1),
                (ClientTimer::Final(0), t.fr)
            ]
        );
        let (a, next) = c.on_timer(ClientTimer::Retransmit(t.t1), &t);
        assert_eq!(a, TimerAction::Retransmit);
        assert_eq!(next, Some((ClientTimer::Retransmit(t.t1 * 2), t.t1 * 2)));
        let (a, timers) = c.on_reply(180, &t, t.fr_inv);
        assert_eq!(a, ReplyAction::PassUp { ack: false });
        assert_eq!(timers, vec![(ClientTimer::Final(1), t.fr_inv)]);
        assert_eq!(
            c.on_timer(ClientTimer::Retransmit(t.t1 * 2), &t).0,
            TimerAction::Nothing
        );
        assert_eq!(
            c.on_timer(ClientTimer::Final(0), &t).0,
            TimerAction::Nothing
        );
        let (a, timers) = c.on_reply(486, &t, t.fr_inv);
        assert_eq!(a, ReplyAction::PassUp { ack: true });
        assert_eq!(timers, vec![(ClientTimer::Wait, t.timer_d(false))]);
        assert_eq!(c.on_reply(486, &t, t.fr_inv).0, ReplyAction::Reack);
        c.on_timer(ClientTimer::Wait, &t);
        assert_eq!(c.state(), ClientState::Terminated);
        assert_eq!(c.on_reply(486, &t, t.fr_inv).0, ReplyAction::Absorb);
        assert_eq!(
            c.on_reply(200, &t, t.fr_inv).0,
            ReplyAction::PassUp { ack: false }
        );
    }

    #[test]
    fn invite_timeouts() {
        let t = t();
        let mut c = ClientTxn::new(true, true);
        assert_eq!(c.start(&t, t.fr), vec![(ClientTimer::Final(0), t.fr)]);
        assert_eq!(
            c.on_timer(ClientTimer::Final(0), &t).0,
            TimerAction::Timeout
        );
        assert_eq!(c.state(), ClientState::Terminated);
        let mut c = ClientTxn::new(true, true);
        let _ = c.start(&t, t.fr);
        let _ = c.on_reply(180, &t, t.fr_inv);
        let (a, next) = c.on_timer(ClientTimer::Final(1), &t);
        assert_eq!(a, TimerAction::Timeout);
        assert_eq!(next, Some((ClientTimer::Wait, t.t1x64())));
        assert_eq!(c.on_reply(487, &t, t.fr_inv).0, ReplyAction::Reack);
    }

    #[test]
    fn non_invite() {
        let t = t();
        let mut c = ClientTxn::new(false, false);
        let _ = c.start(&t, t.fr);
        let mut after = t.t1;
        for want in [20, 40, 40] {
            let (a, next) = c.on_timer(ClientTimer::Retransmit(after), &t);
            assert_eq!(a, TimerAction::Retransmit);
            after = next.unwrap().1;
            assert_eq!(after, Duration::from_millis(want));
        }
        let (a, timers) = c.on_reply(200, &t, t.fr_inv);
        assert_eq!(a, ReplyAction::PassUp { ack: false });
        assert_eq!(timers, vec![(ClientTimer::Wait, t.t4)]);
        assert_eq!(c.on_reply(200, &t, t.fr_inv).0, ReplyAction::Absorb);
        assert_eq!(
            c.on_timer(ClientTimer::Final(0), &t).0,
            TimerAction::Nothing
        );
    }
}
