//! The language-neutral part of `KSR.x.modf(fname, ...)`: find the export by function name
//! (core first, then modules in slot order), parse its string arguments to the declared kinds,
//! and map its result to Kamailio's native integer code.
//!
//! Each engine keeps what is its own: reading the name and the arguments off its stack, and
//! turning an [`Outcome`] into a value of its language or a raised error.

use std::collections::HashMap;

use super::lease::CallError;
use super::{EngineKind, MAX_PARAMS};
use crate::export::{KemiExport, KemiRet, ParamType};
use crate::{Arg, ExportTable, Xval};

/// Slot by function name, for `KSR.x.modf`: core exports win over module ones.
pub(crate) struct ModfIndex {
    by_fname: HashMap<&'static str, u16>,
}

impl ModfIndex {
    /// Index the function names of `table`.
    pub(crate) fn new(table: &ExportTable) -> Self {
        let mut by_fname = HashMap::with_capacity(table.len());
        // Slots are in module order with the core first, so the first insert wins.
        for (slot, e) in table.iter() {
            by_fname.entry(e.name).or_insert(slot);
        }
        ModfIndex { by_fname }
    }

    /// The export of `table` (the one indexed) that `KSR.x.modf` runs for `fname`.
    pub(crate) fn get(&self, table: &ExportTable, fname: &str) -> Option<&'static KemiExport> {
        self.by_fname.get(fname).and_then(|slot| table.get(*slot))
    }

    /// Like [`ModfIndex::get`], logging the refusals: `name` is `None` (the first argument is
    /// not a function name) or unknown, or `nargs` (when given) is fewer than the export
    /// declares or more than [`MAX_PARAMS`].
    pub(crate) fn resolve(
        &self,
        kind: EngineKind,
        table: &ExportTable,
        name: Option<&str>,
        nargs: Option<usize>,
    ) -> Option<&'static KemiExport> {
        let Some(name) = name else {
            super::engine_error!(
                kind,
                "KSR.x.modf: the first argument must be a function name"
            );
            return None;
        };
        let Some(export) = self.get(table, name) else {
            super::engine_error!(kind, "KSR.x.modf: function `{name}` not found");
            return None;
        };
        let params = export.params.len();
        match nargs {
            Some(n) if n < params || n > MAX_PARAMS || params > MAX_PARAMS => {
                super::engine_error!(
                    kind,
                    "KSR.x.modf: `{name}` takes {params} parameters, got {n}"
                );
                None
            }
            _ => Some(export),
        }
    }
}

/// How a `KSR.x.modf` call that found its export ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The native integer code to return (-1 after a logged refusal).
    Code(i32),
    /// No message is lent; nothing was logged.
    NoMessage,
    /// The export panicked (logged); the engine raises its error.
    Panicked,
}

/// Parse `strs` (the string arguments, at most [`MAX_PARAMS`]) to the kinds `export` declares,
/// run `call` with them, and map the result: an export result to [`modf_code`]; an unparsable
/// number or refused arguments to -1 with an error log.
pub(crate) fn call_with_strs(
    kind: EngineKind,
    export: &'static KemiExport,
    strs: &[Arg<'_>],
    call: impl FnOnce(&[Arg<'_>]) -> Result<KemiRet, CallError>,
) -> Outcome {
    let name = export.name;
    let n = strs.len().min(MAX_PARAMS);
    let mut typed = [Arg::Int(0); MAX_PARAMS];
    for (i, (arg, ty)) in strs[..n].iter().zip(export.params).enumerate() {
        let Arg::Str(s) = *arg else { continue };
        typed[i] = match ty {
            ParamType::Str => Arg::Str(s),
            ParamType::Int => match s.trim().parse() {
                Ok(v) => Arg::Int(v),
                Err(_) => return not_a_number(kind, name, i),
            },
            ParamType::Long => match s.trim().parse() {
                Ok(v) => Arg::Long(v),
                Err(_) => return not_a_number(kind, name, i),
            },
        };
    }
    match call(&typed[..n]) {
        Ok(ret) => Outcome::Code(modf_code(&ret)),
        Err(CallError::NoMessage) => Outcome::NoMessage,
        Err(CallError::Panicked) => Outcome::Panicked,
        Err(CallError::Args(e)) => {
            super::engine_error!(kind, "KSR.x.modf: invalid parameters for `{name}`: {e}");
            Outcome::Code(-1)
        }
    }
}

/// Log that argument `i` (0-based) of `name` is not a number; -1.
#[cold]
fn not_a_number(kind: EngineKind, name: &str, i: usize) -> Outcome {
    super::engine_error!(
        kind,
        "KSR.x.modf: argument {} of `{name}` is not a number",
        i + 1
    );
    Outcome::Code(-1)
}

/// The native return code `KSR.x.modf` gives for an export result: an int as is, a bool as
/// 1/-1, anything else 1.
pub(crate) fn modf_code(ret: &KemiRet) -> i32 {
    match ret {
        KemiRet::Int(n) | KemiRet::Xval(Xval::Int(n)) => *n,
        KemiRet::Bool(b) | KemiRet::Xval(Xval::Bool(b)) => {
            if *b {
                1
            } else {
                -1
            }
        }
        KemiRet::None | KemiRet::Xval(_) => 1,
    }
}
