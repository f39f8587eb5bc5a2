//! A per-thread log budget: at most [`BURST`] lines per [`WINDOW`] per kind of line, so a flood
//! (of failing script runs, of malformed packets) cannot fill the disk. What is left out is
//! counted, and the next line that gets through says how many.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// Lines logged per thread per window, per kind.
pub const BURST: u32 = 10;
/// The window.
pub const WINDOW: Duration = Duration::from_secs(10);

/// One kind of line's budget on one thread (keep it in a `thread_local!`).
#[derive(Debug)]
pub struct LogBudget {
    since: Cell<Option<Instant>>,
    logged: Cell<u32>,
    suppressed: Cell<u64>,
}

impl LogBudget {
    /// A budget with nothing logged yet.
    pub const fn new() -> LogBudget {
        LogBudget {
            since: Cell::new(None),
            logged: Cell::new(0),
            suppressed: Cell::new(0),
        }
    }

    /// Whether one more line may be written at `now`; `Some(n)` carries how many were left out
    /// since the last line that got through.
    pub fn admit(&self, now: Instant) -> Option<u64> {
        let fresh = self
            .since
            .get()
            .is_none_or(|t| now.duration_since(t) >= WINDOW);
        if fresh {
            self.since.set(Some(now));
            self.logged.set(0);
        }
        if self.logged.get() < BURST {
            self.logged.set(self.logged.get() + 1);
            Some(self.suppressed.replace(0))
        } else {
            self.suppressed.set(self.suppressed.get() + 1);
            None
        }
    }
}

impl Default for LogBudget {
    fn default() -> Self {
        LogBudget::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_cut_to_a_burst_per_window() {
        let budget = LogBudget::new();
        let now = Instant::now();
        let logged = (0..1000).filter(|_| budget.admit(now).is_some()).count();
        assert_eq!(logged, BURST as usize);
        // Once the window has passed, lines get through again and carry the count left out.
        let later = now + WINDOW;
        assert_eq!(budget.admit(later), Some(1000 - u64::from(BURST)));
        assert_eq!(budget.admit(later), Some(0));
    }
}
