//! `KSR.sl.*`: replies are queued on the outbox and are valid SIP on the wire.

use kemi_runtime::msg::{Action, Proto, Reply};
use kemi_runtime::sip::Message;
use kemi_runtime::{Arg, SipMsg};

use crate::common::{i, msg, msg_from, request, INVITE, RINGING};

/// The only reply queued, parsed back.
fn sent(m: &SipMsg) -> (Reply, Message) {
    let [Action::Reply(reply)] = m.outbox.as_slice() else {
        panic!("expected exactly one reply, got {:?}", m.outbox);
    };
    let parsed = Message::parse(reply.wire.clone().into()).unwrap_or_else(|e| {
        panic!(
            "reply does not parse: {e}\n{}",
            String::from_utf8_lossy(&reply.wire)
        )
    });
    (reply.clone(), parsed)
}

#[test]
fn reply_on_the_wire() {
    let mut m = msg(INVITE);
    assert_eq!(
        i(
            &mut m,
            "hdr",
            "append_to_reply",
            &[Arg::Str("X-Why: testing")]
        ),
        1
    );
    assert_eq!(
        i(
            &mut m,
            "sl",
            "sl_send_reply",
            &[Arg::Int(404), Arg::Str("Not Here")]
        ),
        1
    );
    let (reply, wire) = sent(&m);
    assert_eq!((reply.code, reply.reason.as_str()), (404, "Not Here"));
    assert_eq!(wire.status(), Some(404));
    assert_eq!(wire.reason(), Some("Not Here"));
    let vias: Vec<_> = wire.vias().filter_map(Result::ok).collect();
    assert_eq!(vias.len(), 2, "every Via is copied");
    let top = vias.first().unwrap_or_else(|| unreachable!());
    assert_eq!(top.received(), Some("192.0.2.10"));
    assert_eq!(top.rport(), Some("5062"));
    assert_eq!(top.branch(), Some("z9hG4bK776asdhds"));
    assert_eq!(wire.from_tag(), Some("1928301774"));
    let tag = wire.to_tag().map(str::to_string);
    assert!(
        tag.as_deref().is_some_and(|t| !t.is_empty()),
        "local To tag added"
    );
    assert_eq!(
        wire.call_id(),
        Some("a84b4c76e66710@pc33.atlanta.example.com")
    );
    assert_eq!(
        wire.cseq().and_then(Result::ok).map(|c| c.number),
        Some(314159)
    );
    assert_eq!(wire.header_value("X-Why"), Some("testing"));
    assert_eq!(wire.header_value("Server"), Some("sipd test"));
    assert_eq!(wire.content_length(), Some(0));

    // A retransmission gets the same tag; send_reply is the same for now.
    let mut again = msg(INVITE);
    assert_eq!(
        i(
            &mut again,
            "sl",
            "send_reply",
            &[Arg::Int(404), Arg::Str("Not Here")]
        ),
        1
    );
    assert_eq!(sent(&again).1.to_tag().map(str::to_string), tag);
}

#[test]
fn trying_has_no_to_tag_and_existing_tags_stay() {
    let mut m = msg(INVITE);
    assert_eq!(
        i(
            &mut m,
            "sl",
            "send_reply_mode",
            &[Arg::Int(100), Arg::Str("Trying"), Arg::Int(1)]
        ),
        1
    );
    assert_eq!(sent(&m).1.to_tag(), None);

    let with_tag = request("BYE", "").replace(
        "To: <sip:bob@example.com>",
        "To: <sip:bob@example.com>;tag=abc",
    );
    let mut bye = msg(&with_tag);
    assert_eq!(
        i(
            &mut bye,
            "sl",
            "sl_send_reply",
            &[Arg::Int(200), Arg::Str("OK")]
        ),
        1
    );
    assert_eq!(sent(&bye).1.to_tag(), Some("abc"));
}

