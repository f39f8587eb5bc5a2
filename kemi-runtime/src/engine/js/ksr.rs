//! The global `KSR` object of one JavaScript context, and the native functions behind it.
//!
//! As in `app_jsdt`, each sub-module is a global object `KSR_<mod>` that `KSR.<mod>` aliases
//! (`KSR.x` is `KSR_x`); core exports are `KSR.<fn>`. `KSR.<mod>` is `undefined` for modules
//! that are not enabled.
//!
//! Every export is a QuickJS native function whose `magic` is the export's slot index, and the
//! engine's [`Ctx`] is the context's opaque pointer. A call reads both, coerces the arguments
//! (see [`super::convert`]) and calls the export's trampoline: no name lookup, no allocation for
//! int and ASCII string arguments. The functions are built once per context, when it is created.
//!
//! QuickJS reports errors by return value (`JS_EXCEPTION` with the exception pending), never by
//! `longjmp`, so Rust values may be alive across any call here. Nothing here may panic: the
//! functions are `extern "C"`, and the export call itself runs under `catch_unwind`.

use std::ffi::{c_int, c_void, CString};
use std::ptr::{self, NonNull};

use rquickjs::{qjs, Ctx as JsCtx, Exception, Object, Value};

use super::convert::{argc_len, coerce, js_int, ret_value, with_args, Coerced, JsStr, MAX_PARAMS};
use crate::engine::ctx::Ctx;
use crate::engine::lease::CallError;
use crate::engine::{modf, EXIT_MARKER};
use crate::export::{KemiExport, ParamType};

/// The signature QuickJS calls native functions made by `JS_NewCFunctionData2` with.
type NativeFn = unsafe extern "C" fn(
    *mut qjs::JSContext,
    qjs::JSValue,
    c_int,
    *mut qjs::JSValue,
    c_int,
    *mut qjs::JSValue,
) -> qjs::JSValue;

/// Build `KSR`, the `KSR_<mod>` globals and `KSR.x`, and point the context's opaque at `ctx`.
///
/// `ctx` must stay at its address and outlive every use of the context (the engine drops the
/// context first).
pub(super) fn install<'js>(js: &JsCtx<'js>, ctx: &Ctx) -> rquickjs::Result<()> {
    let raw = js.as_raw().as_ptr();
    // SAFETY: `raw` is the live context; the opaque is ours (rquickjs does not use it).
    unsafe { qjs::JS_SetContextOpaque(raw, ptr::from_ref(ctx).cast_mut().cast::<c_void>()) };
    let globals = js.globals();
    let ksr = Object::new(js.clone())?;
    for module in ctx.table().modules() {
        let target = if module.name.is_empty() {
            ksr.clone()
        } else {
            let obj = Object::new(js.clone())?;
            globals.set(format!("KSR_{}", module.name), obj.clone())?;
            ksr.set(module.name, obj.clone())?;
            obj
        };
        for slot in module.slots.clone() {
            if let Some(export) = ctx.export(slot) {
                target.set(
                    export.name,
                    native(js, export.name, ksr_call, c_int::from(slot))?,
                )?;
            }
        }
    }
    let x = Object::new(js.clone())?;
    x.set("exit", native(js, "exit", x_exit, 0)?)?;
    x.set("drop", native(js, "drop", x_drop, 0)?)?;
    x.set("modf", native(js, "modf", x_modf, 0)?)?;
    globals.set("KSR_x", x.clone())?;
    ksr.set("x", x)?;
    globals.set("KSR", ksr)?;
    Ok(())
}

/// A native function named `name` with `magic`. Its declared length is 0 so that QuickJS never
/// pads the arguments: the function sees the real argument count.
fn native<'js>(
    js: &JsCtx<'js>,
    name: &str,
    f: NativeFn,
    magic: c_int,
) -> rquickjs::Result<Value<'js>> {
    let cname = CString::new(name).map_err(|_| rquickjs::Error::Unknown)?;
    // SAFETY: `js` is live; QuickJS copies the name; `data` is empty. `from_raw` takes ownership
    // of the new value (or of `JS_EXCEPTION`, which owns nothing).
    let v = unsafe {
        let raw = qjs::JS_NewCFunctionData2(
            js.as_raw().as_ptr(),
            Some(f),
            cname.as_ptr(),
            0,
            magic,
            0,
            ptr::null_mut(),
        );
        Value::from_raw(js.clone(), raw)
    };
    if v.is_exception() {
        Err(rquickjs::Error::Exception)
    } else {
        Ok(v)
    }
}

/// The [`Ctx`] of a context built by [`install`].
///
/// # Safety
/// `cx` is a context set up by `install`, whose `Ctx` is alive (the engine drops the context
/// before its `Ctx`).
#[inline]
unsafe fn ctx_of<'a>(cx: *mut qjs::JSContext) -> Option<&'a Ctx> {
    // SAFETY: guaranteed by the caller.
    unsafe { qjs::JS_GetContextOpaque(cx).cast::<Ctx>().as_ref() }
}

