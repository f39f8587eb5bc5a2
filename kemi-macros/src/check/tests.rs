//! Unit tests of the model and check passes, on token streams parsed from strings (no compiler in
//! the loop). Each failing case names the exact source text its error points at.

use std::str::FromStr;

use proc_macro2::TokenStream;

use super::{validate, ParamKind, RetKind};
use crate::errors::Errors;
use crate::model::{FnItem, KemiFn};

/// What a valid export was classified as.
#[derive(Debug, PartialEq)]
struct Summary {
    module: String,
    name: String,
    params: Vec<ParamKind>,
    ret: RetKind,
    doc: String,
}

/// Run the attribute parser, the model and the check on source text.
fn run(attr: &str, item: &str) -> Result<Summary, Vec<(String, String)>> {
    let attr = TokenStream::from_str(attr).expect("test attribute tokenizes");
    let item = TokenStream::from_str(item).expect("test item tokenizes");
    let mut errors = Errors::new();
    let attr = crate::attr::parse(attr, &mut errors);
    let item: FnItem = syn::parse2(item).expect("test item is a fn");
    let model = KemiFn::new(attr, &item);
    match validate(&model, errors) {
        Ok(e) => Ok(Summary {
            module: e.module,
            name: e.name,
            params: e.params.iter().map(|p| p.kind).collect(),
            ret: e.ret,
            doc: e.doc.to_string(),
        }),
        Err(err) => Err(err
            .into_iter()
            .map(|e| (e.to_string(), e.span().source_text().unwrap_or_default()))
            .collect()),
    }
}

/// The single error of a failing case: (message, source text it points at).
fn error(attr: &str, item: &str) -> (String, String) {
    match run(attr, item) {
        Ok(s) => panic!("expected an error, got {s:?}"),
        Err(mut errs) => {
            assert_eq!(errs.len(), 1, "expected one error, got {errs:?}");
            errs.remove(0)
        }
    }
}

/// Assert the single error points at `text` and its message contains `needle`.
fn assert_error(attr: &str, item: &str, text: &str, needle: &str) {
    let (msg, at) = error(attr, item);
    assert_eq!(at, text, "error `{msg}` points at the wrong tokens");
    assert!(msg.contains(needle), "message `{msg}` lacks `{needle}`");
}

