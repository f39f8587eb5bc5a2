//! Core exports (`KSR.<fn>`): logging, flags, methods, transports, URIs, `is_myself*`.

use kemi_runtime::msg::{LogLevel, Proto};
use kemi_runtime::{Arg, KemiRet};

use crate::common::{b, call, msg, msg_from, pv, request, s, INVITE, RINGING};

#[test]
fn logging_captures_level_and_text() {
    let mut m = msg(INVITE);
    assert_eq!(
        call(&mut m, "", "info", &[Arg::Str("hello\n")]),
        KemiRet::None
    );
    call(&mut m, "", "crit", &[Arg::Str("boom")]);
    call(&mut m, "", "log", &[Arg::Str("warn"), Arg::Str("w")]);
    call(&mut m, "", "log", &[Arg::Str("bogus"), Arg::Str("e")]);
    let logs = m.captured_logs.take().unwrap_or_default();
    let got: Vec<(LogLevel, &str)> = logs.iter().map(|l| (l.level, l.text.as_str())).collect();
    assert_eq!(
        got,
        [
            (LogLevel::Info, "hello"),
            (LogLevel::Crit, "boom"),
            (LogLevel::Warn, "w"),
            (LogLevel::Err, "e")
        ]
    );
}

#[test]
fn set_drop_marks_without_stopping() {
    let mut m = msg(INVITE);
    assert_eq!(call(&mut m, "", "set_drop", &[]), KemiRet::None);
    assert!(m.route.drop);
    assert!(matches!(
        call(&mut m, "", "get_debug", &[]),
        KemiRet::Int(_)
    ));
}

#[test]
fn message_flags_and_bounds() {
    let mut m = msg(INVITE);
    assert!(b(&mut m, "", "setflag", &[Arg::Int(3)]));
    assert!(b(&mut m, "", "setflag", &[Arg::Int(63)]));
    assert!(b(&mut m, "", "isflagset", &[Arg::Int(3)]));
    assert!(!b(&mut m, "", "isflagset", &[Arg::Int(4)]));
    assert_eq!(m.route.flags, (1 << 3) | (1 << 63));
    assert!(b(&mut m, "", "resetflag", &[Arg::Int(3)]));
    assert!(!b(&mut m, "", "isflagset", &[Arg::Int(3)]));
    for bad in [-1, 64, i32::MAX, i32::MIN] {
        assert!(!b(&mut m, "", "setflag", &[Arg::Int(bad)]), "flag {bad}");
        assert!(!b(&mut m, "", "isflagset", &[Arg::Int(bad)]), "flag {bad}");
        assert!(!b(&mut m, "", "setsflag", &[Arg::Int(bad)]), "flag {bad}");
        assert!(!b(&mut m, "", "setbflag", &[Arg::Int(bad)]), "flag {bad}");
    }
    assert_eq!(m.route.flags, 1 << 63);
}

#[test]
fn branch_and_script_flags_are_separate() {
    let mut m = msg(INVITE);
    assert!(b(&mut m, "", "setbflag", &[Arg::Int(5)]));
    assert!(b(&mut m, "", "isbiflagset", &[Arg::Int(5), Arg::Int(0)]));
    assert!(!b(&mut m, "", "isflagset", &[Arg::Int(5)]));
    assert!(
        !b(&mut m, "", "setbiflag", &[Arg::Int(5), Arg::Int(1)]),
        "branch 1 does not exist"
    );
    assert!(!b(&mut m, "", "isbiflagset", &[Arg::Int(5), Arg::Int(-1)]));
    assert!(b(&mut m, "", "resetbiflag", &[Arg::Int(5), Arg::Int(0)]));
    assert!(!b(&mut m, "", "isbflagset", &[Arg::Int(5)]));
    assert!(b(&mut m, "", "setsflag", &[Arg::Int(0)]));
    assert!(b(&mut m, "", "issflagset", &[Arg::Int(0)]));
    assert!(b(&mut m, "", "resetsflag", &[Arg::Int(0)]));
    assert!(!b(&mut m, "", "issflagset", &[Arg::Int(0)]));
    assert_eq!((m.route.flags, m.route.bflags, m.route.sflags), (0, 0, 0));
}

