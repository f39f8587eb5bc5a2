//! The instruction budget of one callback run: a raw Lua count hook, installed for the whole
//! life of the interpreter when the budget is small, and only in runs that last when it is large.
//!
//! # Why the hook is not always on
//!
//! LuaJIT sends every bytecode through `lj_vm_inshook` once any count hook is set, whatever its
//! period: that cost about 790 Ir per `a_real` request (`docs/PERFORMANCE.md`). So a budget of
//! more than [`EXACT_MAX`] instructions (sipd's default of 10 million is one) runs *watched*:
//! no hook while a run is short, and the hook armed by a CPU-time watchdog once a run has lasted.
//! - Every thread that holds a watched interpreter has one POSIX timer on its own CPU-time clock
//!   (`CLOCK_THREAD_CPUTIME_ID`), firing every [`SLICE`] of CPU the thread uses, with a real-time
//!   signal delivered to that thread (`SIGEV_THREAD_ID`). An idle thread uses no CPU and gets no
//!   signal; nothing is done per run but a few stores to thread-locals.
//! - The signal handler looks at the run in progress on the thread. When the same run was already
//!   in progress at the previous expiry, the run has used at least one [`SLICE`] of CPU: the
//!   handler installs the count hook (`lua_sethook`), which from then on counts the run's budget
//!   from its full value. The run's end takes the hook off again.
//!
//! `lua_sethook` from a signal handler on the interpreter's own thread is what LuaJIT's own
//! `luajit` does on Ctrl-C (`laction` in `luajit.c`), and what its `SIGPROF` profiler does to
//! `hookmask` and the dispatch table. It is *not* safe from another thread: the interpreter
//! updates `hookmask` with read-modify-writes (`hook_leave` when `pcall` catches an error,
//! `hook_restore` around `__gc`), and a store from another thread could undo one of them and
//! leave hooks disabled for good. A handler on the same thread runs between two of the
//! interpreter's instructions: if it lands inside such a read-modify-write, the interpreter's
//! store wins and only the hook is lost, which the next expiry sees (the hook has not fired) and
//! installs again. With the JIT off (always, under a budget) and `jit.on`/`jit.flush` disabled,
//! nothing else in the interpreter rewrites the dispatch table during a run.
//!
//! # What the budget means
//!
//! - Budgets up to [`EXACT_MAX`]: exact as before. The hook is on from the first instruction and
//!   the run stops after the budget, to [`MAX_STEP`] instructions.
//! - Larger budgets: a run that ends within one slice of CPU is never counted or stopped.
//!   A longer run is counted from the moment it has used between one and two slices of CPU, and
//!   stopped once it has executed the full budget from there. No run is stopped before it has
//!   executed its budget; a runaway is stopped at most two slices of instructions later. POSIX
//!   CPU timers expire at the kernel's tick, so a slice is [`SLICE`] or one tick, whichever is
//!   longer (4 ms at `CONFIG_HZ=250`): about 6 million instructions at the 0.7 per ns measured
//!   for LuaJIT's interpreter (`tests/lua_watchdog.rs`). The error, its position and the
//!   counters are the same as with the exact budget.
//!
//! # The hook
//!
//! Why not mlua's `Lua::set_hook`: it serves one Lua thread only and switches the hook off in
//! every coroutine, so `coroutine.wrap(function() while true do end end)()` would escape the
//! budget. A raw `lua_sethook` on the main state is global to the interpreter in LuaJIT.
//!
//! The hook fires every `step` instructions and takes `lua_gethookcount` off the budget left,
//! which lives in a thread-local (one run at a time per thread; [`Budget::start`] sets it before
//! each run). When the budget is spent it raises an error at the script position, and switches
//! the hook to fire on every instruction: a `pcall` that catches the error gets back control for
//! one instruction at most before the error is raised again in its own frame, so no chain of
//! `pcall`s keeps the run alive. An exact budget's next run's first hook call restores `step`; a
//! watched one takes the hook off at the run's end.

