//! `KSR.tm`, `KSR.tmx`, `KSR.rr` and `corex.append_branch*` through the export table: what they
//! record in `SipMsg::tm` / `SipMsg::route` for the host, and their Kamailio return codes.

use kemi_runtime::msg::{TmRoute, TxnMatch};
use kemi_runtime::sip::HeaderEdit;
use kemi_runtime::Arg;

use crate::common::{i, msg, request, INVITE, RINGING};

#[test]
fn t_relay_records_the_target_and_absorbs_retransmissions() {
    let mut m = msg(INVITE);
    m.route.dst_uri = Some("sip:10.0.0.9:5070".into());
    assert_eq!(i(&mut m, "tm", "t_relay", &[]), 1);
    let relay = m.tm.relay.clone().expect("relay recorded");
    assert_eq!(relay.dst.as_deref(), Some("sip:10.0.0.9:5070"));
    assert_eq!(relay.ruri, "sip:bob@example.com:5080;transport=udp");

    let mut again = msg(INVITE);
    again.tm.lookup = TxnMatch::Retransmission;
    assert_eq!(i(&mut again, "tm", "t_check_trans", &[]), 0);
    assert!(again.tm.absorb);
    assert_eq!(i(&mut again, "tmx", "t_precheck_trans", &[]), 1);
    assert_eq!(i(&mut again, "tm", "t_relay", &[]), 0);
    assert!(again.tm.relay.is_none());

    let mut reply = msg(RINGING);
    assert_eq!(i(&mut reply, "tm", "t_relay", &[]), -1);
}

#[test]
fn t_relay_variants_build_destinations() {
    let mut m = msg(INVITE);
    assert_eq!(
        i(
            &mut m,
            "tm",
            "t_relay_to_proto_addr",
            &[Arg::Str("tcp"), Arg::Str("10.0.0.1"), Arg::Int(5070)]
        ),
        1
    );
    assert_eq!(
        m.tm.relay.unwrap().dst.as_deref(),
        Some("sip:10.0.0.1:5070;transport=tcp")
    );
    let mut m = msg(INVITE);
    assert_eq!(
        i(
            &mut m,
            "tm",
            "t_relay_to_proxy",
            &[Arg::Str("udp:10.0.0.2:5080")]
        ),
        1
    );
    assert_eq!(
        m.tm.relay.unwrap().dst.as_deref(),
        Some("sip:10.0.0.2:5080")
    );
    let mut m = msg(INVITE);
    assert_eq!(
        i(&mut m, "tm", "t_relay_to_proto", &[Arg::Str("sctp-nope")]),
        -1
    );
}

#[test]
fn check_trans_for_cancel_and_ack() {
    let mut c = msg(&request("CANCEL", ""));
    c.tm.lookup = TxnMatch::CancelOfInvite;
    assert_eq!(i(&mut c, "tm", "t_check_trans", &[]), 1);
    c.tm.lookup = TxnMatch::CancelUnmatched;
    assert_eq!(i(&mut c, "tm", "t_check_trans", &[]), -1);
    let mut a = msg(&request("ACK", ""));
    a.tm.lookup = TxnMatch::AckToNegative;
    assert_eq!(i(&mut a, "tm", "t_check_trans", &[]), 0);
    let mut fresh = msg(INVITE);
    assert_eq!(i(&mut fresh, "tm", "t_check_trans", &[]), -1);
    assert_eq!(
        i(
            &mut fresh,
            "tm",
            "t_reply",
            &[Arg::Int(404), Arg::Str("Not Found")]
        ),
        -1
    );
    assert_eq!(i(&mut fresh, "tm", "t_newtran", &[]), 1);
    assert_eq!(
        i(
            &mut fresh,
            "tm",
            "t_reply",
            &[Arg::Int(404), Arg::Str("Not Found")]
        ),
        1
    );
    assert_eq!(fresh.tm.replies.len(), 1);
    assert!(fresh.tm.replies[0]
        .wire
        .starts_with(b"SIP/2.0 404 Not Found\r\n"));
}

