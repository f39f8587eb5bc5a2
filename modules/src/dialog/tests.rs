use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use kemi_runtime::msg::{Proto, RecvInfo, RouteEnv, TxnWatch};
use kemi_runtime::services::{EventQueue, Services};
use kemi_runtime::sip::Message;
use kemi_runtime::SipMsg;

use super::state::{DialogState, DlgConfig, DlgState, Side};
use super::*;
use crate::modparam::{ModParams, ParamValue};

const PROXY: &str = "127.0.0.1:5060";
const CALLER: &str = "127.0.0.1:6001";
const CALLEE: &str = "127.0.0.1:6002";

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("address")
}

fn msg(text: &str) -> Message {
    Message::parse(Bytes::from(text.replace('\n', "\r\n"))).expect("parses")
}

fn invite() -> Message {
    msg("INVITE sip:bob@127.0.0.1:6002 SIP/2.0\n\
Via: SIP/2.0/UDP 127.0.0.1:6001;branch=z9hG4bK1\n\
From: \"Alice\" <sip:alice@a.example>;tag=ftag\n\
To: <sip:bob@b.example>\n\
Call-ID: call-1\n\
CSeq: 7 INVITE\n\
Contact: <sip:alice@127.0.0.1:6001>\n\
Record-Route: <sip:upstream.example;lr>\n\
Content-Length: 0\n\n")
}

fn reply(code: u16, to_tag: &str) -> Message {
    msg(&format!(
        "SIP/2.0 {code} Whatever\n\
Via: SIP/2.0/UDP 127.0.0.1:6001;branch=z9hG4bK1\n\
Record-Route: <sip:downstream.example;lr>\n\
Record-Route: <sip:127.0.0.1:5060;lr>\n\
Record-Route: <sip:upstream.example;lr>\n\
From: \"Alice\" <sip:alice@a.example>;tag=ftag\n\
To: <sip:bob@b.example>;tag={to_tag}\n\
Call-ID: call-1\n\
CSeq: 7 INVITE\n\
Contact: <sip:bob@127.0.0.1:6002>\n\
Content-Length: 0\n\n"
    ))
}

fn env(services: Services) -> Arc<RouteEnv> {
    Arc::new(RouteEnv {
        listen: vec![(Proto::Udp, addr(PROXY))],
        services,
        ..RouteEnv::default()
    })
}

fn table(profiles: &[(&str, bool)], events: bool) -> (Arc<DialogState>, Arc<RouteEnv>) {
    let q = events.then(|| Arc::new(EventQueue::default()));
    let st = Arc::new(DialogState::new(
        DlgConfig {
            event_callback: events.then(|| "ksr_dialog_event".to_string()),
            ..DlgConfig::default()
        },
        &profiles
            .iter()
            .map(|(n, v)| (n.to_string(), *v))
            .collect::<Vec<_>>(),
        q.clone(),
    ));
    let mut services = Services::new();
    services.insert(Arc::clone(&st));
    if let Some(q) = q {
        services.insert(q);
    }
    (st, env(services))
}

fn rcv(src: &str) -> RecvInfo {
    RecvInfo {
        proto: Proto::Udp,
        src: addr(src),
        dst: addr(PROXY),
    }
}

fn events(env: &RouteEnv) -> Vec<String> {
    env.services
        .get::<EventQueue>()
        .map(|q| q.take().into_iter().map(|e| e.event.name).collect())
        .unwrap_or_default()
}

