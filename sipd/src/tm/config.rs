//! [`TmConfig`]: the transaction timers (RFC 3261 17 T1/T2/T4) and the final-response timeouts
//! (Kamailio's `fr_timer`, `fr_inv_timer`), with Kamailio's defaults; and Kamailio's tm
//! modparams mapped onto them ([`TmConfig::apply_modparams`]).
//!
//! `[modparam.tm]` takes Kamailio's names: `fr_timer`, `fr_inv_timer` (ms), `wt_timer` (ms,
//! sipd's `t4`: how long a completed transaction absorbs retransmissions), `retr_timer1` (`t1`),
//! `retr_timer2` (`t2`), `auto_inv_100` (0/1: send `100 Trying` to an INVITE relayed without a
//! reply of the script's), `failure_reply_mode` (0..3, see [`FailureReplyMode`]). Any other tm
//! modparam is refused: sipd does not implement it.

use std::time::Duration;

use modules::modparam::{ModParams, ModparamError};

/// Which earlier replies still compete for the final reply once a failure callback relayed to
/// new branches (serial forking; Kamailio's `failure_reply_mode`). `t_drop_replies` in the
/// callback drops every earlier reply whatever the mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FailureReplyMode {
    /// 0: every branch's reply is kept.
    KeepAll,
    /// 1: every earlier reply is dropped (in sipd the same as 3: a reply only counts once a
    /// callback relayed again, so "discarded by default" and "discarded on a new leg" coincide).
    DropAll,
    /// 2: only the replies of the leg that just failed are dropped.
    DropLastLeg,
    /// 3 (Kamailio's default): every earlier reply is dropped when a new leg starts.
    #[default]
    DropPrevious,
}

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
    /// Send `100 Trying` to an INVITE that is relayed without a reply of the script's
    /// (`auto_inv_100`, default on).
    pub auto_inv_100: bool,
    /// `failure_reply_mode`.
    pub failure_reply_mode: FailureReplyMode,
    /// The most transactions alive at once (`[tm] max_transactions`, 0: no limit). A request
    /// that would start a new one beyond it is answered `503 Service Unavailable` with
    /// `Retry-After` instead; requests inside a dialog (a To tag: BYE, re-INVITE...) may use
    /// up to twice the limit, so that the calls already admitted can still end.
    pub max_transactions: usize,
}

impl Default for TmConfig {
    fn default() -> Self {
        TmConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            fr: Duration::from_secs(30),
            fr_inv: Duration::from_secs(120),
            auto_inv_100: true,
            failure_reply_mode: FailureReplyMode::DropPrevious,
            max_transactions: 0,
        }
    }
}

/// The tm modparams sipd implements.
const TM_PARAMS: &[&str] = &[
    "fr_timer",
    "fr_inv_timer",
    "wt_timer",
    "retr_timer1",
    "retr_timer2",
    "auto_inv_100",
    "failure_reply_mode",
];

impl TmConfig {
    /// Apply Kamailio's `[modparam.tm]` parameters. `in_section` names the `[tm]` keys also
    /// set (a timer set in both places is refused); unknown names and bad values are errors.
    pub fn apply_modparams(
        &mut self,
        p: &ModParams,
        in_section: &[&str],
    ) -> Result<(), ModparamError> {
        p.check_known(TM_PARAMS)?;
        for (name, slot, section) in [
            ("fr_timer", &mut self.fr, "fr_timer"),
            ("fr_inv_timer", &mut self.fr_inv, "fr_inv_timer"),
            ("wt_timer", &mut self.t4, "t4"),
            ("retr_timer1", &mut self.t1, "t1"),
            ("retr_timer2", &mut self.t2, "t2"),
        ] {
            if p.str(name)?.is_none() {
                continue;
            }
            let ms = p.int(name, 0)?;
            if in_section.contains(&section) {
                return Err(p.error(name, format!("also set as [tm] {section}: set it once")));
            }
            if !(1..=3_600_000).contains(&ms) {
                return Err(p.error(name, "must be 1..3600000 ms"));
            }
            *slot = Duration::from_millis(ms.unsigned_abs());
        }
        self.auto_inv_100 = match p.int("auto_inv_100", 1)? {
            0 => false,
            1 => true,
            v => return Err(p.error("auto_inv_100", format!("expected 0 or 1, got {v}"))),
        };
        self.failure_reply_mode = match p.int("failure_reply_mode", 3)? {
            0 => FailureReplyMode::KeepAll,
            1 => FailureReplyMode::DropAll,
            2 => FailureReplyMode::DropLastLeg,
            3 => FailureReplyMode::DropPrevious,
            v => {
                return Err(p.error(
                    "failure_reply_mode",
                    format!("expected 0, 1, 2 or 3, got {v}"),
                ))
            }
        };
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use modules::modparam::ParamValue;

    fn params(pairs: &[(&str, i64)]) -> ModParams {
        pairs.iter().fold(ModParams::new("tm"), |p, (n, v)| {
            p.with(n, ParamValue::Int(*v))
        })
    }

    #[test]
    fn kamailio_tm_modparams_map_onto_the_timers() {
        let mut t = TmConfig::default();
        t.apply_modparams(
            &params(&[
                ("fr_timer", 20000),
                ("fr_inv_timer", 90000),
                ("wt_timer", 3000),
                ("retr_timer1", 250),
                ("retr_timer2", 2000),
                ("auto_inv_100", 0),
                ("failure_reply_mode", 0),
            ]),
            &[],
        )
        .unwrap();
        assert_eq!(
            t,
            TmConfig {
                t1: Duration::from_millis(250),
                t2: Duration::from_secs(2),
                t4: Duration::from_secs(3),
                fr: Duration::from_secs(20),
                fr_inv: Duration::from_secs(90),
                auto_inv_100: false,
                failure_reply_mode: FailureReplyMode::KeepAll,
                max_transactions: 0,
            }
        );
        let mut d = TmConfig::default();
        d.apply_modparams(&params(&[]), &[]).unwrap();
        assert_eq!(d, TmConfig::default());
    }

    #[test]
    fn refuses_what_sipd_does_not_implement() {
        for (bad, section) in [
            (("failure_reply_mode", 4), &[][..]),
            (("auto_inv_100", 2), &[]),
            (("fr_timer", 0), &[]),
            (("fr_timer", 1000), &["fr_timer"][..]),
            (("noisy_ctimer", 1), &[]),
            (("max_inv_lifetime", 180000), &[]),
        ] {
            let e = TmConfig::default()
                .apply_modparams(&params(&[bad]), section)
                .unwrap_err();
            assert_eq!(e.param, bad.0, "{e}");
        }
    }
}
