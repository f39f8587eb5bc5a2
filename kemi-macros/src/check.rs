//! Validation of a [`KemiFn`]: every rule an export must follow, each broken rule reported on the
//! token that breaks it, all of them at once.
//!
//! [`validate`] is the only judge. Its output, [`Export`], holds exactly what code generation
//! needs, already classified, so [`crate::expand`] has no error paths of its own.

use syn::ext::IdentExt;

use crate::errors::Errors;
use crate::model::{KemiFn, Param, Qualifier, Shape};
use crate::script_ident::{self, NameProblem};

/// Most script parameters an export can take after the context (Kamailio's `SR_KEMI_PARAMS_MAX`).
pub const MAX_PARAMS: usize = 6;

const PARAMS_ALLOWED: &str = "parameters after the message context are `i32` (int) or `&str` (str)";
const RET_ALLOWED: &str =
    "an export returns `i32` (int), `bool`, `Xval` (a value) or nothing (no return type)";
const LONG_RULE: &str = "`i64` (long) is only accepted as the second of exactly two parameters, \
                         `(&str, i64)`, as `pv.setl` takes; use `i32` (int)";

/// Kind of one script parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    /// `i32`.
    Int,
    /// `&str`.
    Str,
    /// `i64`, only in `(&str, i64)`.
    Long,
}

/// Kind of the result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetKind {
    /// No return type, or `()`.
    None,
    /// `i32`.
    Int,
    /// `bool`.
    Bool,
    /// `Xval`.
    Xval,
}

/// One validated script parameter.
pub struct ExportParam<'a> {
    /// Its kind.
    pub kind: ParamKind,
    /// The type as written (for spans and trait checks).
    pub ty: &'a syn::Type,
    /// The parameter's name for listings and editor stubs: the binding's ident, else `argN`.
    pub name: String,
}

/// A validated export: everything code generation needs.
pub struct Export<'a> {
    /// Module name, `""` for the core.
    pub module: String,
    /// Function name as scripts see it.
    pub name: String,
    /// The Rust function to call.
    pub ident: &'a syn::Ident,
    /// The context's referenced type as written (`SipMsg`, `kemi_runtime::SipMsg`).
    pub context: &'a syn::Type,
    /// Script parameters, in order.
    pub params: Vec<ExportParam<'a>>,
    /// Result kind.
    pub ret: RetKind,
    /// The written return type, when there is one.
    pub ret_ty: Option<&'a syn::Type>,
    /// The doc comment.
    pub doc: &'a str,
    /// `#[cfg]` attributes to share with the descriptor.
    pub cfgs: &'a [syn::Attribute],
}

/// Check `f` against every rule; `errors` may already hold the attribute's syntax errors.
pub fn validate(f: &KemiFn, mut errors: Errors) -> Result<Export<'_>, syn::Error> {
    let (module, name) = names(f, &mut errors);
    qualifiers(f, &mut errors);
    generics(f, &mut errors);
    let context = context(f, &mut errors);
    let params = params(f, &mut errors);
    let (ret, ret_ty) = ret(f, &mut errors);
    errors.finish()?;
    match context {
        Some(context) => Ok(Export {
            module,
            name,
            ident: &f.ident,
            context,
            params,
            ret,
            ret_ty,
            doc: &f.doc,
            cfgs: &f.cfgs,
        }),
        // `context` reports an error whenever it returns `None`; this is only a safety net.
        None => Err(syn::Error::new(
            f.paren_span,
            "missing the message context `&mut SipMsg`",
        )),
    }
}

fn names(f: &KemiFn, errors: &mut Errors) -> (String, String) {
    let module = f
        .attr
        .module
        .as_ref()
        .map(|m| m.value.clone())
        .unwrap_or_default();
    if let Some(m) = f.attr.module.as_ref().filter(|m| !m.value.is_empty()) {
        if let Err(problem) = script_ident::check(&m.value) {
            errors.at(
                m.span,
                name_message(&problem, &m.value, "module", &module, false),
            );
        }
    }
    let (name, span, from_fn) = match &f.attr.name {
        Some(n) => (n.value.clone(), n.span, false),
        None => (f.ident.unraw().to_string(), f.ident.span(), true),
    };
    if let Err(problem) = script_ident::check(&name) {
        errors.at(
            span,
            name_message(&problem, &name, "name", &module, from_fn),
        );
    }
    (module, name)
}

