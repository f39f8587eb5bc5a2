//! `KSR.pv.*` on the start-line, header, credential, time and storage PVs: `$rv $ct $cT $au
//! $aU $ad $ar $mb $TS $Ts $TF $Tf $shv(x) $avp(x) $xavp(r=>f)`, and the R-URI part writes.

use std::time::{SystemTime, UNIX_EPOCH};

use kemi_runtime::{Arg, Xval};

use crate::common::{b, i, msg, pv, request, s, x, INVITE, RINGING};

fn sets(m: &mut kemi_runtime::SipMsg, name: &str, v: &str) -> bool {
    b(m, "pv", "sets", &[Arg::Str(name), Arg::Str(v)])
}

fn seti(m: &mut kemi_runtime::SipMsg, name: &str, v: i32) -> bool {
    b(m, "pv", "seti", &[Arg::Str(name), Arg::Int(v)])
}

fn unset(m: &mut kemi_runtime::SipMsg, name: &str) -> bool {
    b(m, "pv", "unset", &[Arg::Str(name)])
}

fn is_null(m: &mut kemi_runtime::SipMsg, name: &str) -> bool {
    b(m, "pv", "is_null", &[Arg::Str(name)])
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[test]
fn start_line_and_header_pvs() {
    let mut m = msg(INVITE);
    assert_eq!(pv(&mut m, "$rv"), s("SIP/2.0"));
    assert_eq!(pv(&mut m, "$ct"), s("<sip:alice@10.0.0.5:5062>"));
    assert_eq!(pv(&mut m, "$cT"), s("application/sdp"));
    assert_eq!(pv(&mut m, "$mb"), s(INVITE));
    assert_eq!(pv(&mut m, "$au"), Xval::Null, "no credentials");
    assert_eq!(pv(&mut m, "$ar"), Xval::Null);
    assert!(is_null(&mut m, "$au"));
    assert_eq!(x(&mut m, "pv", "getw", &[Arg::Str("$ar")]), s("<null>"));
    assert_eq!(x(&mut m, "pv", "gete", &[Arg::Str("$aU")]), s(""));

    let mut r = msg(RINGING);
    assert_eq!(pv(&mut r, "$rv"), s("SIP/2.0"), "replies too");
    assert_eq!(pv(&mut r, "$ct"), Xval::Null);
    assert_eq!(pv(&mut r, "$cT"), Xval::Null);
    assert!(is_null(&mut r, "$ct"));
    assert_eq!(pv(&mut r, "$mb"), s(RINGING));

    let text = request(
        "NOTIFY",
        "m: <sip:a@10.0.0.1>;expires=60, <sip:b@10.0.0.2>\r\nc: text/plain\r\n",
    );
    let mut n = msg(&text);
    assert_eq!(
        pv(&mut n, "$ct"),
        s("<sip:a@10.0.0.1>;expires=60, <sip:b@10.0.0.2>"),
        "compact form, whole first header"
    );
    assert_eq!(pv(&mut n, "$cT"), s("text/plain"));

    for name in [
        "$rv", "$ct", "$cT", "$mb", "$au", "$ar", "$TS", "$Ts", "$Tf",
    ] {
        assert!(!sets(&mut m, name, "x"), "{name} is read-only");
        assert!(!unset(&mut m, name), "{name} is read-only");
    }
}

#[test]
fn digest_credentials() {
    let text = request(
        "REGISTER",
        "Authorization: Digest username=\"alice@atlanta.example.com\", realm=\"atlanta.example.com\", nonce=\"ea9c8e88\", uri=\"sip:proxy.example.com\", response=\"dfe56131d1958046689d83306477ecc\"\r\n",
    );
    let mut m = msg(&text);
    assert_eq!(pv(&mut m, "$au"), s("alice"), "user part of the username");
    assert_eq!(pv(&mut m, "$aU"), s("alice@atlanta.example.com"));
    assert_eq!(pv(&mut m, "$ad"), s("atlanta.example.com"));
    assert_eq!(pv(&mut m, "$ar"), s("atlanta.example.com"));
    assert!(!is_null(&mut m, "$au"));

    // Proxy-Authorization wins over Authorization; a username without a domain.
    let text = request(
        "INVITE",
        "Authorization: Digest username=\"ua\", realm=\"ua.example\", nonce=1\r\n\
         Proxy-Authorization: Digest realm=\"proxy.example\",username=bob,nonce=\"2\"\r\n",
    );
    let mut p = msg(&text);
    assert_eq!(pv(&mut p, "$au"), s("bob"));
    assert_eq!(pv(&mut p, "$aU"), s("bob"));
    assert_eq!(pv(&mut p, "$ad"), Xval::Null);
    assert_eq!(pv(&mut p, "$ar"), s("proxy.example"));

    // ACK and CANCEL carry no credentials; other schemes are not Digest.
    let ack = request(
        "ACK",
        "Proxy-Authorization: Digest username=\"bob\", realm=\"r\"\r\n",
    );
    let mut a = msg(&ack);
    assert_eq!(pv(&mut a, "$au"), Xval::Null);
    let basic = request("OPTIONS", "Authorization: Basic YWxpY2U6c2VjcmV0\r\n");
    let mut o = msg(&basic);
    assert_eq!(pv(&mut o, "$au"), Xval::Null);
    assert_eq!(pv(&mut o, "$ar"), Xval::Null);
    let broken = request(
        "OPTIONS",
        "Authorization: Digest username=\"unterminated\r\n",
    );
    let mut o = msg(&broken);
    assert_eq!(pv(&mut o, "$au"), Xval::Null, "malformed: null, no panic");
}

#[test]
fn time_pvs() {
    let mut m = msg(INVITE);
    let before = unix_now();
    let ts = match pv(&mut m, "$Ts") {
        Xval::Int(n) => i64::from(n),
        Xval::Long(n) => n,
        other => panic!("$Ts is {other:?}"),
    };
    let now = match pv(&mut m, "$TS") {
        Xval::Int(n) => i64::from(n),
        Xval::Long(n) => n,
        other => panic!("$TS is {other:?}"),
    };
    let after = unix_now();
    assert!(
        (before..=after).contains(&ts),
        "{before} <= {ts} <= {after}"
    );
    assert!((ts..=after).contains(&now));
    assert_eq!(
        x(&mut m, "pv", "getl", &[Arg::Str("$Ts")]),
        Xval::Long(ts),
        "cached"
    );

    // $Ts is kept for the message: the cache is what a later read gives, whatever the clock.
    let mut c = msg(INVITE);
    let _ = c.route.msg_time.set(1_606_386_030);
    assert_eq!(
        x(&mut c, "pv", "getl", &[Arg::Str("$Ts")]),
        Xval::Long(1_606_386_030)
    );
    assert_eq!(pv(&mut c, "$Tf"), s("Thu Nov 26 10:20:30 2020"));
    assert_ne!(
        x(&mut c, "pv", "getl", &[Arg::Str("$TS")]),
        Xval::Long(1_606_386_030),
        "$TS is not cached"
    );
    match pv(&mut c, "$TF") {
        Xval::Str(t) => assert_eq!(t.len(), 24, "{t}"),
        other => panic!("$TF is {other:?}"),
    }
    assert_eq!(i(&mut c, "pv", "geti", &[Arg::Str("$Ts")]), 1_606_386_030);
}

#[test]
fn ruri_part_and_dst_writes() {
    let mut m = msg(INVITE);
    assert!(sets(&mut m, "$rU", "carol"));
    assert!(sets(&mut m, "$rd", "example.org"));
    assert!(seti(&mut m, "$rp", 5070));
    assert_eq!(
        pv(&mut m, "$ru"),
        s("sip:carol@example.org:5070;transport=udp")
    );
    assert_eq!(pv(&mut m, "$rU"), s("carol"));
    assert_eq!(pv(&mut m, "$rd"), s("example.org"));
    assert_eq!(pv(&mut m, "$rp"), s("5070"));
    assert!(sets(&mut m, "$rp", "5080"), "a port given as text");
    assert_eq!(pv(&mut m, "$rp"), s("5080"));
    assert!(!seti(&mut m, "$rp", 70000), "not a port");
    assert!(!unset(&mut m, "$rd"), "a URI needs a host");
    assert_eq!(pv(&mut m, "$rd"), s("example.org"));
    assert_eq!(
        pv(&mut m, "$ou"),
        s("sip:bob@example.com:5080;transport=udp")
    );

    assert!(sets(&mut m, "$du", "sip:10.0.0.9:5070;transport=tcp"));
    assert_eq!(pv(&mut m, "$du"), s("sip:10.0.0.9:5070;transport=tcp"));
    assert!(sets(&mut m, "$du", ""), "empty clears");
    assert!(is_null(&mut m, "$du"));
    assert!(sets(&mut m, "$du", "sip:10.0.0.8"));
    assert!(unset(&mut m, "$du"));
    assert_eq!(m.route.dst_uri, None);
}

#[test]
fn shared_variables_across_messages_and_threads() {
    let mut a = msg(INVITE);
    let mut b_msg = msg(RINGING);
    assert_eq!(pv(&mut a, "$shv(pvt_fresh)"), Xval::Int(0), "starts at 0");
    assert!(!is_null(&mut a, "$shv(pvt_fresh)"));

    assert!(sets(&mut a, "$shv(pvt_mode)", "maintenance"));
    assert_eq!(
        pv(&mut b_msg, "$shv(pvt_mode)"),
        s("maintenance"),
        "seen from another message"
    );
    assert!(seti(&mut b_msg, "$shv(pvt_mode)", 3));
    assert_eq!(pv(&mut a, "$shv(pvt_mode)"), Xval::Int(3));
    assert!(unset(&mut a, "$shv(pvt_mode)"));
    assert_eq!(pv(&mut b_msg, "$shv(pvt_mode)"), Xval::Int(0), "unset is 0");
    assert!(b(
        &mut a,
        "pv",
        "setl",
        &[Arg::Str("$shv(pvt_big)"), Arg::Long(1 << 40)]
    ));
    assert_eq!(pv(&mut b_msg, "$shv(pvt_big)"), Xval::Long(1 << 40));

    assert!(sets(&mut a, "$shv(pvt_threads)", "from main"));
    let seen: Vec<Xval> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|n| {
                scope.spawn(move || {
                    let mut w = msg(INVITE);
                    let seen = pv(&mut w, "$shv(pvt_threads)");
                    assert!(seti(&mut w, &format!("$shv(pvt_thread_{n})"), n));
                    seen
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| panic!("worker panicked")))
            .collect()
    });
    assert!(seen.iter().all(|v| *v == s("from main")), "{seen:?}");
    for n in 0..4 {
        assert_eq!(
            pv(&mut a, &format!("$shv(pvt_thread_{n})")),
            Xval::Int(n),
            "written on another thread"
        );
    }
    assert_eq!(pv(&mut a, "$shv(pvt_Mode)"), Xval::Int(0), "case-sensitive");
}