#[test]
fn states_from_invite_to_bye_with_counters_and_events() {
    let (st, env) = table(&[], true);
    let cell = st.create(&invite(), &rcv(CALLER), &env).expect("dialog");
    assert!(
        st.lookup("call-1", "ftag", "").is_none(),
        "not in the table before its txn"
    );
    cell.bound();
    assert_eq!(st.stats.processed.load(Ordering::Relaxed), 1);
    cell.reply_out(180, Some((&reply(180, "ttag"), &rcv(CALLEE))));
    assert_eq!(cell.lock().state, DlgState::Early);
    assert_eq!(st.stats.early.load(Ordering::Relaxed), 1);
    cell.reply_out(200, Some((&reply(200, "ttag"), &rcv(CALLEE))));
    {
        let i = cell.lock();
        assert_eq!(i.state, DlgState::ConfirmedNa);
        assert_eq!(i.callee.contact, "sip:bob@127.0.0.1:6002");
        // Above our Record-Route, nearest first; the caller's side as the INVITE had it.
        assert_eq!(i.callee.route_set, vec!["<sip:downstream.example;lr>"]);
        assert_eq!(i.caller.route_set, vec!["<sip:upstream.example;lr>"]);
    }
    assert_eq!(st.stats.early.load(Ordering::Relaxed), 0);
    assert_eq!(st.stats.active.load(Ordering::Relaxed), 1);
    assert!(cell.deadline_ms() > 0, "the timeout runs once confirmed");
    assert_eq!(events(&env), vec!["dialog:start"]);

    // Either direction matches.
    let (c, down) = st
        .lookup("call-1", "ftag", "ttag")
        .expect("from the caller");
    assert!(down && c.h_id == cell.h_id);
    let (_, down) = st
        .lookup("call-1", "ttag", "ftag")
        .expect("from the callee");
    assert!(!down);
    assert!(st.lookup("call-1", "ftag", "other").is_none());

    st.on_request(&cell, true, "ACK", 7);
    assert_eq!(cell.lock().state, DlgState::Confirmed);
    st.on_request(&cell, false, "BYE", 1);
    assert_eq!(cell.lock().state, DlgState::Deleted);
    assert_eq!(st.stats.active.load(Ordering::Relaxed), 0);
    assert!(
        st.lookup("call-1", "ftag", "ttag").is_none(),
        "out of the table"
    );
    assert_eq!(events(&env), vec!["dialog:end"]);
}

#[test]
fn negative_final_fails_the_dialog_and_unbound_ones_stay_out() {
    let (st, env) = table(&[("calls", false)], true);
    let cell = st.create(&invite(), &rcv(CALLER), &env).expect("dialog");
    assert!(st.set_profile(&cell, "calls", ""));
    assert_eq!(
        st.profile("calls").map(|p| p.size(None)),
        Some(0),
        "counted once bound"
    );
    cell.bound();
    assert_eq!(st.profile("calls").map(|p| p.size(None)), Some(1));
    cell.reply_out(486, None);
    assert_eq!(cell.lock().state, DlgState::Deleted);
    assert_eq!(st.stats.failed.load(Ordering::Relaxed), 1);
    assert_eq!(st.profile("calls").map(|p| p.size(None)), Some(0));
    assert_eq!(events(&env), vec!["dialog:failed"]);

    // Never bound (a stateless reply): no table entry, no count, no event.
    let other = st.create(&invite(), &rcv(CALLER), &env).expect("dialog");
    assert!(st.set_profile(&other, "calls", ""));
    drop(other);
    assert_eq!(st.all().len(), 0);
    assert_eq!(st.profile("calls").map(|p| p.size(None)), Some(0));
    assert!(events(&env).is_empty());
}

#[test]
fn profiles_with_values_count_per_value() {
    let (st, env) = table(&[("caller", true)], false);
    let a = st.create(&invite(), &rcv(CALLER), &env).expect("a");
    let b = st.create(&invite(), &rcv(CALLER), &env).expect("b");
    a.bound();
    b.bound();
    assert!(st.set_profile(&a, "caller", "alice"));
    assert!(st.set_profile(&b, "caller", "bob"));
    assert!(!st.set_profile(&b, "nope", "x"));
    let p = st.profile("caller").expect("profile");
    assert_eq!(
        (p.size(None), p.size(Some("alice")), p.size(Some("carol"))),
        (2, 1, 0)
    );
    assert!(st.unset_profile(&a, "caller", "alice"));
    assert!(!st.unset_profile(&a, "caller", "alice"));
    assert_eq!((p.size(None), p.size(Some("alice"))), (1, 0));
}

