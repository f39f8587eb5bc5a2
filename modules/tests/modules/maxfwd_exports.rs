//! `KSR.maxfwd.*` on present, missing, zero, large and broken Max-Forwards values.

use kemi_runtime::sip::{HeaderEdit, Message};
use kemi_runtime::Arg;

use crate::common::{i, msg, request, INVITE};

fn forwarded_maxfwd(m: &kemi_runtime::SipMsg) -> Option<u32> {
    let mut out = Vec::new();
    m.message
        .write_request(&mut out, None, &m.route.edits, None);
    Message::parse(out.into()).ok()?.max_forwards()?.ok()
}

#[test]
fn decrements_present_value() {
    let mut m = msg(INVITE);
    assert_eq!(i(&mut m, "maxfwd", "process_maxfwd", &[Arg::Int(10)]), 1);
    assert_eq!(
        m.route.edits,
        [
            HeaderEdit::Remove(2),
            HeaderEdit::InsertBefore(2, "Max-Forwards: 69\r\n".into())
        ]
    );
    assert_eq!(forwarded_maxfwd(&m), Some(69));
    assert_eq!(
        m.message.max_forwards().and_then(Result::ok),
        Some(70),
        "reads see the original"
    );
}

#[test]
fn adds_missing_header() {
    let mut m = msg(&request("OPTIONS", ""));
    assert_eq!(i(&mut m, "maxfwd", "process_maxfwd", &[Arg::Int(10)]), 2);
    assert_eq!(
        m.route.edits,
        [HeaderEdit::Prepend("Max-Forwards: 10\r\n".into())]
    );
    assert_eq!(forwarded_maxfwd(&m), Some(10));
}

#[test]
fn zero_large_and_broken_values() {
    let mut zero = msg(&request("OPTIONS", "Max-Forwards: 0\r\n"));
    assert_eq!(
        i(&mut zero, "maxfwd", "process_maxfwd", &[Arg::Int(10)]),
        -1
    );
    assert!(zero.route.edits.is_empty());

    let mut one = msg(&request("OPTIONS", "Max-Forwards: 1\r\n"));
    assert_eq!(i(&mut one, "maxfwd", "process_maxfwd", &[Arg::Int(10)]), 1);
    assert_eq!(forwarded_maxfwd(&one), Some(0));

    let mut big = msg(&request("OPTIONS", "max-forwards: 200\r\n"));
    assert_eq!(i(&mut big, "maxfwd", "process_maxfwd", &[Arg::Int(10)]), 1);
    assert_eq!(forwarded_maxfwd(&big), Some(70), "lowered to max_limit");

    let mut bad = msg(&request("OPTIONS", "Max-Forwards: lots\r\n"));
    assert_eq!(i(&mut bad, "maxfwd", "process_maxfwd", &[Arg::Int(10)]), -2);
    assert!(bad.route.edits.is_empty());

    let mut m = msg(INVITE);
    assert_eq!(i(&mut m, "maxfwd", "process_maxfwd", &[Arg::Int(256)]), -1);
    assert_eq!(i(&mut m, "maxfwd", "process_maxfwd", &[Arg::Int(-1)]), -1);
    assert!(m.route.edits.is_empty());
}

#[test]
fn is_maxfwd_lt_returns() {
    let mut m = msg(&request("OPTIONS", "Max-Forwards: 5\r\n"));
    assert_eq!(i(&mut m, "maxfwd", "is_maxfwd_lt", &[Arg::Int(6)]), 1);
    assert_eq!(i(&mut m, "maxfwd", "is_maxfwd_lt", &[Arg::Int(5)]), -1);
    assert_eq!(i(&mut m, "maxfwd", "is_maxfwd_lt", &[Arg::Int(300)]), -1);
    let mut missing = msg(&request("OPTIONS", ""));
    assert_eq!(
        i(&mut missing, "maxfwd", "is_maxfwd_lt", &[Arg::Int(5)]),
        -2
    );
    let mut bad = msg(&request("OPTIONS", "Max-Forwards: -3\r\n"));
    assert_eq!(i(&mut bad, "maxfwd", "is_maxfwd_lt", &[Arg::Int(5)]), -3);
}

/// Set up the modules `enabled` with `params` (`[modparam.<module>]` tables).
fn setup_with(
    params: &[(&str, &str, modules::modparam::ParamValue)],
    enabled: &'static [&'static str],
) -> Result<kemi_runtime::services::Services, modules::setup::SetupError> {
    use modules::modparam::ModParams;
    let mut map = std::collections::BTreeMap::<String, ModParams>::new();
    for (module, name, value) in params {
        map.entry(module.to_string())
            .or_insert_with(|| ModParams::new(module))
            .set(name, value.clone());
    }
    let on = |m: &str| enabled.contains(&m);
    modules::setup::setup(&modules::setup::SetupInput {
        params: &map,
        enabled: &on,
        db_url: "sqlite::memory:",
        base_dir: std::path::Path::new("/"),
    })
}

#[test]
fn max_limit_modparam_lowers_large_values() {
    use modules::modparam::ParamValue;
    let services = setup_with(&[("maxfwd", "max_limit", ParamValue::Int(20))], &["maxfwd"])
        .unwrap_or_else(|e| panic!("setup: {e}"));
    let mut m = msg(&INVITE.replace("Max-Forwards: 70", "Max-Forwards: 50"));
    m.env = crate::common::env_with(services);
    assert_eq!(i(&mut m, "maxfwd", "process_maxfwd", &[Arg::Int(10)]), 1);
    assert_eq!(forwarded_maxfwd(&m), Some(20));
    let mut m = msg(&INVITE.replace("Max-Forwards: 70", "Max-Forwards: 5"));
    assert_eq!(i(&mut m, "maxfwd", "process_maxfwd", &[Arg::Int(10)]), 1);
    assert_eq!(forwarded_maxfwd(&m), Some(4));
    let e = setup_with(
        &[("maxfwd", "max_limit", ParamValue::Int(256))],
        &["maxfwd"],
    )
    .unwrap_err();
    assert!(e.to_string().contains("maxfwd.max_limit"), "{e}");
    let e = setup_with(&[("maxfwd", "nosuch", ParamValue::Int(1))], &["maxfwd"]).unwrap_err();
    assert!(e.to_string().contains("unknown parameter"), "{e}");
}

#[test]
fn modparams_of_a_module_that_reads_none_are_refused() {
    use modules::modparam::ParamValue;
    let e = setup_with(&[("textops", "x", ParamValue::Int(1))], &["textops"]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "modparam textops.x: sipd implements no parameters of module `textops`"
    );
    // sanity reads its own and refuses autodrop; rr refuses what it does not implement.
    assert!(setup_with(
        &[("sanity", "default_checks", ParamValue::Int(17895))],
        &["sanity"]
    )
    .is_ok());
    let e = setup_with(&[("sanity", "autodrop", ParamValue::Int(0))], &["sanity"]).unwrap_err();
    assert!(e.to_string().contains("sanity.autodrop"), "{e}");
    let e = setup_with(&[("rr", "force_send_socket", ParamValue::Int(1))], &["rr"]).unwrap_err();
    assert!(e.to_string().contains("rr.force_send_socket"), "{e}");
}
