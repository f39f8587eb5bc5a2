//! `registrar.lookup` against location tables of 1k and 1M bindings (instructions stay flat:
//! one hash of a stack-built key, one shard read lock; wall time grows a little with cache
//! misses in the larger table, see `registrar_ir` for instruction counts), and `registrar.save` of a REGISTER (memory only, reply
//! built).
//!
//! Run with `cargo bench -p sipd-benches --bench registrar`.

use std::hint::black_box;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use kemi_runtime::sip::Message;
use kemi_runtime::SipMsg;

#[path = "support/registrar.rs"]
mod support;
use support::{env, fill, invite, rcv, services};

fn bench_lookup(c: &mut Criterion) {
    let mut g = c.benchmark_group("registrar/lookup");
    for n in [1_000usize, 1_000_000] {
        let sv = services();
        fill(&sv, n);
        let env = env(&sv);
        let msgs: Vec<Message> = (0..1024)
            .map(|i| invite(&format!("u{:07}", (i * 7919) % n)))
            .collect();
        let mut k = 0usize;
        // Parsed once: parsing two socket addresses per iteration cost as much as the lookup.
        let rcv = rcv();
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                k = (k + 1) % msgs.len();
                let mut m = SipMsg::new(msgs[k].clone(), rcv, Arc::clone(&env));
                let rc = modules::registrar::lookup::lookup(&mut m, "location");
                black_box((rc, m.route.new_ruri));
            })
        });
    }
    g.finish();
}

fn register(user: usize, cseq: u64) -> Message {
    Message::parse(Bytes::from(format!(
        "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK{cseq}\r\n\
         From: <sip:r{user}@example.com>;tag=1\r\nTo: <sip:r{user}@example.com>\r\n\
         Call-ID: reg-{user}\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:r{user}@127.0.0.1:5070>\r\n\
         Expires: 3600\r\nUser-Agent: bench\r\nContent-Length: 0\r\n\r\n"
    )))
    .expect("parse")
}

/// A refresh (same Call-ID, next CSeq) of one of 1024 AoRs in a table of 100k bindings:
/// parse checks, record update, store op built (db_mode 0: not queued), 200 built. The
/// REGISTER is built and parsed outside the timing.
fn bench_save(c: &mut Criterion) {
    let sv = services();
    fill(&sv, 100_000);
    let env = env(&sv);
    let mut k = 0usize;
    let mut cseq = 1u64;
    c.bench_function("registrar/save", |b| {
        b.iter_batched(
            || {
                k = (k + 1) % 1024;
                cseq += 1;
                SipMsg::new(register(k, cseq), rcv(), Arc::clone(&env))
            },
            |mut m| {
                let rc = modules::registrar::save::save(&mut m, "location", 0);
                black_box((rc, m.outbox.len()));
            },
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, bench_lookup, bench_save);
criterion_main!(benches);