use std::cell::{Cell, RefCell};
use std::ffi::c_int;
use std::io::Write;
use std::ptr;
use std::sync::atomic::{compiler_fence, AtomicBool, AtomicPtr, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use mlua::{ffi, Lua};

use crate::engine::limits::INSTRUCTION_LIMIT;

/// Instructions between two hook calls at most: the granularity of the budget.
pub const MAX_STEP: u64 = 1000;

/// Budgets of at most this many instructions are counted exactly, with the hook on all the time;
/// larger ones are watched (module docs). About what LuaJIT's interpreter runs in two slices.
pub const EXACT_MAX: u64 = 5_000_000;

/// The watchdog's period, in CPU time of the interpreter's thread.
pub const SLICE: Duration = Duration::from_millis(1);

thread_local! {
    /// Instructions left for the run in progress on this thread.
    static LEFT: Cell<u64> = const { Cell::new(u64::MAX) };
    /// The hook period of the run in progress (read by the signal handler).
    static STEP: AtomicU64 = const { AtomicU64::new(MAX_STEP) };
    /// The interpreter of the watched run in progress on this thread, or null.
    static RUN: AtomicPtr<ffi::lua_State> = const { AtomicPtr::new(ptr::null_mut()) };
    /// Watched runs started on this thread: tells one run from the next.
    static SEQ: AtomicU64 = const { AtomicU64::new(0) };
    /// [`SEQ`] of the run that was in progress at the previous expiry (signal handler only).
    static SEEN: AtomicU64 = const { AtomicU64::new(u64::MAX) };
    /// The signal handler installed the hook in the watched run in progress.
    static ARMED: AtomicBool = const { AtomicBool::new(false) };
    /// The hook ran since the run started.
    static FIRED: AtomicBool = const { AtomicBool::new(false) };
    /// This thread's watchdog timer and how many watched interpreters it serves.
    static TIMER: RefCell<Option<(ThreadTimer, usize)>> = const { RefCell::new(None) };
}

/// The budget of one interpreter, from [`install`].
#[derive(Debug)]
pub(super) struct Budget {
    /// The interpreter's main state (hooks are global to a LuaJIT interpreter).
    state: *mut ffi::lua_State,
    /// Armed by the watchdog only in runs that last, rather than on all the time.
    watched: bool,
}

/// The hook period for a budget of `instructions`.
fn step_for(instructions: u64) -> u64 {
    instructions.clamp(1, MAX_STEP)
}

/// Set up the budget of `instructions` per run on `lua`: the count hook right away when it is
/// at most [`EXACT_MAX`] (or the watchdog cannot be set up), else this thread's watchdog.
/// Call it on the thread that runs the interpreter.
pub(super) fn install(lua: &Lua, instructions: u64) -> mlua::Result<Budget> {
    let mut state = ptr::null_mut();
    // SAFETY: `exec_raw` hands us the main state of `lua`, which lives as long as `lua`.
    unsafe { lua.exec_raw::<()>((), |s| state = s)? };
    let watched = instructions > EXACT_MAX
        && match watch_this_thread() {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(
                    target: "lua",
                    "the instruction budget is counted on every instruction: no watchdog ({e})"
                );
                false
            }
        };
    if !watched {
        // SAFETY: `state` is live; `lua_sethook` only stores the function pointer and counts.
        // `hook` upholds Lua's rules for hooks (below).
        unsafe {
            ffi::lua_sethook(
                state,
                Some(hook),
                ffi::LUA_MASKCOUNT,
                c_int_of(step_for(instructions)),
            );
        }
    }
    Ok(Budget { state, watched })
}

