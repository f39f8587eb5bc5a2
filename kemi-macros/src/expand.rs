//! Code generation: the static descriptor and the trampoline.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::model;

/// Expand `#[kemi(...)] fn ...`.
pub fn kemi(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Vec::new();
    let func: syn::ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(e) => {
            let err = e.to_compile_error();
            return quote! { #item #err };
        }
    };
    let (module, name) = model::parse_attr(attr, &mut errors);
    let ident = &func.sig.ident;
    let module = module.map(|m| m.0).unwrap_or_default();
    let name = name.map(|n| n.0).unwrap_or_else(|| ident.to_string());
    let doc = model::doc_of(&func.attrs);

    let params: Vec<&syn::Type> = func
        .sig
        .inputs
        .iter()
        .skip(1)
        .filter_map(|a| match a {
            syn::FnArg::Typed(t) => Some(&*t.ty),
            syn::FnArg::Receiver(_) => None,
        })
        .collect();
    let ret_ty: syn::Type = match &func.sig.output {
        syn::ReturnType::Default => syn::parse_quote!(()),
        syn::ReturnType::Type(_, t) => (**t).clone(),
    };
    let n = params.len();
    let arg_idents: Vec<_> = (0..n).map(|i| format_ident!("__a{}", i)).collect();
    let idx = 0..n;
    let rt = quote!(::kemi_runtime);
    let errs = errors.iter().map(syn::Error::to_compile_error);
    let param_types = params.iter().map(|t| quote!(<#t as #rt::KemiParam<'static>>::TYPE));
    let static_params = params.iter().map(|t| strip_lifetimes(t));
    let _ = static_params;
    quote! {
        #func
        #(#errs)*
        const _: () = {
            #[#rt::__private::linkme::distributed_slice(#rt::__private::KEMI_EXPORTS)]
            #[linkme(crate = #rt::__private::linkme)]
            static __KEMI_EXPORT: #rt::KemiExport = #rt::KemiExport {
                module: #module,
                name: #name,
                ret: <#ret_ty as #rt::KemiReturn>::TYPE,
                params: &[#(#param_types),*],
                doc: #doc,
                call: __kemi_trampoline,
                file: ::core::file!(),
                line: ::core::line!(),
            };
            fn __kemi_trampoline(
                msg: &mut #rt::SipMsg,
                args: &[#rt::Arg<'_>],
            ) -> ::core::result::Result<#rt::KemiRet, #rt::ArgError> {
                match args {
                    [#(#arg_idents),*] => {
                        #(let #arg_idents = #rt::KemiParam::from_arg(#arg_idents, #idx)?;)*
                        ::core::result::Result::Ok(#rt::KemiReturn::into_ret(#ident(msg, #(#arg_idents),*)))
                    }
                    _ => ::core::result::Result::Err(#rt::ArgError::Count { expected: #n, got: args.len() }),
                }
            }
        };
    }
}

fn strip_lifetimes(t: &syn::Type) -> syn::Type {
    t.clone()
}