#[test]
fn valid_exports_are_classified() {
    let s = run(
        r#"module = "pv", name = "setl""#,
        "/// Set.\nfn f(m: &mut kemi_runtime::SipMsg, n: &str, v: i64) -> i32 { 1 }",
    )
    .unwrap();
    assert_eq!(
        s,
        Summary {
            module: "pv".into(),
            name: "setl".into(),
            params: vec![ParamKind::Str, ParamKind::Long],
            ret: RetKind::Int,
            doc: "Set.".into(),
        }
    );
    let s = run(
        "",
        "fn r#match<'a>(_: &mut SipMsg, a: &'a str, b: i32, c: &'_ str) -> Xval { x }",
    )
    .unwrap();
    assert_eq!((s.module.as_str(), s.name.as_str()), ("", "match"));
    assert_eq!(s.params, [ParamKind::Str, ParamKind::Int, ParamKind::Str]);
    assert_eq!(s.ret, RetKind::Xval);
    assert_eq!(
        run(r#"module = """#, "fn f(m: &mut SipMsg) -> () {}")
            .unwrap()
            .ret,
        RetKind::None
    );
    assert_eq!(
        run("", "fn f(m: &mut SipMsg) -> bool { true }")
            .unwrap()
            .ret,
        RetKind::Bool
    );
    assert_eq!(
        run("", "fn f(m: &mut SipMsg) {}").unwrap().ret,
        RetKind::None
    );
}

#[test]
fn six_params_pass_and_a_seventh_is_pointed_at() {
    let six = "fn f(m: &mut SipMsg, a: i32, b: i32, c: i32, d: i32, e: i32, g: &str) {}";
    assert_eq!(run("", six).unwrap().params.len(), 6);
    assert_error(
        "",
        "fn f(m: &mut SipMsg, a: i32, b: i32, c: i32, d: i32, e: i32, g: &str, h: i32, i: i32) {}",
        "h: i32, i: i32",
        "at most 6",
    );
}

#[test]
fn attribute_key_errors() {
    assert_error(
        r#"modul = "x""#,
        "fn f(m: &mut SipMsg) {}",
        "modul",
        "expected `module` or `name`",
    );
    assert_error(
        r#"name = "a", name = "b""#,
        "fn f(m: &mut SipMsg) {}",
        "name",
        "duplicate `name`",
    );
    assert_error(
        "module = 5",
        "fn f(m: &mut SipMsg) {}",
        "5",
        "string literal",
    );
    assert_error("name", "fn f(m: &mut SipMsg) {}", "name", "needs a value");
    assert_error(
        r#"name("x")"#,
        "fn f(m: &mut SipMsg) {}",
        r#"name("x")"#,
        "needs a value",
    );
}

#[test]
fn names_must_be_script_identifiers() {
    assert_error(
        r#"name = "1abc""#,
        "fn f(m: &mut SipMsg) {}",
        r#""1abc""#,
        "not a valid script function name",
    );
    assert_error(
        r#"module = "a-b""#,
        "fn f(m: &mut SipMsg) {}",
        r#""a-b""#,
        "not a valid script module name",
    );
    assert_error(
        r#"name = """#,
        "fn f(m: &mut SipMsg) {}",
        r#""""#,
        "must not be empty",
    );
    assert_error(
        r#"module = "m", name = "end""#,
        "fn f(m: &mut SipMsg) {}",
        r#""end""#,
        "`KSR.m.end`",
    );
    assert_error(
        r#"module = "class""#,
        "fn f(m: &mut SipMsg) {}",
        r#""class""#,
        "JavaScript and Python",
    );
    // The default name comes from the fn, so the error points there and says how to rename.
    assert_error(
        "",
        "fn function(m: &mut SipMsg) {}",
        "function",
        "#[kemi(name =",
    );
}

#[test]
fn context_parameter_rules() {
    assert_error("", "fn f() {}", "()", "missing the message context");
    assert_error("", "fn f(m: &SipMsg) {}", "&SipMsg", "not `&SipMsg`");
    assert_error("", "fn f(m: SipMsg) {}", "SipMsg", "borrowed mutably");
    assert_error("", "fn f(s: &str) {}", "&str", "script arguments follow it");
    assert_error(
        "",
        "fn f(m: &mut Message) {}",
        "&mut Message",
        "`&mut SipMsg`",
    );
    assert_error(
        "",
        "fn f(&mut self, m: &mut SipMsg) {}",
        "&mut self",
        "not a method",
    );
}

#[test]
fn unsupported_parameter_types() {
    let cases = [
        ("String", "instead of `String`"),
        ("f64", "no floating-point"),
        ("u32", "use `i32`"),
        ("Option<i32>", "`i32` (int) or `&str` (str)"),
        ("&[u8]", "only reference accepted is `&str`"),
        ("&i32", "only reference accepted is `&str`"),
        ("&mut str", "not `&mut str`"),
        ("&'static str", "not `&'static str`"),
        ("&mut SipMsg", "comes once"),
        ("bool", "flag"),
        ("impl AsRef<str>", "`i32` (int) or `&str` (str)"),
    ];
    for (ty, needle) in cases {
        assert_error(
            "",
            &format!("fn f(m: &mut SipMsg, x: {ty}) {{}}"),
            ty,
            needle,
        );
    }
}

#[test]
fn long_only_in_str_long() {
    assert_eq!(
        run("", "fn f(m: &mut SipMsg, k: &str, v: i64) {}")
            .unwrap()
            .params[1],
        ParamKind::Long
    );
    for sig in [
        "v: i64",
        "k: i32, v: i64",
        "v: i64, k: &str",
        "k: &str, v: i64, x: i32",
    ] {
        assert_error(
            "",
            &format!("fn f(m: &mut SipMsg, {sig}) {{}}"),
            "i64",
            "`(&str, i64)`",
        );
    }
}

#[test]
fn unsupported_return_types() {
    for (ty, needle) in [
        ("String", "`Xval::str(..)`"),
        ("i64", "`Xval::Long(..)`"),
        ("Option<bool>", "`Xval::Null`"),
        ("Result<i32, E>", "negative"),
        ("&'static str", "`Xval::str(..)`"),
        ("u8", "returns `i32` (int), `bool`, `Xval`"),
    ] {
        assert_error(
            "",
            &format!("fn f(m: &mut SipMsg) -> {ty} {{ x }}"),
            ty,
            needle,
        );
    }
}

#[test]
fn qualifiers_generics_and_attributes() {
    assert_error(
        "",
        "async fn f(m: &mut SipMsg) {}",
        "async",
        "cannot be `async`",
    );
    assert_error(
        "",
        "unsafe fn f(m: &mut SipMsg) {}",
        "unsafe",
        "`unsafe fn`",
    );
    assert_error(
        "",
        r#"extern "C" fn f(m: &mut SipMsg) {}"#,
        r#"extern "C""#,
        "extern",
    );
    assert_error("", "const fn f(m: &mut SipMsg) {}", "const", "`const fn`");
    assert_error(
        "",
        "fn f<T: Copy>(m: &mut SipMsg) {}",
        "T: Copy",
        "type parameters",
    );
    assert_error(
        "",
        "fn f<const N: usize>(m: &mut SipMsg) {}",
        "const N: usize",
        "const parameters",
    );
    assert_error(
        "",
        "fn f<'a>(m: &mut SipMsg) where 'a: 'static {}",
        "where 'a: 'static",
        "`where`",
    );
    assert_error(
        "",
        "fn f(m: &mut SipMsg, #[cfg(x)] a: i32) {}",
        "#[cfg(x)]",
        "attributes on KEMI parameters",
    );
}

#[test]
fn all_errors_are_reported_at_once() {
    let errs = run(
        r#"modul = "x", name = "end""#,
        "async fn f<T>(m: &SipMsg, a: f64, b: i32) -> String { x }",
    )
    .unwrap_err();
    let at: Vec<&str> = errs.iter().map(|(_, at)| at.as_str()).collect();
    assert_eq!(
        at,
        ["modul", r#""end""#, "async", "T", "&SipMsg", "f64", "String"]
    );
}
