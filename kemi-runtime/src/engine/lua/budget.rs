//! The instruction budget of one callback run: a raw Lua count hook.
//!
//! Why not mlua's `Lua::set_hook`: it serves one Lua thread only and switches the hook off in
//! every coroutine, so `coroutine.wrap(function() while true do end end)()` would escape the
//! budget. A raw `lua_sethook` on the main state is inherited by every coroutine created from it.
//!
//! The hook fires every `step` instructions and takes `lua_gethookcount` off the budget left,
//! which lives in a thread-local (one run at a time per thread; [`arm`] sets it before each run).
//! When the budget is spent it raises an error at the script position, and switches the hook of
//! that Lua thread to fire on every instruction: a `pcall` that catches the error gets back control
//! for one instruction at most before the error is raised again in its own frame, so no chain of
//! `pcall`s keeps the run alive. The next [`arm`]ed run's first hook call restores `step`.

use std::cell::Cell;
use std::io::Write;

use mlua::{ffi, Lua};

use crate::engine::limits::INSTRUCTION_LIMIT;

/// Instructions between two hook calls at most: the granularity of the budget.
const MAX_STEP: u64 = 1000;

thread_local! {
    /// Instructions left for the run in progress on this thread.
    static LEFT: Cell<u64> = const { Cell::new(u64::MAX) };
    /// The hook period of the run in progress.
    static STEP: Cell<u64> = const { Cell::new(MAX_STEP) };
}

/// The hook period for a budget of `instructions`.
fn step_for(instructions: u64) -> u64 {
    instructions.clamp(1, MAX_STEP)
}

/// Install the count hook on `lua`'s main state; the budget is unlimited until [`arm`].
pub(super) fn install(lua: &Lua, instructions: u64) -> mlua::Result<()> {
    let step = c_int_of(step_for(instructions));
    // SAFETY: `exec_raw` hands us the live main state of `lua`; `lua_sethook` only stores the
    // function pointer and counts there. `hook` upholds Lua's rules for hooks (below).
    unsafe {
        lua.exec_raw::<()>((), |state| {
            ffi::lua_sethook(state, Some(hook), ffi::LUA_MASKCOUNT, step);
        })
    }
}

/// Give the next run on this thread a budget of `instructions`.
pub(super) fn arm(instructions: u64) {
    LEFT.with(|l| l.set(instructions));
    STEP.with(|s| s.set(step_for(instructions)));
}

fn c_int_of(n: u64) -> std::ffi::c_int {
    std::ffi::c_int::try_from(n).unwrap_or(std::ffi::c_int::MAX)
}

/// The count hook.
///
/// # Safety
/// Called by Lua with a valid state and activation record. Nothing with a destructor is alive
/// when `lua_error` long-jumps out of this frame: the message is built in a stack buffer.
unsafe extern "C-unwind" fn hook(l: *mut ffi::lua_State, ar: *mut ffi::lua_Debug) {
    // SAFETY (whole fn): `l` and `ar` are valid for the duration of the hook call.
    unsafe {
        let count = u64::try_from(ffi::lua_gethookcount(l)).unwrap_or(1);
        let left = LEFT.with(Cell::get);
        if left > count {
            LEFT.with(|c| c.set(left - count));
            let step = STEP.with(Cell::get);
            if count != step {
                // A run after an exhausted one (or a coroutine that saw it): back to the period.
                ffi::lua_sethook(l, Some(hook), ffi::LUA_MASKCOUNT, c_int_of(step));
            }
            return;
        }
        LEFT.with(|c| c.set(0));
        ffi::lua_sethook(l, Some(hook), ffi::LUA_MASKCOUNT, 1);
        let mut buf = [0u8; 256];
        let len = {
            let mut w = &mut buf[..];
            if ffi::lua_getinfo(l, c"Sl".as_ptr(), ar) != 0 {
                let src = std::ffi::CStr::from_ptr((*ar).short_src.as_ptr()).to_bytes();
                let src = src.get(..160).unwrap_or(src);
                let _ = w.write_all(src);
                let _ = write!(w, ":{}: ", (*ar).currentline);
            }
            let _ = write!(w, "{INSTRUCTION_LIMIT}");
            256 - w.len()
        };
        ffi::lua_pushlstring(l, buf.as_ptr().cast(), len);
        ffi::lua_error(l);
    }
}
