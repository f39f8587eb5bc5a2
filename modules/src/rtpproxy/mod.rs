//! The `rtpproxy` module (`KSR.rtpproxy.*`): media relay through the rtpproxy UDP control
//! protocol (text commands with a cookie: `U` to create or update a session for an offer,
//! `L` to look one up for an answer, `D` to delete, `R` to record, `P`/`S` to play), which
//! rtpproxy and rtpengine's `--listen-udp` serve. Kamailio's names and return codes.
//!
//! For each `m=` stream of the SDP one `U`/`L` command goes with the Call-ID, the media
//! address and port, and the tags (`tag;N`, N the stream's number); the relay's address and
//! port then replace the stream's `c=` and `m=` port (and an `a=rtcp:` port). Without the `r`
//! flag the media address sent is the source address of the SIP message, as Kamailio does;
//! `r` trusts the SDP. Flags: `a` asymmetric, `i`/`e` direction (two of them, caller side
//! first), `r` trust address, `l` force lookup, `w` symmetric, `o` the `o=` address too, `f`/`c`
//! accepted (every `c=` line is rewritten anyway). The
//! `_ip` variants put the given address into the SDP instead of the relay's.
//!
//! Modparams: `rtpproxy_sock` (sets and weights as `rtpengine_sock`), `rtpproxy_tout`
//! (seconds, 1), `rtpproxy_retr` (5), `rtpproxy_disable_tout` (60 s), `queried_nodes_limit`.

pub mod sdp;

use std::sync::Arc;

use kemi_runtime::msg::LogLevel;
use kemi_runtime::{kemi, SipMsg};

use crate::rtpengine::relay::Relay;
use crate::rtpengine::{chosen_set, manage_op, relay_from_params, set_sets, Manage};
use crate::setup::{SetupCtx, SetupError};

/// The rtpproxy-protocol instances of one server.
#[derive(Debug)]
pub struct RtpproxyRelay(pub Relay);

/// Set up rtpproxy from its modparams.
pub fn setup(ctx: &mut SetupCtx<'_>) -> Result<(), SetupError> {
    if let Some(relay) = relay_from_params(ctx, "rtpproxy", "rtpproxy", ("rtpproxy_tout", 1000))? {
        ctx.services.insert(Arc::new(RtpproxyRelay(relay)));
    }
    Ok(())
}

fn err(msg: &mut SipMsg, what: &str, why: &str) -> i32 {
    msg.log(LogLevel::Err, &format!("rtpproxy: {what} failed: {why}"));
    -1
}

/// Send one command; the reply text (after the cookie), or why not.
fn command(msg: &SipMsg, set: Option<u32>, call_id: &str, cmd: &str) -> Result<String, String> {
    let Some(relay) = msg.env.services.get_arc::<RtpproxyRelay>() else {
        return Err("module not set up (no rtpproxy_sock)".into());
    };
    let (node, reply) = relay
        .0
        .command(set, call_id, cmd.as_bytes())
        .map_err(|e| e.to_string())?;
    let text = std::str::from_utf8(&reply)
        .map_err(|_| format!("{node}: reply is not text"))?
        .trim()
        .to_string();
    if text.starts_with('E') {
        return Err(format!("{node}: error reply `{text}`"));
    }
    Ok(text)
}

/// The Call-ID and the (From, To) tags, `None` for a missing To tag.
fn call(msg: &SipMsg) -> Option<(String, String, Option<String>)> {
    let m = &msg.message;
    Some((
        m.call_id()?.to_string(),
        m.from_tag()?.to_string(),
        m.to_tag().map(str::to_string),
    ))
}

