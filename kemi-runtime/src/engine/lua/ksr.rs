//! The global `KSR` table of one interpreter, and the C functions behind it.
//!
//! Every `KSR.<mod>.<fn>` is a Lua C closure over one upvalue: a light userdata pointing to its
//! [`Entry`] (the engine's [`Ctx`] and the export). A call reads the upvalue, converts the stack
//! arguments and calls the export's trampoline: no name lookup, no allocation for int and UTF-8
//! string arguments, no Lua value created except the result. `KSR.x.{exit,drop,modf,probe}` are
//! C functions too.
//!
//! # Lua errors and Rust frames
//!
//! Lua raises errors with `longjmp`, which must only cross frames without destructors. So each
//! C function here is a thin shell: the work happens in an inner function that returns a
//! [`Step`] after dropping everything it owned, and only the shell calls `lua_error`. The only
//! Lua API calls made while Rust values are alive cannot raise (type checks, number reads,
//! pushes of scalars) or convert numbers to strings in place (may raise a memory error only
//! while nothing owned is alive).

use std::ffi::{c_int, c_void};
use std::ptr;
use std::rc::Rc;

use mlua::{ffi, Function, Lua, Table};

use super::convert::{
    push_bytes, push_ret, read_bytes, read_raw, with_args, Pushed, Raw, MAX_PARAMS,
};
use super::ctx::{CallError, Ctx};
use crate::engine::{modf, EXIT_MARKER};
use crate::export::KemiExport;

