//! The Lua engine's *watched* instruction budget (more than `EXACT_MAX` instructions, sipd's
//! default among them): the count hook is armed by a CPU-time watchdog only once a run has
//! lasted. A runaway still fails with the instruction-limit error at its line (plain, in `pcall`
//! chains, in a coroutine), the next run is served, no run is stopped before it has executed its
//! budget, and a runaway stops within the documented bound.

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kemi_runtime::engine::limits::{LimitKind, ScriptLimits};
use kemi_runtime::engine::lua::{LuaEngine, EXACT_MAX};
use kemi_runtime::engine::{Engine, RunOutcome, ScriptError, REQUEST_ROUTE};
use kemi_runtime::table::{Enabled, ModuleSet};
use kemi_runtime::{kemi, ExportTable, SipMsg};

static TEST_MODULES: ModuleSet = ModuleSet {
    crate_name: "lua_watchdog_test",
    modules: &[""],
};

/// Set branch flag 1, so a test sees that a run got to its end.
#[kemi(name = "mark")]
fn mark(msg: &mut SipMsg) {
    msg.route.bflags |= 2;
}

/// The last value the script noted.
static NOTED: AtomicI64 = AtomicI64::new(-1);

/// Note `n` for the test to read.
#[kemi(name = "note")]
fn note(_msg: &mut SipMsg, n: i32) {
    NOTED.store(n.into(), Ordering::SeqCst);
}

const SCRIPT: &str = r#"
n = 0
function ksr_request_route()
    KSR.mark()
end
-- Counts in the global `n` up to `limit`, or for ever without one.
function spin(limit)
    local lim = tonumber(limit)
    n = 0
    while n ~= lim do n = n + 1 end
    KSR.mark()
end
function report()
    KSR.note(n)
end
function spin_in_pcalls()
    while true do
        pcall(function() while true do pcall(function() while true do end end) end end)
    end
end
function spin_in_coroutine()
    coroutine.wrap(function() while true do end end)()
end
"#;

struct Script(PathBuf);

