//! [`Ctx`]: what the `KSR` native functions of one Lua or JavaScript interpreter share: the
//! export table, the `KSR.x.modf` name index, and the message lent for the current callback run
//! (a [`MsgSlot`], whose soundness argument is in [`super::lease`]).
//!
//! The engine owns its `Ctx` at a fixed address (`Rc` or `Box`) and drops the interpreter
//! first, so the raw pointer the native functions keep to it is valid whenever they run.

use std::sync::Arc;

use super::lease::{CallError, MsgSlot};
use super::modf::ModfIndex;
use super::EngineKind;
use crate::export::{KemiExport, KemiRet};
use crate::{Arg, ExportTable, SipMsg};

/// Shared state of the `KSR` functions of one interpreter.
pub(crate) struct Ctx {
    kind: EngineKind,
    table: Arc<ExportTable>,
    slot: MsgSlot,
    modf: ModfIndex,
}

impl Ctx {
    /// Index `table` for one interpreter of `kind` (which names the log target).
    pub(crate) fn new(kind: EngineKind, table: Arc<ExportTable>) -> Self {
        Ctx {
            kind,
            modf: ModfIndex::new(&table),
            table,
            slot: MsgSlot::new(),
        }
    }

    /// The language of the interpreter.
    pub(crate) fn kind(&self) -> EngineKind {
        self.kind
    }

    /// The export table.
    pub(crate) fn table(&self) -> &ExportTable {
        &self.table
    }

    /// The export in `slot`.
    #[inline]
    pub(crate) fn export(&self, slot: u16) -> Option<&'static KemiExport> {
        self.table.get(slot)
    }

    /// The `KSR.x.modf` name index.
    pub(crate) fn modf(&self) -> &ModfIndex {
        &self.modf
    }

    /// True while a message is lent (a callback is running).
    #[inline]
    pub(crate) fn has_msg(&self) -> bool {
        self.slot.has_msg()
    }

    /// Lend `msg` to the `KSR` functions while `f` runs.
    pub(crate) fn lent<R>(&self, msg: &mut SipMsg, f: impl FnOnce() -> R) -> R {
        self.slot.lent(msg, f)
    }

    /// Run `f` on the lent message, if any and if not already in use.
    #[inline]
    pub(crate) fn with_msg<R>(&self, f: impl FnOnce(&mut SipMsg) -> R) -> Option<R> {
        self.slot.with_msg(f)
    }

    /// Call `export` with `args` on the lent message, catching (and logging) panics.
    #[inline]
    pub(crate) fn call(
        &self,
        export: &'static KemiExport,
        args: &[Arg<'_>],
    ) -> Result<KemiRet, CallError> {
        self.slot.call(self.kind, export, args)
    }
}