fn name_message(
    problem: &NameProblem,
    value: &str,
    key: &str,
    module: &str,
    from_fn: bool,
) -> String {
    let what = if key == "module" {
        "module"
    } else {
        "function"
    };
    match problem {
        NameProblem::Empty => format!(
            "`{key}` must not be empty: it is what scripts write after `KSR.`{}",
            if key == "module" {
                "; omit `module` for a core export"
            } else {
                ""
            }
        ),
        NameProblem::NotIdentifier => format!(
            "`{value}` is not a valid script {what} name: use ASCII letters, digits and `_`, \
             not starting with a digit"
        ),
        NameProblem::Reserved(langs) => {
            let call = match (key, module.is_empty()) {
                ("module", _) => format!("KSR.{value}.f"),
                (_, true) => format!("KSR.{value}"),
                (_, false) => format!("KSR.{module}.{value}"),
            };
            let fix = if from_fn {
                "; export it under another name with `#[kemi(name = \"...\")]`".to_string()
            } else {
                format!("; choose another `{key}`")
            };
            format!(
                "`{value}` is a reserved word in {}, so scripts could not call `{call}`{fix}",
                join_words(langs)
            )
        }
    }
}

/// `a`, `a and b`, `a, b and c`.
fn join_words(words: &[&str]) -> String {
    match words {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn qualifiers(f: &KemiFn, errors: &mut Errors) {
    for q in &f.qualifiers {
        match q {
            Qualifier::Const(t) => errors.spanned(t, "a KEMI export cannot be a `const fn`: remove `const`"),
            Qualifier::Async(t) => errors.spanned(
                t,
                "a KEMI export cannot be `async`: scripts call exports synchronously on the message path",
            ),
            Qualifier::Unsafe(t) => errors.spanned(
                t,
                "a KEMI export cannot be an `unsafe fn`: scripts cannot uphold its safety contract",
            ),
            Qualifier::Extern(abi) => errors.spanned(
                abi,
                "a KEMI export is a plain Rust function: remove the `extern` ABI",
            ),
        }
    }
    if let Some(v) = &f.variadic {
        errors.spanned(
            v,
            "a KEMI export cannot be variadic: it takes 0 to 6 parameters after the context",
        );
    }
}

fn generics(f: &KemiFn, errors: &mut Errors) {
    for p in &f.generics.params {
        match p {
            syn::GenericParam::Lifetime(_) => {}
            syn::GenericParam::Type(t) => errors.spanned(
                t,
                "a KEMI export cannot have type parameters: scripts call one concrete function \
                 (lifetime parameters are fine)",
            ),
            syn::GenericParam::Const(c) => errors.spanned(
                c,
                "a KEMI export cannot have const parameters: scripts call one concrete function",
            ),
        }
    }
    if let Some(w) = &f.generics.where_clause {
        errors.spanned(w, "a KEMI export cannot have a `where` clause");
    }
}

/// Attributes on any input are refused: `#[cfg]` there would change the parameter list.
fn input_attrs(p: &Param, errors: &mut Errors) {
    for a in p.attrs() {
        errors.spanned(
            a,
            "attributes on KEMI parameters are not supported: the parameter list is what scripts see",
        );
    }
}

fn context<'a>(f: &'a KemiFn, errors: &mut Errors) -> Option<&'a syn::Type> {
    const WANT: &str = "a KEMI export takes `&mut SipMsg` as its first parameter";
    if let Some(r) = &f.receiver {
        errors.spanned(
            r,
            "a KEMI export is a free function, not a method: remove `self` and take the message \
             context `&mut SipMsg` first",
        );
    }
    let Some(p) = &f.context else {
        if f.receiver.is_none() {
            errors.at(
                f.paren_span,
                format_args!("missing the message context: {WANT}"),
            );
        }
        return None;
    };
    input_attrs(p, errors);
    match &p.shape {
        Shape::Ref {
            mutable: true,
            elem,
            ..
        } if elem.is_named("SipMsg") => referent(p.ty()),
        Shape::Ref {
            mutable: false,
            elem,
            ..
        } if elem.is_named("SipMsg") => {
            errors.spanned(
                p.ty(),
                "the message context must be `&mut SipMsg`, not `&SipMsg`: exports may change the message",
            );
            None
        }
        s if s.is_named("SipMsg") => {
            errors.spanned(
                p.ty(),
                "the message context must be borrowed mutably: `&mut SipMsg`",
            );
            None
        }
        s => {
            let hint = if param_kind(s).is_some() {
                "; script arguments follow it"
            } else {
                ""
            };
            errors.spanned(
                p.ty(),
                format_args!(
                    "expected the message context `&mut SipMsg` as the first parameter{hint}"
                ),
            );
            None
        }
    }
}

/// The type behind a reference, looking through parentheses and invisible groups.
pub fn referent(ty: &syn::Type) -> Option<&syn::Type> {
    match ty {
        syn::Type::Group(g) => referent(&g.elem),
        syn::Type::Paren(p) => referent(&p.elem),
        syn::Type::Reference(r) => Some(&r.elem),
        _ => None,
    }
}

/// The kind a parameter shape maps to, if any (`i64` included; its position is checked apart).
fn param_kind(shape: &Shape) -> Option<ParamKind> {
    match shape {
        s if s.is_named("i32") => Some(ParamKind::Int),
        s if s.is_named("i64") => Some(ParamKind::Long),
        Shape::Ref {
            mutable: false,
            lifetime,
            elem,
        } if elem.is_named("str") && lifetime.as_deref() != Some("static") => Some(ParamKind::Str),
        _ => None,
    }
}