#[test]
fn avps_stack_per_message() {
    let mut m = msg(INVITE);
    assert_eq!(pv(&mut m, "$avp(dst)"), Xval::Null, "never set");
    assert!(is_null(&mut m, "$avp(dst)"));
    assert!(sets(&mut m, "$avp(dst)", "sip:a@10.0.0.1"));
    assert!(seti(&mut m, "$avp(dst)", 2));
    assert!(sets(&mut m, "$avp(dst)", "sip:c@10.0.0.3"));
    assert!(seti(&mut m, "$avp(other)", 9));
    assert_eq!(pv(&mut m, "$avp(dst)"), s("sip:c@10.0.0.3"), "newest");
    assert_eq!(
        pv(&mut m, "$(avp(dst)[*])"),
        s("sip:c@10.0.0.3, 2, sip:a@10.0.0.1"),
        "all, newest first"
    );
    assert!(unset(&mut m, "$avp(dst)"), "removes the newest");
    assert_eq!(pv(&mut m, "$avp(dst)"), Xval::Int(2));
    assert_eq!(i(&mut m, "pv", "geti", &[Arg::Str("$avp(dst)")]), 2);
    assert!(unset(&mut m, "$(avp(dst)[*])"), "removes them all");
    assert!(is_null(&mut m, "$avp(dst)"));
    assert_eq!(pv(&mut m, "$avp(other)"), Xval::Int(9), "other names kept");
    assert!(sets(&mut m, "$avp(other)", "a"));
    assert!(sets(&mut m, "$(avp(other)[*])", "only"), "replaces all");
    assert_eq!(pv(&mut m, "$(avp(other)[*])"), s("only"));

    let mut fresh = msg(INVITE);
    assert!(
        is_null(&mut fresh, "$avp(other)"),
        "AVPs belong to their message"
    );
    for bad in ["$avp()", "$avp(a[0])", "$(avp(x)[1])"] {
        assert!(is_null(&mut fresh, bad), "{bad}");
        assert!(!sets(&mut fresh, bad, "v"), "{bad}");
    }
}

