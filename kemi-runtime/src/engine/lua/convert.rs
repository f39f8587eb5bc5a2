//! Conversions between Lua stack values and KEMI values, with `app_lua`'s rules
//! (`kemi-reference.md` §2.2 and §3.1).
//!
//! Arguments are read in two steps so that no Rust value with a destructor is alive while a Lua
//! API call could raise an error (a `longjmp` must only cross plain frames): [`read_raw`] only
//! borrows from the stack, [`with_args`] then makes owned copies where needed (non-UTF-8 strings)
//! without calling Lua. Results with heap data are pushed inside a protected call, or for a
//! plain string while it is parked in a thread-local ([`push_xval`]), for the same reason.

use std::ffi::{c_int, c_void};
use std::ptr;

use mlua::ffi;

use crate::export::{KemiRet, ParamType};
use crate::{Arg, Xval};

/// Most parameters an export has (`SR_KEMI_PARAMS_MAX`).
pub(super) const MAX_PARAMS: usize = 6;

/// One argument read from the stack, still borrowing the Lua string.
#[derive(Clone, Copy, Debug)]
pub(super) enum Raw<'a> {
    /// An `int` argument.
    Int(i32),
    /// A `long` argument.
    Long(i64),
    /// A `str` argument's bytes.
    Bytes(&'a [u8]),
}

/// The bytes of stack value `idx` as `lua_tolstring` gives them: strings as they are, numbers
/// converted (in place, as Lua does), anything else empty (Kamailio passes a NULL `str`).
///
/// # Safety
/// `l` is a valid state and `idx` a valid stack index. The slice borrows the stack slot: the
/// caller must not use it after the value leaves the stack (the borrow `'a` is unchecked).
/// May raise a Lua memory error when converting a number.
#[inline]
pub(super) unsafe fn read_bytes<'a>(l: *mut ffi::lua_State, idx: c_int) -> &'a [u8] {
    // SAFETY (whole fn): guaranteed by the caller; `lua_tolstring` returns a pointer to `len`
    // bytes owned by the string on the stack.
    unsafe {
        match ffi::lua_type(l, idx) {
            ffi::LUA_TSTRING | ffi::LUA_TNUMBER => {
                let mut len = 0usize;
                let p = ffi::lua_tolstring(l, idx, &mut len);
                if p.is_null() {
                    &[]
                } else {
                    std::slice::from_raw_parts(p.cast::<u8>(), len)
                }
            }
            _ => &[],
        }
    }
}

/// Read stack value `idx` as a parameter of kind `ty`.
///
/// `int`: `lua_tointeger` as `app_lua` on Lua 5.1 calls it (numeric strings converted, a
/// fraction truncated toward zero, non-numbers 0), truncated to 32 bits as C does. `long`: the
/// number truncated toward zero (saturating at the `i64` range).
///
/// # Safety
/// As [`read_bytes`].
#[inline]
pub(super) unsafe fn read_raw<'a>(l: *mut ffi::lua_State, idx: c_int, ty: ParamType) -> Raw<'a> {
    // SAFETY: guaranteed by the caller.
    unsafe {
        match ty {
            ParamType::Str => Raw::Bytes(read_bytes(l, idx)),
            // The C API's own `lua_tointeger`, not mlua's 5.3-style compat wrapper (which
            // gives 0 for a fraction): Lua 5.1 and LuaJIT truncate.
            ParamType::Int => Raw::Int(ffi::lua_tointeger_(l, idx) as i32),
            ParamType::Long => Raw::Long(ffi::lua_tonumber(l, idx) as i64),
        }
    }
}

