//! `auth_db.auth_check` on a REGISTER carrying correct MD5 digest credentials (qop=auth): the
//! nonce check (HMAC), the subscriber read (cached, and straight from SQLite with the cache off)
//! and the digest. Compare with Kamailio's per-REGISTER cost in `docs/PERFORMANCE.md`.
//!
//! Run with `cargo bench -p sipd-benches --bench auth`.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use kemi_runtime::msg::{Proto, RecvInfo, RouteEnv};
use kemi_runtime::services::Services;
use kemi_runtime::sip::Message;
use kemi_runtime::SipMsg;
use modules::auth::digest::Algorithm;
use modules::auth::AuthState;
use modules::modparam::{ModParams, ParamValue};
use modules::setup::{SetupInput, StoreWriters};
use modules::store::Subscriber;

const USER: &str = "alice";
const REALM: &str = "sipd.test";
const PASSWORD: &str = "s3cret";

fn services(cache_ttl: i64) -> Services {
    let mut params = BTreeMap::new();
    params.insert(
        "auth_db".to_string(),
        ModParams::new("auth_db")
            .with("calculate_ha1", ParamValue::Int(1))
            .with("password_column", ParamValue::Str("password".into()))
            .with("cache_ttl", ParamValue::Int(cache_ttl)),
    );
    let enabled = |m: &str| m == "auth" || m == "auth_db";
    let sv = modules::setup::setup(&SetupInput {
        params: &params,
        enabled: &enabled,
        db_url: "sqlite::memory:",
        base_dir: Path::new("/tmp"),
    })
    .expect("auth setup");
    let writers = sv.get::<StoreWriters>().expect("store writers");
    let (_, writer) = writers.0.first().expect("one store");
    writer
        .store()
        .put_subscriber(
            "subscriber",
            &Subscriber {
                username: USER.into(),
                domain: REALM.into(),
                password: PASSWORD.into(),
                ..Subscriber::default()
            },
        )
        .expect("subscriber");
    sv
}

/// A REGISTER whose Authorization answers a fresh nonce of `sv` correctly.
fn register(sv: &Services) -> Bytes {
    let auth = sv.get::<AuthState>().expect("auth state");
    let nonce = auth.new_nonce();
    let uri = format!("sip:{REALM}");
    let md5 = |parts: &[&[u8]]| Algorithm::Md5.hash(parts);
    let ha1 = md5(&[USER.as_bytes(), REALM.as_bytes(), PASSWORD.as_bytes()]);
    let ha2 = md5(&[b"REGISTER", uri.as_bytes()]);
    let (nc, cnonce) = ("00000001", "0a4f113b");
    let response = md5(&[
        ha1.as_bytes(),
        nonce.as_bytes(),
        nc.as_bytes(),
        cnonce.as_bytes(),
        b"auth",
        ha2.as_bytes(),
    ]);
    Bytes::from(format!(
        "REGISTER {uri} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-bench\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{USER}@{REALM}>;tag=1\r\n\
         To: <sip:{USER}@{REALM}>\r\n\
         Call-ID: bench-auth\r\n\
         CSeq: 2 REGISTER\r\n\
         Contact: <sip:{USER}@127.0.0.1:5070>\r\n\
         Authorization: Digest username=\"{USER}\", realm=\"{REALM}\", nonce=\"{nonce}\", \
         uri=\"{uri}\", response=\"{response}\", qop=auth, nc={nc}, cnonce=\"{cnonce}\"\r\n\
         Content-Length: 0\r\n\r\n"
    ))
}

fn bench(c: &mut Criterion) {
    let rcv = RecvInfo {
        proto: Proto::Udp,
        src: "127.0.0.1:5070".parse().expect("addr"),
        dst: "127.0.0.1:5060".parse().expect("addr"),
    };
    for (name, ttl) in [("auth_check/cached", 5), ("auth_check/sqlite", 0)] {
        let sv = services(ttl);
        let env = Arc::new(RouteEnv {
            services: sv.clone(),
            ..RouteEnv::default()
        });
        let wire = register(&sv);
        let mut probe = SipMsg::new(
            Message::parse(wire.clone()).expect("parse"),
            rcv,
            env.clone(),
        );
        assert_eq!(
            modules::auth_db::auth_check(&mut probe, REALM, "subscriber", 1),
            1,
            "the bench credentials must be accepted"
        );
        c.bench_function(name, |b| {
            b.iter_batched(
                || {
                    SipMsg::new(
                        Message::parse(wire.clone()).expect("parse"),
                        rcv,
                        env.clone(),
                    )
                },
                |mut msg| {
                    black_box(modules::auth_db::auth_check(
                        &mut msg,
                        REALM,
                        "subscriber",
                        1,
                    ))
                },
                BatchSize::SmallInput,
            )
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
