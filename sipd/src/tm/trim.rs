//! [`Trimmer`]: gives the memory freed after a burst back to the system.
//!
//! glibc's malloc keeps freed memory in its arenas: after a burst of 100k calls sipd's
//! transactions are all freed within seconds, yet the process keeps the pages (the heap top
//! is pinned by a few live chunks, and only the top is returned by itself). `malloc_trim(0)`
//! returns every whole free page of every arena. It walks the arenas under their locks, so it
//! is not for the message path: the housekeeping thread calls [`Trimmer::tick`] every
//! [`TRIM_EVERY`], which reads how much free memory the arenas hold (`mallinfo2`) and trims
//! only when that is more than [`MIN_FREE`] and more than a quarter of what they hold in all
//! (in steady traffic, freed memory is reused at once and no trim happens). Numbers, and why
//! this over mimalloc or jemalloc: "Memory and timers" in `docs/PERFORMANCE.md`. Without
//! glibc (another libc, or another global allocator), [`Trimmer::tick`] does nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How often the housekeeping thread looks.
pub const TRIM_EVERY: Duration = Duration::from_secs(5);

/// Free bytes inside malloc's arenas below which nothing is trimmed.
pub const MIN_FREE: usize = 8 << 20;

/// The trim policy and its counters.
#[derive(Debug, Default)]
pub struct Trimmer {
    trims: AtomicU64,
    released: AtomicU64,
}

/// What malloc holds: bytes in use and bytes free inside its arenas.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    /// Allocated and in use.
    pub used: usize,
    /// Free but kept by malloc.
    pub free: usize,
}

impl Trimmer {
    /// Whether `u` is worth a trim.
    pub fn worth_it(u: Usage) -> bool {
        u.free > MIN_FREE && u.free > (u.used + u.free) / 4
    }

    /// Look at malloc's arenas and trim them when [`Self::worth_it`]. Returns the usage seen.
    pub fn tick(&self) -> Option<Usage> {
        let before = usage()?;
        if Self::worth_it(before) {
            trim();
            let after = usage().unwrap_or(before);
            self.trims.fetch_add(1, Ordering::Relaxed);
            let released = before.free.saturating_sub(after.free);
            self.released.fetch_add(
                u64::try_from(released).unwrap_or(u64::MAX),
                Ordering::Relaxed,
            );
            tracing::debug!(
                free_before = before.free,
                used = before.used,
                "malloc_trim: {} bytes were free in malloc's arenas",
                before.free
            );
        }
        Some(before)
    }

    /// Trims done since start.
    pub fn trims(&self) -> u64 {
        self.trims.load(Ordering::Relaxed)
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod glibc {
    /// `struct mallinfo2` (glibc 2.33+).
    #[repr(C)]
    #[derive(Default)]
    pub struct MallInfo2 {
        pub arena: usize,
        pub ordblks: usize,
        pub smblks: usize,
        pub hblks: usize,
        pub hblkhd: usize,
        pub usmblks: usize,
        pub fsmblks: usize,
        pub uordblks: usize,
        pub fordblks: usize,
        pub keepcost: usize,
    }

    extern "C" {
        pub fn mallinfo2() -> MallInfo2;
        pub fn malloc_trim(pad: usize) -> i32;
    }
}

/// What glibc's malloc holds now (`None` without glibc).
pub fn usage() -> Option<Usage> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 takes no argument and returns a plain struct by value; it only
        // reads malloc's own state under its arena locks.
        let m = unsafe { glibc::mallinfo2() };
        Some(Usage {
            used: m.uordblks.saturating_add(m.hblkhd),
            free: m.fordblks,
        })
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        None
    }
}

/// `malloc_trim(0)` (nothing without glibc).
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes a byte count and only touches malloc's own state, under its
    // arena locks; it is safe to call from any thread at any time.
    unsafe {
        glibc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_only_a_large_share_of_free_memory() {
        let mb: usize = 1 << 20;
        let u = |used: usize, free: usize| Usage {
            used: used * mb,
            free: free * mb,
        };
        assert!(!Trimmer::worth_it(u(10, 4)), "too little free");
        assert!(!Trimmer::worth_it(u(200, 40)), "steady traffic reuses it");
        assert!(Trimmer::worth_it(u(10, 90)), "after a burst");
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn freed_burst_is_seen_and_trimmed() {
        let t = Trimmer::default();
        // A burst of small allocations, most freed, one kept at the end to pin the heap top.
        let mut v: Vec<Vec<u8>> = (0..200_000).map(|i| vec![i as u8; 200]).collect();
        let pin = v.pop();
        drop(v);
        let seen = t.tick().expect("glibc");
        assert!(seen.free > MIN_FREE, "{seen:?}");
        assert_eq!(t.trims(), 1);
        drop(pin);
    }
}
