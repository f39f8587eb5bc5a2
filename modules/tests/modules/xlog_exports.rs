//! `KSR.xlog.*`: PV interpolation on real messages, levels, the per-worker format cache, and
//! lines reaching `SipMsg::log` (so `route-test` captures them).

use kemi_runtime::msg::{LogLevel, LogRecord};
use kemi_runtime::Arg;
use modules::xlog::format;

use crate::common::{b, i, msg, INVITE, RINGING};

fn logs(m: &kemi_runtime::SipMsg) -> Vec<LogRecord> {
    m.captured_logs.clone().unwrap_or_default()
}

fn rec(level: LogLevel, text: &str) -> LogRecord {
    LogRecord {
        level,
        text: text.into(),
    }
}

#[test]
fn interpolates_pvs_of_the_message() {
    let mut m = msg(INVITE);
    assert!(b(
        &mut m,
        "pv",
        "sets",
        &[Arg::Str("$var(who)"), Arg::Str("carol")]
    ));
    let fmt = "ru=$ru ua=$hdr(User-Agent) fU=$fU who=$var(who) n=$var(unset) cost=$$5 x=$hdr(X-None) $(ci) $(ru{s.len}) $nosuch\n";
    assert_eq!(i(&mut m, "xlog", "xinfo", &[Arg::Str(fmt)]), 1);
    assert_eq!(
        logs(&m),
        [rec(
            LogLevel::Info,
            "ru=sip:bob@example.com:5080;transport=udp ua=softphone/1.0 fU=alice who=carol n=0 \
             cost=$5 x=<null> a84b4c76e66710@pc33.atlanta.example.com <null> <null>"
        )]
    );
}

#[test]
fn rewritten_ruri_is_what_ru_prints() {
    let mut m = msg(INVITE);
    assert!(b(
        &mut m,
        "pv",
        "sets",
        &[Arg::Str("$rU"), Arg::Str("dave")]
    ));
    i(&mut m, "xlog", "xerr", &[Arg::Str("to $rU@$rd status=$rs")]);
    assert_eq!(
        logs(&m),
        [rec(LogLevel::Err, "to dave@example.com status=<null>")]
    );

    let mut r = msg(RINGING);
    i(&mut r, "xlog", "xnotice", &[Arg::Str("$rs $rr for $rm")]);
    assert_eq!(logs(&r), [rec(LogLevel::Notice, "180 Ringing for INVITE")]);
}

#[test]
fn levels() {
    let mut m = msg(INVITE);
    for (f, level) in [
        ("xdbg", LogLevel::Debug),
        ("xinfo", LogLevel::Info),
        ("xnotice", LogLevel::Notice),
        ("xwarn", LogLevel::Warn),
        ("xerr", LogLevel::Err),
        ("xcrit", LogLevel::Crit),
        ("xalert", LogLevel::Crit),
    ] {
        m.captured_logs = Some(Vec::new());
        assert_eq!(i(&mut m, "xlog", f, &[Arg::Str("$rm")]), 1, "{f}");
        assert_eq!(logs(&m), [rec(level, "INVITE")], "{f}");
    }
    for (name, level) in [
        ("L_DBG", LogLevel::Debug),
        ("L_INFO", LogLevel::Info),
        ("L_WARN", LogLevel::Warn),
        ("L_ERR", LogLevel::Err),
        ("L_ALERT", LogLevel::Crit),
    ] {
        m.captured_logs = Some(Vec::new());
        assert_eq!(
            i(&mut m, "xlog", "xlog", &[Arg::Str(name), Arg::Str("m=$rm")]),
            1
        );
        assert_eq!(logs(&m), [rec(level, "m=INVITE")], "{name}");
    }
    m.captured_logs = Some(Vec::new());
    assert_eq!(
        i(&mut m, "xlog", "xlog", &[Arg::Str("bogus"), Arg::Str("x")]),
        -1
    );
    assert_eq!(logs(&m).len(), 1, "the bad level is reported");
    m.captured_logs = Some(Vec::new());
    assert_eq!(
        i(
            &mut m,
            "xlog",
            "xlog_facility",
            &[Arg::Str("LOG_LOCAL3"), Arg::Str("L_WARN"), Arg::Str("$ci")]
        ),
        1
    );
    assert_eq!(
        logs(&m),
        [rec(
            LogLevel::Warn,
            "a84b4c76e66710@pc33.atlanta.example.com"
        )]
    );
    assert_eq!(
        i(
            &mut m,
            "xlog",
            "xlog_facility",
            &[Arg::Str("LOG_NOPE"), Arg::Str("L_WARN"), Arg::Str("x")]
        ),
        -1
    );
}

#[test]
fn formats_are_parsed_once_and_reused() {
    let fmt = "cached format test $ci $fu";
    assert!(!format::is_cached(fmt));
    let mut m = msg(INVITE);
    i(&mut m, "xlog", "xinfo", &[Arg::Str(fmt)]);
    assert!(format::is_cached(fmt));
    let first = format::cached(fmt);
    // A second message with the same format uses the same parsed segments and the new values.
    let mut r = msg(RINGING);
    i(&mut r, "xlog", "xinfo", &[Arg::Str(fmt)]);
    assert!(std::rc::Rc::ptr_eq(&first, &format::cached(fmt)));
    assert_eq!(
        logs(&r),
        [rec(
            LogLevel::Info,
            "cached format test a84b4c76e66710@pc33.atlanta.example.com sip:alice@atlanta.example.com"
        )]
    );
    // Plain text is logged as is and not cached.
    i(&mut r, "xlog", "xinfo", &[Arg::Str("no pvs here")]);
    assert!(!format::is_cached("no pvs here"));
}
