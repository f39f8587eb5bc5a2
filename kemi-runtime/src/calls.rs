//! Per-thread counts of `KSR` export calls, for the host's `kemi.stats`.
//!
//! A host thread (a worker) [`install`]s its own [`CallCounts`]; engines call [`record`] on each
//! export call. Only that thread writes its counts, so an increment is a relaxed load and store
//! (no locked instruction, no shared cache line); any thread may read them, and the host sums the
//! workers' counts when asked. Threads without counts installed pay one thread-local check.
//!
//! Counts are indexed by the export's position in [`crate::linked_exports`], which is fixed for
//! the binary, so no table or name lookup happens on the call path.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::KemiExport;

/// One thread's call count per linked export.
///
/// ```
/// use std::sync::Arc;
/// use kemi_runtime::calls::{self, CallCounts};
/// let counts = Arc::new(CallCounts::new());
/// let _installed = calls::install(Arc::clone(&counts));
/// // ... engines run on this thread ...
/// let total: u64 = counts.iter().map(|(_, n)| n).sum();
/// # assert_eq!(total, 0);
/// ```
#[derive(Debug)]
pub struct CallCounts {
    counts: Box<[AtomicU64]>,
}

impl Default for CallCounts {
    fn default() -> Self {
        Self::new()
    }
}

impl CallCounts {
    /// Zeroed counts, one per linked export.
    pub fn new() -> CallCounts {
        CallCounts {
            counts: crate::linked_exports()
                .iter()
                .map(|_| AtomicU64::new(0))
                .collect(),
        }
    }

    /// Count one call of `export`. Only the owning thread may call this (a load and a store,
    /// not an atomic add); exports not from [`crate::linked_exports`] are ignored.
    #[inline]
    pub fn bump(&self, export: &'static KemiExport) {
        if let Some(c) = link_index(export).and_then(|i| self.counts.get(i)) {
            c.store(c.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
        }
    }

    /// The calls of `export` so far.
    pub fn get(&self, export: &KemiExport) -> u64 {
        link_index(export)
            .and_then(|i| self.counts.get(i))
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Every linked export with its count, in link order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static KemiExport, u64)> + '_ {
        crate::linked_exports()
            .iter()
            .zip(self.counts.iter())
            .map(|(e, c)| (e, c.load(Ordering::Relaxed)))
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<CallCounts>>> = const { RefCell::new(None) };
}

/// Count this thread's export calls into `counts` until the returned guard is dropped.
pub fn install(counts: Arc<CallCounts>) -> Installed {
    let previous = CURRENT.with(|c| c.replace(Some(counts)));
    Installed { previous }
}

/// Restores the previously installed counts (usually none) when dropped.
#[derive(Debug)]
#[must_use = "counting stops when this is dropped"]
pub struct Installed {
    previous: Option<Arc<CallCounts>>,
}

impl Drop for Installed {
    fn drop(&mut self) {
        let previous = self.previous.take();
        let _ = CURRENT.try_with(|c| c.replace(previous));
    }
}

/// Count one call of `export` on this thread, if counts are installed. Engines call this.
#[inline]
pub fn record(export: &'static KemiExport) {
    let _ = CURRENT.try_with(|c| {
        if let Ok(current) = c.try_borrow() {
            if let Some(counts) = current.as_ref() {
                counts.bump(export);
            }
        }
    });
}

/// The position of `export` in [`crate::linked_exports`], from its address.
#[inline]
fn link_index(export: &KemiExport) -> Option<usize> {
    let all = crate::linked_exports();
    let size = std::mem::size_of::<KemiExport>();
    let offset = (export as *const KemiExport as usize).checked_sub(all.as_ptr() as usize)?;
    let index = offset / size.max(1);
    (offset % size.max(1) == 0 && index < all.len()).then_some(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_only_where_installed() {
        let Some(first) = crate::linked_exports().first() else {
            return; // a unit-test binary may link no exports
        };
        let counts = Arc::new(CallCounts::new());
        record(first);
        {
            let _g = install(Arc::clone(&counts));
            record(first);
            record(first);
        }
        record(first);
        assert_eq!(counts.get(first), 2);
        let other = std::thread::spawn(move || {
            record(first);
        });
        other.join().expect("thread");
        assert_eq!(counts.iter().map(|(_, n)| n).sum::<u64>(), 2);
    }
}
