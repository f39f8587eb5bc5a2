//! `sipd route-test`: real Lua scripts on real SIP messages, through the same `Router` the server
//! uses, checked through the JSON report operators see.

use std::sync::Arc;

use kemi_runtime::engine::EngineKind;
use kemi_runtime::table::Enabled;
use serde_json::Value;
use sipd::route_test::{self, RouteTestError};

use crate::support::{example, script};

fn route(source: &str, msg: &str, src: Option<&str>) -> Value {
    let s = script("route.lua", source);
    let table = Arc::new(sipd::exports::build_table(&Enabled::All).expect("table"));
    let src = src.map(|s| s.parse().expect("endpoint"));
    let report = route_test::run(table, EngineKind::Lua, &s.path, &example(msg), src)
        .expect("route-test runs");
    serde_json::to_value(&report).expect("json")
}

#[test]
fn options_answered_and_exit_reported() {
    let r = route(
        r#"function ksr_request_route()
             if KSR.is_OPTIONS() then
               KSR.sl.sl_send_reply(200, "Keepalive")
               KSR.x.exit()
             end
             KSR.sl.sl_send_reply(500, "not reached")
           end"#,
        "messages/options.sip",
        None,
    );
    assert_eq!(r["outcome"], "exit");
    assert_eq!(
        r["replies"],
        serde_json::json!([{"code": 200, "reason": "Keepalive"}])
    );
    assert_eq!(r["error"], Value::Null);
}

#[test]
fn edits_rewrites_flags_and_logs_are_reported() {
    let r = route(
        r#"function ksr_request_route()
             KSR.hdr.append("X-Routed: yes\r\n")
             KSR.hdr.remove("User-Agent")
             KSR.setflag(4)
             KSR.setflag(1)
             KSR.pv.sets("$ru", "sip:carol@127.0.0.2")
             KSR.setdsturi("sip:127.0.0.3:5070")
             KSR.info("ua was " .. KSR.pv.gete("$ua"))
             if KSR.maxfwd.process_maxfwd(10) < 0 then KSR.x.exit() end
           end"#,
        "messages/options.sip",
        None,
    );
    assert_eq!(r["outcome"], "return");
    assert_eq!(r["ruri"], "sip:carol@127.0.0.2");
    assert_eq!(r["dst_uri"], "sip:127.0.0.3:5070");
    assert_eq!(r["flags"], serde_json::json!([1, 4]));
    assert_eq!(
        r["logs"],
        serde_json::json!([{"level": "info", "text": "ua was route-test"}])
    );
    let m = r["message"].as_str().unwrap();
    assert!(
        m.starts_with("OPTIONS sip:carol@127.0.0.2 SIP/2.0\r\n"),
        "{m}"
    );
    assert!(m.contains("X-Routed: yes\r\n"), "{m}");
    assert!(!m.contains("User-Agent"), "{m}");
    assert!(m.contains("Max-Forwards: 69\r\n"), "{m}");
}

#[test]
fn forward_is_reported_with_its_destination() {
    let r = route(
        r#"function ksr_request_route()
             KSR.setdsturi("sip:127.0.0.1:5070")
             if KSR.forward() < 0 then KSR.sl.sl_send_reply(500, "no") end
           end"#,
        "messages/invite.sip",
        None,
    );
    assert_eq!(
        r["forwards"],
        serde_json::json!([{"ruri": "sip:bob@example.com", "dst": "sip:127.0.0.1:5070"}])
    );
    assert_eq!(r["replies"], serde_json::json!([]));
}

#[test]
fn drop_is_an_outcome() {
    let r = route(
        "function ksr_request_route() KSR.x.drop() end",
        "messages/options.sip",
        None,
    );
    assert_eq!(r["outcome"], "drop");
}

#[test]
fn script_error_is_contained_and_located() {
    let r = route(
        "function ksr_request_route()\n  local t = nil\n  return t.field\nend\n",
        "messages/options.sip",
        None,
    );
    assert_eq!(r["outcome"], "error");
    let err = r["error"].as_str().unwrap();
    assert!(
        err.contains("route.lua:3"),
        "error should name the script line: {err}"
    );
}

#[test]
fn replies_run_the_reply_route() {
    let r = route(
        r#"function ksr_request_route() end
           function ksr_reply_route()
             KSR.info("reply " .. KSR.pv.get("$rs"))
             KSR.hdr.append("X-Seen: 1\r\n")
           end"#,
        "messages/reply-200.sip",
        None,
    );
    assert_eq!(r["outcome"], "return");
    assert_eq!(r["logs"][0]["text"], "reply 200");
    assert!(r["message"]
        .as_str()
        .unwrap()
        .starts_with("SIP/2.0 200 OK\r\n"));
    assert!(r["message"].as_str().unwrap().contains("X-Seen: 1\r\n"));
}

#[test]
fn source_endpoint_sets_source_pvs() {
    let r = route(
        r#"function ksr_request_route()
             KSR.info(KSR.pv.get("$pr") .. " " .. KSR.pv.get("$si") .. " " .. KSR.pv.get("$sp"))
           end"#,
        "messages/options.sip",
        Some("tcp:[::1]:5099"),
    );
    assert_eq!(r["logs"][0]["text"], "tcp ::1 5099");
}

#[test]
fn load_error_names_file_and_line() {
    let s = script(
        "broken.lua",
        "function ksr_request_route()\n  if then\nend\n",
    );
    let table = Arc::new(sipd::exports::build_table(&Enabled::All).unwrap());
    let err = route_test::run(
        table,
        EngineKind::Lua,
        &s.path,
        &example("messages/options.sip"),
        None,
    )
    .unwrap_err();
    assert!(matches!(err, RouteTestError::Load(_)));
    let text = err.to_string();
    assert!(text.contains("broken.lua:2"), "{text}");
}

#[test]
fn unreadable_message_is_an_error() {
    let s = script("ok.lua", "function ksr_request_route() end");
    let table = Arc::new(sipd::exports::build_table(&Enabled::All).unwrap());
    let err = route_test::run(
        table,
        EngineKind::Lua,
        &s.path,
        &example("messages/missing.sip"),
        None,
    )
    .unwrap_err();
    assert!(matches!(err, RouteTestError::Read { .. }), "{err}");
}

#[test]
fn stateful_relay_and_branches_are_reported_as_forwards() {
    let r = route(
        r#"function ksr_request_route()
             KSR.setdsturi("sip:127.0.0.1:5070")
             KSR.corex.append_branch_uri("sip:carol@127.0.0.1:5071")
             KSR.rr.record_route()
             if KSR.tm.t_relay() < 0 then KSR.sl.sl_reply_error() end
           end"#,
        "messages/invite.sip",
        None,
    );
    assert_eq!(
        r["forwards"],
        serde_json::json!([
            {"ruri": "sip:bob@example.com", "dst": "sip:127.0.0.1:5070"},
            {"ruri": "sip:carol@127.0.0.1:5071", "dst": null}
        ])
    );
    assert_eq!(r["replies"], serde_json::json!([]));
}

#[test]
fn stateful_reply_is_reported() {
    let r = route(
        r#"function ksr_request_route()
             KSR.tm.t_reply(500, "no transaction yet: refused")
             KSR.tm.t_send_reply(404, "Not Here")
           end"#,
        "messages/invite.sip",
        None,
    );
    assert_eq!(
        r["replies"],
        serde_json::json!([{"code": 404, "reason": "Not Here"}])
    );
}
