//! The typed model of one export, built from syn input without judging it.
//!
//! [`FnItem`] reads the annotated item while keeping its body as unparsed tokens (as
//! tracing-attributes' `MaybeItemFn` does); [`KemiFn`] is what [`crate::check`] validates: the
//! attribute keys, the signature's qualifiers and generics, the context parameter, the script
//! parameters and the return type, each with a [`Shape`] and the tokens to point errors at.

use proc_macro2::{Span, TokenStream};
use syn::parse::{Parse, ParseStream};

use crate::attr::ExportAttr;

/// A `fn` item whose body is kept as tokens: parsing it would cost time and prove nothing.
pub struct FnItem {
    /// Outer attributes, doc comments included.
    pub attrs: Vec<syn::Attribute>,
    /// The signature.
    pub sig: syn::Signature,
}

impl Parse for FnItem {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let attrs = input.call(syn::Attribute::parse_outer)?;
        let _: syn::Visibility = input.parse()?;
        let sig: syn::Signature = input.parse()?;
        let body: proc_macro2::Group = input.parse()?;
        if body.delimiter() != proc_macro2::Delimiter::Brace {
            return Err(syn::Error::new(body.span(), "expected the function body"));
        }
        let _: TokenStream = input.parse()?;
        Ok(FnItem { attrs, sig })
    }
}

/// How a type is written, as far as the rules care.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shape {
    /// A path type (`i32`, `kemi_runtime::Xval`, `Option<i32>`), named by its last segment.
    Path {
        /// The last segment's identifier.
        name: String,
        /// The last segment has arguments (`<..>` or `(..)`), or the path is qualified (`<T as Tr>::X`).
        generic: bool,
    },
    /// A reference `&'l mut T`.
    Ref {
        /// `&mut` rather than `&`.
        mutable: bool,
        /// The lifetime's name without the quote (`static`, `_`, `a`), if one is written.
        lifetime: Option<String>,
        /// The referenced type.
        elem: Box<Shape>,
    },
    /// The unit type `()`.
    Unit,
    /// Anything else: slices, tuples, `impl Trait`, `dyn Trait`, `!`, function pointers, ...
    Other,
}

impl Shape {
    /// Classify a type, looking through parentheses and the invisible groups of `macro_rules!`.
    pub fn of(ty: &syn::Type) -> Shape {
        match ty {
            syn::Type::Group(g) => Shape::of(&g.elem),
            syn::Type::Paren(p) => Shape::of(&p.elem),
            syn::Type::Tuple(t) if t.elems.is_empty() => Shape::Unit,
            syn::Type::Reference(r) => Shape::Ref {
                mutable: r.mutability.is_some(),
                lifetime: r.lifetime.as_ref().map(|l| l.ident.to_string()),
                elem: Box::new(Shape::of(&r.elem)),
            },
            syn::Type::Path(p) => match p.path.segments.last() {
                Some(last) => Shape::Path {
                    name: last.ident.to_string(),
                    generic: p.qself.is_some() || !last.arguments.is_none(),
                },
                None => Shape::Other,
            },
            _ => Shape::Other,
        }
    }

    /// True for a plain path whose last segment is `name` (no generic arguments).
    pub fn is_named(&self, wanted: &str) -> bool {
        matches!(self, Shape::Path { name, generic: false } if name == wanted)
    }
}

/// One typed input of the function.
pub struct Param {
    /// The whole parameter, `#[attrs] pat: ty`.
    pub whole: syn::PatType,
    /// Its type's shape.
    pub shape: Shape,
}

impl Param {
    /// The type as written.
    pub fn ty(&self) -> &syn::Type {
        &self.whole.ty
    }

    /// Attributes on the parameter (`#[cfg(..)] x: i32`).
    pub fn attrs(&self) -> &[syn::Attribute] {
        &self.whole.attrs
    }
}

/// A qualifier on the `fn` that exports cannot have.
pub enum Qualifier {
    /// `const fn`.
    Const(syn::Token![const]),
    /// `async fn`.
    Async(syn::Token![async]),
    /// `unsafe fn`.
    Unsafe(syn::Token![unsafe]),
    /// `extern "C" fn`.
    Extern(syn::Abi),
}

