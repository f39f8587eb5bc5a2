//! `#[kemi(module = "...", name = "...")]`: export a plain Rust function to KEMI scripts.
//!
//! This crate only parses the attribute input and hands it to three passes that live in their
//! own modules, as serde_derive does: [`model`] turns syn input into a typed [`model::KemiFn`],
//! [`check`] validates it (collecting every error, each on its exact token), and [`expand`]
//! generates the descriptor. The function itself is always re-emitted unchanged, so one bad
//! export gives its own errors and no cascade.

use proc_macro::TokenStream;

mod check;
mod expand;
mod model;

/// Export a function to KEMI scripts as `KSR.<module>.<name>` (or `KSR.<name>` for the core).
///
/// See the `kemi-runtime` crate documentation for the accepted signatures.
#[proc_macro_attribute]
pub fn kemi(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::kemi(attr.into(), item.into()).into()
}
