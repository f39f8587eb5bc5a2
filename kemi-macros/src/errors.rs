//! The error collector shared by the passes (serde_derive's `Ctxt`, pyo3's `combine_errors`).
//!
//! Passes push every problem they find instead of returning at the first one, so a user sees all
//! of an export's errors in one build, each on its own token.

use std::fmt::Display;

use quote::ToTokens;

/// Errors found so far, in source order of discovery.
#[derive(Default)]
pub struct Errors {
    errors: Vec<syn::Error>,
}

impl Errors {
    /// An empty collector.
    pub fn new() -> Self {
        Errors::default()
    }

    /// Record an error spanning the whole of `tokens` (first to last token, also on stable).
    pub fn spanned(&mut self, tokens: impl ToTokens, message: impl Display) {
        self.errors.push(syn::Error::new_spanned(tokens, message));
    }

    /// Record an error at one span.
    pub fn at(&mut self, span: proc_macro2::Span, message: impl Display) {
        self.errors.push(syn::Error::new(span, message));
    }

    /// `Ok` when nothing was recorded, else every error combined into one.
    pub fn finish(self) -> Result<(), syn::Error> {
        let mut iter = self.errors.into_iter();
        match iter.next() {
            None => Ok(()),
            Some(mut first) => {
                for e in iter {
                    first.combine(e);
                }
                Err(first)
            }
        }
    }
}
