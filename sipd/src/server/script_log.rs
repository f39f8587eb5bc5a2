//! Rate-limited logging of script failures.
//!
//! A script that fails on every message (a typo in a rarely tested branch, a limit hit under a
//! flood) would otherwise write one line per message and fill the disk. Each worker thread logs
//! at most [`BURST`] failures per [`WINDOW`] ([`super::rate_limit`]); the rest are counted, and
//! the next line that gets through says how many were left out. The per-callback error counters
//! (`sipd_script_errors_total`) still count every failure.

use std::fmt::Display;
use std::time::Instant;

use super::rate_limit::LogBudget;
pub use super::rate_limit::{BURST, WINDOW};

thread_local! {
    static BUDGET: LogBudget = const { LogBudget::new() };
}

/// Whether one more failure line may be written now on this thread (see [`LogBudget::admit`]).
fn admit(now: Instant) -> Option<u64> {
    BUDGET.with(|b| b.admit(now))
}

/// Log that `callback` failed with `error` on message `call_id` (from `src`, when known),
/// unless this worker already logged [`BURST`] failures in the current [`WINDOW`]. Returns
/// whether a line was written.
pub fn script_failed(
    callback: &str,
    call_id: &str,
    src: Option<std::net::SocketAddr>,
    error: &dyn Display,
) -> bool {
    let Some(left_out) = admit(Instant::now()) else {
        return false;
    };
    let src = src.map(|s| s.to_string()).unwrap_or_default();
    if left_out > 0 {
        tracing::warn!(
            callback,
            call_id,
            src,
            left_out,
            "{callback} failed: {error} ({left_out} earlier script failures not logged)"
        );
    } else {
        tracing::warn!(callback, call_id, src, "{callback} failed: {error}");
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_failures_is_cut_to_a_burst_per_window() {
        let logged = (0..1000)
            .filter(|_| script_failed("ksr_request_route", "c", None, &"boom"))
            .count();
        assert_eq!(logged, BURST as usize);
        // Once the window has passed, lines get through again and carry the count left out.
        let later = Instant::now() + WINDOW;
        assert_eq!(admit(later), Some(1000 - u64::from(BURST)));
        assert_eq!(admit(later), Some(0));
    }
}