/// One export as written.
pub struct KemiFn {
    /// The attribute's keys.
    pub attr: ExportAttr,
    /// The function's identifier.
    pub ident: syn::Ident,
    /// The span of the parameter list's parentheses.
    pub paren_span: Span,
    /// Qualifiers, in source order.
    pub qualifiers: Vec<Qualifier>,
    /// Generic parameters and `where` clause.
    pub generics: syn::Generics,
    /// A C-variadic `...`, if written.
    pub variadic: Option<syn::Variadic>,
    /// A method receiver (`self`, `&mut self`), which exports cannot have.
    pub receiver: Option<syn::Receiver>,
    /// The first typed input, which must be the message context.
    pub context: Option<Param>,
    /// The typed inputs after the first: what scripts pass.
    pub params: Vec<Param>,
    /// The return type; `None` when the function has none.
    pub ret: Option<(syn::Type, Shape)>,
    /// The trimmed doc comment.
    pub doc: String,
    /// `#[cfg(..)]` attributes of the function, which the descriptor must share.
    pub cfgs: Vec<syn::Attribute>,
}

impl KemiFn {
    /// Build the model of `item`, exported under `attr`.
    pub fn new(attr: ExportAttr, item: &FnItem) -> KemiFn {
        let sig = &item.sig;
        let mut qualifiers = Vec::new();
        if let Some(t) = sig.constness {
            qualifiers.push(Qualifier::Const(t));
        }
        if let Some(t) = sig.asyncness {
            qualifiers.push(Qualifier::Async(t));
        }
        if let Some(t) = sig.unsafety {
            qualifiers.push(Qualifier::Unsafe(t));
        }
        if let Some(abi) = &sig.abi {
            qualifiers.push(Qualifier::Extern(abi.clone()));
        }
        let receiver = sig.receiver().cloned();
        let mut inputs = sig.inputs.iter().filter_map(|arg| match arg {
            syn::FnArg::Receiver(_) => None,
            syn::FnArg::Typed(t) => Some(Param {
                whole: t.clone(),
                shape: Shape::of(&t.ty),
            }),
        });
        let context = inputs.next();
        let params = inputs.collect();
        let ret = match &sig.output {
            syn::ReturnType::Default => None,
            syn::ReturnType::Type(_, ty) => Some(((**ty).clone(), Shape::of(ty))),
        };
        KemiFn {
            attr,
            ident: sig.ident.clone(),
            paren_span: sig.paren_token.span.join(),
            qualifiers,
            generics: sig.generics.clone(),
            variadic: sig.variadic.clone(),
            receiver,
            context,
            params,
            ret,
            doc: crate::doc::doc_of(&item.attrs),
            cfgs: item
                .attrs
                .iter()
                .filter(|a| a.path().is_ident("cfg"))
                .cloned()
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Shape;

    fn shape(ty: syn::Type) -> Shape {
        Shape::of(&ty)
    }

    #[test]
    fn paths_are_named_by_their_last_segment() {
        assert!(shape(syn::parse_quote!(i32)).is_named("i32"));
        assert!(shape(syn::parse_quote!(core::primitive::i32)).is_named("i32"));
        assert!(shape(syn::parse_quote!(kemi_runtime::Xval)).is_named("Xval"));
        assert!(!shape(syn::parse_quote!(Option<i32>)).is_named("Option"));
        assert!(!shape(syn::parse_quote!(<T as Tr>::i32)).is_named("i32"));
    }

    #[test]
    fn references_keep_mutability_and_lifetime() {
        let s = shape(syn::parse_quote!(&'static mut str));
        assert_eq!(
            s,
            Shape::Ref {
                mutable: true,
                lifetime: Some("static".into()),
                elem: Box::new(Shape::Path {
                    name: "str".into(),
                    generic: false
                }),
            }
        );
    }

    #[test]
    fn parens_and_unit() {
        assert!(shape(syn::parse_quote!((i32))).is_named("i32"));
        assert_eq!(shape(syn::parse_quote!(())), Shape::Unit);
        assert_eq!(
            shape(syn::parse_quote!(&[u8])),
            Shape::Ref {
                mutable: false,
                lifetime: None,
                elem: Box::new(Shape::Other),
            }
        );
    }
}
