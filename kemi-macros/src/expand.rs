//! Code generation for a validated [`Export`]: the static descriptor and its trampoline, inside
//! `const _: () = { ... };` so nothing leaks into the caller's namespace.
//!
//! The annotated function is always re-emitted exactly as written; when validation fails only the
//! errors follow it, so a bad export yields its own errors and no "cannot find function" cascade.
//! Everything that names a user type is spanned at that type, so if a type that passed the
//! syntactic check (say a local `struct Xval`) does not implement `KemiParam`/`KemiReturn`, the
//! traits' `#[diagnostic::on_unimplemented]` message lands on that type.

use proc_macro2::{Span, TokenStream};
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

    let param_types = e.params.iter().map(|p| {
        let ty = static_param_type(p.kind, p.ty);
        quote_spanned!(at(p.ty)=> <#ty as #rt::KemiParam<'static>>::TYPE)
    });
    let unpack =
        e.params.iter().zip(&args).enumerate().map(
            |(i, (p, a))| quote_spanned!(at(p.ty)=> let #a = #rt::KemiParam::from_arg(#a, #i)?;),
        );
    // The context argument reports at the written context type, so a foreign `SipMsg` gives a
    // type mismatch there rather than at the attribute.
    let msg = quote_spanned!(at(e.context)=> __kemi_msg);
    let call = quote!(#ident(#msg #(, #args)*));
    let (ret_type, body) = match (e.ret, e.ret_ty) {
        (RetKind::None, _) | (_, None) => (
            quote!(#rt::RetType::None),
            quote!({ #call; ::core::result::Result::Ok(#rt::KemiRet::None) }),
        ),
        (_, Some(ty)) => (
            quote_spanned!(at(ty)=> <#ty as #rt::KemiReturn>::TYPE),
            quote_spanned!(at(ty)=> ::core::result::Result::Ok(#rt::KemiReturn::into_ret(#call))),
        ),
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

/// The parameter's type with `'static` for the borrow, as a `static` initializer needs.
fn static_param_type(kind: ParamKind, ty: &syn::Type) -> TokenStream {
    match (kind, referent(ty)) {
        (ParamKind::Str, Some(elem)) => quote_spanned!(at(ty)=> &'static #elem),
        _ => ty.to_token_stream(),
    }
}