#[test]
fn exports_manage_profile_and_pvs_on_messages() {
    let (st, env) = table(&[("calls", false)], false);
    let mut m = SipMsg::new(invite(), rcv(CALLER), Arc::clone(&env));
    assert_eq!(is_known_dlg(&mut m), -1);
    assert_eq!(dlg_manage(&mut m), 1);
    assert!(
        m.tm.watch.is_some(),
        "the transaction is asked to follow it"
    );
    assert_eq!(set_dlg_profile_static(&mut m, "calls"), 1);
    assert_eq!(set_dlg_profile_static(&mut m, "undeclared"), -1);
    assert_eq!(dlg_setflag(&mut m, 3), 1);
    assert_eq!(dlg_isflagset(&mut m, 3), 1);
    assert_eq!(dlg_isflagset(&mut m, 4), -1);
    assert_eq!(var_sets(&mut m, "k", "v"), 1);
    assert_eq!(dlg_set_timeout(&mut m, 2), 1);
    if let Some(w) = m.tm.watch.take() {
        w.0.bound();
    }
    assert_eq!(get_profile_size_static(&mut m, "calls", "$var(n)"), 1);
    assert_eq!(crate::pv::get(&mut m, "$var(n)"), Xval::Int(1));
    assert_eq!(
        get_profile_size_static(&mut m, "calls", "$ru"),
        -1,
        "only $var/$avp"
    );
    assert_eq!(crate::pv::get(&mut m, "$dlg(state)"), Xval::Int(1));
    assert_eq!(crate::pv::get(&mut m, "$dlg(callid)"), Xval::str("call-1"));
    assert_eq!(crate::pv::get(&mut m, "$dlg_var(k)"), Xval::str("v"));
    let cell = current(&m).expect("the message's dialog");
    cell.reply_out(200, Some((&reply(200, "ttag"), &rcv(CALLEE))));
    assert_eq!(cell.lock().lifetime, 2);

    // The BYE from the callee, through loose_route's hook.
    let bye = msg("BYE sip:alice@127.0.0.1:6001 SIP/2.0\n\
Via: SIP/2.0/UDP 127.0.0.1:6002;branch=z9hG4bK9\n\
From: <sip:bob@b.example>;tag=ttag\n\
To: \"Alice\" <sip:alice@a.example>;tag=ftag\n\
Call-ID: call-1\n\
CSeq: 1 BYE\n\
Content-Length: 0\n\n");
    let mut b = SipMsg::new(bye, rcv(CALLEE), Arc::clone(&env));
    assert_eq!(is_known_dlg(&mut b), 1);
    assert_eq!(crate::pv::get(&mut b, "$dlg_var(k)"), Xval::str("v"));
    b.route.dialog = None;
    on_loose_route(&mut b);
    assert_eq!(cell.lock().state, DlgState::Deleted);
    assert_eq!(st.profile("calls").map(|p| p.size(None)), Some(0));
    assert_eq!(st.all().len(), 0);
}

