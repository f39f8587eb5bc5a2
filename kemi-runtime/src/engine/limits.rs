//! [`ScriptLimits`]: what one routing script may consume, which Kamailio does not bound: an
//! instruction budget per callback run and a memory ceiling per interpreter.
//!
//! An engine that enforces a limit fails the run with a [`ScriptError`] whose message starts with
//! [`INSTRUCTION_LIMIT`] or [`MEMORY_LIMIT`]; [`LimitKind::of`] tells the host which limit it was,
//! so it can count it and answer the message per its policy. The interpreter stays usable.
//!
//! Engines are given their limits through [`load_with`](super::load_with). Which engines enforce
//! what (see also `docs/DECISIONS.md`):
//! - **Lua**: both. A budget unit is one Lua VM instruction, counted by a count hook every
//!   1000 instructions; the ceiling is mlua's allocator limit. A budget of at most
//!   [`EXACT_MAX`](super::lua::EXACT_MAX) instructions is counted from a run's first instruction.
//!   A larger one (sipd's default among them) is *watched*: LuaJIT slows every instruction
//!   while any count hook is set, so the hook is armed only once a run has used one to two
//!   [`SLICE`](super::lua::SLICE)s of its thread's CPU time (a per-thread CPU-time timer and its
//!   signal), and counts the full budget from there. Such a run is stopped after at least its
//!   budget and at most its budget plus what it executed before the hook came on; a run that
//!   ends within one slice is not counted. The error and its kind are the same either way.
//! - **JavaScript**: both. A budget unit is one QuickJS interrupt poll (one function call or one
//!   jump instruction: a loop iteration costs about two), counted by the interrupt handler every
//!   10 000 polls, so the budget is enforced to within 10 000 units; the stopping error cannot be
//!   caught by the script. The ceiling is QuickJS's allocator limit; a run that fails with
//!   `out of memory` (or throws `null`, which QuickJS does when it cannot allocate the error
//!   object) under a ceiling counts as a memory-limit hit.
//! - **Python**: neither; the limits are accepted and ignored.

use super::ScriptError;

/// Message prefix of a run stopped by the instruction budget.
pub const INSTRUCTION_LIMIT: &str = "instruction limit exceeded";
/// Message prefix of a run stopped by the memory ceiling.
pub const MEMORY_LIMIT: &str = "memory limit exceeded";
/// Loading a script (its top level) may use this many times the per-run instruction budget.
pub const LOAD_BUDGET_FACTOR: u64 = 10;
/// The smallest memory ceiling accepted: an interpreter with `KSR` bound needs a few hundred KiB.
pub const MIN_MEMORY: usize = 1 << 20;

/// Limits of one interpreter. `None` means unlimited (Kamailio's behaviour).
///
/// ```
/// use kemi_runtime::engine::limits::ScriptLimits;
/// let limits = ScriptLimits { instructions: Some(1_000_000), memory: Some(64 << 20) };
/// assert_eq!(limits.load_instructions(), Some(10_000_000));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScriptLimits {
    /// Virtual-machine instructions one callback run may execute (time spent inside `KSR`
    /// exports is not counted). What one unit is depends on the engine (module docs).
    pub instructions: Option<u64>,
    /// Bytes the interpreter may hold allocated.
    pub memory: Option<usize>,
}

impl ScriptLimits {
    /// The instruction budget of loading the script: [`LOAD_BUDGET_FACTOR`] runs' worth.
    pub fn load_instructions(&self) -> Option<u64> {
        self.instructions
            .map(|n| n.saturating_mul(LOAD_BUDGET_FACTOR))
    }
}

/// Which limit stopped a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LimitKind {
    /// The per-run instruction budget.
    Instructions,
    /// The interpreter's memory ceiling.
    Memory,
}

impl LimitKind {
    /// Both kinds, for per-kind counters.
    pub const ALL: [LimitKind; 2] = [LimitKind::Instructions, LimitKind::Memory];

    /// `"instructions"` or `"memory"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            LimitKind::Instructions => "instructions",
            LimitKind::Memory => "memory",
        }
    }

    /// The limit that stopped the run which failed with `err`, if a limit did.
    pub fn of(err: &ScriptError) -> Option<LimitKind> {
        // `contains`: a script that catches the error and raises it again adds a position.
        if err.message.contains(INSTRUCTION_LIMIT) {
            Some(LimitKind::Instructions)
        } else if err.message.contains(MEMORY_LIMIT) {
            Some(LimitKind::Memory)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(message: &str) -> ScriptError {
        ScriptError {
            message: message.into(),
            location: None,
            traceback: String::new(),
        }
    }

    #[test]
    fn classifies_by_prefix() {
        assert_eq!(
            LimitKind::of(&err("instruction limit exceeded (1000)")),
            Some(LimitKind::Instructions)
        );
        assert_eq!(
            LimitKind::of(&err("memory limit exceeded: not enough memory")),
            Some(LimitKind::Memory)
        );
        assert_eq!(LimitKind::of(&err("attempt to call a nil value")), None);
    }

    #[test]
    fn load_budget_saturates() {
        let l = ScriptLimits {
            instructions: Some(u64::MAX / 2),
            memory: None,
        };
        assert_eq!(l.load_instructions(), Some(u64::MAX));
        assert_eq!(ScriptLimits::default().load_instructions(), None);
    }
}
