//! [`MsgSlot`]: where an engine lends the message of the current callback run to its `KSR`
//! functions, and the one place that turns the lent pointer back into a `&mut SipMsg`.
//!
//! The Lua and JavaScript engines keep one slot per interpreter (in their [`Ctx`]); the Python
//! engine keeps one per OS thread, because all Python engines share one interpreter.
//!
//! # Soundness
//!
//! [`MsgSlot::lent`] stores a raw pointer made from the caller's `&mut SipMsg` and runs a
//! closure; a guard puts the previous pointer back when the closure returns or unwinds. `lent`
//! holds the unique borrow for the whole closure, which cannot name the message, so while the
//! pointer is non-null nobody else can touch the message. Loans are scopes, not values, so they
//! cannot be leaked or ended out of order: they nest strictly. [`MsgSlot::with_msg`] turns the
//! pointer into a `&mut SipMsg` only for the duration of one closure, and a `busy` flag refuses
//! any nested access (an export that re-enters, or a finalizer of the interpreter that calls
//! `KSR` while an export runs, gets `None`). A slot is neither `Send` nor `Sync` (its cells), so
//! the pointer never leaves the thread that lent it.
//!
//! [`Ctx`]: super::ctx::Ctx

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use super::EngineKind;
use crate::export::{ArgError, KemiExport, KemiRet};
use crate::{Arg, SipMsg};

/// Why an export call did not produce a value.
#[derive(Debug)]
pub(crate) enum CallError {
    /// No message is lent: the script is loading (Lua, JavaScript), or the call comes from a
    /// thread the script started itself (Python). Kamailio's "invalid <language> environment".
    NoMessage,
    /// The trampoline refused the arguments.
    Args(ArgError),
    /// The export panicked; the panic was caught and logged.
    Panicked,
}

/// The message lent to the `KSR` functions of one interpreter (or thread) for one callback run.
pub(crate) struct MsgSlot {
    msg: Cell<*mut SipMsg>,
    busy: Cell<bool>,
}

impl MsgSlot {
    /// A slot with no message lent.
    pub(crate) const fn new() -> Self {
        MsgSlot {
            msg: Cell::new(ptr::null_mut()),
            busy: Cell::new(false),
        }
    }

    /// True while a message is lent (a callback is running).
    #[inline]
    pub(crate) fn has_msg(&self) -> bool {
        !self.msg.get().is_null()
    }

    /// Lend `msg` to the `KSR` functions while `f` runs, then take it back (also when `f`
    /// unwinds).
    pub(crate) fn lent<R>(&self, msg: &mut SipMsg, f: impl FnOnce() -> R) -> R {
        let prev = self.msg.replace(ptr::from_mut(msg));
        let _restore = Restore { slot: self, prev };
        f()
    }

    /// Run `f` on the lent message, if any and if not already in use.
    #[inline]
    pub(crate) fn with_msg<R>(&self, f: impl FnOnce(&mut SipMsg) -> R) -> Option<R> {
        let p = self.msg.get();
        if p.is_null() || self.busy.replace(true) {
            return None;
        }
        let _busy = BusyGuard(&self.busy);
        // SAFETY: `p` is non-null only inside a `lent` call, which holds the unique borrow it
        // came from (module docs), and `busy` makes this the only `&mut` made from it right now.
        let msg = unsafe { &mut *p };
        Some(f(msg))
    }

    /// Call `export` with `args` on the lent message, catching panics (logged under the target
    /// of `kind`).
    #[inline]
    pub(crate) fn call(
        &self,
        kind: EngineKind,
        export: &'static KemiExport,
        args: &[Arg<'_>],
    ) -> Result<KemiRet, CallError> {
        crate::calls::record(export);
        let res = self.with_msg(|msg| catch_unwind(AssertUnwindSafe(|| (export.call)(msg, args))));
        match res {
            None => Err(CallError::NoMessage),
            Some(Ok(Ok(ret))) => Ok(ret),
            Some(Ok(Err(e))) => Err(CallError::Args(e)),
            Some(Err(_payload)) => {
                log_panic(kind, export);
                Err(CallError::Panicked)
            }
        }
    }
}

/// Log a caught export panic.
#[cold]
fn log_panic(kind: EngineKind, export: &KemiExport) {
    super::engine_error!(kind, "KSR export {} panicked", export.qualified_name());
}

/// Puts the previous pointer back, also when unwinding.
struct Restore<'a> {
    slot: &'a MsgSlot,
    prev: *mut SipMsg,
}

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        self.slot.msg.set(self.prev);
    }
}

/// Clears the `busy` flag, also when unwinding.
struct BusyGuard<'a>(&'a Cell<bool>);

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}