impl Budget {
    /// Give the run about to start on this thread a budget of `instructions`; the run lasts as
    /// long as the guard.
    pub(super) fn start(&self, instructions: u64) -> Run<'_> {
        LEFT.with(|l| l.set(instructions));
        STEP.with(|s| s.store(step_for(instructions), Ordering::Relaxed));
        if !self.watched {
            return Run {
                budget: self,
                outer: None,
            };
        }
        // A run nested in another watched run on this thread (not something sipd does) first
        // takes the outer one away from the handler, then saves its flags.
        let outer_run = RUN.with(|r| r.load(Ordering::Relaxed));
        if !outer_run.is_null() {
            RUN.with(|r| r.store(ptr::null_mut(), Ordering::Relaxed));
            compiler_fence(Ordering::SeqCst);
        }
        // No run is visible to the handler here, so plain loads and stores do.
        let outer = (
            outer_run,
            ARMED.with(|a| a.load(Ordering::Relaxed)),
            FIRED.with(|f| f.load(Ordering::Relaxed)),
        );
        ARMED.with(|a| a.store(false, Ordering::Relaxed));
        FIRED.with(|f| f.store(false, Ordering::Relaxed));
        SEQ.with(|s| s.store(s.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed));
        // Release: the handler that sees the run sees its budget, step and flags.
        RUN.with(|r| r.store(self.state, Ordering::Release));
        Run {
            budget: self,
            outer: Some(outer),
        }
    }
}

impl Drop for Budget {
    fn drop(&mut self) {
        if self.watched {
            unwatch_this_thread();
        }
    }
}

/// A run in progress ([`Budget::start`]); its end takes the watchdog's hook off.
pub(super) struct Run<'a> {
    budget: &'a Budget,
    /// The watched run this one interrupted on this thread (run, armed, fired); `None` for an
    /// exact budget.
    outer: Option<(*mut ffi::lua_State, bool, bool)>,
}

impl Drop for Run<'_> {
    fn drop(&mut self) {
        let Some((outer, armed, fired)) = self.outer else {
            return;
        };
        // The handler leaves the run alone from here on (it runs on this thread, so a compiler
        // fence orders it).
        RUN.with(|r| r.store(ptr::null_mut(), Ordering::Relaxed));
        compiler_fence(Ordering::SeqCst);
        if ARMED.with(|a| a.load(Ordering::Relaxed)) {
            // SAFETY: the state is live (the engine is borrowed by the run); no hook of ours is
            // running, and the handler no longer touches the hooks.
            unsafe {
                ffi::lua_sethook(self.budget.state, None, 0, 0);
            }
        }
        ARMED.with(|a| a.store(armed, Ordering::Relaxed));
        FIRED.with(|f| f.store(fired, Ordering::Relaxed));
        compiler_fence(Ordering::SeqCst);
        RUN.with(|r| r.store(outer, Ordering::Relaxed));
    }
}

fn c_int_of(n: u64) -> c_int {
    c_int::try_from(n).unwrap_or(c_int::MAX)
}