/// Turn raw arguments into [`Arg`]s and call `f` with them. Valid UTF-8 strings are borrowed;
/// only a non-UTF-8 string is copied (lossily). Calls no Lua API.
#[inline]
pub(super) fn with_args<R>(raws: &[Raw<'_>], f: impl FnOnce(&[Arg<'_>]) -> R) -> R {
    // The common case in one pass: every string is ASCII (names, header values, URIs).
    let n = raws.len().min(MAX_PARAMS);
    let mut args = [Arg::Int(0); MAX_PARAMS];
    for (i, raw) in raws[..n].iter().enumerate() {
        args[i] = match raw {
            Raw::Int(v) => Arg::Int(*v),
            Raw::Long(v) => Arg::Long(*v),
            Raw::Bytes(b) if b.is_ascii() => {
                // SAFETY: ASCII bytes are valid UTF-8.
                Arg::Str(unsafe { std::str::from_utf8_unchecked(b) })
            }
            Raw::Bytes(_) => return with_args_utf8(raws, f),
        };
    }
    f(&args[..n])
}

/// [`with_args`] when a string is not ASCII: UTF-8 borrowed, anything else copied lossily.
#[cold]
fn with_args_utf8<R>(raws: &[Raw<'_>], f: impl FnOnce(&[Arg<'_>]) -> R) -> R {
    let n = raws.len().min(MAX_PARAMS);
    let mut strs: [Option<&str>; MAX_PARAMS] = [None; MAX_PARAMS];
    let mut owned: [Option<String>; MAX_PARAMS] = Default::default();
    for (i, raw) in raws[..n].iter().enumerate() {
        if let Raw::Bytes(b) = raw {
            match std::str::from_utf8(b) {
                Ok(s) => strs[i] = Some(s),
                Err(_) => owned[i] = Some(String::from_utf8_lossy(b).into_owned()),
            }
        }
    }
    let mut args = [Arg::Int(0); MAX_PARAMS];
    for (i, raw) in raws[..n].iter().enumerate() {
        args[i] = match raw {
            Raw::Int(v) => Arg::Int(*v),
            Raw::Long(v) => Arg::Long(*v),
            Raw::Bytes(_) => Arg::Str(strs[i].or(owned[i].as_deref()).unwrap_or("")),
        };
    }
    f(&args[..n])
}

/// What pushing a result left on the stack.
pub(super) enum Pushed {
    /// This many results are on the stack.
    Results(c_int),
    /// Converting failed (out of memory); the error value is on the stack, to be raised once
    /// every Rust value of the caller has been dropped.
    Raise,
}

/// Push an export result. `zero_params` selects the 0-parameter path, where a NONE result is
/// `false` rather than integer `0` (`app_lua`'s quirk).
///
/// # Safety
/// `l` is a valid state with room for one value (a C function always has `LUA_MINSTACK`).
#[inline]
pub(super) unsafe fn push_ret(l: *mut ffi::lua_State, ret: KemiRet, zero_params: bool) -> Pushed {
    // SAFETY: guaranteed by the caller; these pushes do not allocate.
    unsafe {
        match ret {
            KemiRet::None if zero_params => ffi::lua_pushboolean(l, 0),
            KemiRet::None => ffi::lua_pushinteger(l, 0),
            KemiRet::Int(n) => ffi::lua_pushinteger(l, ffi::lua_Integer::from(n)),
            KemiRet::Bool(b) => ffi::lua_pushboolean(l, c_int::from(b)),
            KemiRet::Xval(x) => return push_xval(l, x),
        }
    }
    Pushed::Results(1)
}

