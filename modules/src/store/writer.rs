//! [`Writer`]: the write-behind queue between the message path and the store.
//!
//! A worker that changed in-memory state (a binding saved, a hash-table item set) hands the
//! store write to the writer's thread and goes on; the write happens in the order queued. The
//! queue is bounded: when the store is slower than the traffic for long, a write that does not
//! fit is counted and logged (rate-limited) rather than stalling the worker. [`Writer::flush`]
//! waits for everything queued so far, which the host does at shutdown so a restart loses
//! nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::{StoreError, StoreRef};

/// Writes queued and not yet done, at most.
const QUEUE: usize = 65_536;
/// At most one log line per this interval for failed or lost writes.
const LOG_EVERY: Duration = Duration::from_secs(10);

type Job = Box<dyn FnOnce(&dyn super::Store) -> Result<(), StoreError> + Send>;

enum Item {
    Write(&'static str, Job),
    Flush(mpsc::Sender<()>),
}

/// Write-behind access to a store.
#[derive(Debug)]
pub struct Writer {
    store: StoreRef,
    tx: Mutex<Option<SyncSender<Item>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    counters: Arc<Counters>,
}

/// What went wrong with writes so far.
#[derive(Debug, Default)]
pub struct Counters {
    /// Writes the store refused.
    pub failed: AtomicU64,
    /// Writes dropped because the queue was full.
    pub dropped: AtomicU64,
    last_log: Mutex<Option<Instant>>,
}

impl Counters {
    fn log(&self, what: &str) {
        let mut last = self.last_log.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if last.is_none_or(|t| now.duration_since(t) >= LOG_EVERY) {
            *last = Some(now);
            tracing::error!(
                failed = self.failed.load(Ordering::Relaxed),
                dropped = self.dropped.load(Ordering::Relaxed),
                "store write: {what}"
            );
        }
    }
}

impl Writer {
    /// Start the writer thread for `store`.
    pub fn start(store: StoreRef) -> std::io::Result<Writer> {
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let counters = Arc::new(Counters::default());
        let thread = {
            let store = Arc::clone(&store);
            let counters = Arc::clone(&counters);
            // The caller's span (a node's identity) marks this thread's log lines too.
            let span = tracing::Span::current();
            std::thread::Builder::new()
                .name("sipd-store".into())
                .spawn(move || {
                    let _node = span.enter();
                    run(&*store, &rx, &counters)
                })?
        };
        Ok(Writer {
            store,
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            counters,
        })
    }

    /// The store, for reads (which the caller may do on its own thread).
    pub fn store(&self) -> &StoreRef {
        &self.store
    }

    /// Failure counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Queue `job`; never blocks. `what` names it in logs.
    pub fn submit(
        &self,
        what: &'static str,
        job: impl FnOnce(&dyn super::Store) -> Result<(), StoreError> + Send + 'static,
    ) {
        let tx = self.tx.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(tx) = tx.as_ref() else {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            self.counters.log("writer stopped; write lost");
            return;
        };
        match tx.try_send(Item::Write(what, Box::new(job))) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                self.counters.log("queue full; write not persisted");
            }
            Err(TrySendError::Disconnected(_)) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                self.counters.log("writer thread gone; write not persisted");
            }
        }
    }

    /// Wait (at most `timeout`) until every write queued before this call is done. False on
    /// timeout.
    pub fn flush(&self, timeout: Duration) -> bool {
        let (done_tx, done_rx) = mpsc::channel();
        let sent = {
            let tx = self.tx.lock().unwrap_or_else(PoisonError::into_inner);
            tx.as_ref()
                .is_some_and(|tx| tx.send(Item::Flush(done_tx)).is_ok())
        };
        sent && done_rx.recv_timeout(timeout).is_ok()
    }

    /// Flush, then stop the thread.
    pub fn stop(&self, timeout: Duration) {
        self.flush(timeout);
        self.tx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(t) = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            let _ = t.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(5));
    }
}

fn run(store: &dyn super::Store, rx: &Receiver<Item>, counters: &Counters) {
    for item in rx {
        match item {
            Item::Write(what, job) => {
                if let Err(e) = job(store) {
                    counters.failed.fetch_add(1, Ordering::Relaxed);
                    counters.log(&format!("{what}: {e}"));
                }
            }
            Item::Flush(done) => {
                let _ = done.send(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{sqlite::SqliteStore, HtableRow, HtableValue};

    #[test]
    fn writes_in_order_and_flushes() {
        let store: StoreRef = Arc::new(SqliteStore::memory().unwrap());
        let w = Writer::start(Arc::clone(&store)).unwrap();
        for i in 0..100 {
            w.submit("htable", move |s| {
                s.put_htable(
                    "t",
                    &HtableRow {
                        key_name: "k".into(),
                        value: HtableValue::Int(i),
                        expires: 0,
                    },
                )
            });
        }
        w.submit("bad", |s| s.delete_htable("no such;table", "k"));
        assert!(w.flush(Duration::from_secs(10)));
        assert_eq!(
            store.htable_rows("t").unwrap()[0].value,
            HtableValue::Int(99)
        );
        assert_eq!(w.counters().failed.load(Ordering::Relaxed), 1);
        w.stop(Duration::from_secs(1));
        w.submit("late", |_| Ok(()));
        assert_eq!(w.counters().dropped.load(Ordering::Relaxed), 1);
    }
}
