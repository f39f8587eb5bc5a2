//! Counters of a running server, kept per worker and summed when read.
//!
//! Each worker owns a [`WorkerStats`]: plain counters only it writes (a relaxed load and store
//! per increment, no lock, no shared cache line), its route-latency [`Histogram`]s and its export
//! [`CallCounts`]. [`Metrics`] is the server's list of them plus server-wide facts (start time,
//! reloads); [`Metrics::totals`] adds the workers up for the readers: the Prometheus endpoint
//! ([`prom`]), and the RPC methods `stats.get_statistics` ([`stats`]), `kemi.stats`, `core.ps`.
//!
//! What is not here: serving HTTP (`crate::rpc::http`), deciding what to count (the pipeline).

pub mod histogram;
pub mod modules;
pub mod prom;
pub mod stats;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use kemi_runtime::calls::CallCounts;
use kemi_runtime::engine::limits::LimitKind;
use kemi_runtime::sip::Method;
use kemi_runtime::ExportTable;

pub use histogram::{Histogram, HistogramSnapshot};

/// Methods counted by name; anything else is `other` (last).
pub const METHODS: [&str; 15] = [
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "REGISTER",
    "OPTIONS",
    "INFO",
    "PRACK",
    "UPDATE",
    "SUBSCRIBE",
    "NOTIFY",
    "PUBLISH",
    "MESSAGE",
    "REFER",
    "other",
];
/// Status classes.
pub const CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "6xx"];
/// Script callbacks whose errors and latency are counted.
pub const CALLBACKS: [&str; 3] = ["request", "reply", "onsend"];

/// The counter index of a method token.
pub fn method_index(method: &str) -> usize {
    // The index straight from the parsed method (the order of `METHODS`, checked by a test):
    // a search of `METHODS` by name cost up to 14 string comparisons per counter bump.
    match Method::parse(method) {
        Method::Invite => 0,
        Method::Ack => 1,
        Method::Bye => 2,
        Method::Cancel => 3,
        Method::Register => 4,
        Method::Options => 5,
        Method::Info => 6,
        Method::Prack => 7,
        Method::Update => 8,
        Method::Subscribe => 9,
        Method::Notify => 10,
        Method::Publish => 11,
        Method::Message => 12,
        Method::Refer => 13,
        Method::Other(_) => METHODS.len() - 1,
    }
}

/// The counter index of a status code (1xx .. 6xx; out-of-range codes count as 5xx/1xx bounds).
pub fn class_index(code: u16) -> usize {
    usize::from(code / 100).clamp(1, CLASSES.len()) - 1
}

/// A script callback, for per-callback counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Callback {
    /// `ksr_request_route`.
    Request = 0,
    /// `ksr_reply_route`.
    Reply = 1,
    /// `ksr_onsend_route`.
    Onsend = 2,
}

type PerMethod = [AtomicU64; METHODS.len()];
type PerMethodClass = [[AtomicU64; CLASSES.len()]; METHODS.len()];