#[test]
fn method_tests_on_requests_and_replies() {
    let mut m = msg(INVITE);
    assert!(b(&mut m, "", "is_INVITE", &[]));
    assert!(!b(&mut m, "", "is_BYE", &[]));
    assert!(b(&mut m, "", "is_method", &[Arg::Str("invite")]));
    assert!(b(&mut m, "", "is_method", &[Arg::Str("BYE|INVITE")]));
    assert!(!b(&mut m, "", "is_method", &[Arg::Str("BYE|CANCEL")]));
    assert!(
        !b(&mut m, "", "is_method", &[Arg::Str("BYE|FOO")]),
        "unknown method in a list"
    );
    assert!(!b(&mut m, "", "is_method", &[Arg::Str("")]));
    assert!(b(&mut m, "", "is_method_in", &[Arg::Str("RI")]));
    assert!(b(&mut m, "", "is_method_in", &[Arg::Str("si")]));
    assert!(!b(&mut m, "", "is_method_in", &[Arg::Str("ABC")]));

    // A reply is tested by its CSeq method.
    let mut r = msg(RINGING);
    assert!(b(&mut r, "", "is_INVITE", &[]));
    assert!(b(&mut r, "", "is_method_in", &[Arg::Str("I")]));

    let cases = [
        ("ACK", "is_ACK", "A"),
        ("BYE", "is_BYE", "B"),
        ("CANCEL", "is_CANCEL", "C"),
        ("REGISTER", "is_REGISTER", "R"),
        ("OPTIONS", "is_OPTIONS", "O"),
        ("SUBSCRIBE", "is_SUBSCRIBE", "S"),
        ("PUBLISH", "is_PUBLISH", "P"),
        ("NOTIFY", "is_NOTIFY", "N"),
        ("REFER", "is_REFER", "F"),
        ("UPDATE", "is_UPDATE", "U"),
        ("PRACK", "is_PRACK", "E"),
        ("MESSAGE", "is_MESSAGE", "M"),
        ("KDMQ", "is_KDMQ", "K"),
        ("GET", "is_GET", "G"),
        ("POST", "is_POST", "T"),
        ("PUT", "is_PUT", "V"),
        ("DELETE", "is_DELETE", "D"),
    ];
    for (method, export, letter) in cases {
        let mut m = msg(&request(method, ""));
        assert!(b(&mut m, "", export, &[]), "{export}");
        assert!(!b(&mut m, "", "is_INVITE", &[]), "{method} is not INVITE");
        assert!(
            b(&mut m, "", "is_method_in", &[Arg::Str(letter)]),
            "{letter} for {method}"
        );
    }
    let mut info = msg(&request("INFO", ""));
    assert!(b(&mut info, "", "is_INFO", &[]));
    assert!(
        !b(
            &mut info,
            "",
            "is_method_in",
            &[Arg::Str("IABCMREPSNOFGUKDTV")]
        ),
        "INFO has no letter"
    );
    let mut ext = msg(&request("FOO", ""));
    assert!(b(&mut ext, "", "is_method", &[Arg::Str("FOO")]));
    assert!(!b(
        &mut ext,
        "",
        "is_method_in",
        &[Arg::Str("IABCMREPSNOFGUKDTV")]
    ));
}

#[test]
fn transport_tests() {
    let mut udp = msg(INVITE);
    assert!(b(&mut udp, "", "is_UDP", &[]));
    assert!(!b(&mut udp, "", "is_TCPX", &[]));
    assert!(b(&mut udp, "", "is_proto", &[Arg::Str("tu")]));
    assert!(!b(&mut udp, "", "is_proto", &[Arg::Str("tew")]));
    assert!(b(&mut udp, "", "is_IPv4", &[]));
    assert!(!b(&mut udp, "", "is_IPv6", &[]));
    assert!(b(&mut udp, "", "is_src_port", &[Arg::Int(5062)]));
    assert!(!b(&mut udp, "", "is_src_port", &[Arg::Int(5060)]));
    assert!(b(&mut udp, "", "is_dst_port", &[Arg::Int(5060)]));

    let mut wss = msg_from(INVITE, Proto::Wss, "192.0.2.10:443");
    for (f, want) in [
        ("is_WSS", true),
        ("is_WSX", true),
        ("is_TCPX", true),
        ("is_WS", false),
        ("is_TLS", false),
        ("is_TCP", false),
        ("is_SCTP", false),
        ("is_UDP", false),
    ] {
        assert_eq!(b(&mut wss, "", f, &[]), want, "{f}");
    }
    assert!(b(&mut wss, "", "is_proto", &[Arg::Str("W")]));

    assert!(b(&mut udp, "", "force_rport", &[]));
    assert!(udp.route.force_rport);
}

#[test]
fn connection_flags_are_recorded() {
    use kemi_runtime::msg::SendFlags;
    let mut m = msg(INVITE);
    assert_eq!(m.route.reply_send, SendFlags::default());
    assert!(b(&mut m, "", "set_reply_no_connect", &[]));
    assert_eq!(
        m.route.reply_send,
        SendFlags {
            no_connect: true,
            close: false
        }
    );
    assert!(b(&mut m, "", "set_reply_close", &[]));
    assert!(m.route.reply_send.close);
    assert_eq!(m.route.forward_send, SendFlags::default());
    assert!(b(&mut m, "", "set_forward_no_connect", &[]));
    assert!(b(&mut m, "", "set_forward_close", &[]));
    assert_eq!(
        m.route.forward_send,
        SendFlags {
            no_connect: true,
            close: true
        }
    );
}