#[test]
fn xavp_fields() {
    let mut m = msg(INVITE);
    assert!(is_null(&mut m, "$xavp(gw)"));
    assert!(is_null(&mut m, "$xavp(gw=>ip)"));

    // A set without an index adds a new root item, as in Kamailio.
    assert!(sets(&mut m, "$xavp(gw=>ip)", "10.0.0.1"));
    assert!(
        seti(&mut m, "$xavp(gw[0]=>port)", 5060),
        "adds to the newest"
    );
    assert_eq!(pv(&mut m, "$xavp(gw=>ip)"), s("10.0.0.1"));
    assert_eq!(pv(&mut m, "$xavp(gw=>port)"), Xval::Int(5060));
    assert_eq!(pv(&mut m, "$xavp(gw)"), s("<<xavp:gw>>"));
    assert!(!is_null(&mut m, "$xavp(gw)"));
    assert!(is_null(&mut m, "$xavp(gw=>weight)"));

    assert!(sets(&mut m, "$xavp(gw=>ip)", "10.0.0.2"));
    assert_eq!(pv(&mut m, "$xavp(gw=>ip)"), s("10.0.0.2"), "newest item");
    assert!(
        is_null(&mut m, "$xavp(gw=>port)"),
        "the new item has no port"
    );
    assert_eq!(pv(&mut m, "$xavp(gw[1]=>ip)"), s("10.0.0.1"));
    assert_eq!(pv(&mut m, "$xavp(gw[-1]=>port)"), Xval::Int(5060), "oldest");
    assert!(is_null(&mut m, "$xavp(gw[2]=>ip)"));

    // A field set twice in one item: the newest is read, unset uncovers the older one.
    assert!(sets(&mut m, "$xavp(gw[0]=>ip)", "10.0.0.3"));
    assert_eq!(pv(&mut m, "$xavp(gw=>ip)"), s("10.0.0.3"));
    assert!(unset(&mut m, "$xavp(gw=>ip)"));
    assert_eq!(pv(&mut m, "$xavp(gw=>ip)"), s("10.0.0.2"));

    // Unset of the root removes the newest item.
    assert!(unset(&mut m, "$xavp(gw)"));
    assert_eq!(pv(&mut m, "$xavp(gw=>ip)"), s("10.0.0.1"));
    assert!(unset(&mut m, "$xavp(gw[*])"));
    assert!(is_null(&mut m, "$xavp(gw)"));

    // [0] creates the item when there is none; a plain root value.
    assert!(sets(&mut m, "$xavp(cfg[0]=>mode)", "a"));
    assert_eq!(pv(&mut m, "$xavp(cfg=>mode)"), s("a"));
    assert!(seti(&mut m, "$xavp(flag)", 7));
    assert_eq!(pv(&mut m, "$xavp(flag)"), Xval::Int(7));
    assert!(is_null(&mut m, "$xavp(flag=>x)"));
    assert!(
        !sets(&mut m, "$xavp(flag[0]=>x)", "v"),
        "a plain item has no fields"
    );
    assert!(!sets(&mut m, "$xavp(cfg[3]=>x)", "v"), "no such item");
    assert!(!sets(&mut m, "$xavp(cfg[*]=>x)", "v"));

    let mut fresh = msg(INVITE);
    assert!(is_null(&mut fresh, "$xavp(cfg)"), "per message");
    for bad in ["$xavp()", "$xavp(r=>)", "$xavp(r[a])", "$xavp(r=>f=>g)"] {
        assert!(is_null(&mut fresh, bad), "{bad}");
        assert!(!sets(&mut fresh, bad, "v"), "{bad}");
    }
}

