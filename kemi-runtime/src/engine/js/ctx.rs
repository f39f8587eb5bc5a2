//! [`Ctx`]: what the `KSR` native functions of one JavaScript context share: the export table,
//! the `KSR.x.modf` name index, and the message lent for the current callback run.
//!
//! # Soundness of the lent message
//!
//! [`Ctx::lend`] stores a raw pointer to the caller's `&mut SipMsg` and returns a [`MsgLease`]
//! that keeps that unique borrow alive and clears the pointer when dropped (on return and during
//! unwinding). So the pointer is non-null only while the engine holds the unique borrow and nobody
//! else can touch the message. [`Ctx::with_msg`] turns it into a `&mut SipMsg` only for the
//! duration of one export call; exports have no handle to the interpreter, so they cannot re-enter
//! it, and a `busy` flag refuses any nested access anyway. No JavaScript runs while that `&mut` is
//! alive (arguments are converted before, results after).

use std::cell::Cell;
use std::collections::HashMap;
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::Arc;

use crate::export::{ArgError, KemiExport, KemiRet};
use crate::{Arg, ExportTable, SipMsg};

/// Why an export call did not produce a value.
#[derive(Debug)]
pub(super) enum CallError {
    /// No message is lent (the script is loading): Kamailio's "invalid JS environment".
    NoMessage,
    /// The trampoline refused the arguments.
    Args(ArgError),
    /// The export panicked; the panic was caught.
    Panicked,
}

/// Shared state of the `KSR` functions of one JavaScript context.
pub(super) struct Ctx {
    table: Arc<ExportTable>,
    msg: Cell<*mut SipMsg>,
    busy: Cell<bool>,
    /// Slot by function name, for `KSR.x.modf`: core exports win over module ones.
    by_fname: HashMap<&'static str, u16>,
}

impl Ctx {
    /// Index `table` for one context.
    pub(super) fn new(table: Arc<ExportTable>) -> Self {
        let mut by_fname = HashMap::with_capacity(table.len());
        // Slots are in module order with the core first, so the first insert wins.
        for (slot, e) in table.iter() {
            by_fname.entry(e.name).or_insert(slot);
        }
        Ctx {
            table,
            msg: Cell::new(ptr::null_mut()),
            busy: Cell::new(false),
            by_fname,
        }
    }

    /// The export table.
    pub(super) fn table(&self) -> &ExportTable {
        &self.table
    }

    /// The export in `slot`.
    #[inline]
    pub(super) fn export(&self, slot: u16) -> Option<&'static KemiExport> {
        self.table.get(slot)
    }

    /// The export `KSR.x.modf` runs for `fname`.
    pub(super) fn modf_export(&self, fname: &str) -> Option<&'static KemiExport> {
        self.by_fname
            .get(fname)
            .and_then(|slot| self.table.get(*slot))
    }

    /// True while a message is lent (a callback is running).
    #[inline]
    pub(super) fn has_msg(&self) -> bool {
        !self.msg.get().is_null()
    }

    /// Lend `msg` to the `KSR` functions until the lease is dropped.
    pub(super) fn lend<'a>(&'a self, msg: &'a mut SipMsg) -> MsgLease<'a> {
        let prev = self.msg.replace(msg as *mut SipMsg);
        MsgLease {
            ctx: self,
            prev,
            _msg: PhantomData,
        }
    }

    /// Run `f` on the lent message, if any and if not already in use.
    #[inline]
    pub(super) fn with_msg<R>(&self, f: impl FnOnce(&mut SipMsg) -> R) -> Option<R> {
        let p = self.msg.get();
        if p.is_null() || self.busy.replace(true) {
            return None;
        }
        let _busy = BusyGuard(&self.busy);
        // SAFETY: `p` is non-null only while a `MsgLease` holds the unique borrow it came from
        // (module docs), and `busy` guarantees this is the only `&mut` made from it right now.
        let msg = unsafe { &mut *p };
        Some(f(msg))
    }

    /// Call `export` with `args` on the lent message, catching panics.
    #[inline]
    pub(super) fn call(
        &self,
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
                tracing::error!(target: "jsdt", "KSR export {} panicked", export.qualified_name());
                Err(CallError::Panicked)
            }
        }
    }
}

/// Clears the `busy` flag, also when unwinding.
struct BusyGuard<'a>(&'a Cell<bool>);

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

/// A message lent to the `KSR` functions; dropping it takes the message back.
pub(super) struct MsgLease<'a> {
    ctx: &'a Ctx,
    prev: *mut SipMsg,
    _msg: PhantomData<&'a mut SipMsg>,
}

impl Drop for MsgLease<'_> {
    fn drop(&mut self) {
        self.ctx.msg.set(self.prev);
    }
}
