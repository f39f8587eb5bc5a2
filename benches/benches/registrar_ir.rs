//! A small driver for counting instructions per `registrar.lookup` with callgrind: fills the
//! location table with `REG_N` bindings (default 1000), then runs 100,000 lookups of random
//! AoRs in [`lookups`] and, for comparison, 100,000 times only the per-request work the
//! criterion bench adds around each lookup (message clone, `SipMsg::new`, drop) in
//! [`baseline`]. Both are `#[inline(never)]` so callgrind can report them apart:
//!
//! ```text
//! cargo bench -p sipd-benches --bench registrar_ir --no-run
//! REG_N=1000000 valgrind --tool=callgrind --collect-atstart=no \
//!   --toggle-collect='registrar_ir::lookups' --toggle-collect='registrar_ir::baseline' \
//!   target/release/deps/registrar_ir-<hash>
//! callgrind_annotate --inclusive=yes callgrind.out.<pid> | grep registrar_ir::
//! ```
//!
//! User names are zero-padded to 7 digits so that keys and URIs have the same length at every
//! table size (parsing and hashing cost depends on their length).
//!
//! Run natively (`cargo bench -p sipd-benches --bench registrar_ir`) it prints wall time
//! per lookup.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use kemi_runtime::msg::RouteEnv;
use kemi_runtime::sip::Message;
use kemi_runtime::SipMsg;

#[path = "support/registrar.rs"]
mod support;
use support::{env, fill, invite, rcv, services};

const ROUNDS: usize = 100_000;

/// The bench's per-iteration overhead without the lookup.
#[inline(never)]
fn baseline(msgs: &[Message], env: &Arc<RouteEnv>) -> usize {
    let rcv = rcv();
    let mut n = 0;
    for i in 0..ROUNDS {
        let m = SipMsg::new(msgs[i % msgs.len()].clone(), rcv, Arc::clone(env));
        n += black_box(&m).outbox.len();
    }
    n
}

/// `ROUNDS` lookups, each on a fresh message.
#[inline(never)]
fn lookups(msgs: &[Message], env: &Arc<RouteEnv>) -> usize {
    let rcv = rcv();
    let mut found = 0;
    for i in 0..ROUNDS {
        let mut m = SipMsg::new(msgs[i % msgs.len()].clone(), rcv, Arc::clone(env));
        if modules::registrar::lookup::lookup(&mut m, "location") == 1 {
            found += 1;
        }
        black_box(&m.route.new_ruri);
    }
    found
}

fn main() {
    let n: usize = std::env::var("REG_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let sv = services();
    fill(&sv, n);
    let env = env(&sv);
    // 1024 messages for AoRs spread over the table (as the criterion bench).
    let msgs: Vec<Message> = (0..1024)
        .map(|i| invite(&format!("u{:07}", (i * 7919) % n)))
        .collect();
    let t0 = Instant::now();
    let b = baseline(&msgs, &env);
    let t1 = Instant::now();
    let found = lookups(&msgs, &env);
    let t2 = Instant::now();
    assert_eq!(found, ROUNDS);
    println!(
        "{n} bindings: lookup {:.0} ns (message setup alone {:.0} ns) per request [{b}]",
        (t2 - t1).as_nanos() as f64 / ROUNDS as f64,
        (t1 - t0).as_nanos() as f64 / ROUNDS as f64,
    );
}