#[test]
fn xlog_interpolates_the_new_pvs() {
    let text = request(
        "REGISTER",
        "Authorization: Digest username=\"alice\", realm=\"atlanta.example.com\", nonce=\"n\"\r\n",
    );
    let mut m = msg(&text);
    assert!(sets(&mut m, "$avp(route)", "gw1"));
    assert!(sets(&mut m, "$xavp(call=>leg)", "a"));
    assert!(sets(&mut m, "$shv(pvt_xlog)", "on"));
    let _ = m.route.msg_time.set(0);
    let fmt = "$rm $rv by $au@$ar ct=$ct cT=$cT avp=$avp(route) leg=$xavp(call=>leg) shv=$shv(pvt_xlog) at $Ts ($Tf) all=$(avp(route)[*])\n";
    assert_eq!(i(&mut m, "xlog", "xinfo", &[Arg::Str(fmt)]), 1);
    let logs = m.captured_logs.take().unwrap_or_default();
    let line = logs.last().map(|l| l.text.as_str()).unwrap_or_default();
    assert_eq!(
        line,
        "REGISTER SIP/2.0 by alice@atlanta.example.com ct=<null> cT=<null> avp=gw1 leg=a shv=on at 0 (Thu Jan  1 00:00:00 1970) all=gw1"
    );
}