/// The arguments of a native call as a slice.
///
/// # Safety
/// `argv` points to `argc` live values (QuickJS's calling convention).
#[inline]
unsafe fn args<'a>(argc: c_int, argv: *mut qjs::JSValue) -> &'a [qjs::JSValue] {
    let n = argc_len(argc);
    if n == 0 || argv.is_null() {
        &[]
    } else {
        // SAFETY: guaranteed by the caller.
        unsafe { std::slice::from_raw_parts(argv, n) }
    }
}

/// `KSR.<mod>.<fn>(...)`: `magic` is the slot.
unsafe extern "C" fn ksr_call(
    cx: *mut qjs::JSContext,
    _this: qjs::JSValue,
    argc: c_int,
    argv: *mut qjs::JSValue,
    magic: c_int,
    _data: *mut qjs::JSValue,
) -> qjs::JSValue {
    // SAFETY: QuickJS calls this with a live context made by `install` and `argc` arguments.
    unsafe {
        let Some(ctx) = ctx_of(cx) else {
            return qjs::JS_FALSE;
        };
        match u16::try_from(magic).ok().and_then(|s| ctx.export(s)) {
            Some(export) => call_export(cx, ctx, export, args(argc, argv)),
            None => qjs::JS_FALSE,
        }
    }
}

/// Apply `app_jsdt`'s argument rules, call `export`, give its result.
///
/// A 0-parameter export ignores its arguments. An export with parameters called with none, or
/// with more than six, gives `false` with an error log. Missing arguments count as `undefined`
/// and are coerced like it (Duktape would throw "invalid stack index"); extra ones are ignored.
///
/// # Safety
/// `cx` is the live context of a `ksr_call`, `args` its arguments.
#[inline]
unsafe fn call_export(
    cx: *mut qjs::JSContext,
    ctx: &Ctx,
    export: &'static KemiExport,
    args: &[qjs::JSValue],
) -> qjs::JSValue {
    if !ctx.has_msg() {
        return invalid_env(export.qualified_name());
    }
    let params = export.params;
    let ret = if params.is_empty() {
        ctx.call(export, &[])
    } else {
        if args.is_empty() {
            tracing::error!(target: "jsdt", "KSR.{} called without parameters", export.qualified_name());
            return qjs::JS_FALSE;
        }
        if args.len() > MAX_PARAMS || params.len() > MAX_PARAMS {
            tracing::error!(target: "jsdt", "too many parameters for KSR.{}: {}", export.qualified_name(), args.len());
            return qjs::JS_FALSE;
        }
        let mut list: [Coerced; MAX_PARAMS] = Default::default();
        for (i, (slot, ty)) in list.iter_mut().zip(params).enumerate() {
            let v = args.get(i).copied().unwrap_or(qjs::JS_UNDEFINED);
            // SAFETY: `cx` is live and `v` one of its values (or a constant).
            match unsafe { coerce(cx, v, *ty) } {
                Some(c) => *slot = c,
                None => return qjs::JS_EXCEPTION,
            }
        }
        with_args(&list[..params.len()], |a| ctx.call(export, a))
    };
    match ret {
        // SAFETY: `cx` is live.
        Ok(ret) => unsafe { ret_value(cx, ret, export) },
        // SAFETY: `cx` is live.
        Err(CallError::Panicked) => unsafe { panicked(cx, export) },
        Err(CallError::NoMessage) => invalid_env(export.qualified_name()),
        Err(CallError::Args(e)) => {
            tracing::error!(target: "jsdt", "invalid parameters for KSR.{}: {e}", export.qualified_name());
            qjs::JS_FALSE
        }
    }
}

/// No message is current: log Kamailio's "invalid JS environment" and give `false`.
#[cold]
fn invalid_env(what: String) -> qjs::JSValue {
    tracing::error!(target: "jsdt", "invalid JS environment: KSR.{what} called with no current message");
    qjs::JS_FALSE
}

/// Throw a JavaScript `Error` with `message` and give `JS_EXCEPTION`.
///
/// # Safety
/// `cx` is a live context whose runtime lock is held (a native function is running).
#[cold]
unsafe fn throw_error(cx: *mut qjs::JSContext, message: &str) -> qjs::JSValue {
    if let Some(nn) = NonNull::new(cx) {
        // SAFETY: guaranteed by the caller; the `Ctx` is dropped before returning.
        let js = unsafe { JsCtx::from_raw(nn) };
        let _pending = Exception::throw_message(&js, message);
    }
    qjs::JS_EXCEPTION
}

/// Throw "KSR.<export> panicked" and give `JS_EXCEPTION`.
///
/// # Safety
/// As [`throw_error`].
#[cold]
unsafe fn panicked(cx: *mut qjs::JSContext, export: &KemiExport) -> qjs::JSValue {
    // SAFETY: guaranteed by the caller.
    unsafe { throw_error(cx, &format!("KSR.{} panicked", export.qualified_name())) }
}

