//! [`Histogram`]: a latency histogram written by one thread without locks and read by any.
//!
//! prometheus-client's own histogram takes a lock per observation; this one is per worker, so
//! an observation is a relaxed load and store on two counters only that worker writes. Readers
//! add up the workers' buckets ([`HistogramSnapshot::add`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in seconds (the last, +Inf, is implicit).
pub const BOUNDS: [f64; 14] = [
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.05, 0.1, 1.0,
];
/// Bounds in nanoseconds, for the observation path.
const BOUNDS_NS: [u64; 14] = [
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    1_000_000_000,
];
/// Buckets including +Inf.
pub const BUCKETS: usize = BOUNDS.len() + 1;

/// One writer's latency histogram.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS],
    sum_ns: AtomicU64,
}

impl Histogram {
    /// Record one duration. Only the owning thread may call this.
    #[inline]
    pub fn observe(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let i = BOUNDS_NS.partition_point(|b| *b < ns);
        if let Some(b) = self.buckets.get(i) {
            bump(b, 1);
        }
        bump(&self.sum_ns, ns);
    }

    /// The counts so far.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut s = HistogramSnapshot::default();
        s.add_from(self);
        s
    }
}

/// Single-writer increment: no locked instruction.
#[inline]
fn bump(c: &AtomicU64, by: u64) {
    c.store(
        c.load(Ordering::Relaxed).wrapping_add(by),
        Ordering::Relaxed,
    );
}

/// Bucket counts (not cumulative) and the sum, read at one moment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HistogramSnapshot {
    /// Count per bucket, the last being +Inf.
    pub buckets: [u64; BUCKETS],
    /// Sum of the observations, in nanoseconds.
    pub sum_ns: u64,
}

impl HistogramSnapshot {
    /// Add the current counts of `h`.
    pub fn add_from(&mut self, h: &Histogram) {
        for (mine, theirs) in self.buckets.iter_mut().zip(h.buckets.iter()) {
            *mine += theirs.load(Ordering::Relaxed);
        }
        self.sum_ns += h.sum_ns.load(Ordering::Relaxed);
    }

    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// `(upper bound in seconds, count)` per bucket, +Inf last, as prometheus-client wants.
    pub fn pairs(&self) -> Vec<(f64, u64)> {
        BOUNDS
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(self.buckets.iter().copied())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_their_bucket() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(5));
        h.observe(Duration::from_micros(10));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(5));
        let s = h.snapshot();
        assert_eq!(s.count(), 4);
        assert_eq!(s.buckets[0], 2, "<= 10 us");
        assert_eq!(s.buckets[8], 1, "<= 5 ms");
        assert_eq!(s.buckets[BUCKETS - 1], 1, "+Inf");
        assert_eq!(s.sum_ns, 5_000 + 10_000 + 3_000_000 + 5_000_000_000);
    }
}