#[test]
fn no_rport_gives_received_only_when_source_differs() {
    let mut m = msg_from(&request("OPTIONS", ""), Proto::Udp, "10.0.0.5:5062");
    assert_eq!(
        i(
            &mut m,
            "sl",
            "sl_send_reply",
            &[Arg::Int(200), Arg::Str("OK")]
        ),
        1
    );
    let (_, wire) = sent(&m);
    let top = wire.top_via().and_then(Result::ok);
    assert_eq!(
        top.and_then(|v| v.received()),
        None,
        "sent-by matches the source"
    );
    assert_eq!(top.and_then(|v| v.rport()), None);
}

#[test]
fn refused_replies() {
    let mut ack = msg(&request("ACK", ""));
    assert_eq!(
        i(
            &mut ack,
            "sl",
            "sl_send_reply",
            &[Arg::Int(200), Arg::Str("OK")]
        ),
        -1
    );
    assert_eq!(
        i(&mut ack, "sl", "sl_reply_error", &[]),
        1,
        "Kamailio returns 1 regardless"
    );
    assert!(ack.outbox.is_empty());

    let mut reply = msg(RINGING);
    assert_eq!(
        i(
            &mut reply,
            "sl",
            "send_reply",
            &[Arg::Int(200), Arg::Str("OK")]
        ),
        -1
    );
    assert!(reply.outbox.is_empty());

    let mut m = msg(INVITE);
    for code in [0, 99, 700, -200, i32::MAX] {
        assert_eq!(
            i(
                &mut m,
                "sl",
                "sl_send_reply",
                &[Arg::Int(code), Arg::Str("X")]
            ),
            -1,
            "{code}"
        );
    }
    assert!(m.outbox.is_empty());
}

#[test]
fn reply_error_is_500_and_reason_cannot_inject_headers() {
    let mut m = msg(INVITE);
    assert_eq!(i(&mut m, "sl", "sl_reply_error", &[]), 1);
    assert_eq!(sent(&m).1.status(), Some(500));
    let mut e = msg(INVITE);
    assert_eq!(i(&mut e, "sl", "send_reply_error", &[]), 1);
    assert_eq!(sent(&e).0.reason, "Server Internal Error");

    let mut inj = msg(INVITE);
    assert_eq!(
        i(
            &mut inj,
            "sl",
            "sl_send_reply",
            &[Arg::Int(403), Arg::Str("No\r\nX-Evil: 1")]
        ),
        1
    );
    let (reply, wire) = sent(&inj);
    assert_eq!(wire.header_value("X-Evil"), None);
    assert_eq!(reply.reason, "NoX-Evil: 1");
}

#[test]
fn reply_error_never_sends_a_second_final_reply() {
    let mut m = msg(INVITE);
    assert_eq!(
        i(
            &mut m,
            "sl",
            "sl_send_reply",
            &[Arg::Int(400), Arg::Str("Bad Contact")]
        ),
        1
    );
    assert_eq!(i(&mut m, "sl", "sl_reply_error", &[]), 1);
    let (reply, _) = sent(&m);
    assert_eq!(reply.code, 400, "the first answer stands alone");

    let mut m = msg(INVITE);
    assert_eq!(i(&mut m, "sl", "sl_reply_error", &[]), 1);
    assert_eq!(
        sent(&m).0.code,
        500,
        "with nothing queued, the error is answered 500"
    );
}

#[test]
fn send_reply_goes_through_the_transaction_after_t_newtran() {
    let mut m = msg(INVITE);
    assert_eq!(i(&mut m, "tm", "t_newtran", &[]), 1);
    assert_eq!(
        i(
            &mut m,
            "sl",
            "send_reply",
            &[Arg::Int(404), Arg::Str("Not Found")]
        ),
        1
    );
    assert!(m.outbox.is_empty(), "not sent statelessly: {:?}", m.outbox);
    assert_eq!(m.tm.replies.len(), 1);
    assert_eq!(m.tm.replies[0].code, 404);

    let mut m = msg(INVITE);
    assert_eq!(
        i(
            &mut m,
            "sl",
            "send_reply",
            &[Arg::Int(404), Arg::Str("Not Found")]
        ),
        1
    );
    assert_eq!(sent(&m).0.code, 404, "without a transaction: stateless");
}
