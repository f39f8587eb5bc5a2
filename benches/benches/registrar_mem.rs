//! Memory per binding of the location table: 100,000 REGISTERs (one AoR each, one realistic
//! softphone contact) go through the real `registrar.save` path (memory only, db_mode 0);
//! the live heap (counted by a global allocator) and the RSS (`/proc/self/statm`) are read
//! before and after, and reported per binding.
//!
//! Run with `cargo bench -p sipd-benches --bench registrar_mem`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use kemi_runtime::sip::Message;
use kemi_runtime::SipMsg;
use modules::registrar::Registrar;

#[path = "support/registrar.rs"]
mod support;
use support::{env, rcv, services};

/// The system allocator, counting the bytes currently allocated.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const N: usize = 100_000;

/// Resident set size in bytes.
fn rss() -> usize {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = s
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// A softphone's REGISTER: 32-hex Call-ID, `rinstance` contact parameter, User-Agent, Allow.
fn register(i: usize) -> Message {
    Message::parse(Bytes::from(format!(
        "REGISTER sip:example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-{i:08x};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:user{i}@example.com>;tag=a73kszlfl\r\n\
         To: <sip:user{i}@example.com>\r\n\
         Call-ID: {i:016x}9e1c3d5f7a2b4c6e\r\n\
         CSeq: 1 REGISTER\r\n\
         Contact: <sip:user{i}@127.0.0.1:5070;rinstance={i:016x};transport=UDP>\r\n\
         Expires: 3600\r\n\
         Allow: INVITE, ACK, CANCEL, BYE, NOTIFY, REFER, MESSAGE, OPTIONS, INFO, SUBSCRIBE\r\n\
         User-Agent: Zoiper rv2.10.20.3\r\n\
         Content-Length: 0\r\n\r\n"
    )))
    .expect("parse")
}

fn main() {
    let sv = services();
    let env = env(&sv);
    let rcv = rcv();
    let reg = sv.get::<Registrar>().expect("registrar");
    let table = reg.ul.table("location").expect("table");
    // One save first so that lazily built state (thread locals, the table) is not counted.
    let mut m = SipMsg::new(register(N), rcv, Arc::clone(&env));
    assert_eq!(modules::registrar::save::save(&mut m, "location", 0), 1);
    drop(m);

    let (heap0, rss0) = (LIVE.load(Ordering::Relaxed), rss());
    for i in 0..N {
        let mut m = SipMsg::new(register(i), rcv, Arc::clone(&env));
        let rc = modules::registrar::save::save(&mut m, "location", 0);
        assert_eq!(rc, 1, "save of binding {i}");
    }
    let (heap1, rss1) = (LIVE.load(Ordering::Relaxed), rss());
    assert_eq!(table.counts(), (N + 1, N + 1));
    println!(
        "location table, {N} bindings via registrar.save: \
         heap {:.0} B/binding, RSS {:.0} B/binding (contact struct {} B)",
        (heap1 - heap0) as f64 / N as f64,
        rss1.saturating_sub(rss0) as f64 / N as f64,
        std::mem::size_of::<modules::registrar::usrloc::Contact>(),
    );
}
