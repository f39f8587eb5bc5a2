//! [`TmConfig`]: the transaction timers (RFC 3261 17 T1/T2/T4) and the final-response timeouts
//! (Kamailio's `fr_timer`, `fr_inv_timer`), with Kamailio's defaults.

use std::time::Duration;

/// Transaction timer settings, shared read-only by every worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TmConfig {
    /// RTT estimate: first retransmission interval (default 500 ms).
    pub t1: Duration,
    /// Cap of the retransmission interval for non-INVITE requests and INVITE replies (4 s).
    pub t2: Duration,
    /// How long the network may hold a message (5 s): timers I and K.
    pub t4: Duration,
    /// Time to wait for a final reply to a non-INVITE request, and for the first reply to an
    /// INVITE (`fr_timer`, 30 s); takes the place of timers B and F.
    pub fr: Duration,
    /// Time to wait for a final reply to an INVITE once a provisional one came
    /// (`fr_inv_timer`, 120 s): RFC 3261 16.6's timer C.
    pub fr_inv: Duration,
}

impl Default for TmConfig {
    fn default() -> Self {
        TmConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            fr: Duration::from_secs(30),
            fr_inv: Duration::from_secs(120),
        }
    }
}

impl TmConfig {
    /// 64*T1: timers H and J, and how long a timed-out INVITE branch waits for its 487.
    pub fn t1x64(&self) -> Duration {
        self.t1.saturating_mul(64)
    }

    /// Timer D: how long a completed INVITE client transaction absorbs retransmitted finals
    /// (at least 32 s over unreliable transports, 0 over reliable ones).
    pub fn timer_d(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            Duration::from_secs(32).max(self.t1x64())
        }
    }

    /// Timers I and K: T4 over unreliable transports, 0 over reliable ones.
    pub fn wait_t4(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.t4
        }
    }
}