#[test]
fn callbacks_and_routes() {
    let mut m = msg(INVITE);
    assert_eq!(
        i(&mut m, "tm", "t_is_set", &[Arg::Str("failure_route")]),
        -1
    );
    assert_eq!(
        i(&mut m, "tm", "t_on_failure", &[Arg::Str("ksr_failure")]),
        1
    );
    assert_eq!(i(&mut m, "tm", "t_is_set", &[Arg::Str("failure_route")]), 1);
    assert_eq!(i(&mut m, "tm", "t_on_failure", &[Arg::Str("")]), 1);
    assert_eq!(
        i(&mut m, "tm", "t_is_set", &[Arg::Str("failure_route")]),
        -1
    );
    assert_eq!(i(&mut m, "tmx", "t_is_failure_route", &[]), -1);
    m.tm.route = TmRoute::Failure;
    m.tm.reply_code = Some(486);
    m.tm.canceled = true;
    assert_eq!(i(&mut m, "tmx", "t_is_failure_route", &[]), 1);
    assert_eq!(
        i(&mut m, "tm", "t_check_status", &[Arg::Str("^48[0-9]$")]),
        1
    );
    assert_eq!(i(&mut m, "tm", "t_check_status", &[Arg::Str("^5")]), -1);
    assert_eq!(i(&mut m, "tm", "t_get_status_code", &[]), 486);
    assert_eq!(i(&mut m, "tm", "t_is_canceled", &[]), 1);
    // A canceled transaction takes no new branches.
    assert_eq!(i(&mut m, "tm", "t_relay", &[]), -1);
    assert_eq!(
        i(&mut m, "tm", "t_set_fr", &[Arg::Int(3000), Arg::Int(1000)]),
        1
    );
    assert_eq!(m.tm.fr_ms, Some((3000, 1000)));
}

#[test]
fn append_branch_adds_parallel_targets() {
    let mut m = msg(INVITE);
    assert_eq!(
        i(
            &mut m,
            "corex",
            "append_branch_uri",
            &[Arg::Str("sip:carol@10.0.0.3")]
        ),
        1
    );
    assert_eq!(
        i(
            &mut m,
            "corex",
            "append_branch_uri",
            &[Arg::Str("not a uri")]
        ),
        -1
    );
    m.route.dst_uri = Some("sip:10.0.0.4".into());
    assert_eq!(i(&mut m, "corex", "append_branch", &[]), 1);
    assert_eq!(m.tm.branches.len(), 2);
    assert_eq!(m.tm.branches[0].dst, None);
    assert_eq!(m.tm.branches[1].dst.as_deref(), Some("sip:10.0.0.4"));
}

#[test]
fn record_route_and_params() {
    let mut m = msg(INVITE);
    assert_eq!(i(&mut m, "rr", "add_rr_param", &[Arg::Str(";nat=yes")]), -1);
    assert_eq!(i(&mut m, "rr", "record_route", &[]), 1);
    assert_eq!(i(&mut m, "rr", "add_rr_param", &[Arg::Str(";nat=yes")]), 1);
    assert_eq!(m.route.record_route.as_ref().unwrap().params, ";nat=yes");
    assert_eq!(i(&mut m, "rr", "remove_record_route", &[]), 1);
    assert!(m.route.record_route.is_none());
}

/// An in-dialog request to the callee's contact with `route` lines.
fn in_dialog(route: &str) -> kemi_runtime::SipMsg {
    msg(&request("BYE", route)
        .replace("BYE sip:proxy.example.com", "BYE sip:bob@10.0.0.20")
        .replace(
            "To: <sip:bob@example.com>",
            "To: <sip:bob@example.com>;tag=b",
        ))
}

