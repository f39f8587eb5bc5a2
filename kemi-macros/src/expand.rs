//! Code generation for a validated [`Export`]: the static descriptor and its trampoline, inside
//! `const _: () = { ... };` so nothing leaks into the caller's namespace.
//!
//! The annotated function is always re-emitted exactly as written; when validation fails only the
//! errors follow it, so a bad export yields its own errors and no "cannot find function" cascade.
//! Everything that names a user type is spanned at that type, so if a type that passed the
//! syntactic check (say a local `struct Xval`) does not implement `KemiParam`/`KemiReturn`, the
//! traits' `#[diagnostic::on_unimplemented]` message lands on that type.

use proc_macro2::{Literal, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;

use crate::attr;
use crate::check::{self, referent, Export, ParamKind, RetKind};
use crate::errors::Errors;
use crate::model::{FnItem, KemiFn};

/// Expand `#[kemi(args)] item`.
pub fn kemi(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::new();
    let attr = attr::parse(args, &mut errors);
    let parsed: syn::Result<FnItem> = syn::parse2(item.clone());
    let generated = match parsed {
        Err(e) => {
            errors.at(
                e.span(),
                "`#[kemi]` applies to a function: `fn name(msg: &mut SipMsg, ...)`",
            );
            errors
                .finish()
                .err()
                .map(|e| e.to_compile_error())
                .unwrap_or_default()
        }
        Ok(fn_item) => {
            let model = KemiFn::new(attr, &fn_item);
            match check::validate(&model, errors) {
                Ok(export) => descriptor(&export),
                Err(e) => e.to_compile_error(),
            }
        }
    };
    quote! { #item #generated }
}

/// A span that reports at `tokens` but resolves names as the macro's own tokens do.
fn at(tokens: &impl Spanned) -> Span {
    Span::call_site().located_at(tokens.span())
}

/// The descriptor static and its trampoline.
fn descriptor(e: &Export<'_>) -> TokenStream {
    let rt = quote!(::kemi_runtime);
    let Export {
        module,
        name,
        ident,
        doc,
        cfgs,
        ..
    } = e;
    let n = e.params.len();
    let args: Vec<_> = (0..n).map(|i| format_ident!("__kemi_arg{}", i)).collect();

    // The descriptor's kinds come from the validated classification; the trampoline names each
    // written type in a trait path, so a type that only looks right fails there, at the type.
    let param_types = e.params.iter().map(|p| match p.kind {
        ParamKind::Int => quote!(#rt::ParamType::Int),
        ParamKind::Str => quote!(#rt::ParamType::Str),
        ParamKind::Long => quote!(#rt::ParamType::Long),
    });
    let param_names = e.params.iter().map(|p| p.name.as_str());
    let unpack = e.params.iter().zip(&args).enumerate().map(|(i, (p, a))| {
        let ty = elided_param_type(p.kind, p.ty);
        let mut idx = Literal::usize_unsuffixed(i);
        idx.set_span(at(p.ty));
        quote_spanned!(at(p.ty)=> let #a = <#ty as #rt::KemiParam<'_>>::from_arg(#a, #idx)?;)
    });
    // The context argument reports at the written context type, so a foreign `SipMsg` gives a
    // type mismatch there rather than at the attribute.
    let msg = quote_spanned!(at(e.context)=> __kemi_msg);
    let call = quote!(#ident(#msg #(, #args)*));
    let ret_type = match e.ret {
        RetKind::None => quote!(#rt::RetType::None),
        RetKind::Int => quote!(#rt::RetType::Int),
        RetKind::Bool => quote!(#rt::RetType::Bool),
        RetKind::Xval => quote!(#rt::RetType::Xval),
    };
    let body = match (e.ret, e.ret_ty) {
        (RetKind::None, _) | (_, None) => {
            quote!({ #call; ::core::result::Result::Ok(#rt::KemiRet::None) })
        }
        (_, Some(ty)) => {
            let bare_ty = bare(ty);
            quote_spanned!(at(ty)=>
                ::core::result::Result::Ok(<#bare_ty as #rt::KemiReturn>::into_ret(#call))
            )
        }
    };

    quote! {
        #(#cfgs)*
        const _: () = {
            #[#rt::__private::linkme::distributed_slice(#rt::__private::KEMI_EXPORTS)]
            #[linkme(crate = #rt::__private::linkme)]
            static __KEMI_EXPORT: #rt::KemiExport = #rt::KemiExport {
                module: #module,
                name: #name,
                ret: #ret_type,
                params: &[#(#param_types),*],
                param_names: &[#(#param_names),*],
                doc: #doc,
                call: |__kemi_msg, __kemi_args| match __kemi_args {
                    [#(#args),*] => {
                        #(#unpack)*
                        #body
                    }
                    _ => ::core::result::Result::Err(#rt::ArgError::Count {
                        expected: #n,
                        got: __kemi_args.len(),
                    }),
                },
                file: ::core::file!(),
                line: ::core::line!(),
            };
        };
    }
}

/// The parameter's type with any written lifetime replaced by `'_`: the trampoline's scope does
/// not have the function's lifetime parameters.
fn elided_param_type(kind: ParamKind, ty: &syn::Type) -> TokenStream {
    match (kind, referent(ty)) {
        (ParamKind::Str, Some(elem)) => {
            let elem = bare(elem);
            quote_spanned!(at(ty)=> &'_ #elem)
        }
        _ => bare(ty).to_token_stream(),
    }
}

/// `ty` without the parentheses and invisible groups around it, so that copying it into
/// generated code raises no `unused_parens` lint of its own.
fn bare(ty: &syn::Type) -> &syn::Type {
    match ty {
        syn::Type::Group(g) => bare(&g.elem),
        syn::Type::Paren(p) => bare(&p.elem),
        _ => ty,
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use proc_macro2::TokenStream;

    fn expand(attr: &str, item: &str) -> (String, String) {
        let item = TokenStream::from_str(item).unwrap();
        let out = super::kemi(TokenStream::from_str(attr).unwrap(), item.clone());
        (item.to_string(), out.to_string())
    }

    #[test]
    fn valid_export_keeps_the_item_and_adds_one_hidden_descriptor() {
        let (item, out) = expand(
            r#"module = "pv""#,
            "/// Doc.\npub fn get(msg: &mut SipMsg, name: &str) -> Xval { x(name) }",
        );
        assert!(out.starts_with(&item), "item not re-emitted first: {out}");
        let rest = &out[item.len()..];
        assert!(rest.trim_start().starts_with("const _ : () ="), "{rest}");
        assert!(rest.contains("KEMI_EXPORTS") && rest.contains("ParamType :: Str"));
        assert!(!rest.contains("compile_error"));
        // The trampoline matches the slice; nothing in it allocates.
        assert!(!rest.contains("Vec") && !rest.contains("vec !") && !rest.contains("to_string"));
    }

    #[test]
    fn invalid_export_keeps_the_item_and_adds_only_errors() {
        let (item, out) = expand(r#"modul = "pv""#, "fn get(msg: &SipMsg, v: f64) {}");
        assert!(out.starts_with(&item), "{out}");
        let rest = &out[item.len()..];
        assert_eq!(rest.matches("compile_error").count(), 3, "{rest}");
        assert!(!rest.contains("KEMI_EXPORTS"));
    }

    #[test]
    fn non_function_items_get_one_error() {
        let (item, out) = expand("", "struct S;");
        assert!(out.starts_with(&item));
        assert_eq!(out.matches("compile_error").count(), 1, "{out}");
    }
}
