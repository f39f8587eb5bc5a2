//! The test exports every engine test binary links: the core (`KSR.info`, ...), module `t`
//! (results of every kind, argument shapes, a panicking export) and module `opt` (disabled in
//! some tables).

use kemi_runtime::msg::LogLevel;
use kemi_runtime::table::ModuleSet;
use kemi_runtime::{kemi, SipMsg, Xval};

/// The modules declared here; a binary with more exports declares them in a set of its own.
pub static TEST_MODULES: ModuleSet = ModuleSet {
    crate_name: env!("CARGO_CRATE_NAME"),
    modules: &["", "t", "opt"],
};

// --- core test exports -------------------------------------------------------------------

/// Log at info level (NONE result, one param).
#[kemi(name = "info")]
fn info(msg: &mut SipMsg, text: &str) {
    msg.log(LogLevel::Info, text);
}

/// Mark the message dropped (NONE result, no params).
#[kemi(name = "set_drop")]
fn set_drop(msg: &mut SipMsg) {
    msg.route.drop = true;
}

/// Set a script flag.
#[kemi(name = "setsflag")]
fn setsflag(msg: &mut SipMsg, flag: i32) -> bool {
    match u32::try_from(flag) {
        Ok(f) if f < 64 => {
            msg.route.sflags |= 1 << f;
            true
        }
        _ => false,
    }
}

/// Test a script flag.
#[kemi(name = "issflagset")]
fn issflagset(msg: &mut SipMsg, flag: i32) -> bool {
    u32::try_from(flag).is_ok_and(|f| f < 64 && msg.route.sflags & (1 << f) != 0)
}

// --- module `t` ----------------------------------------------------------------------------

/// Always -1 (an int "false" that is truthy in Lua, JavaScript and Python).
#[kemi(module = "t", name = "neg")]
fn neg(_msg: &mut SipMsg) -> i32 {
    -1
}

/// Shadowed by the core `info` for `KSR.x.modf`.
#[kemi(module = "t", name = "info")]
fn t_info(_msg: &mut SipMsg) -> i32 {
    -7
}

/// Always true.
#[kemi(module = "t", name = "is_a")]
fn is_a(_msg: &mut SipMsg) -> bool {
    true
}

/// Always false.
#[kemi(module = "t", name = "is_not")]
fn is_not(_msg: &mut SipMsg) -> bool {
    false
}

/// Its argument.
#[kemi(module = "t", name = "echo_int")]
fn echo_int(_msg: &mut SipMsg, n: i32) -> i32 {
    n
}

/// Its argument, as a string value.
#[kemi(module = "t", name = "echo_str")]
fn echo_str(_msg: &mut SipMsg, s: &str) -> Xval {
    Xval::str(s)
}

/// Byte length of its argument.
#[kemi(module = "t", name = "strlen")]
fn strlen(_msg: &mut SipMsg, s: &str) -> i32 {
    i32::try_from(s.len()).unwrap_or(i32::MAX)
}

/// Its long argument as a long value.
#[kemi(module = "t", name = "echo_long")]
fn echo_long(_msg: &mut SipMsg, _name: &str, n: i64) -> Xval {
    Xval::Long(n)
}

/// `s/n`.
#[kemi(module = "t", name = "mix")]
fn mix(_msg: &mut SipMsg, s: &str, n: i32) -> Xval {
    Xval::Str(format!("{s}/{n}"))
}

/// Six strings concatenated.
#[kemi(module = "t", name = "concat6")]
fn concat6(_msg: &mut SipMsg, a: &str, b: &str, c: &str, d: &str, e: &str, f: &str) -> Xval {
    Xval::Str([a, b, c, d, e, f].concat())
}

/// Null.
#[kemi(module = "t", name = "xnull")]
fn xnull(_msg: &mut SipMsg) -> Xval {
    Xval::Null
}

/// No value.
#[kemi(module = "t", name = "xnone")]
fn xnone(_msg: &mut SipMsg) -> Xval {
    Xval::None
}

/// A long beyond 32 bits.
#[kemi(module = "t", name = "xlong")]
fn xlong(_msg: &mut SipMsg) -> Xval {
    Xval::Long(5_000_000_000)
}

/// An xval int.
#[kemi(module = "t", name = "xint")]
fn xint(_msg: &mut SipMsg) -> Xval {
    Xval::Int(7)
}

/// An xval bool.
#[kemi(module = "t", name = "xbool")]
fn xbool(_msg: &mut SipMsg) -> Xval {
    Xval::Bool(true)
}

/// `{1, "two", {k = "v"}, {10, 20}}` (unsupported in JavaScript and Python: null / `None`).
#[kemi(module = "t", name = "xarr")]
fn xarr(_msg: &mut SipMsg) -> Xval {
    Xval::Array(vec![
        Xval::Int(1),
        Xval::str("two"),
        Xval::Dict(vec![("k".into(), Xval::str("v"))]),
        Xval::Array(vec![Xval::Int(10), Xval::Int(20)]),
    ])
}

/// `{a = 1, b = "x", c = {d = true}, n = nil}` (unsupported in JavaScript and Python).
#[kemi(module = "t", name = "xdict")]
fn xdict(_msg: &mut SipMsg) -> Xval {
    Xval::Dict(vec![
        ("a".into(), Xval::Int(1)),
        ("b".into(), Xval::str("x")),
        ("c".into(), Xval::Dict(vec![("d".into(), Xval::Bool(true))])),
        ("n".into(), Xval::Null),
    ])
}

/// Panics: a bug in an export must not take the worker down.
#[kemi(module = "t", name = "boom")]
fn boom(_msg: &mut SipMsg) -> i32 {
    panic!("boom")
}

// --- module `opt` (disabled in some tables) --------------------------------------------------

/// Always 1.
#[kemi(module = "opt", name = "f")]
fn opt_f(_msg: &mut SipMsg) -> i32 {
    1
}