/// Offer (`U`) or answer (`L`) every stream of the SDP and rewrite it.
fn offer_answer(msg: &mut SipMsg, offer: bool, flags: &str, media_ip: Option<&str>) -> i32 {
    let what = if offer { "offer" } else { "answer" };
    if !crate::rtpengine::has_sdp(msg) {
        return err(msg, what, "the message has no SDP body");
    }
    let Some((call_id, from_tag, to_tag)) = call(msg) else {
        return err(msg, what, "no Call-ID or From tag");
    };
    let offer = offer && !flags.contains('l');
    if !offer && to_tag.is_none() {
        return err(msg, what, "no To tag");
    }
    let streams = match sdp::streams(msg.message.body()) {
        Ok(s) => s,
        Err(e) => return err(msg, what, &e.to_string()),
    };
    let mut mods = String::new();
    for c in flags.chars() {
        match c {
            'a' => mods.push('A'),
            'i' => mods.push('I'),
            'e' => mods.push('E'),
            'w' => mods.push('W'),
            _ => {}
        }
    }
    let trust = flags.contains('r');
    let src = msg.rcv.src.ip().to_string();
    let set = chosen_set(msg, !offer);
    let mut relayed = Vec::with_capacity(streams.len());
    for (n, s) in streams.iter().enumerate() {
        if s.port == 0 {
            relayed.push(None);
            continue;
        }
        let addr = if trust { s.addr.as_str() } else { src.as_str() };
        let v6 = if addr.contains(':') { "6" } else { "" };
        let medianum = n + 1;
        let cmd = match (&to_tag, offer) {
            (Some(to), true) => format!(
                "U{mods}{v6} {call_id} {addr} {} {from_tag};{medianum} {to};{medianum}",
                s.port
            ),
            (None, _) => format!(
                "U{mods}{v6} {call_id} {addr} {} {from_tag};{medianum}",
                s.port
            ),
            (Some(to), false) => format!(
                "L{mods}{v6} {call_id} {addr} {} {from_tag};{medianum} {to};{medianum}",
                s.port
            ),
        };
        let reply = match command(msg, set, &call_id, &cmd) {
            Ok(r) => r,
            Err(e) => return err(msg, what, &e),
        };
        let mut it = reply.split_whitespace();
        let port = it.next().and_then(|p| p.parse::<u16>().ok());
        let Some(port) = port.filter(|p| *p != 0) else {
            return err(msg, what, &format!("unusable reply `{reply}`"));
        };
        let ip = media_ip
            .filter(|i| !i.is_empty())
            .map(str::to_string)
            .or_else(|| it.next().map(str::to_string))
            .unwrap_or_else(|| s.addr.clone());
        relayed.push(Some((ip, port)));
    }
    let body = match sdp::rewrite(msg.message.body(), &relayed, flags.contains('o')) {
        Ok(b) => b,
        Err(e) => return err(msg, what, &e.to_string()),
    };
    match msg.message.with_body(&body) {
        Some(m) => {
            msg.message = m;
            1
        }
        None => err(msg, what, "the new SDP does not fit the message"),
    }
}

/// Delete the session (`D callid from_tag [to_tag]`).
fn destroy(msg: &mut SipMsg, _flags: &str) -> i32 {
    let Some((call_id, from_tag, to_tag)) = call(msg) else {
        return err(msg, "destroy", "no Call-ID or From tag");
    };
    let cmd = match to_tag {
        Some(t) => format!("D {call_id} {from_tag} {t}"),
        None => format!("D {call_id} {from_tag}"),
    };
    match command(msg, chosen_set(msg, false), &call_id, &cmd) {
        Ok(_) => 1,
        Err(e) => err(msg, "destroy", &e),
    }
}

fn simple(msg: &mut SipMsg, what: &str, cmd: impl FnOnce(&str, &str, &str) -> String) -> i32 {
    let Some((call_id, from_tag, to_tag)) = call(msg) else {
        return err(msg, what, "no Call-ID or From tag");
    };
    let c = cmd(&call_id, &from_tag, to_tag.as_deref().unwrap_or_default());
    match command(msg, chosen_set(msg, false), &call_id, c.trim_end()) {
        Ok(_) => 1,
        Err(e) => err(msg, what, &e),
    }
}

fn manage(msg: &mut SipMsg, flags: &str, media_ip: Option<&str>) -> i32 {
    match manage_op(msg) {
        Manage::Offer => offer_answer(msg, true, flags, media_ip),
        Manage::Answer => offer_answer(msg, false, flags, media_ip),
        Manage::Delete => destroy(msg, flags),
        Manage::Nothing => -1,
    }
}

/// Offer, answer or destroy as the message calls for (as `rtpengine_manage`).
#[kemi(module = "rtpproxy", name = "rtpproxy_manage0")]
pub fn rtpproxy_manage0(msg: &mut SipMsg) -> i32 {
    manage(msg, "", None)
}

/// `rtpproxy_manage` with flags.
#[kemi(module = "rtpproxy", name = "rtpproxy_manage")]
pub fn rtpproxy_manage(msg: &mut SipMsg, flags: &str) -> i32 {
    manage(msg, flags, None)
}

/// `rtpproxy_manage` with flags and the address to put into the SDP.
#[kemi(module = "rtpproxy", name = "rtpproxy_manage_ip")]
pub fn rtpproxy_manage_ip(msg: &mut SipMsg, flags: &str, mip: &str) -> i32 {
    manage(msg, flags, Some(mip))
}

