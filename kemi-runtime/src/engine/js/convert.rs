//! Conversions between JavaScript values and KEMI values, with `app_jsdt`'s rules
//! (`kemi-reference.md` §2.2 JS column, §3.2).
//!
//! Arguments are coerced like Duktape's `duk_to_string` / `duk_to_int` / `duk_to_number`: any
//! value is accepted. `str` is ECMAScript ToString (`undefined` → `"undefined"`, `true` →
//! `"true"`, objects through their `toString`); `int` is ToNumber, then truncated toward zero and
//! clamped to the `i32` range (NaN → 0, `true` → 1, `"12"` → 12); `long` the same into `i64`.
//! A coercion that throws (a `Symbol`, a `BigInt` to a number, a throwing `toString`) propagates
//! the exception to the script, as Duktape does.
//!
//! Strings are passed length-exact (Duktape passes them through `strlen`, so an embedded NUL
//! would cut them there): this is a deliberate difference. JavaScript strings that are not valid
//! UTF-16 (lone surrogates) are converted lossily.

use std::ffi::c_int;

use rquickjs::qjs;

use crate::export::{KemiRet, ParamType};
use crate::{Arg, Xval};

pub(super) use crate::engine::MAX_PARAMS;

/// A JavaScript `int` value.
#[inline]
pub(super) fn js_int(n: i32) -> qjs::JSValue {
    qjs::JS_MKVAL(qjs::JS_TAG_INT, n)
}

/// A JavaScript boolean.
#[inline]
pub(super) fn js_bool(b: bool) -> qjs::JSValue {
    if b {
        qjs::JS_TRUE
    } else {
        qjs::JS_FALSE
    }
}

/// The UTF-8 text of a value coerced with ToString, owned by the context until dropped.
pub(super) struct JsStr {
    cx: *mut qjs::JSContext,
    ptr: *const std::ffi::c_char,
    len: usize,
}

impl JsStr {
    /// ToString of `v`; `None` when the coercion threw (the exception is pending in `cx`).
    ///
    /// # Safety
    /// `cx` is a live context and `v` a live value of it; the result must be dropped before the
    /// context is freed.
    #[inline]
    pub(super) unsafe fn coerce(cx: *mut qjs::JSContext, v: qjs::JSValue) -> Option<JsStr> {
        let mut len: qjs::size_t = 0;
        // SAFETY: guaranteed by the caller. For an ASCII string QuickJS returns the string's own
        // bytes (no copy); either way the pointer stays valid until `JS_FreeCString`.
        let ptr = unsafe { qjs::JS_ToCStringLen2(cx, &mut len, v, false) };
        if ptr.is_null() {
            None
        } else {
            Some(JsStr {
                cx,
                ptr,
                len: len as usize,
            })
        }
    }

