//! The transaction layer: transaction-stateful proxying (RFC 3261 16 and 17) driven by the
//! script's `KSR.tm` calls.
//!
//! - [`TmLayer`]: what every worker shares: the transaction table (two [`table::Sharded`]
//!   maps: server key to transaction, for requests; transaction id to transaction, for replies,
//!   whose top Via branch names it) and the timer settings ([`config::TmConfig`]).
//! - [`server`], [`client`]: the RFC 3261 17 state machines, socket-free.
//! - [`txn`]: one proxied request (server transaction, branches, callback names) and the
//!   response choice of 16.7.
//! - [`proxy`]: the worker side: after the request route (relay, absorb, CANCEL), for each
//!   reply (onreply/failure callbacks, forwarding), for each timer expiry.
//! - [`outbound`], [`wire`]: building branch requests, CANCELs, ACKs and local replies.
//! - [`key`]: server keys and our Via branches.
//!
//! Timers are [`TimerReq`]s in the [`timers::TimerQueue`] of the worker which armed them (one
//! queue and one driving task per worker, no task per timer): every worker has an engine, so a
//! timer needing a failure callback runs right there, under the transaction's own lock. A
//! transaction's timers are cancelled when it ends. See "Transactions" in
//! `docs/ARCHITECTURE.md`.

pub mod client;
pub mod config;
pub mod key;
pub mod outbound;
pub mod proxy;
pub mod server;
pub mod table;
pub mod timers;
pub mod trim;
pub mod txn;
pub mod wire;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use kemi_runtime::msg::TxnMatch;
use kemi_runtime::sip::Message;

use client::ClientTimer;
use config::TmConfig;
use key::{ServerKey, TxnId};
use server::{ServerState, ServerTimer};
use table::Sharded;
use txn::Txn;

/// A transaction behind its own lock.
pub type TxnCell = Mutex<Txn>;

/// Lock a transaction; a poisoned lock (a panic elsewhere) still holds consistent data.
pub fn lock(cell: &TxnCell) -> MutexGuard<'_, Txn> {
    cell.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Which timer of a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerKind {
    /// A server transaction timer.
    Server(ServerTimer),
    /// A client transaction timer of branch `branch` (its CANCEL's when `cancel`).
    Client {
        /// The branch index.
        branch: usize,
        /// The CANCEL leg's timer.
        cancel: bool,
        /// The timer.
        timer: ClientTimer,
    },
}

pub use timers::{TimerHandle, TimerQueue, TimerReq};

/// The `Retry-After` (seconds) of the `503` that refuses a transaction over
/// [`TmConfig::max_transactions`].
pub const RETRY_AFTER_S: u32 = 5;

/// The state every worker shares.
#[derive(Debug)]
pub struct TmLayer {
    /// Timer settings.
    pub config: TmConfig,
    by_key: Sharded<ServerKey, Arc<TxnCell>>,
    by_id: Sharded<u64, Arc<TxnCell>>,
    next_id: AtomicU64,
    /// Transactions registered since start (`tm.stats`, metrics).
    created: AtomicU64,
    /// Entries in `by_key`, or more: raised before an insert, lowered after a removal, so a
    /// request seeing zero can skip the lookup (no key to build, no shard to lock): nothing in
    /// the table could match it. A stateless proxy never registers anything. Also the count
    /// that [`TmConfig::max_transactions`] bounds.
    keyed: AtomicUsize,
    /// Requests refused with 503 over `max_transactions` (`tm.stats`, metrics).
    refused: AtomicU64,
    /// One inbox per worker for timer cancellations posted by the others.
    inboxes: Box<[timers::CancelInbox]>,
}

impl Default for TmLayer {
    fn default() -> Self {
        TmLayer::new(TmConfig::default())
    }
}

impl TmLayer {
    /// An empty layer with `config`, for one worker.
    pub fn new(config: TmConfig) -> TmLayer {
        TmLayer::with_workers(config, 1)
    }

    /// An empty layer with `config`, shared by `workers` workers (numbered from 0).
    pub fn with_workers(config: TmConfig, workers: usize) -> TmLayer {
        // Ids start at a per-process value so branches differ across restarts.
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            & 0xffff_ffff_0000_0000;
        TmLayer {
            config,
            by_key: Sharded::default(),
            by_id: Sharded::default(),
            next_id: AtomicU64::new(seed),
            created: AtomicU64::new(0),
            keyed: AtomicUsize::new(0),
            refused: AtomicU64::new(0),
            inboxes: (0..workers.max(1))
                .map(|_| timers::CancelInbox::default())
                .collect(),
        }
    }

    /// Whether a new transaction fits under [`TmConfig::max_transactions`] (`in_dialog`: for a
    /// request inside a dialog, which may use twice the limit). One relaxed load; when it does
    /// not fit, the refusal is counted.
    pub fn admit(&self, in_dialog: bool) -> bool {
        let max = self.config.max_transactions;
        if max == 0 {
            return true;
        }
        let cap = if in_dialog {
            max.saturating_mul(2)
        } else {
            max
        };
        if self.keyed.load(Ordering::Relaxed) < cap {
            return true;
        }
        self.refused.fetch_add(1, Ordering::Relaxed);
        false
    }