/// The count hook.
///
/// # Safety
/// Called by Lua with a valid state and activation record. Nothing with a destructor is alive
/// when `lua_error` long-jumps out of this frame: the message is built in a stack buffer.
unsafe extern "C-unwind" fn hook(l: *mut ffi::lua_State, ar: *mut ffi::lua_Debug) {
    FIRED.with(|f| f.store(true, Ordering::Relaxed));
    // SAFETY (whole fn): `l` and `ar` are valid for the duration of the hook call.
    unsafe {
        let count = u64::try_from(ffi::lua_gethookcount(l)).unwrap_or(1);
        let left = LEFT.with(Cell::get);
        if left > count {
            LEFT.with(|c| c.set(left - count));
            let step = STEP.with(|s| s.load(Ordering::Relaxed));
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

/// The watchdog's signal: a real-time signal clear of glibc's (the first two) and Valgrind's
/// (the last one).
fn watchdog_signal() -> c_int {
    libc::SIGRTMIN() + 6
}

/// The watchdog's signal handler (installed once per process, runs on the thread whose CPU
/// timer expired). Async-signal-safe: thread-local atomics (const-initialized, no destructor)
/// and `lua_sethook`, which only stores to the interpreter's global state.
extern "C" fn on_slice(_sig: c_int, _info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    let state = RUN.with(|r| r.load(Ordering::Acquire));
    if state.is_null() {
        return;
    }
    let seq = SEQ.with(|s| s.load(Ordering::Relaxed));
    if SEEN.with(|s| s.swap(seq, Ordering::Relaxed)) != seq {
        // The first expiry in this run: it may have started just before.
        return;
    }
    if FIRED.with(|f| f.load(Ordering::Relaxed)) {
        // Armed and counting (the handler must not write the hook state the hook now owns).
        return;
    }
    // First arming, or again when an interpreter read-modify-write of `hookmask` that this
    // handler interrupted undid the previous one (the hook has not fired since).
    let step = STEP.with(|s| s.load(Ordering::Relaxed));
    ARMED.with(|a| a.store(true, Ordering::Relaxed));
    // SAFETY: `state` is the live interpreter of the run in progress on this thread (the run's
    // guard clears `RUN` before the engine can go); see the module docs for why this is sound
    // from a handler on the interpreter's own thread.
    unsafe {
        ffi::lua_sethook(state, Some(hook), ffi::LUA_MASKCOUNT, c_int_of(step));
    }
}

/// Install [`on_slice`] for the watchdog signal, once per process.
fn install_handler() -> Result<(), String> {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            // SAFETY: a zeroed `sigaction` is a valid value to fill in; the handler has the
            // `SA_SIGINFO` signature and is async-signal-safe.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                let handler: extern "C" fn(c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                    on_slice;
                action.sa_sigaction = handler as usize;
                action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
                libc::sigemptyset(&mut action.sa_mask);
                if libc::sigaction(watchdog_signal(), &action, ptr::null_mut()) != 0 {
                    return Err(format!("sigaction: {}", std::io::Error::last_os_error()));
                }
            }
            Ok(())
        })
        .clone()
}

/// A POSIX timer on the CPU-time clock of the thread that created it, signalling that thread.
#[derive(Debug)]
struct ThreadTimer(libc::timer_t);

impl ThreadTimer {
    /// A timer firing every [`SLICE`] of this thread's CPU time.
    fn new() -> Result<ThreadTimer, String> {
        // SAFETY: plain libc calls with valid, initialized arguments; the timer id is written
        // by `timer_create` before use.
        unsafe {
            let mut event: libc::sigevent = std::mem::zeroed();
            event.sigev_notify = libc::SIGEV_THREAD_ID;
            event.sigev_signo = watchdog_signal();
            event.sigev_notify_thread_id = libc::gettid();
            let mut id: libc::timer_t = ptr::null_mut();
            if libc::timer_create(libc::CLOCK_THREAD_CPUTIME_ID, &mut event, &mut id) != 0 {
                return Err(format!("timer_create: {}", std::io::Error::last_os_error()));
            }
            let timer = ThreadTimer(id);
            let period = libc::timespec {
                tv_sec: 0,
                tv_nsec: SLICE.subsec_nanos().into(),
            };
            let spec = libc::itimerspec {
                it_interval: period,
                it_value: period,
            };
            if libc::timer_settime(id, 0, &spec, ptr::null_mut()) != 0 {
                return Err(format!(
                    "timer_settime: {}",
                    std::io::Error::last_os_error()
                ));
            }
            Ok(timer)
        }
    }
}

impl Drop for ThreadTimer {
    fn drop(&mut self) {
        // SAFETY: the id came from `timer_create` and is deleted once.
        unsafe {
            libc::timer_delete(self.0);
        }
    }
}

/// Count one more watched interpreter on this thread, starting its watchdog with the first.
fn watch_this_thread() -> Result<(), String> {
    install_handler()?;
    TIMER.with(|t| {
        let mut t = t.borrow_mut();
        match t.as_mut() {
            Some((_, n)) => *n += 1,
            None => *t = Some((ThreadTimer::new()?, 1)),
        }
        Ok(())
    })
}