#[test]
fn ruri_and_destination_setters() {
    let mut m = msg(INVITE);
    assert!(b(&mut m, "", "setuser", &[Arg::Str("carol")]));
    assert_eq!(
        pv(&mut m, "$ru"),
        s("sip:carol@example.com:5080;transport=udp")
    );
    assert!(b(&mut m, "", "sethost", &[Arg::Str("10.1.1.1")]));
    assert_eq!(
        pv(&mut m, "$ru"),
        s("sip:carol@10.1.1.1:5080;transport=udp")
    );
    assert!(!b(&mut m, "", "sethost", &[Arg::Str("")]));
    assert!(b(&mut m, "", "seturi", &[Arg::Str("sip:dave@example.org")]));
    assert_eq!(m.route.new_ruri.as_deref(), Some("sip:dave@example.org"));
    assert!(!b(&mut m, "", "seturi", &[Arg::Str("not a uri")]));
    assert_eq!(
        m.route.new_ruri.as_deref(),
        Some("sip:dave@example.org"),
        "unchanged on error"
    );

    assert!(!b(&mut m, "", "isdsturiset", &[]));
    assert!(b(&mut m, "", "setdsturi", &[Arg::Str("sip:10.9.9.9:5070")]));
    assert!(b(&mut m, "", "isdsturiset", &[]));
    assert_eq!(pv(&mut m, "$du"), s("sip:10.9.9.9:5070"));
    assert!(b(&mut m, "", "resetdsturi", &[]));
    assert!(!b(&mut m, "", "isdsturiset", &[]));

    // No R-URI on a reply.
    let mut r = msg(RINGING);
    assert!(!b(&mut r, "", "setuser", &[Arg::Str("x")]));
}

#[test]
fn is_myself_with_listen_sockets_and_aliases() {
    let mut m = msg(INVITE);
    let yes = [
        "sip:198.51.100.1",
        "sip:u@198.51.100.1:5060",
        "sips:198.51.100.1;transport=tcp",
        "198.51.100.1",
        "sip:proxy.example.com:7000",
        "sip:PROXY.example.com",
        "proxy.example.com",
        "sip:alias.example.net:5080",
        "sip:alias.example.net",
    ];
    for uri in yes {
        assert!(b(&mut m, "", "is_myself", &[Arg::Str(uri)]), "{uri}");
    }
    let no = [
        "sip:198.51.100.1:5070",
        "sip:198.51.100.1;transport=tls",
        "sip:198.51.100.2",
        "sip:alias.example.net:5060",
        "sip:other.example.com",
        "sip:u@198.51.100.1:bad",
        "",
    ];
    for uri in no {
        assert!(!b(&mut m, "", "is_myself", &[Arg::Str(uri)]), "{uri}");
    }

    // R-URI sip:bob@example.com:5080 is not us; after a rewrite to our alias it is.
    assert!(!b(&mut m, "", "is_myself_ruri", &[]));
    assert!(b(&mut m, "", "sethost", &[Arg::Str("alias.example.net")]));
    assert!(b(&mut m, "", "is_myself_ruri", &[]));
    assert!(b(&mut m, "", "is_myself_nhuri", &[]));
    assert!(!b(&mut m, "", "is_myself_duri", &[]));
    assert!(b(&mut m, "", "setdsturi", &[Arg::Str("sip:192.0.2.99")]));
    assert!(
        !b(&mut m, "", "is_myself_nhuri", &[]),
        "next hop is $du when set"
    );
    assert!(!b(&mut m, "", "is_myself_duri", &[]));

    assert!(!b(&mut m, "", "is_myself_furi", &[]));
    assert!(!b(&mut m, "", "is_myself_turi", &[]));
    assert!(!b(&mut m, "", "is_myself_srcip", &[]));
    assert!(!b(&mut m, "", "is_myself_suri", &[]));

    let mut ours = msg_from(&request("OPTIONS", ""), Proto::Udp, "198.51.100.1:5060");
    assert!(b(&mut ours, "", "is_myself_srcip", &[]));
    assert!(b(&mut ours, "", "is_myself_suri", &[]));
    assert!(
        b(&mut ours, "", "is_myself_ruri", &[]),
        "sip:proxy.example.com is an alias"
    );
    let mut other_port = msg_from(&request("OPTIONS", ""), Proto::Udp, "198.51.100.1:40000");
    assert!(b(&mut other_port, "", "is_myself_srcip", &[]));
    assert!(!b(&mut other_port, "", "is_myself_suri", &[]));

    let from_us =
        request("OPTIONS", "").replace("sip:bob@example.com", "sip:bob@proxy.example.com");
    let mut t = msg(&from_us);
    assert!(b(&mut t, "", "is_myself_turi", &[]));
}