/// Throw the exit marker string and give `JS_EXCEPTION`.
///
/// # Safety
/// `cx` is a live context.
unsafe fn throw_exit(cx: *mut qjs::JSContext) -> qjs::JSValue {
    // SAFETY: guaranteed by the caller. `JS_Throw` takes ownership of the string value; when
    // the string cannot be made, the out-of-memory exception is already pending.
    unsafe {
        let marker = qjs::JS_NewStringLen(
            cx,
            EXIT_MARKER.as_ptr().cast(),
            EXIT_MARKER.len() as qjs::size_t,
        );
        if qjs::JS_VALUE_GET_TAG(marker) != qjs::JS_TAG_EXCEPTION {
            qjs::JS_Throw(cx, marker);
        }
    }
    qjs::JS_EXCEPTION
}

/// `KSR.x.exit()`: `throw "~~ksr~exit~~"`, which the runner treats as success.
unsafe extern "C" fn x_exit(
    cx: *mut qjs::JSContext,
    _this: qjs::JSValue,
    _argc: c_int,
    _argv: *mut qjs::JSValue,
    _magic: c_int,
    _data: *mut qjs::JSValue,
) -> qjs::JSValue {
    // SAFETY: QuickJS calls this with a live context.
    unsafe { throw_exit(cx) }
}

/// `KSR.x.drop()`: mark the message dropped, then exit. `false` when no message is current.
unsafe extern "C" fn x_drop(
    cx: *mut qjs::JSContext,
    _this: qjs::JSValue,
    _argc: c_int,
    _argv: *mut qjs::JSValue,
    _magic: c_int,
    _data: *mut qjs::JSValue,
) -> qjs::JSValue {
    // SAFETY: QuickJS calls this with a live context made by `install`.
    unsafe {
        let marked = ctx_of(cx).and_then(|c| c.with_msg(|msg| msg.route.drop = true));
        if marked.is_none() {
            return invalid_env("x.drop".to_string());
        }
        throw_exit(cx)
    }
}

/// `KSR.x.modf(fname, ...)`: run an export found by function name (core first, then modules)
/// with its arguments coerced to strings and then parsed to the declared kinds; gives the native
/// integer result (bool 1/-1, none 1). Unknown functions, too few arguments and unparsable
/// numbers log and give -1.
unsafe extern "C" fn x_modf(
    cx: *mut qjs::JSContext,
    _this: qjs::JSValue,
    argc: c_int,
    argv: *mut qjs::JSValue,
    _magic: c_int,
    _data: *mut qjs::JSValue,
) -> qjs::JSValue {
    // SAFETY: QuickJS calls this with a live context made by `install` and `argc` arguments.
    unsafe {
        let Some(ctx) = ctx_of(cx) else {
            return qjs::JS_FALSE;
        };
        modf(cx, ctx, args(argc, argv))
    }
}

/// Body of `KSR.x.modf`.
///
/// # Safety
/// `cx` is the live context of an `x_modf` call, `args` its arguments.
unsafe fn modf(cx: *mut qjs::JSContext, ctx: &Ctx, args: &[qjs::JSValue]) -> qjs::JSValue {
    if !ctx.has_msg() {
        return invalid_env("x.modf".to_string());
    }
    let name = match args.first() {
        // SAFETY: `cx` is live and `v` one of its values.
        Some(&v) if unsafe { qjs::JS_VALUE_GET_TAG(v) } == qjs::JS_TAG_STRING => {
            // SAFETY: as above.
            match unsafe { JsStr::coerce(cx, v) } {
                Some(s) => s,
                None => return qjs::JS_EXCEPTION,
            }
        }
        _ => {
            tracing::error!(target: "jsdt", "KSR.x.modf: the first argument must be a function name");
            return js_int(-1);
        }
    };
    let Ok(fname) = std::str::from_utf8(name.bytes()) else {
        tracing::error!(target: "jsdt", "KSR.x.modf: the function name is not valid text");
        return js_int(-1);
    };
    let nargs = args.len() - 1;
    let Some(export) = ctx
        .modf()
        .resolve(ctx.kind(), ctx.table(), Some(fname), Some(nargs))
    else {
        return js_int(-1);
    };
    let n = export.params.len();
    let mut texts: [Coerced; MAX_PARAMS] = Default::default();
    for (i, slot) in texts.iter_mut().enumerate().take(n) {
        // SAFETY: `cx` is live and the argument one of its values.
        match unsafe { coerce(cx, args[i + 1], ParamType::Str) } {
            Some(c) => *slot = c,
            None => return qjs::JS_EXCEPTION,
        }
    }
    let outcome = with_args(&texts[..n], |strs| {
        modf::call_with_strs(ctx.kind(), export, strs, |a| ctx.call(export, a))
    });
    match outcome {
        modf::Outcome::Code(code) => js_int(code),
        modf::Outcome::NoMessage => qjs::JS_FALSE,
        // SAFETY: `cx` is live and its runtime lock held.
        modf::Outcome::Panicked => unsafe { panicked(cx, export) },
    }
}