#[test]
fn loose_route_removes_our_entry_and_sets_the_next_hop() {
    // Route: us (loose), then a loose next hop: $du is the next hop, our entry removed.
    let mut m = in_dialog("Route: <sip:198.51.100.1:5060;lr;ftag=abc>, <sip:10.0.0.7;lr>\r\n");
    assert_eq!(i(&mut m, "rr", "loose_route", &[]), 1);
    assert_eq!(m.route.dst_uri.as_deref(), Some("sip:10.0.0.7;lr"));
    assert!(m.route.edits.iter().any(
        |e| matches!(e, HeaderEdit::InsertBefore(_, l) if l == "Route: <sip:10.0.0.7;lr>\r\n")
    ));
    assert_eq!(
        i(&mut m, "rr", "check_route_param", &[Arg::Str("ftag=abc")]),
        1
    );

    // Only our entry on an in-dialog request: the R-URI is the target.
    let mut m = in_dialog("Route: <sip:198.51.100.1:5060;lr>\r\n");
    assert_eq!(i(&mut m, "rr", "loose_route", &[]), 1);
    assert_eq!(m.route.dst_uri, None);
    assert!(m.route.edits.contains(&HeaderEdit::Remove(
        m.message.first("Route").map(|h| h.index).unwrap()
    )));

    // Strict next hop: it becomes the R-URI, the R-URI goes last.
    let mut m = in_dialog("Route: <sip:198.51.100.1:5060;lr>, <sip:10.0.0.8>\r\n");
    let old = m.message.ruri().unwrap().to_string();
    assert_eq!(i(&mut m, "rr", "loose_route", &[]), 1);
    assert_eq!(m.route.new_ruri.as_deref(), Some("sip:10.0.0.8"));
    assert!(m.route.edits.iter().any(
        |e| matches!(e, HeaderEdit::AppendAfter(_, l) if *l == format!("Route: <{old}>\r\n"))
    ));

    // A strict router before us put our URI in the R-URI: the last Route value is the target.
    let mut m = msg(&request("BYE", "Route: <sip:bob@10.0.0.20>\r\n"));
    assert_eq!(i(&mut m, "rr", "loose_route", &[]), 1);
    assert_eq!(m.route.new_ruri.as_deref(), Some("sip:bob@10.0.0.20"));

    // The same on an initial request (a preloaded Route naming only us): -1.
    let mut m = msg(&request("INVITE", "Route: <sip:198.51.100.1:5060;lr>\r\n")
        .replace("INVITE sip:proxy.example.com", "INVITE sip:bob@10.0.0.20"));
    assert_eq!(i(&mut m, "rr", "loose_route", &[]), -1);

    // No Route header.
    let mut m = msg(&request("BYE", ""));
    assert_eq!(i(&mut m, "rr", "loose_route", &[]), -1);
}

#[test]
fn failure_route_pvs() {
    use crate::common::{pv, s};
    use kemi_runtime::sip::Message;
    use kemi_runtime::Xval;
    let mut m = msg(INVITE);
    assert_eq!(pv(&mut m, "$T_reply_code"), Xval::Null);
    m.tm.route = TmRoute::Failure;
    m.tm.reply_code = Some(486);
    m.tm.branch_index = Some(1);
    m.tm.reply = Some(
        Message::parse(
            "SIP/2.0 486 Busy Here\r\nVia: SIP/2.0/UDP p;branch=z9hG4bK1\r\nX-Why: busy\r\nl: 0\r\n\r\n"
                .as_bytes()
                .to_vec()
                .into(),
        )
        .unwrap(),
    );
    assert_eq!(pv(&mut m, "$T_reply_code"), Xval::Int(486));
    assert_eq!(pv(&mut m, "$T_branch_idx"), Xval::Int(1));
    assert_eq!(pv(&mut m, "$T_reply_reason"), s("Busy Here"));
    assert_eq!(pv(&mut m, "$T_rpl($hdr(X-Why))"), s("busy"));
    assert_eq!(pv(&mut m, "$T_rpl($rs)"), Xval::Int(486));
}