    /// The bytes (UTF-8 unless the string held lone surrogates).
    #[inline]
    pub(super) fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` points to `len` bytes that live until `drop` frees them.
        unsafe { std::slice::from_raw_parts(self.ptr.cast::<u8>(), self.len) }
    }
}

impl Drop for JsStr {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from `JS_ToCStringLen2` on `cx`, which outlives `self` (see `coerce`).
        unsafe { qjs::JS_FreeCString(self.cx, self.ptr) }
    }
}

/// ToNumber of `v`; `None` when the coercion threw.
///
/// # Safety
/// `cx` is a live context and `v` a live value of it.
#[inline]
unsafe fn to_number(cx: *mut qjs::JSContext, v: qjs::JSValue) -> Option<f64> {
    let mut d = 0.0;
    // SAFETY: guaranteed by the caller.
    (unsafe { qjs::JS_ToFloat64(cx, &mut d, v) } == 0).then_some(d)
}

/// One argument after coercion, possibly still holding converted text.
pub(super) enum Coerced {
    /// An `int` argument.
    Int(i32),
    /// A `long` argument.
    Long(i64),
    /// A `str` argument.
    Str(JsStr),
}

impl Default for Coerced {
    fn default() -> Self {
        Coerced::Int(0)
    }
}

/// Coerce `v` to parameter kind `ty` (module docs); `None` when the coercion threw.
///
/// # Safety
/// As [`JsStr::coerce`].
#[inline]
pub(super) unsafe fn coerce(
    cx: *mut qjs::JSContext,
    v: qjs::JSValue,
    ty: ParamType,
) -> Option<Coerced> {
    // SAFETY: guaranteed by the caller; reading the tag and the int payload of a value is plain
    // data access.
    unsafe {
        let is_int = qjs::JS_VALUE_GET_TAG(v) == qjs::JS_TAG_INT;
        match ty {
            ParamType::Str => JsStr::coerce(cx, v).map(Coerced::Str),
            ParamType::Int if is_int => Some(Coerced::Int(qjs::JS_VALUE_GET_INT(v))),
            ParamType::Long if is_int => Some(Coerced::Long(i64::from(qjs::JS_VALUE_GET_INT(v)))),
            // `as` truncates toward zero, saturates, and maps NaN to 0: duk_to_int's clamping.
            ParamType::Int => to_number(cx, v).map(|d| Coerced::Int(d as i32)),
            ParamType::Long => to_number(cx, v).map(|d| Coerced::Long(d as i64)),
        }
    }
}

/// Turn coerced arguments into [`Arg`]s and call `f` with them. UTF-8 text is borrowed; only
/// text with lone surrogates is copied (lossily).
#[inline]
pub(super) fn with_args<R>(coerced: &[Coerced], f: impl FnOnce(&[Arg<'_>]) -> R) -> R {
    let n = coerced.len().min(MAX_PARAMS);
    let mut strs: [Option<&str>; MAX_PARAMS] = [None; MAX_PARAMS];
    let mut owned: [Option<String>; MAX_PARAMS] = Default::default();
    for (i, c) in coerced[..n].iter().enumerate() {
        if let Coerced::Str(s) = c {
            match std::str::from_utf8(s.bytes()) {
                Ok(text) => strs[i] = Some(text),
                Err(_) => owned[i] = Some(String::from_utf8_lossy(s.bytes()).into_owned()),
            }
        }
    }
    let mut args = [Arg::Int(0); MAX_PARAMS];
    for (i, c) in coerced[..n].iter().enumerate() {
        args[i] = match c {
            Coerced::Int(v) => Arg::Int(*v),
            Coerced::Long(v) => Arg::Long(*v),
            Coerced::Str(_) => Arg::Str(strs[i].or(owned[i].as_deref()).unwrap_or("")),
        };
    }
    f(&args[..n])
}

/// The JavaScript value of an export result (§2.2, JS column): INT → number, BOOL → boolean,
/// NONE → `false` (on every path, as `app_jsdt`'s `sr_kemi_jsdt_return_int`), XVAL per
/// [`xval_value`]. Returns `JS_EXCEPTION` only when a string result cannot be allocated.
///
/// # Safety
/// `cx` is a live context.
#[inline]
pub(super) unsafe fn ret_value(
    cx: *mut qjs::JSContext,
    ret: KemiRet,
    export: &crate::export::KemiExport,
) -> qjs::JSValue {
    match ret {
        KemiRet::Int(n) => js_int(n),
        KemiRet::Bool(b) => js_bool(b),
        KemiRet::None => qjs::JS_FALSE,
        // SAFETY: guaranteed by the caller.
        KemiRet::Xval(x) => unsafe { xval_value(cx, x, export) },
    }
}

/// An [`Xval`] as a JavaScript value: `None` → `undefined` (no value), `Null` → `null`, `Int`
/// and `Long` → number, `Str` → string, `Bool` → boolean. Arrays and dicts are not supported by
/// `app_jsdt`: `null` and an error log.
///
/// # Safety
/// `cx` is a live context.
unsafe fn xval_value(
    cx: *mut qjs::JSContext,
    x: Xval,
    export: &crate::export::KemiExport,
) -> qjs::JSValue {
    match x {
        Xval::None => qjs::JS_UNDEFINED,
        Xval::Null => qjs::JS_NULL,
        Xval::Int(n) => js_int(n),
        Xval::Bool(b) => js_bool(b),
        // SAFETY: guaranteed by the caller; `JS_NewNumber` gives an int value when it fits.
        Xval::Long(n) => unsafe { qjs::JS_NewNumber(cx, n as f64) },
        // SAFETY: guaranteed by the caller; QuickJS copies the `s.len()` bytes.
        Xval::Str(s) => unsafe {
            qjs::JS_NewStringLen(cx, s.as_ptr().cast(), s.len() as qjs::size_t)
        },
        Xval::Array(_) | Xval::Dict(_) => {
            tracing::error!(target: "jsdt", "KSR.{}: array and dict results are not supported in JavaScript; giving null", export.qualified_name());
            qjs::JS_NULL
        }
    }
}

/// The argument count of a native call as a `usize` (QuickJS never passes a negative one).
#[inline]
pub(super) fn argc_len(argc: c_int) -> usize {
    usize::try_from(argc).unwrap_or(0)
}
