//! `#[kemi(module = "...", name = "...")]`: export a plain Rust function to KEMI scripts as
//! `KSR.<module>.<name>` (or `KSR.<name>` for a core export), checked at compile time.
//!
//! ```
//! use kemi_runtime::{kemi, SipMsg, Xval};
//!
//! /// Set message flag `flag` (0..63).
//! #[kemi(name = "setflag")] // core export: `KSR.setflag(1)`
//! pub fn setflag(msg: &mut SipMsg, flag: i32) -> bool {
//!     (0..64).contains(&flag)
//! }
//!
//! /// The value of variable `name`.
//! #[kemi(module = "pv", name = "get")] // `KSR.pv.get("$var(x)")`
//! pub fn pv_get(msg: &mut SipMsg, name: &str) -> Xval {
//!     Xval::Null
//! }
//! ```
//!
//! # Accepted signatures
//!
//! `fn name(msg: &mut SipMsg, p1, .., pN) -> R` where
//! - the first parameter is the message context, `&mut SipMsg` (any path ending in `SipMsg`);
//! - `p1..pN` are 0 to 6 parameters, each `i32` (int) or `&str` (str), in any combination; the
//!   single exception `(&str, i64)` (str, long) exists for `pv.setl`, and `i64` is refused elsewhere;
//! - `R` is `i32` (int), `bool`, `Xval` (any value) or nothing / `()` (none);
//! - the function is a plain free `fn`: not `async`, `unsafe`, `const` or `extern`, no `self`,
//!   no type or const generics (lifetime parameters are fine), no `where` clause, no attributes
//!   on parameters;
//! - `module` (default: core) and `name` (default: the function's name) are ASCII identifiers and
//!   not reserved words of Lua, JavaScript or Python (`end`, `function`, `class`, ...).
//!
//! The function's doc comment becomes the export's `doc`, shown by `api_list`.
//!
//! # How it works
//!
//! The macro runs three passes, as serde_derive does: `model` turns syn input into a typed
//! `KemiFn` without judging it, `check` validates it and reports *every* problem at once on the
//! offending token, and `expand` emits, inside `const _: () = { ... }`, a
//! `kemi_runtime::KemiExport` registered in `kemi_runtime::__private::KEMI_EXPORTS` (linkme is
//! reached through that path, so module crates need no linkme dependency) with a trampoline that
//! matches the argument slice without allocating. The function itself is always re-emitted
//! unchanged.

use proc_macro::TokenStream;

mod attr;
mod check;
mod doc;
mod errors;
mod expand;
mod model;
mod script_ident;

/// Export a function to KEMI scripts as `KSR.<module>.<name>` (or `KSR.<name>` for the core).
///
/// Keys: `module = "..."` (omitted or `""`: a core export) and `name = "..."` (default: the
/// function's name). See the [crate documentation](crate) for the accepted signatures.
#[proc_macro_attribute]
pub fn kemi(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::kemi(attr.into(), item.into()).into()
}