/// Push an [`Xval`]: `None` pushes nothing, `Null` nil, arrays and dicts tables. Lua 5.1 has
/// one number type: `Int` and `Long` are both numbers (`5` concatenates as "5", not "5.0").
///
/// # Safety
/// As [`push_ret`].
unsafe fn push_xval(l: *mut ffi::lua_State, x: Xval) -> Pushed {
    // SAFETY: guaranteed by the caller. Scalars push without allocating. A string is moved to
    // `PARKED` before `lua_pushlstring`, so a memory error longjmps over frames that own
    // nothing (callers hold no owned values while pushing the result); the bytes stay valid
    // (moving a `String` does not move its heap buffer) until Lua has copied them, before it
    // can run any Lua code. Arrays and dicts are converted by `push_xval_protected` under
    // `lua_pcall`, whose frames hold only borrows, so a memory error unwinds to the
    // `lua_pcall` here and `x` is dropped normally.
    unsafe {
        match x {
            Xval::None => return Pushed::Results(0),
            Xval::Null => ffi::lua_pushnil(l),
            Xval::Int(n) => ffi::lua_pushinteger(l, ffi::lua_Integer::from(n)),
            Xval::Long(n) => ffi::lua_pushnumber(l, n as ffi::lua_Number),
            Xval::Bool(b) => ffi::lua_pushboolean(l, c_int::from(b)),
            Xval::Str(s) => {
                // The string is parked in a thread-local while Lua copies it, so this frame
                // owns nothing if `lua_pushlstring` raises a memory error; a string left
                // parked by such an error is dropped by the next park. Cheaper than the
                // `lua_pcall` below (the common result of `pv.get` and friends).
                let (p, len) = (s.as_ptr(), s.len());
                PARKED.set(Some(s));
                push_bytes(l, p, len);
                drop(PARKED.take());
            }
            Xval::Array(_) | Xval::Dict(_) => {
                ffi::lua_pushcfunction(l, push_xval_protected);
                ffi::lua_pushlightuserdata(l, ptr::from_ref(&x).cast_mut().cast::<c_void>());
                let rc = ffi::lua_pcall(l, 1, 1, 0);
                drop(x);
                if rc != ffi::LUA_OK {
                    return Pushed::Raise;
                }
            }
        }
    }
    Pushed::Results(1)
}

/// Push `len` bytes at `p` as a string: the C API's `lua_pushlstring`, without the
/// `lua_tostring` of the pushed value that mlua's 5.3-style compat wrapper adds for its return
/// value (an API call per string result for nothing).
///
/// # Safety
/// `l` is a valid state with room for one value; `p` points to `len` readable bytes (any
/// non-null pointer when `len` is 0). May raise a Lua memory error.
#[inline]
pub(super) unsafe fn push_bytes(l: *mut ffi::lua_State, p: *const u8, len: usize) {
    // SAFETY: guaranteed by the caller; an empty string is pushed from a static.
    unsafe {
        if len == 0 {
            ffi::lua_pushlstring_(l, c"".as_ptr(), 0);
        } else {
            ffi::lua_pushlstring_(l, p.cast(), len);
        }
    }
}

thread_local! {
    /// A string result while Lua copies it (see [`push_xval`]).
    static PARKED: std::cell::Cell<Option<String>> = const { std::cell::Cell::new(None) };
}

/// `lua_pcall` target: push the [`Xval`] its light-userdata argument points to.
unsafe extern "C-unwind" fn push_xval_protected(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: only `push_xval` calls this, with a pointer to an `Xval` it keeps alive across the
    // call. Frames below hold only borrows (no destructors), so Lua errors may longjmp over them.
    unsafe {
        let x = &*ffi::lua_touserdata(l, 1).cast::<Xval>();
        ffi::lua_settop(l, 0);
        push_value(l, x, 0);
    }
    1
}

/// Deepest array/dict nesting converted; deeper values raise an error instead of exhausting
/// the native stack.
const MAX_DEPTH: u32 = 64;