    /// Requests refused over `max_transactions` since start.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// The cancellation inbox of worker `worker`'s timer queue.
    pub fn inbox(&self, worker: usize) -> Option<&timers::CancelInbox> {
        self.inboxes.get(worker)
    }

    /// Cancel timer `h`: at once when `queue` holds it, else through its worker's inbox.
    pub fn cancel_timer(&self, queue: &mut TimerQueue, h: TimerHandle) {
        if h.worker == queue.worker() {
            queue.cancel(h.key);
        } else if let Some(inbox) = self.inboxes.get(h.worker) {
            inbox.post(h.key);
        }
    }

    /// Cancel the timers of a transaction that ended.
    pub fn cancel_timers(
        &self,
        queue: &mut TimerQueue,
        timers: &mut Vec<(TimerKind, TimerHandle)>,
    ) {
        for (_, h) in timers.drain(..) {
            self.cancel_timer(queue, h);
        }
    }

    /// A fresh transaction id (one relaxed atomic add; no lock).
    pub fn new_id(&self) -> TxnId {
        TxnId(self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    /// Look a request up before its route runs.
    pub fn lookup(&self, req: &Message) -> (TxnMatch, Option<Arc<TxnCell>>) {
        let Some(method) = req.method_str() else {
            return (TxnMatch::None, None);
        };
        if self.keyed.load(Ordering::SeqCst) == 0 {
            // The table is empty: what the lookups below answer when nothing matches.
            return match method {
                "CANCEL" => (TxnMatch::CancelUnmatched, None),
                _ => (TxnMatch::None, None),
            };
        }
        match method {
            "CANCEL" => match ServerKey::of(req, "INVITE").and_then(|k| self.by_key.get(&k)) {
                Some(t) => (TxnMatch::CancelOfInvite, Some(t)),
                None => (TxnMatch::CancelUnmatched, None),
            },
            "ACK" => match ServerKey::of(req, "ACK").and_then(|k| self.by_key.get(&k)) {
                Some(t) => {
                    let negative = {
                        let g = lock(&t);
                        matches!(
                            g.server.state(),
                            ServerState::Completed | ServerState::Confirmed
                        )
                    };
                    if negative {
                        (TxnMatch::AckToNegative, Some(t))
                    } else {
                        (TxnMatch::None, None)
                    }
                }
                None => (TxnMatch::None, None),
            },
            m => match ServerKey::of(req, m).and_then(|k| self.by_key.get(&k)) {
                Some(t) => (TxnMatch::Retransmission, Some(t)),
                None => (TxnMatch::None, None),
            },
        }
    }

    /// Register `txn`; when another worker registered the same request first, that one is
    /// returned with `false`.
    pub fn insert(&self, txn: Txn) -> (Arc<TxnCell>, bool) {
        let (key, id) = (txn.key.clone(), txn.id);
        let cell = Arc::new(Mutex::new(txn));
        self.keyed.fetch_add(1, Ordering::SeqCst);
        let (cell, fresh) = self.by_key.insert_if_absent(key, cell);
        if !fresh {
            self.keyed.fetch_sub(1, Ordering::SeqCst);
        }
        if fresh {
            self.by_id.insert_if_absent(id.0, Arc::clone(&cell));
            self.created.fetch_add(1, Ordering::Relaxed);
        }
        (cell, fresh)
    }

    /// The transaction of id `id`.
    pub fn by_id(&self, id: TxnId) -> Option<Arc<TxnCell>> {
        self.by_id.get(&id.0)
    }

    /// Remove a finished transaction (called with its lock held).
    pub fn remove(&self, txn: &mut Txn) {
        if !txn.removed {
            txn.removed = true;
            if self.by_key.remove(&txn.key).is_some() {
                self.keyed.fetch_sub(1, Ordering::SeqCst);
            }
            self.by_id.remove(&txn.id.0);
        }
    }

    /// Give back the table room a burst left (for the housekeeping thread: locks every shard
    /// in turn).
    pub fn shrink(&self) {
        self.by_key.shrink();
        self.by_id.shrink();
    }

    /// Transactions registered since start.
    pub fn created(&self) -> u64 {
        self.created.load(Ordering::Relaxed)
    }

    /// `tm.stats`: live and created transactions. Counting live ones takes each shard's lock
    /// once, so it is for RPC and scrapes, never for the message path.
    pub fn stats(&self) -> serde_json::Value {
        serde_json::json!({
            "current": self.len(),
            "created": self.created(),
            "refused": self.refused(),
        })
    }

    /// Number of live transactions.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether no transaction is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl crate::metrics::prom::GaugeSource for TmLayer {
    fn gauges(&self) -> Vec<(&'static str, &'static str, i64)> {
        let active = i64::try_from(self.len()).unwrap_or(i64::MAX);
        let created = i64::try_from(self.created()).unwrap_or(i64::MAX);
        let refused = i64::try_from(self.refused()).unwrap_or(i64::MAX);
        vec![
            ("tm_transactions_active", "Transactions alive now.", active),
            (
                "tm_transactions_created",
                "Transactions created since start.",
                created,
            ),
            (
                "tm_transactions_refused",
                "Requests refused with 503 since start: max_transactions reached.",
                refused,
            ),
        ]
    }
}
