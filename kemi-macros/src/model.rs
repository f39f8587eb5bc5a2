//! The typed model of one export, built from syn input without judging it.

use proc_macro2::{Span, TokenStream};

/// One export as written.
pub struct KemiFn {
    /// `module = "..."`, with the literal's span.
    pub module: Option<(String, Span)>,
    /// `name = "..."`, with the literal's span.
    pub name: Option<(String, Span)>,
    /// The function's ident.
    pub ident: syn::Ident,
    /// All inputs, context first.
    pub inputs: Vec<syn::FnArg>,
    /// The return type, if any.
    pub output: syn::ReturnType,
    /// Collected `///` doc text.
    pub doc: String,
}

/// Collect the doc comment lines of a function.
pub fn doc_of(attrs: &[syn::Attribute]) -> String {
    let mut lines = Vec::new();
    for attr in attrs {
        if !attr.path().is_ident("doc") {
            continue;
        }
        if let syn::Meta::NameValue(nv) = &attr.meta {
            if let syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. }) = &nv.value {
                let v = s.value();
                lines.push(v.strip_prefix(' ').unwrap_or(&v).to_string());
            }
        }
    }
    lines.join("\n").trim().to_string()
}

/// Parse the attribute arguments (`module = "..", name = ".."`).
pub fn parse_attr(attr: TokenStream, errors: &mut Vec<syn::Error>) -> (Option<(String, Span)>, Option<(String, Span)>) {
    let mut module = None;
    let mut name = None;
    let parser = syn::meta::parser(|meta| {
        let key = if meta.path.is_ident("module") {
            &mut module
        } else if meta.path.is_ident("name") {
            &mut name
        } else {
            return Err(meta.error("unknown `kemi` attribute key; expected `module` or `name`"));
        };
        let lit: syn::LitStr = meta.value()?.parse()?;
        if key.is_some() {
            return Err(syn::Error::new(meta.path.span_of(), "duplicate key"));
        }
        *key = Some((lit.value(), lit.span()));
        Ok(())
    });
    if let Err(e) = syn::parse::Parser::parse2(parser, attr) {
        errors.push(e);
    }
    (module, name)
}

trait SpanOf {
    fn span_of(&self) -> Span;
}

impl SpanOf for syn::Path {
    fn span_of(&self) -> Span {
        syn::spanned::Spanned::span(self)
    }
}
