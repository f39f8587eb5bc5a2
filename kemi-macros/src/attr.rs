//! The attribute's own arguments: `#[kemi(module = "...", name = "...")]`.
//!
//! This pass judges only the attribute's syntax (known keys, each at most once, string values);
//! whether a value is a usable script identifier is [`crate::check`]'s business.

use proc_macro2::{Span, TokenStream};
use syn::parse::Parser;
use syn::punctuated::Punctuated;

use crate::errors::Errors;

/// A string value with the span of its literal.
#[derive(Clone, Debug)]
pub struct SpannedStr {
    /// The literal's value.
    pub value: String,
    /// The literal's span.
    pub span: Span,
}

/// The keys given to `#[kemi(...)]`.
#[derive(Debug, Default)]
pub struct ExportAttr {
    /// `module = "..."`; absent means the core.
    pub module: Option<SpannedStr>,
    /// `name = "..."`; absent means the function's name.
    pub name: Option<SpannedStr>,
}

/// Parse the attribute arguments, recording every problem in `errors`.
pub fn parse(args: TokenStream, errors: &mut Errors) -> ExportAttr {
    let mut attr = ExportAttr::default();
    let metas = match Punctuated::<syn::Meta, syn::Token![,]>::parse_terminated.parse2(args) {
        Ok(metas) => metas,
        Err(e) => {
            errors.at(
                e.span(),
                format_args!(
                    "{e}: `#[kemi]` takes `module = \"...\"` and `name = \"...\"`, both optional"
                ),
            );
            return attr;
        }
    };
    for meta in metas {
        let path = meta.path();
        let slot = if path.is_ident("module") {
            &mut attr.module
        } else if path.is_ident("name") {
            &mut attr.name
        } else {
            errors.spanned(
                path,
                "unknown `kemi` attribute key: expected `module` or `name`",
            );
            continue;
        };
        let key = if path.is_ident("module") {
            "module"
        } else {
            "name"
        };
        let duplicate = slot.is_some();
        if duplicate {
            errors.spanned(path, format_args!("duplicate `{key}` key: give it once"));
        }
        let example = if key == "module" { "pv" } else { "setflag" };
        match &meta {
            syn::Meta::NameValue(nv) => match string_literal(&nv.value) {
                Some(lit) if !duplicate => {
                    *slot = Some(SpannedStr {
                        value: lit.value(),
                        span: lit.span(),
                    });
                }
                Some(_) => {}
                None => errors.spanned(
                    &nv.value,
                    format_args!("`{key}` takes a string literal, e.g. `{key} = \"{example}\"`"),
                ),
            },
            syn::Meta::Path(_) | syn::Meta::List(_) => errors.spanned(
                &meta,
                format_args!("`{key}` needs a value: `{key} = \"{example}\"`"),
            ),
        }
    }
    attr
}

/// The string literal of `expr`, looking through the invisible groups `macro_rules!` adds.
fn string_literal(expr: &syn::Expr) -> Option<&syn::LitStr> {
    match expr {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(s),
            ..
        }) => Some(s),
        syn::Expr::Group(g) => string_literal(&g.expr),
        _ => None,
    }
}