/// Push `x` as one value (nested `None` becomes nil). Raises a Lua error on memory exhaustion
/// or nesting deeper than [`MAX_DEPTH`].
///
/// # Safety
/// Must run inside a protected call; see [`push_xval_protected`].
unsafe fn push_value(l: *mut ffi::lua_State, x: &Xval, depth: u32) {
    // SAFETY: guaranteed by the caller.
    unsafe {
        if depth > MAX_DEPTH {
            let msg = "KSR result nested too deep";
            ffi::lua_pushlstring(l, msg.as_ptr().cast(), msg.len());
            ffi::lua_error(l);
        }
        ffi::luaL_checkstack(l, 3, c"KSR result nested too deep".as_ptr());
        match x {
            Xval::None | Xval::Null => ffi::lua_pushnil(l),
            Xval::Int(n) => ffi::lua_pushinteger(l, ffi::lua_Integer::from(*n)),
            Xval::Long(n) => ffi::lua_pushnumber(l, *n as ffi::lua_Number),
            Xval::Bool(b) => ffi::lua_pushboolean(l, c_int::from(*b)),
            Xval::Str(s) => {
                ffi::lua_pushlstring(l, s.as_ptr().cast(), s.len());
            }
            Xval::Array(items) => {
                ffi::lua_createtable(l, c_int::try_from(items.len()).unwrap_or(0), 0);
                for (i, item) in items.iter().enumerate() {
                    push_value(l, item, depth + 1);
                    ffi::lua_rawseti(l, -2, i as ffi::lua_Integer + 1);
                }
            }
            Xval::Dict(items) => {
                ffi::lua_createtable(l, 0, c_int::try_from(items.len()).unwrap_or(0));
                for (name, item) in items {
                    ffi::lua_pushlstring(l, name.as_ptr().cast(), name.len());
                    push_value(l, item, depth + 1);
                    ffi::lua_rawset(l, -3);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlua::Lua;

    /// A C function returning a string result of `LEN` bytes the way `ksr_call` does.
    unsafe extern "C-unwind" fn string_result<const LEN: usize>(l: *mut ffi::lua_State) -> c_int {
        // SAFETY: called by Lua; nothing owned is alive when `lua_error` runs.
        unsafe {
            match push_xval(l, Xval::Str("x".repeat(LEN))) {
                Pushed::Results(n) => n,
                Pushed::Raise => ffi::lua_error(l),
            }
        }
    }

    #[test]
    fn arguments_ascii_utf8_and_invalid() {
        let cases: [(&[u8], &str); 4] = [
            (b"$ru", "$ru"),
            ("caf\u{e9} \u{2603}".as_bytes(), "caf\u{e9} \u{2603}"),
            (b"a\xffb", "a\u{fffd}b"),
            (b"", ""),
        ];
        for (bytes, want) in cases {
            // The string alone, and behind and before an integer.
            for raws in [
                vec![Raw::Bytes(bytes)],
                vec![Raw::Int(7), Raw::Bytes(bytes)],
                vec![Raw::Bytes(bytes), Raw::Long(-3), Raw::Bytes(b"x")],
            ] {
                let got = with_args(&raws, |args| {
                    args.iter()
                        .map(|a| match a {
                            Arg::Str(s) => s.to_string(),
                            Arg::Int(v) => format!("i{v}"),
                            Arg::Long(v) => format!("l{v}"),
                        })
                        .collect::<Vec<_>>()
                });
                let want: Vec<String> = raws
                    .iter()
                    .map(|r| match r {
                        Raw::Bytes(b) if *b == bytes => want.to_string(),
                        Raw::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
                        Raw::Int(v) => format!("i{v}"),
                        Raw::Long(v) => format!("l{v}"),
                    })
                    .collect();
                assert_eq!(got, want);
            }
        }
    }

    #[test]
    fn string_result_over_the_memory_limit_fails_the_call_and_is_reclaimed() {
        let lua = Lua::new();
        // SAFETY: both functions follow the C-function rules above.
        let big = unsafe { lua.create_c_function(string_result::<{ 4 << 20 }>) }.unwrap();
        let small = unsafe { lua.create_c_function(string_result::<3>) }.unwrap();
        lua.set_memory_limit(lua.used_memory() + (1 << 20)).unwrap();
        for _ in 0..3 {
            let err = big.call::<mlua::String>(()).expect_err("over the limit");
            assert!(matches!(err, mlua::Error::MemoryError(_)), "{err}");
            assert_eq!(small.call::<mlua::String>(()).unwrap(), "xxx");
        }
        // The string parked by the failed push was dropped by the next push.
        assert!(PARKED.take().is_none());
    }
}