/// Create or update the session for this offer and rewrite the SDP.
#[kemi(module = "rtpproxy", name = "rtpproxy_offer0")]
pub fn rtpproxy_offer0(msg: &mut SipMsg) -> i32 {
    offer_answer(msg, true, "", None)
}

/// `rtpproxy_offer` with flags.
#[kemi(module = "rtpproxy", name = "rtpproxy_offer")]
pub fn rtpproxy_offer(msg: &mut SipMsg, flags: &str) -> i32 {
    offer_answer(msg, true, flags, None)
}

/// `rtpproxy_offer` with flags and the address to put into the SDP.
#[kemi(module = "rtpproxy", name = "rtpproxy_offer_ip")]
pub fn rtpproxy_offer_ip(msg: &mut SipMsg, flags: &str, mip: &str) -> i32 {
    offer_answer(msg, true, flags, Some(mip))
}

/// Look the session up for this answer and rewrite the SDP.
#[kemi(module = "rtpproxy", name = "rtpproxy_answer0")]
pub fn rtpproxy_answer0(msg: &mut SipMsg) -> i32 {
    offer_answer(msg, false, "", None)
}

/// `rtpproxy_answer` with flags.
#[kemi(module = "rtpproxy", name = "rtpproxy_answer")]
pub fn rtpproxy_answer(msg: &mut SipMsg, flags: &str) -> i32 {
    offer_answer(msg, false, flags, None)
}

/// `rtpproxy_answer` with flags and the address to put into the SDP.
#[kemi(module = "rtpproxy", name = "rtpproxy_answer_ip")]
pub fn rtpproxy_answer_ip(msg: &mut SipMsg, flags: &str, mip: &str) -> i32 {
    offer_answer(msg, false, flags, Some(mip))
}

/// Delete the session of this call.
#[kemi(module = "rtpproxy", name = "rtpproxy_destroy0")]
pub fn rtpproxy_destroy0(msg: &mut SipMsg) -> i32 {
    destroy(msg, "")
}

/// `rtpproxy_destroy` with flags.
#[kemi(module = "rtpproxy", name = "rtpproxy_destroy")]
pub fn rtpproxy_destroy(msg: &mut SipMsg, flags: &str) -> i32 {
    destroy(msg, flags)
}

/// Record the call (`R`).
#[kemi(module = "rtpproxy", name = "start_recording")]
pub fn rtpproxy_start_recording(msg: &mut SipMsg) -> i32 {
    simple(msg, "start_recording", |c, f, t| format!("R {c} {f} {t}"))
}

/// Play prompt `pname` `count` times to the caller (`P`), as Kamailio's `rtpproxy_stream2uac`.
#[kemi(module = "rtpproxy", name = "rtpproxy_stream2uac")]
pub fn rtpproxy_stream2uac(msg: &mut SipMsg, pname: &str, count: i32) -> i32 {
    let pname = pname.to_string();
    simple(msg, "stream2uac", move |c, f, t| {
        format!("P{count} {c} {pname} session {t} {f}")
    })
}

/// Play prompt `pname` `count` times to the callee (`P`).
#[kemi(module = "rtpproxy", name = "rtpproxy_stream2uas")]
pub fn rtpproxy_stream2uas(msg: &mut SipMsg, pname: &str, count: i32) -> i32 {
    let pname = pname.to_string();
    simple(msg, "stream2uas", move |c, f, t| {
        format!("P{count} {c} {pname} session {f} {t}")
    })
}

/// Stop playing to the caller (`S`).
#[kemi(module = "rtpproxy", name = "rtpproxy_stop_stream2uac")]
pub fn rtpproxy_stop_stream2uac(msg: &mut SipMsg) -> i32 {
    simple(msg, "stop_stream2uac", |c, f, t| format!("S {c} {t} {f}"))
}

/// Stop playing to the callee (`S`).
#[kemi(module = "rtpproxy", name = "rtpproxy_stop_stream2uas")]
pub fn rtpproxy_stop_stream2uas(msg: &mut SipMsg) -> i32 {
    simple(msg, "stop_stream2uas", |c, f, t| format!("S {c} {f} {t}"))
}

/// Use set `id` for the relay commands of this message; -1 when no such set.
#[kemi(module = "rtpproxy", name = "set_rtpproxy_set")]
pub fn set_rtpproxy_set(msg: &mut SipMsg, id: i32) -> i32 {
    set_sets::<RtpproxyRelay>(msg, id, None, |r| &r.0)
}