/// Count one watched interpreter less on this thread; the last one stops its watchdog.
fn unwatch_this_thread() {
    // `try_with`: an engine dropped by another thread-local's destructor after this one's.
    let _ = TIMER.try_with(|t| {
        let mut t = t.borrow_mut();
        if let Some((_, n)) = t.as_mut() {
            *n -= 1;
            if *n == 0 {
                *t = None;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A LuaJIT interpreter-only state (as under a budget) with `mask()` returning the hook mask.
    fn lua() -> Lua {
        let lua = Lua::new();
        lua.load("jit.off() jit.flush()").exec().expect("jit off");
        let mask = lua
            .create_function(|lua, ()| {
                let mut mask = 0;
                // SAFETY: reads the hook mask of the live state.
                unsafe { lua.exec_raw::<()>((), |s| mask = ffi::lua_gethookmask(s))? };
                Ok(mask)
            })
            .expect("mask fn");
        lua.globals().set("mask", mask).expect("set mask");
        lua
    }

    #[test]
    fn a_watched_budget_arms_the_hook_only_in_a_run_that_lasts() {
        let lua = lua();
        let budget = install(&lua, 100_000_000).expect("install");
        assert!(budget.watched);
        let short: i32 = {
            let _run = budget.start(100_000_000);
            lua.load("return mask()").eval().expect("short run")
        };
        assert_eq!(short, 0, "no hook in a short run");
        // A run that lasts (to 5 s of process CPU): the hook comes on.
        let long: i32 = {
            let _run = budget.start(100_000_000);
            lua.load(
                "local t = os.clock() while mask() == 0 and os.clock() - t < 5 do end return mask()",
            )
            .eval()
            .expect("long run")
        };
        assert_eq!(long, ffi::LUA_MASKCOUNT, "hook armed in a long run");
        let after: i32 = lua.load("return mask()").eval().expect("after");
        assert_eq!(after, 0, "hook off after the run");
    }

    #[test]
    fn a_watched_run_stops_and_the_next_starts_without_the_hook() {
        let lua = lua();
        let budget = install(&lua, EXACT_MAX + 1).expect("install");
        let err = {
            let _run = budget.start(EXACT_MAX + 1);
            lua.load("while true do end").exec().expect_err("runaway")
        };
        assert!(err.to_string().contains(INSTRUCTION_LIMIT), "{err}");
        let next: i32 = {
            let _run = budget.start(EXACT_MAX + 1);
            lua.load("return mask()").eval().expect("next run")
        };
        assert_eq!(next, 0);
    }

    #[test]
    fn a_small_budget_is_exact_and_always_hooked() {
        let lua = lua();
        let budget = install(&lua, EXACT_MAX).expect("install");
        assert!(!budget.watched);
        let _run = budget.start(EXACT_MAX);
        let mask: i32 = lua.load("return mask()").eval().expect("run");
        assert_eq!(mask, ffi::LUA_MASKCOUNT);
    }

    #[test]
    fn the_thread_timer_goes_with_the_last_watched_interpreter() {
        let has_timer = || TIMER.with(|t| t.borrow().as_ref().map(|(_, n)| *n));
        std::thread::spawn(move || {
            let (a, b) = (lua(), lua());
            let ba = install(&a, 10_000_000).expect("a");
            let bb = install(&b, 10_000_000).expect("b");
            assert_eq!(has_timer(), Some(2));
            drop(ba);
            assert_eq!(has_timer(), Some(1));
            drop(bb);
            assert_eq!(has_timer(), None);
        })
        .join()
        .expect("thread");
    }

    #[test]
    #[ignore = "measurement, run by hand"]
    fn when_the_watchdog_arms() {
        let lua = lua();
        let budget = install(&lua, 100_000_000).expect("install");
        for _ in 0..10 {
            let _run = budget.start(100_000_000);
            let (armed_at, iters): (f64, i64) = lua
                .load(
                    "local t = os.clock() local i = 0 while mask() == 0 do i = i + 1 end return os.clock() - t, i",
                )
                .eval()
                .expect("run");
            println!(
                "armed after {:.3} ms CPU, {iters} iterations",
                armed_at * 1000.0
            );
        }
    }
}
