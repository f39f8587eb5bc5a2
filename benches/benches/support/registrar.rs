//! What the registrar benches share: a memory-only registrar (usrloc `db_mode` 0) set up the
//! way sipd sets it up, the message context around it, and a location table filled directly.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use kemi_runtime::msg::{Proto, RecvInfo, RouteEnv};
use kemi_runtime::services::Services;
use kemi_runtime::sip::Message;
use modules::modparam::{ModParams, ParamValue};
use modules::registrar::usrloc::{insert_ordered, Contact};
use modules::registrar::Registrar;

/// The registrar alone, memory only, through `modules::setup`.
pub fn services() -> Services {
    let mut params = BTreeMap::new();
    params.insert(
        "usrloc".to_string(),
        ModParams::new("usrloc").with("db_mode", ParamValue::Int(0)),
    );
    let enabled = |m: &str| m == "registrar";
    modules::setup::setup(&modules::setup::SetupInput {
        params: &params,
        enabled: &enabled,
        db_url: "sqlite::memory:",
        base_dir: Path::new("/tmp"),
    })
    .expect("registrar setup")
}

/// The route environment carrying `sv`.
pub fn env(sv: &Services) -> Arc<RouteEnv> {
    Arc::new(RouteEnv {
        services: sv.clone(),
        ..RouteEnv::default()
    })
}

/// A UDP request from 127.0.0.1:5070 to 127.0.0.1:5060.
pub fn rcv() -> RecvInfo {
    RecvInfo {
        proto: Proto::Udp,
        src: "127.0.0.1:5070".parse().expect("addr"),
        dst: "127.0.0.1:5060".parse().expect("addr"),
    }
}

/// `n` bindings `u0000000`..: names of one length, so lookups at every size parse and hash
/// keys of the same length.
#[allow(dead_code)] // not every bench fills the table directly
pub fn fill(sv: &Services, n: usize) {
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
}

/// An INVITE to `user`@example.com.
#[allow(dead_code)] // not every bench looks up
pub fn invite(user: &str) -> Message {
    Message::parse(Bytes::from(format!(
        "INVITE sip:{user}@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n\
         From: <sip:a@example.com>;tag=1\r\nTo: <sip:{user}@example.com>\r\nCall-ID: x\r\n\
         CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    )))
    .expect("parse")
}