/// Single-writer increment.
#[inline]
fn bump(c: &AtomicU64) {
    c.store(c.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
}

/// One worker's counters. Written only by that worker's thread.
#[derive(Debug)]
pub struct WorkerStats {
    /// The worker's number.
    pub index: usize,
    requests_in: PerMethod,
    replies_in: PerMethodClass,
    requests_out: PerMethod,
    replies_relayed: PerMethodClass,
    replies_local: PerMethodClass,
    script_errors: [AtomicU64; CALLBACKS.len()],
    limit_hits: [AtomicU64; LimitKind::ALL.len()],
    latency: [Histogram; 2],
    generation: AtomicU64,
    reload_failures: AtomicU64,
    /// Export calls made on this worker's thread.
    pub calls: Arc<CallCounts>,
}

impl WorkerStats {
    /// Zeroed counters of worker `index`.
    pub fn new(index: usize) -> WorkerStats {
        WorkerStats {
            index,
            requests_in: Default::default(),
            replies_in: Default::default(),
            requests_out: Default::default(),
            replies_relayed: Default::default(),
            replies_local: Default::default(),
            script_errors: Default::default(),
            limit_hits: Default::default(),
            latency: Default::default(),
            generation: AtomicU64::new(0),
            reload_failures: AtomicU64::new(0),
            calls: Arc::new(CallCounts::new()),
        }
    }

    /// A request was received.
    #[inline]
    pub fn request_in(&self, method: &str) {
        if let Some(c) = self.requests_in.get(method_index(method)) {
            bump(c);
        }
    }

    /// A reply to a `method` request was received.
    #[inline]
    pub fn reply_in(&self, method: &str, code: u16) {
        bump2(&self.replies_in, method, code);
    }

    /// A request was forwarded.
    #[inline]
    pub fn request_out(&self, method: &str) {
        if let Some(c) = self.requests_out.get(method_index(method)) {
            bump(c);
        }
    }

    /// A received reply was relayed upstream.
    #[inline]
    pub fn reply_relayed(&self, method: &str, code: u16) {
        bump2(&self.replies_relayed, method, code);
    }

    /// sipd itself sent a reply (the script's or the host's).
    #[inline]
    pub fn reply_local(&self, method: &str, code: u16) {
        bump2(&self.replies_local, method, code);
    }

    /// A callback ended with a script error (limit hits included).
    #[inline]
    pub fn script_error(&self, cb: Callback, limit: Option<LimitKind>) {
        if let Some(c) = self.script_errors.get(cb as usize) {
            bump(c);
        }
        if let Some(k) = limit {
            let i = LimitKind::ALL.iter().position(|x| *x == k).unwrap_or(0);
            if let Some(c) = self.limit_hits.get(i) {
                bump(c);
            }
        }
    }

    /// How long a route callback took.
    #[inline]
    pub fn route_latency(&self, cb: Callback, d: Duration) {
        if let Some(h) = self.latency.get(cb as usize) {
            h.observe(d);
        }
    }

    /// The worker now runs script generation `g`.
    pub fn set_generation(&self, g: u64) {
        self.generation.store(g, Ordering::Relaxed);
    }

    /// The script generation this worker runs.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// The worker could not build a newly published script and kept its old one.
    pub fn reload_failed(&self) {
        bump(&self.reload_failures);
    }

    /// Messages this worker received.
    pub fn received(&self) -> u64 {
        let req: u64 = self
            .requests_in
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum();
        let rpl: u64 = self
            .replies_in
            .iter()
            .flatten()
            .map(|c| c.load(Ordering::Relaxed))
            .sum();
        req + rpl
    }
}

#[inline]
fn bump2(t: &PerMethodClass, method: &str, code: u16) {
    if let Some(c) = t
        .get(method_index(method))
        .and_then(|row| row.get(class_index(code)))
    {
        bump(c);
    }
}

/// Sums over every worker, read at one moment.
#[derive(Clone, Debug, Default)]
pub struct Totals {
    /// Requests received, per method.
    pub requests_in: [u64; METHODS.len()],
    /// Replies received, per method and class.
    pub replies_in: [[u64; CLASSES.len()]; METHODS.len()],
    /// Requests forwarded, per method.
    pub requests_out: [u64; METHODS.len()],
    /// Replies relayed, per method and class.
    pub replies_relayed: [[u64; CLASSES.len()]; METHODS.len()],
    /// Replies sipd sent itself, per method and class.
    pub replies_local: [[u64; CLASSES.len()]; METHODS.len()],
    /// Script errors, per callback.
    pub script_errors: [u64; CALLBACKS.len()],
    /// Limit hits, per [`LimitKind::ALL`].
    pub limit_hits: [u64; LimitKind::ALL.len()],
    /// Route latency of the request and reply callbacks.
    pub latency: [HistogramSnapshot; 2],
    /// Workers that kept an old script because they could not build a new one.
    pub reload_failures: u64,
    /// Export calls per link index (see [`kemi_runtime::calls`]).
    pub calls: Vec<u64>,
}

fn add_to(dst: &mut [u64], src: &[AtomicU64]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d += s.load(Ordering::Relaxed);
    }
}

impl Totals {
    fn add(&mut self, w: &WorkerStats) {
        add_to(&mut self.requests_in, &w.requests_in);
        add_to(&mut self.requests_out, &w.requests_out);
        for (d, s) in [
            (&mut self.replies_in, &w.replies_in),
            (&mut self.replies_relayed, &w.replies_relayed),
            (&mut self.replies_local, &w.replies_local),
        ] {
            for (dr, sr) in d.iter_mut().zip(s.iter()) {
                add_to(dr, sr);
            }
        }
        add_to(&mut self.script_errors, &w.script_errors);
        add_to(&mut self.limit_hits, &w.limit_hits);
        for (d, s) in self.latency.iter_mut().zip(w.latency.iter()) {
            d.add_from(s);
        }
        self.reload_failures += w.reload_failures.load(Ordering::Relaxed);
        if self.calls.is_empty() {
            self.calls = vec![0; kemi_runtime::linked_exports().len()];
        }
        for (d, (_, n)) in self.calls.iter_mut().zip(w.calls.iter()) {
            *d += n;
        }
    }
}