fn params<'a>(f: &'a KemiFn, errors: &mut Errors) -> Vec<ExportParam<'a>> {
    if f.params.len() > MAX_PARAMS {
        let extra = f.params.iter().skip(MAX_PARAMS).map(|p| &p.whole);
        errors.spanned(
            quote::quote!(#(#extra)*),
            format_args!(
                "too many parameters: a KEMI export takes at most {MAX_PARAMS} after the message context, \
                 this one takes {}",
                f.params.len()
            ),
        );
    }
    let str_long = matches!(&f.params[..], [a, b]
        if param_kind(&a.shape) == Some(ParamKind::Str) && param_kind(&b.shape) == Some(ParamKind::Long));
    let mut out = Vec::with_capacity(f.params.len());
    for p in &f.params {
        input_attrs(p, errors);
        match param_kind(&p.shape) {
            Some(ParamKind::Long) if !str_long => errors.spanned(p.ty(), LONG_RULE),
            Some(kind) => out.push(ExportParam {
                kind,
                ty: p.ty(),
                name: param_name(p, out.len()),
            }),
            None => errors.spanned(p.ty(), param_message(&p.shape)),
        }
    }
    out
}

/// The name a script author sees for parameter `index`: the pattern's ident (without a leading
/// underscore), else `argN`.
fn param_name(p: &Param, index: usize) -> String {
    match &*p.whole.pat {
        syn::Pat::Ident(pi) => {
            let name = pi.ident.unraw().to_string();
            match name.trim_start_matches('_') {
                "" => format!("arg{}", index + 1),
                trimmed => trimmed.to_string(),
            }
        }
        _ => format!("arg{}", index + 1),
    }
}

fn param_message(shape: &Shape) -> String {
    let hint = match shape {
        Shape::Ref {
            mutable: true,
            elem,
            ..
        } if elem.is_named("SipMsg") => {
            return "the message context `&mut SipMsg` comes once, as the first parameter"
                .to_string();
        }
        Shape::Ref {
            mutable: true,
            elem,
            ..
        } if elem.is_named("str") => "take `&str`, not `&mut str`",
        Shape::Ref {
            lifetime: Some(l),
            elem,
            ..
        } if l == "static" && elem.is_named("str") => {
            "a `&str` argument lives only for the call: take `&str`, not `&'static str`"
        }
        Shape::Ref { .. } => "the only reference accepted is `&str`",
        Shape::Path { name, .. } if name == "String" => "take `&str` instead of `String`",
        Shape::Path { name, .. } if name == "f32" || name == "f64" => {
            "KEMI has no floating-point parameters"
        }
        Shape::Path { name, .. } if is_other_integer(name) => "use `i32` for integers",
        Shape::Path { name, .. } if name == "bool" => "take an `i32` (0 or 1) for a flag",
        _ => "",
    };
    if hint.is_empty() {
        format!("unsupported KEMI parameter type: {PARAMS_ALLOWED}")
    } else {
        format!("unsupported KEMI parameter type: {PARAMS_ALLOWED}; {hint}")
    }
}

fn is_other_integer(name: &str) -> bool {
    matches!(
        name,
        "i8" | "i16" | "i128" | "isize" | "u8" | "u16" | "u32" | "u64" | "u128" | "usize"
    )
}

fn ret<'a>(f: &'a KemiFn, errors: &mut Errors) -> (RetKind, Option<&'a syn::Type>) {
    let Some((ty, shape)) = &f.ret else {
        return (RetKind::None, None);
    };
    let kind = match shape {
        Shape::Unit => Some(RetKind::None),
        s if s.is_named("i32") => Some(RetKind::Int),
        s if s.is_named("bool") => Some(RetKind::Bool),
        s if s.is_named("Xval") => Some(RetKind::Xval),
        _ => None,
    };
    match kind {
        Some(kind) => (kind, Some(ty)),
        None => {
            let hint = match shape {
                Shape::Path { name, .. } if name == "Option" => {
                    "; return `Xval` and `Xval::Null` for no value"
                }
                Shape::Path { name, .. } if name == "Result" => {
                    "; report failure as a negative `i32` or `false`, as Kamailio does"
                }
                Shape::Path { name, .. } if name == "String" => {
                    "; return `Xval` (`Xval::str(..)`) for a string"
                }
                Shape::Ref { elem, .. } if elem.is_named("str") => {
                    "; return `Xval` (`Xval::str(..)`) for a string"
                }
                Shape::Path { name, .. } if name == "i64" => {
                    "; return `Xval::Long(..)` for a 64-bit value"
                }
                _ => "",
            };
            errors.spanned(
                ty,
                format_args!("unsupported KEMI return type: {RET_ALLOWED}{hint}"),
            );
            (RetKind::None, None)
        }
    }
}

#[cfg(test)]
mod tests;
