//! The [`ScriptLimits`](crate::engine::limits::ScriptLimits) of one QuickJS runtime: a per-run
//! budget enforced by the interrupt handler, and how a failed run is told apart as a limit hit.
//!
//! # What a unit of the budget is
//!
//! QuickJS has no instruction count hook. It *polls* for interrupts at every function call
//! (bytecode or native, `KSR` exports included) and at every jump instruction it executes
//! (`goto`, and `if_true`/`if_false` whether the branch is taken or not), and calls the
//! runtime's interrupt handler once every [`POLL_PERIOD`] polls. One unit of the JavaScript
//! budget is one such poll: a `for` loop iteration costs about two (its test and its jump back),
//! an `if` one, a call one. So `instructions = 10_000_000` lets a run make some five million loop
//! iterations, where the same number lets a Lua run execute ten million VM instructions (a Lua
//! loop iteration is a few): a JavaScript unit is coarser. Straight-line code between two jumps
//! or calls is free, which is harmless: without a jump or a call it cannot run long.
//! The handler takes [`POLL_PERIOD`] units off the budget per call, so the budget is enforced with
//! a granularity of [`POLL_PERIOD`] units: with the budget rounded up to a multiple of
//! [`POLL_PERIOD`] (at least one), a run is stopped after more than that minus [`POLL_PERIOD`]
//! units and at most that many (the poll countdown lives in the QuickJS context and carries over
//! from one run to the next).
//!
//! When the budget is spent the handler returns `true`: QuickJS throws an *uncatchable*
//! `InternalError: interrupted` (neither `catch` nor `finally` blocks run), which unwinds the whole
//! call. The handler keeps answering `true` until the next run re-[arms](Budget::arm) it.
//!
//! # Memory
//!
//! The ceiling is QuickJS's own allocator limit (`JS_SetMemoryLimit`). An allocation over it
//! throws `InternalError: out of memory`, or `null` when even the error object cannot be
//! allocated. The engine does not see allocations (rquickjs's custom-allocator hook is behind a
//! feature this crate does not enable), and by the time a run has failed QuickJS's reference
//! counting has already freed what the unwound frames held, so [`is_out_of_memory`] classifies a
//! failed run from what it threw: a script that itself throws `null` under a memory ceiling is
//! counted as a memory-limit hit.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use rquickjs::Runtime;

/// Interrupt polls between two calls of the interrupt handler: QuickJS's
/// `JS_INTERRUPT_COUNTER_INIT`, and the granularity of the budget.
pub const POLL_PERIOD: u64 = 10_000;

/// The budget left to the run in progress, shared with the interrupt handler.
///
/// Atomics rather than `Cell`s so the handler is `Send` whatever rquickjs features are unified
/// in (its `parallel` feature requires it); the engine itself stays on one thread.
#[derive(Debug, Default)]
pub(super) struct Budget {
    /// Units left.
    left: AtomicU64,
    /// The handler asked QuickJS to interrupt since the last [`Budget::arm`].
    tripped: AtomicBool,
}

impl Budget {
    /// Install an interrupt handler on `runtime` that spends this budget; unlimited until armed.
    pub(super) fn install(runtime: &Runtime) -> Arc<Budget> {
        let budget = Arc::new(Budget {
            left: AtomicU64::new(u64::MAX),
            tripped: AtomicBool::new(false),
        });
        let shared = Arc::clone(&budget);
        runtime.set_interrupt_handler(Some(Box::new(move || shared.spend())));
        budget
    }

    /// Give the next run (or load) a budget of `units`.
    pub(super) fn arm(&self, units: u64) {
        self.left.store(units, Ordering::Relaxed);
        self.tripped.store(false, Ordering::Relaxed);
    }

    /// True when the budget stopped the run since the last [`Budget::arm`].
    pub(super) fn tripped(&self) -> bool {
        self.tripped.load(Ordering::Relaxed)
    }

    /// One handler call: take a period off; true (interrupt) once nothing is left.
    fn spend(&self) -> bool {
        let left = self.left.load(Ordering::Relaxed);
        if left > POLL_PERIOD {
            self.left.store(left - POLL_PERIOD, Ordering::Relaxed);
            false
        } else {
            self.left.store(0, Ordering::Relaxed);
            self.tripped.store(true, Ordering::Relaxed);
            true
        }
    }
}

/// True when a run under a memory ceiling that failed with `message` (`null_thrown`: the thrown
/// value was `null`) failed for want of memory. `contains`: a script that catches the error and
/// throws a new one with its text keeps it recognizable.
pub(super) fn is_out_of_memory(message: &str, null_thrown: bool) -> bool {
    null_thrown || message.contains("out of memory")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spends_a_period_per_call_and_trips_at_the_end() {
        let b = Budget::default();
        b.arm(3 * POLL_PERIOD);
        assert!(!b.spend());
        assert!(!b.spend());
        assert!(b.spend());
        assert!(b.tripped());
        // Stays tripped until re-armed.
        assert!(b.spend());
        b.arm(POLL_PERIOD + 1);
        assert!(!b.tripped());
        assert!(!b.spend());
        assert!(b.spend());
    }

    #[test]
    fn out_of_memory_from_message_or_null() {
        assert!(is_out_of_memory("InternalError: out of memory", false));
        assert!(is_out_of_memory("null", true));
        assert!(!is_out_of_memory("TypeError: x is not a function", false));
        assert!(!is_out_of_memory("null", false));
    }
}