/// The live counters of one server.
#[derive(Debug)]
pub struct Metrics {
    started: Instant,
    started_at: SystemTime,
    workers: Mutex<Vec<Arc<WorkerStats>>>,
    table: Arc<ExportTable>,
    reloads: AtomicU64,
    reloads_rejected: AtomicU64,
    node: String,
}

impl Metrics {
    /// Counters of a server whose scripts bind `table`.
    pub fn new(table: Arc<ExportTable>) -> Metrics {
        Metrics {
            started: Instant::now(),
            started_at: SystemTime::now(),
            workers: Mutex::new(Vec::new()),
            table,
            reloads: AtomicU64::new(0),
            reloads_rejected: AtomicU64::new(0),
            node: String::new(),
        }
    }

    /// Register worker `index` and return its counters (called once per worker, at start).
    pub fn add_worker(&self, index: usize) -> Arc<WorkerStats> {
        let w = Arc::new(WorkerStats::new(index));
        if let Ok(mut list) = self.workers.lock() {
            list.push(Arc::clone(&w));
            list.sort_by_key(|w| w.index);
        }
        w
    }

    /// The registered workers, in index order.
    pub fn workers(&self) -> Vec<Arc<WorkerStats>> {
        self.workers.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Every worker's counters added up.
    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for w in self.workers() {
            t.add(&w);
        }
        if t.calls.is_empty() {
            t.calls = vec![0; kemi_runtime::linked_exports().len()];
        }
        t
    }

    /// The export table the scripts bind (names for per-export counts).
    pub fn table(&self) -> &ExportTable {
        &self.table
    }

    /// Time since the server started.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// The same counters, for the node named `node` (`[cluster] node`).
    pub fn with_node(mut self, node: &str) -> Metrics {
        self.node = node.to_string();
        self
    }

    /// The node identity ("" when none was given).
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Wall-clock start time.
    pub fn started_at(&self) -> SystemTime {
        self.started_at
    }

    /// Count a reload request: `accepted` or rejected.
    pub fn reload(&self, accepted: bool) {
        let c = if accepted {
            &self.reloads
        } else {
            &self.reloads_rejected
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Accepted and rejected reloads so far.
    pub fn reloads(&self) -> (u64, u64) {
        (
            self.reloads.load(Ordering::Relaxed),
            self.reloads_rejected.load(Ordering::Relaxed),
        )
    }

    /// `(module, name, calls)` of every export of the table called at least once, in slot order.
    pub fn export_calls(&self, totals: &Totals) -> Vec<(&'static str, &'static str, u64)> {
        let linked = kemi_runtime::linked_exports();
        let mut out = Vec::new();
        for (_, e) in self.table.iter() {
            let n = linked
                .iter()
                .position(|l| std::ptr::eq(l, e))
                .and_then(|i| totals.calls.get(i))
                .copied()
                .unwrap_or(0);
            if n > 0 {
                out.push((e.module, e.name, n));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes() {
        assert_eq!(METHODS[method_index("INVITE")], "INVITE");
        for (i, m) in METHODS.iter().enumerate().take(METHODS.len() - 1) {
            assert_eq!(method_index(m), i, "{m}");
        }
        assert_eq!(method_index("other"), METHODS.len() - 1);
        assert_eq!(method_index("FOO"), METHODS.len() - 1);
        assert_eq!(METHODS[method_index("invite")], "other");
        assert_eq!(CLASSES[class_index(183)], "1xx");
        assert_eq!(CLASSES[class_index(699)], "6xx");
        assert_eq!(CLASSES[class_index(42)], "1xx");
        assert_eq!(CLASSES[class_index(999)], "6xx");
    }

    #[test]
    fn totals_add_workers() {
        let table = Arc::new(crate::exports::build_table(&Default::default()).expect("table"));
        let m = Metrics::new(table);
        let (a, b) = (m.add_worker(0), m.add_worker(1));
        a.request_in("INVITE");
        b.request_in("INVITE");
        b.reply_local("OPTIONS", 200);
        a.script_error(Callback::Request, Some(LimitKind::Memory));
        let t = m.totals();
        assert_eq!(t.requests_in[0], 2);
        assert_eq!(t.replies_local[5][1], 1);
        assert_eq!((t.script_errors[0], t.limit_hits[1]), (1, 1));
        assert_eq!(a.received() + b.received(), 2);
    }
}
