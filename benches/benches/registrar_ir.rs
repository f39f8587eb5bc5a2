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
//!
//! `DB_URL=redis://127.0.0.1:<port>/0` sets the registrar up on that store (usrloc `db_mode`
//! 2) instead of memory only; `UNKNOWN=1` looks up AoRs that are registered nowhere, so with a
//! shared store (Redis) each lookup asks the store (the cost of a 404 on a cluster node).

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

/// The registrar on the store `url` (usrloc `db_mode` 2), as sipd sets it up.
fn services_on(url: &str) -> kemi_runtime::services::Services {
    use modules::modparam::{ModParams, ParamValue};
    let mut params = std::collections::BTreeMap::new();
    params.insert(
        "usrloc".to_string(),
        ModParams::new("usrloc").with("db_mode", ParamValue::Int(2)),
    );
    let enabled = |m: &str| m == "registrar";
    modules::setup::setup(&modules::setup::SetupInput {
        params: &params,
        enabled: &enabled,
        db_url: url,
        base_dir: std::path::Path::new("/tmp"),
    })
    .expect("registrar setup")
}

fn main() {
    let n: usize = std::env::var("REG_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let unknown = std::env::var("UNKNOWN").is_ok_and(|v| v == "1");
    let sv = match std::env::var("DB_URL") {
        Ok(url) => {
            let sv = services_on(&url);
            // The store's listener re-reads the (empty) tables once it has subscribed: let
            // that happen before the table is filled in memory (behind the store's back).
            std::thread::sleep(std::time::Duration::from_millis(500));
            sv
        }
        Err(_) => services(),
    };
    fill(&sv, n);
    let env = env(&sv);
    // 1024 messages for AoRs spread over the table (as the criterion bench); `x...` users are
    // registered nowhere.
    let prefix = if unknown { "x" } else { "u" };
    let msgs: Vec<Message> = (0..1024)
        .map(|i| invite(&format!("{prefix}{:07}", (i * 7919) % n)))
        .collect();
    let t0 = Instant::now();
    let b = baseline(&msgs, &env);
    let t1 = Instant::now();
    let found = lookups(&msgs, &env);
    let t2 = Instant::now();
    assert_eq!(found, if unknown { 0 } else { ROUNDS });
    println!(
        "{n} bindings: lookup {:.0} ns (message setup alone {:.0} ns) per request [{b}]",
        (t2 - t1).as_nanos() as f64 / ROUNDS as f64,
        (t1 - t0).as_nanos() as f64 / ROUNDS as f64,
    );
}
