//! The KEMI runtime: what every export, engine and host shares.
//!
//! - [`export`]: the static descriptor that `#[kemi]` emits for each exported function, and the
//!   traits that map Rust parameter and return types onto KEMI's `int`/`str`/`bool`/`xval` kinds.
//! - [`table`]: the fixed-size dispatch table that indexes every export at startup.
//! - [`xval`]: value-returning exports' result type.
//! - [`msg`]: [`SipMsg`], the per-message routing context every export receives.
//! - [`sip`]: the zero-copy SIP message model (parser, lazy header access, edits, replies).
//! - [`calls`]: per-thread counts of export calls (`kemi.stats`).
//! - [`engine`]: the script engines (Lua first) behind one interface.

extern crate self as kemi_runtime;

pub mod calls;
pub mod engine;
pub mod export;
pub mod msg;
pub mod services;
pub mod sip;
pub mod table;
pub mod xval;

pub use export::{Arg, ArgError, KemiExport, KemiParam, KemiRet, KemiReturn, ParamType, RetType};
pub use kemi_macros::kemi;
pub use msg::SipMsg;
pub use table::{ExportTable, TableError};
pub use xval::Xval;

/// Every export descriptor linked into this binary, in link order (unsorted).
///
/// Hosts pass this to [`ExportTable::build`] together with the [`table::ModuleSet`] of every
/// crate that defines exports; naming those sets is what links the crates.
pub fn linked_exports() -> &'static [KemiExport] {
    &__private::KEMI_EXPORTS
}

/// Items the `#[kemi]` expansion refers to. Not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use linkme;

    /// Every descriptor emitted by `#[kemi]`, in link order (unsorted).
    #[linkme::distributed_slice]
    pub static KEMI_EXPORTS: [crate::KemiExport];
}