impl Script {
    fn new(tag: &str) -> Script {
        let p = std::env::temp_dir().join(format!(
            "sipd-lua-watchdog-{tag}-{}.lua",
            std::process::id()
        ));
        std::fs::write(&p, SCRIPT).expect("write script");
        Script(p)
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn table() -> Arc<ExportTable> {
    let t = ExportTable::build(
        kemi_runtime::linked_exports(),
        &[&TEST_MODULES],
        &Enabled::All,
    );
    Arc::new(t.expect("test export table"))
}

fn msg() -> SipMsg {
    let raw = b"OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK1\r\nFrom: <sip:b@127.0.0.1>;tag=1\r\nTo: <sip:a@127.0.0.1>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    let message = kemi_runtime::sip::Message::parse(bytes::Bytes::from_static(raw)).expect("parse");
    SipMsg::new(message, Default::default(), Default::default())
}

/// A watched budget: a runaway of it takes a few ms of CPU.
const WATCHED: u64 = 4 * EXACT_MAX;

fn engine(tag: &str, instructions: u64) -> (LuaEngine, Script) {
    let s = Script::new(tag);
    let limits = ScriptLimits {
        instructions: Some(instructions),
        memory: Some(32 << 20),
    };
    let e = LuaEngine::load_with(&s.0, None, table(), limits).expect("load");
    (e, s)
}

fn fail(e: &mut LuaEngine, callback: &str) -> ScriptError {
    let started = Instant::now();
    let r = e.run(callback, &mut msg(), None);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{callback} ran {:?}",
        started.elapsed()
    );
    let err = r.expect_err(callback);
    assert_eq!(
        LimitKind::of(&err),
        Some(LimitKind::Instructions),
        "{callback}: {err}"
    );
    err
}

fn served(e: &mut LuaEngine, callback: &str, arg: Option<&str>) {
    let mut m = msg();
    assert_eq!(
        e.run(callback, &mut m, arg).expect("served"),
        RunOutcome::Returned
    );
    assert_eq!(m.route.bflags & 2, 2, "{callback} ran to its end");
}

/// Loop iterations `spin` made before the budget stopped it.
fn spun(e: &mut LuaEngine) -> i64 {
    NOTED.store(-1, Ordering::SeqCst);
    let mut m = msg();
    e.run("report", &mut m, None).expect("report");
    NOTED.load(Ordering::SeqCst)
}

#[test]
fn a_runaway_fails_at_its_line_and_the_next_run_is_served() {
    let (mut e, _s) = engine("loop", WATCHED);
    let line = SCRIPT
        .lines()
        .position(|l| l.contains("n = n + 1"))
        .expect("line")
        + 1;
    for _ in 0..3 {
        let err = fail(&mut e, "spin");
        let loc = err.location.clone().unwrap_or_default();
        assert!(
            loc.contains("sipd-lua-watchdog-loop") && loc.ends_with(&format!(":{line}")),
            "{err:?}"
        );
        served(&mut e, REQUEST_ROUTE, None);
    }
}

#[test]
fn pcall_chains_and_coroutines_do_not_escape_a_watched_budget() {
    let (mut e, _s) = engine("escape", WATCHED);
    for cb in ["spin_in_pcalls", "spin_in_coroutine", "spin_in_pcalls"] {
        fail(&mut e, cb);
        served(&mut e, REQUEST_ROUTE, None);
    }
}

/// CPU time of this thread.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The exact budget tells how many instructions a `spin` iteration is; the watched budget
/// stops no run before its budget, and a runaway within two kernel ticks of CPU more (posix
/// CPU timers expire at the tick; 10 ms at the coarsest, `CONFIG_HZ=100`).
#[test]
fn a_watched_budget_stops_no_run_early_and_a_runaway_soon() {
    let (mut exact, _s1) = engine("exact", EXACT_MAX);
    fail(&mut exact, "spin");
    // Iterations per instruction.
    let per_instruction = spun(&mut exact) as f64 / EXACT_MAX as f64;
    assert!(per_instruction > 0.0);

    let (mut watched, _s2) = engine("watched", WATCHED);
    // The interpreter's rate without the hook: runs far shorter than a slice are not armed.
    let short = (200_000.0 * per_instruction) as i64;
    let rate = (0..5)
        .map(|_| {
            let t = thread_cpu();
            served(&mut watched, "spin", Some(&short.to_string()));
            200_000.0 / (thread_cpu() - t).as_nanos() as f64
        })
        .fold(0.0, f64::max);
    // A run of 99% of the budget lasts several slices and still ends.
    let almost = (WATCHED as f64 * per_instruction * 0.99) as i64;
    served(&mut watched, "spin", Some(&almost.to_string()));
    // The runaway: at least its budget, at most two ticks of instructions more.
    let t = thread_cpu();
    fail(&mut watched, "spin");
    let cpu = thread_cpu() - t;
    let instructions = spun(&mut watched) as f64 / per_instruction;
    let bound = WATCHED as f64 + 2.0 * 10e6 * rate;
    println!(
        "{:.1} instructions per iteration; unhooked {rate:.2} instructions/ns; runaway stopped \
         after {instructions:.0} instructions ({cpu:?} CPU) for a budget of {WATCHED}, bound {bound:.0}",
        1.0 / per_instruction
    );
    assert!(
        instructions >= WATCHED as f64 * 0.999,
        "stopped after {instructions} instructions, before the budget {WATCHED}"
    );
    assert!(
        instructions <= bound,
        "stopped after {instructions} instructions, bound {bound}"
    );
}

#[test]
fn watched_interpreters_on_many_threads() {
    let threads: Vec<_> = (0..4)
        .map(|i| {
            std::thread::spawn(move || {
                let (mut e, _s) = engine(&format!("thread{i}"), WATCHED);
                for _ in 0..2 {
                    fail(&mut e, "spin");
                    served(&mut e, REQUEST_ROUTE, None);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
}
