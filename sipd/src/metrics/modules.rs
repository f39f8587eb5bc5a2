//! Metrics of the stateful modules, read from the server's [`Services`] at scrape time:
//! registrations (`usrloc`), digest authentication outcomes (`auth_db`), dispatcher
//! destinations and probes.

use kemi_runtime::services::Services;

use super::prom::GaugeSource;

/// The modules' gauges and counters (those set up on this server).
#[derive(Debug)]
pub struct ModuleMetrics {
    services: Services,
}

impl ModuleMetrics {
    /// Read the modules of `services`.
    pub fn new(services: Services) -> ModuleMetrics {
        ModuleMetrics { services }
    }
}

impl GaugeSource for ModuleMetrics {
    fn gauges(&self) -> Vec<(&'static str, &'static str, i64)> {
        let mut out = Vec::new();
        if let Some(reg) = self.services.get::<modules::registrar::Registrar>() {
            let (records, contacts) = reg
                .ul
                .tables()
                .iter()
                .map(|t| t.counts())
                .fold((0, 0), |(r, c), (tr, tc)| (r + tr, c + tc));
            let n = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
            out.push((
                "usrloc_records",
                "Addresses of record with at least one binding",
                n(records),
            ));
            out.push(("usrloc_contacts", "Registered contacts", n(contacts)));
        }
        if let Some(ds) = self.services.get::<modules::dispatcher::DispatcherState>() {
            let (up, down) = ds.up_down();
            let n = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
            out.push((
                "dispatcher_destinations_up",
                "Dispatcher destinations selections may use (active or trying)",
                n(up),
            ));
            out.push((
                "dispatcher_destinations_down",
                "Dispatcher destinations inactive or disabled",
                n(down),
            ));
        }
        if let Some(d) = self.services.get::<modules::dialog::DialogState>() {
            use std::sync::atomic::Ordering;
            out.push((
                "dialog_active",
                "Confirmed dialogs (dialog module)",
                d.stats.active.load(Ordering::Relaxed).max(0),
            ));
            out.push((
                "dialog_early",
                "Early dialogs: a provisional reply, no final yet (dialog module)",
                d.stats.early.load(Ordering::Relaxed).max(0),
            ));
        }
        out
    }

    fn counters(&self) -> Vec<(&'static str, &'static str, u64)> {
        let mut out = Vec::new();
        if let Some(reg) = self.services.get::<modules::registrar::Registrar>() {
            out.push((
                "usrloc_refused_full",
                "REGISTERs answered 503 because a location table held max_bindings contacts",
                reg.ul.refused_full(),
            ));
        }
        if let Some(auth) = self.services.get::<modules::auth_db::AuthDbState>() {
            out.push((
                "auth_successes",
                "Digest credentials that checked out (auth_db)",
                auth.stats.successes(),
            ));
            out.push((
                "auth_failures",
                "Digest credentials refused: wrong password, unknown user, stale or reused nonce (auth_db)",
                auth.stats.failures(),
            ));
        }
        if let Some(ds) = self.services.get::<modules::dispatcher::DispatcherState>() {
            use std::sync::atomic::Ordering;
            out.push((
                "dispatcher_probes_sent",
                "Dispatcher keepalive probes sent (retransmissions not counted)",
                ds.probes.sent.load(Ordering::Relaxed),
            ));
            out.push((
                "dispatcher_probes_failed",
                "Dispatcher probes unanswered in time or answered with a code that does not count",
                ds.probes.failed.load(Ordering::Relaxed),
            ));
        }
        if let Some(d) = self.services.get::<modules::dialog::DialogState>() {
            use std::sync::atomic::Ordering;
            out.push((
                "dialog_processed",
                "Dialogs that started a transaction (dialog module)",
                d.stats.processed.load(Ordering::Relaxed),
            ));
            out.push((
                "dialog_expired",
                "Dialogs ended by their timeout",
                d.stats.expired.load(Ordering::Relaxed),
            ));
            out.push((
                "dialog_failed",
                "Dialogs whose INVITE got a negative final reply",
                d.stats.failed.load(Ordering::Relaxed),
            ));
        }
        out
    }
}