#[test]
fn bye_requests_carry_the_dialog() {
    let (st, env) = table(&[], false);
    let cell = st.create(&invite(), &rcv(CALLER), &env).expect("dialog");
    cell.bound();
    cell.reply_out(200, Some((&reply(200, "ttag"), &rcv(CALLEE))));
    let mut inner = cell.lock();
    let to_callee = agent::bye_request(
        &mut inner,
        "call-1",
        Side::Callee,
        addr(PROXY),
        "z9hG4bKsd.dlg.1",
    );
    let m = msg(&String::from_utf8(to_callee)
        .expect("text")
        .replace("\r\n", "\n"));
    assert_eq!(m.ruri(), Some("sip:bob@127.0.0.1:6002"));
    assert_eq!(m.from_tag(), Some("ftag"));
    assert_eq!(m.to_tag(), Some("ttag"));
    assert_eq!(m.cseq().and_then(Result::ok).map(|c| c.number), Some(8));
    assert_eq!(m.header_value("Route"), Some("<sip:downstream.example;lr>"));
    let to_caller = agent::bye_request(
        &mut inner,
        "call-1",
        Side::Caller,
        addr(PROXY),
        "z9hG4bKsd.dlg.2",
    );
    let m = msg(&String::from_utf8(to_caller)
        .expect("text")
        .replace("\r\n", "\n"));
    assert_eq!(m.ruri(), Some("sip:alice@127.0.0.1:6001"));
    assert_eq!(m.from_tag(), Some("ttag"));
    assert_eq!(m.to_tag(), Some("ftag"));
    assert_eq!(m.top_via_branch(), Some("z9hG4bKsd.dlg.2"));
}

#[test]
fn modparams_with_kamailio_syntax() {
    let p = ModParams::new("dialog")
        .with("profiles_with_value", ParamValue::Str("caller ; gw".into()))
        .with("profiles_no_value", ParamValue::Str("calls".into()))
        .with("default_timeout", ParamValue::Int(60))
        .with("send_bye", ParamValue::Int(1));
    let (config, profiles) = read_params(&p).expect("params");
    assert_eq!(config.default_timeout, 60);
    assert!(config.send_bye);
    assert_eq!(
        profiles,
        vec![
            ("caller".to_string(), true),
            ("gw".to_string(), true),
            ("calls".to_string(), false)
        ]
    );
    let twice = ModParams::new("dialog")
        .with("profiles_with_value", ParamValue::Str("a".into()))
        .with("profiles_no_value", ParamValue::Str("a".into()));
    assert!(read_params(&twice).is_err());
    let db = ModParams::new("dialog").with("db_mode", ParamValue::Int(3));
    assert!(read_params(&db).is_err());
}

#[test]
fn rows_carry_a_confirmed_dialog_across_a_restart() {
    let (st, env) = table(&[("calls", false), ("caller", true)], false);
    let cell = st.create(&invite(), &rcv(CALLER), &env).expect("dialog");
    assert!(st.set_profile(&cell, "calls", ""));
    assert!(st.set_profile(&cell, "caller", "alice"));
    set_var(&cell, "k", Some("v"));
    cell.bound();
    cell.reply_out(200, Some((&reply(200, "ttag"), &rcv(CALLEE))));
    st.on_request(&cell, true, "ACK", 7);
    let row = {
        let i = cell.lock();
        persist::row(&cell.call_id, &i, crate::store::now_unix() + 60)
    };
    assert_eq!(row.key_name, "call-1;ftag");
    let expired = crate::store::HtableRow {
        key_name: "old".into(),
        expires: crate::store::now_unix() - 1,
        ..row.clone()
    };

    let (again, _) = table(&[("calls", false), ("caller", true)], false);
    assert_eq!(again.restore(&[row, expired]), 1);
    let (c, down) = again.lookup("call-1", "ttag", "ftag").expect("restored");
    assert!(!down);
    assert_eq!(c.lock().state, DlgState::Confirmed);
    assert_eq!(c.lock().callee.addr, Some(addr(CALLEE)));
    assert_eq!(get_var(&c, "k").as_deref(), Some("v"));
    assert_eq!(again.stats.active.load(Ordering::Relaxed), 1);
    assert_eq!(
        again.profile("caller").map(|p| p.size(Some("alice"))),
        Some(1)
    );
    assert!(
        c.deadline_ms() > again.now_ms() + 50_000,
        "the rest of its timeout"
    );
    again.on_request(&c, false, "BYE", 1);
    assert_eq!(again.live(), 0);
    assert_eq!(again.profile("calls").map(|p| p.size(None)), Some(0));
}
