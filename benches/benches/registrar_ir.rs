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

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use kemi_runtime::msg::{Proto, RecvInfo, RouteEnv};
use kemi_runtime::sip::Message;
use kemi_runtime::SipMsg;
use modules::modparam::{ModParams, ParamValue};
use modules::registrar::usrloc::{insert_ordered, Contact};
use modules::registrar::Registrar;

const ROUNDS: usize = 100_000;

fn rcv() -> RecvInfo {
    RecvInfo {
        proto: Proto::Udp,
        src: "127.0.0.1:5070".parse().expect("addr"),
        dst: "127.0.0.1:5060".parse().expect("addr"),
    }
}

fn invite(user: &str) -> Message {
    Message::parse(Bytes::from(format!(
        "INVITE sip:{user}@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n\
         From: <sip:a@example.com>;tag=1\r\nTo: <sip:{user}@example.com>\r\nCall-ID: x\r\n\
         CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    )))
    .expect("parse")
}

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
    let mut params = BTreeMap::new();
    params.insert(
        "usrloc".to_string(),
        ModParams::new("usrloc").with("db_mode", ParamValue::Int(0)),
    );
    let enabled = |m: &str| m == "registrar";
    let sv = modules::setup::setup(&modules::setup::SetupInput {
        params: &params,
        enabled: &enabled,
        db_url: "sqlite::memory:",
        base_dir: Path::new("/tmp"),
    })
    .expect("registrar setup");
    let reg = sv.get::<Registrar>().expect("registrar");
    let t = reg.ul.table("location").expect("table");
    let expires = modules::store::now_unix() + 3600;
    for i in 0..n {
        let c = Contact {
            ruid: reg.ul.next_ruid(),
            uri: format!("sip:u{i:07}@127.0.0.1:5070").into(),
            expires,
            q: -1,
            callid: format!("c{i}").into(),
            cseq: 1,
            methods: -1,
            ..Contact::default()
        };
        t.write(&format!("u{i:07}"), |rec| insert_ordered(rec, c, false));
    }
    let env = Arc::new(RouteEnv {
        services: sv.clone(),
        ..RouteEnv::default()
    });
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
