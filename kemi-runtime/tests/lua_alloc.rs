//! KSR calls with int and UTF-8 str arguments allocate nothing: a whole run making 2000 calls
//! performs zero allocations, counted by a global allocator wrapper. (Own test binary: the
//! allocator is process-wide.)

// Only the sample messages of `common`: its test exports are not declared in this binary's table.
#[path = "common/sip.rs"]
mod sip;

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use kemi_runtime::engine::{self, EngineKind, RunOutcome, REQUEST_ROUTE};
use kemi_runtime::table::{Enabled, ModuleSet};
use kemi_runtime::{kemi, ExportTable, SipMsg};

/// Counts allocations (and reallocations) made by this process.
struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to `System` unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

static ALLOC_MODULES: ModuleSet = ModuleSet {
    crate_name: "lua_alloc_test",
    modules: &["a"],
};

/// Its argument.
#[kemi(module = "a", name = "int_fn")]
fn int_fn(_msg: &mut SipMsg, n: i32) -> i32 {
    n
}

/// Byte length of its argument.
#[kemi(module = "a", name = "str_fn")]
fn str_fn(_msg: &mut SipMsg, s: &str) -> i32 {
    i32::try_from(s.len()).unwrap_or(i32::MAX)
}

/// Allocations made by one run of `callback`.
fn allocs_of(engine: &mut dyn engine::Engine, callback: &str, m: &mut SipMsg) -> usize {
    let before = ALLOCS.load(Ordering::Relaxed);
    let out = engine.run(callback, m, None);
    let after = ALLOCS.load(Ordering::Relaxed);
    assert_eq!(out, Ok(RunOutcome::Returned), "{callback}");
    after - before
}

#[test]
fn int_and_str_arguments_do_not_allocate() {
    let table = ExportTable::build(
        kemi_runtime::linked_exports(),
        &[&ALLOC_MODULES],
        &Enabled::All,
    )
    .expect("table");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts/alloc.lua");
    let mut engine = engine::load(EngineKind::Lua, &script, Arc::new(table)).expect("load");
    let mut m = sip::parse(sip::OPTIONS);
    // Warm up: first runs may grow the Lua stack and mlua's internal pools.
    for _ in 0..3 {
        allocs_of(&mut *engine, REQUEST_ROUTE, &mut m);
    }
    let n = allocs_of(&mut *engine, REQUEST_ROUTE, &mut m);
    assert_eq!(n, 0, "2000 KSR calls made {n} allocations");

    // The counter does see per-call allocations: a non-UTF-8 argument is copied each time.
    let lossy = allocs_of(&mut *engine, "lossy", &mut m);
    assert!(lossy >= 1000, "lossy conversions counted: {lossy}");
}