/// What a C function does once its inner work has returned.
enum Step {
    /// Return this many results.
    Results(c_int),
    /// Raise the error value on top of the stack.
    Raise,
    /// Raise "KSR.<export> panicked".
    Panicked(&'static KemiExport),
}

/// What a `KSR.<mod>.<fn>` closure's upvalue points to: one light userdata instead of two
/// upvalues (ctx and slot) saves an API call and the slot lookup on every call.
pub(super) struct Entry {
    ctx: *const Ctx,
    export: &'static KemiExport,
}

/// The entries of one interpreter's `KSR` closures, at fixed addresses (a boxed slice): the
/// engine keeps them until the interpreter is closed.
pub(super) type Entries = Box<[Entry]>;

/// Build `KSR` (core exports as `KSR.<fn>`, one table per module, `KSR.x`) and `KSRVERSION`.
///
/// `ctx` and the returned entries must outlive the interpreter: the closures keep raw pointers
/// to them.
pub(super) fn install(lua: &Lua, ctx: &Rc<Ctx>) -> mlua::Result<Entries> {
    let ctx_ptr = Rc::as_ptr(ctx);
    let modules = ctx.table().modules();
    let entries: Entries = modules
        .iter()
        .flat_map(|m| m.slots.clone())
        .filter_map(|slot| ctx.export(slot))
        .map(|export| Entry {
            ctx: ctx_ptr,
            export,
        })
        .collect();
    let ksr = lua.create_table()?;
    let mut next = entries.iter();
    for module in modules {
        let target: Table = if module.name.is_empty() {
            ksr.clone()
        } else {
            let t = lua.create_table_with_capacity(0, module.slots.len())?;
            ksr.raw_set(module.name, &t)?;
            t
        };
        for slot in module.slots.clone() {
            if ctx.export(slot).is_some() {
                // The entries were made from the same walk, in the same order.
                let Some(entry) = next.next() else { break };
                target.raw_set(
                    entry.export.name,
                    c_closure(lua, ksr_call, Some(ptr::from_ref(entry).cast()))?,
                )?;
            }
        }
    }
    let x = lua.create_table_with_capacity(0, 4)?;
    x.raw_set("exit", c_closure(lua, x_exit, None)?)?;
    x.raw_set("drop", c_closure(lua, x_drop, Some(ctx_ptr.cast()))?)?;
    x.raw_set("modf", c_closure(lua, x_modf, Some(ctx_ptr.cast()))?)?;
    x.raw_set("probe", c_closure(lua, x_probe, None)?)?;
    ksr.raw_set("x", x)?;
    let globals = lua.globals();
    globals.raw_set("KSR", ksr)?;
    globals.raw_set("KSRVERSION", "2.0")?;
    Ok(entries)
}

/// A C closure over the optional upvalue `data` (light userdata).
fn c_closure(
    lua: &Lua,
    f: ffi::lua_CFunction,
    data: Option<*const c_void>,
) -> mlua::Result<Function> {
    // SAFETY: the closure pushes at most two values inside mlua's protected call, which
    // reserves the stack it needs; it owns nothing, so a memory error may longjmp over it.
    unsafe {
        lua.exec_raw::<Function>((), |state| {
            let mut n = 0;
            if let Some(data) = data {
                ffi::lua_pushlightuserdata(state, data.cast_mut());
                n += 1;
            }
            ffi::lua_pushcclosure(state, f, n);
        })
    }
}

/// The [`Ctx`] in upvalue 1 of the running C closure.
///
/// # Safety
/// Only for closures made by [`install`] with a ctx. The engine drops its interpreter before
/// its `Ctx` (field order in `LuaEngine`), so the pointer is valid whenever Lua runs the closure.
#[inline]
unsafe fn ctx_of<'a>(l: *mut ffi::lua_State) -> &'a Ctx {
    // SAFETY: guaranteed by the caller.
    unsafe { &*ffi::lua_touserdata(l, ffi::lua_upvalueindex(1)).cast::<Ctx>() }
}

/// Shell: carry out a [`Step`].
///
/// # Safety
/// `l` is the running state; nothing owned may be alive in the caller.
#[inline]
unsafe fn finish(l: *mut ffi::lua_State, step: Step) -> c_int {
    // SAFETY: guaranteed by the caller; pieces pushed are `'static` strings.
    unsafe {
        match step {
            Step::Results(n) => n,
            Step::Raise => ffi::lua_error(l),
            Step::Panicked(export) => {
                ffi::luaL_where(l, 1);
                push_static(l, "KSR.");
                if !export.module.is_empty() {
                    push_static(l, export.module);
                    push_static(l, ".");
                }
                push_static(l, export.name);
                push_static(l, " panicked");
                let pieces = if export.module.is_empty() { 4 } else { 6 };
                ffi::lua_concat(l, pieces);
                ffi::lua_error(l)
            }
        }
    }
}

/// Push a `'static` string.
///
/// # Safety
/// `l` is a valid state with room for one value.
#[inline]
unsafe fn push_static(l: *mut ffi::lua_State, s: &'static str) {
    // SAFETY: guaranteed by the caller.
    unsafe {
        push_bytes(l, s.as_ptr(), s.len());
    }
}

/// Push `false` and return one result.
///
/// # Safety
/// `l` is a valid state with room for one value.
#[inline]
unsafe fn push_false(l: *mut ffi::lua_State) -> Step {
    // SAFETY: guaranteed by the caller.
    unsafe { ffi::lua_pushboolean(l, 0) };
    Step::Results(1)
}

/// `KSR.<mod>.<fn>(...)`: upvalue 1 its [`Entry`].
unsafe extern "C-unwind" fn ksr_call(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: `install` made this closure with a pointer to its entry, which the engine keeps
    // (with the ctx it points to) until the interpreter is closed; `call_export` returns after
    // dropping what it owned, so `finish` may raise.
    unsafe {
        let entry = &*ffi::lua_touserdata(l, ffi::lua_upvalueindex(1)).cast::<Entry>();
        let step = call_export(l, &*entry.ctx, entry.export);
        finish(l, step)
    }
}

/// Apply `app_lua`'s argument rules, call `export`, push its result.
///
/// # Safety
/// `l` is the running state of a `ksr_call`.
#[inline]
unsafe fn call_export(l: *mut ffi::lua_State, ctx: &Ctx, export: &'static KemiExport) -> Step {
    // SAFETY (whole fn): `l` is valid; argument slices borrow stack slots that stay on the
    // stack until this function returns.
    unsafe {
        if !ctx.has_msg() {
            return invalid_env(l, export);
        }
        let argc = usize::try_from(ffi::lua_gettop(l)).unwrap_or(0);
        let params = export.params;
        let ret = if params.is_empty() {
            if argc > 0 {
                tracing::error!(target: "lua", "invalid parameters for KSR.{}: it takes none, got {argc}", export.qualified_name());
                return push_false(l);
            }
            ctx.call(export, &[])
        } else {
            if argc > MAX_PARAMS || params.len() > MAX_PARAMS {
                tracing::error!(target: "lua", "too many parameters for KSR.{}: {argc}", export.qualified_name());
                return push_false(l);
            }
            if argc < params.len() {
                tracing::error!(target: "lua", "not enough parameters for KSR.{}: {argc} of {}", export.qualified_name(), params.len());
                return push_false(l);
            }
            let mut raws = [Raw::Int(0); MAX_PARAMS];
            for (i, ty) in params.iter().enumerate() {
                raws[i] = read_raw(l, i as c_int + 1, *ty);
            }
            with_args(&raws[..params.len()], |args| ctx.call(export, args))
        };
        match ret {
            Ok(ret) => match push_ret(l, ret, params.is_empty()) {
                Pushed::Results(n) => Step::Results(n),
                Pushed::Raise => Step::Raise,
            },
            Err(CallError::Panicked) => Step::Panicked(export),
            Err(CallError::NoMessage) => invalid_env(l, export),
            Err(CallError::Args(e)) => {
                tracing::error!(target: "lua", "invalid parameters for KSR.{}: {e}", export.qualified_name());
                push_false(l)
            }
        }
    }
}

/// No message is lent: log Kamailio's "invalid Lua environment" and give `false`.
///
/// # Safety
/// `l` is a valid state with room for one value.
#[cold]
unsafe fn invalid_env(l: *mut ffi::lua_State, export: &KemiExport) -> Step {
    tracing::error!(target: "lua", "invalid Lua environment: KSR.{} called with no current message", export.qualified_name());
    // SAFETY: guaranteed by the caller.
    unsafe { push_false(l) }
}

/// `KSR.x.exit()`: raise the exit marker (no position, like `error(m, 0)`).
unsafe extern "C-unwind" fn x_exit(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: nothing owned is alive here.
    unsafe {
        push_static(l, EXIT_MARKER);
        ffi::lua_error(l)
    }
}

/// `KSR.x.drop()`: mark the message dropped, then exit. `false` when no message is current.
unsafe extern "C-unwind" fn x_drop(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: made by `install` with a ctx; `with_msg` owns nothing once it returns.
    unsafe {
        let marked = ctx_of(l).with_msg(|msg| msg.route.drop = true).is_some();
        if !marked {
            tracing::error!(target: "lua", "invalid Lua environment: KSR.x.drop called with no current message");
            ffi::lua_pushboolean(l, 0);
            return 1;
        }
        x_exit(l)
    }
}

/// `KSR.x.probe()`: does nothing (Kamailio runs it once to check the library loads).
unsafe extern "C-unwind" fn x_probe(_l: *mut ffi::lua_State) -> c_int {
    0
}

/// `KSR.x.modf(fname, ...)`: run an export found by function name with string arguments.
unsafe extern "C-unwind" fn x_modf(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: made by `install` with a ctx; `modf` returns after dropping what it owned.
    unsafe {
        let step = modf(l, ctx_of(l));
        finish(l, step)
    }
}

/// Body of `KSR.x.modf`: find the export (core first, then modules), convert the string
/// arguments to the declared kinds, push its result as an integer (bool gives 1/-1, none 1).
/// Unknown functions, bad argument counts and unparsable numbers log and give -1 (see
/// [`crate::engine::modf`]).
///
/// # Safety
/// `l` is the running state of an `x_modf` closure.
unsafe fn modf(l: *mut ffi::lua_State, ctx: &Ctx) -> Step {
    // SAFETY (whole fn): as `call_export`.
    unsafe {
        if !ctx.has_msg() {
            tracing::error!(target: "lua", "invalid Lua environment: KSR.x.modf called with no current message");
            return push_false(l);
        }
        let argc = usize::try_from(ffi::lua_gettop(l)).unwrap_or(0);
        let name = if argc >= 1 && ffi::lua_type(l, 1) == ffi::LUA_TSTRING {
            std::str::from_utf8(read_bytes(l, 1)).ok()
        } else {
            None
        };
        let nargs = argc.saturating_sub(1);
        let Some(export) = ctx
            .modf()
            .resolve(ctx.kind(), ctx.table(), name, Some(nargs))
        else {
            return push_int(l, -1);
        };
        let n = export.params.len();
        let mut raws = [Raw::Int(0); MAX_PARAMS];
        for (i, raw) in raws.iter_mut().enumerate().take(n) {
            *raw = Raw::Bytes(read_bytes(l, i as c_int + 2));
        }
        let outcome = with_args(&raws[..n], |strs| {
            modf::call_with_strs(ctx.kind(), export, strs, |a| ctx.call(export, a))
        });
        match outcome {
            modf::Outcome::Code(code) => push_int(l, code),
            modf::Outcome::NoMessage => push_false(l),
            modf::Outcome::Panicked => Step::Panicked(export),
        }
    }
}

/// Push an integer and return one result.
///
/// # Safety
/// `l` is a valid state with room for one value.
unsafe fn push_int(l: *mut ffi::lua_State, n: i32) -> Step {
    // SAFETY: guaranteed by the caller.
    unsafe { ffi::lua_pushinteger(l, ffi::lua_Integer::from(n)) };
    Step::Results(1)
}
