//! The `rtpengine` module (`KSR.rtpengine.*`): media relay through rtpengine's ng control
//! protocol (bencoded dictionaries over UDP, a cookie per request), with Kamailio's names,
//! flag strings and return codes (1 success, -1 error).
//!
//! `rtpengine_offer`/`_answer` send the message's SDP with the call's Call-ID and tags and
//! replace the body with the daemon's SDP, Content-Length set (the message is rebuilt at once,
//! so later reads in the route see the new body; header edits keep their places). Nothing is
//! changed when anything fails: no SDP, a daemon error, a malformed or missing reply.
//! `rtpengine_manage` picks the command as Kamailio does: offer for an INVITE/UPDATE with
//! SDP, answer for an ACK/PRACK with SDP and for a reply with SDP to an INVITE/UPDATE/PRACK,
//! delete for BYE, CANCEL, a negative final reply to an INVITE and in a failure callback.
//! The `...2` variants take an explicit `via-branch` value as second parameter.
//!
//! Unlike the other modules these exports do I/O: one blocking UDP exchange on the worker,
//! bounded by `rtpengine_tout_ms × (rtpengine_retr + 1)` per node and `queried_nodes_limit`
//! nodes (see [`relay`]). Modparams: `rtpengine_sock` (repeatable; `N == ` prefixes a set
//! number, `=W` a weight), `rtpengine_tout_ms` (1000), `rtpengine_retr` (5),
//! `queried_nodes_limit` (10), `rtpengine_disable_tout` (60 s), `setid_default`.
//!
//! Not done: late offer (an INVITE without SDP whose 2xx carries the offer is answered as
//! if the 2xx were an answer), Kamailio's call-to-node hash table (the node is chosen by a
//! weighted hash of the Call-ID, so a call stays on its node while the node is up), and the
//! SDP/statistics PVs (`$rtpstat`, `write_sdp_pv`).

pub mod bencode;
pub mod flags;
pub mod relay;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use kemi_runtime::msg::{LogLevel, TmRoute};
use kemi_runtime::{kemi, SipMsg};

use crate::setup::{SetupCtx, SetupError};
use bencode::Value;
use flags::{NgFlags, ViaChoice};
use relay::Relay;

/// The rtpengine instances of one server (ng protocol).
#[derive(Debug)]
pub struct NgRelay(pub Relay);

/// Read the relay modparams shared by rtpengine and rtpproxy into a [`Relay`] (`None`
/// without any `<prefix>_sock`):
/// `<prefix>_sock`, the timeout `tout.0` in units of `tout.1` ms (default 1 s),
/// `<prefix>_retr`, `<prefix>_disable_tout` (s), `queried_nodes_limit`, `setid_default`.
pub(crate) fn relay_from_params(
    ctx: &SetupCtx<'_>,
    module: &str,
    prefix: &str,
    tout: (&str, u64),
) -> Result<Option<Relay>, SetupError> {
    let p = ctx.params(module);
    let sock = format!("{prefix}_sock");
    let retr = format!("{prefix}_retr");
    let disable = format!("{prefix}_disable_tout");
    p.check_known(&[
        &sock,
        tout.0,
        &retr,
        &disable,
        "queried_nodes_limit",
        "setid_default",
    ])?;
    let socks = p.strs(&sock)?;
    if socks.is_empty() {
        // Enabled (every module is by default) but not configured: the exports log and
        // return -1.
        return Ok(None);
    }
    let mut relay = Relay::new(&socks).map_err(|e| p.error(&sock, e.to_string()))?;
    let non_negative = |name: &str, default: i64| -> Result<u64, SetupError> {
        let v = p.int(name, default)?;
        u64::try_from(v).map_err(|_| p.error(name, "must not be negative").into())
    };
    let default_tout = i64::try_from(1000 / tout.1.max(1)).unwrap_or(1);
    relay.timeout = Duration::from_millis(
        non_negative(tout.0, default_tout)?
            .saturating_mul(tout.1)
            .clamp(1, 60_000),
    );
    relay.retries = u32::try_from(non_negative(&retr, 5)?.min(100)).unwrap_or(100);
    relay.disable_tout = Duration::from_secs(non_negative(&disable, 60)?);
    relay.nodes_limit =
        usize::try_from(non_negative("queried_nodes_limit", 10)?.clamp(1, 50)).unwrap_or(10);
    if let Some(id) = p.str("setid_default")? {
        let id = id
            .trim()
            .parse::<u32>()
            .map_err(|_| p.error("setid_default", "must be a set number"))?;
        let Some(pos) = relay.sets.iter().position(|s| s.id == id) else {
            return Err(p.error("setid_default", "no such set").into());
        };
        let set = relay.sets.remove(pos);
        relay.sets.insert(0, set);
    }
    Ok(Some(relay))
}

/// Set up rtpengine from its modparams.
pub fn setup(ctx: &mut SetupCtx<'_>) -> Result<(), SetupError> {
    if let Some(relay) = relay_from_params(ctx, "rtpengine", "rtpengine", ("rtpengine_tout_ms", 1))?
    {
        ctx.services.insert(Arc::new(NgRelay(relay)));
    }
    Ok(())
}

/// Ping `node` (ng `ping`, expecting `pong`): a node that answers is enabled, one that
/// does not is disabled for `rtpengine_disable_tout`. Whether it answered.
pub fn ping(relay: &Relay, node: &relay::Node) -> bool {
    let mut d = BTreeMap::new();
    d.insert(b"command".to_vec(), Value::str("ping"));
    let ok = relay
        .exchange(node, &Value::Dict(d).encode())
        .ok()
        .and_then(|r| Value::decode(&r).ok())
        .is_some_and(|v| v.get("result").and_then(Value::as_str) == Some("pong"));
    if ok {
        relay.set_enabled(node, true);
    } else {
        relay.disable(node);
    }
    ok
}

/// An ng command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `offer`: SDP in, SDP out.
    Offer,
    /// `answer`: SDP in, SDP out.
    Answer,
    /// `delete`.
    Delete,
    /// Any command without SDP (`query`, `start recording`, `block media`, ...).
    Other(&'static str),
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Offer => "offer",
            Op::Answer => "answer",
            Op::Delete => "delete",
            Op::Other(n) => n,
        }
    }
}

/// Whether the message has an SDP body (Content-Type `application/sdp`, non-empty body).
pub(crate) fn has_sdp(msg: &SipMsg) -> bool {
    !msg.message.body().is_empty()
        && msg.message.content_type().is_some_and(|t| {
            t.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/sdp"))
        })
}

/// The set for this command: an answer uses the second set of `set_rtpengine_set2`.
pub(crate) fn chosen_set(msg: &SipMsg, answer: bool) -> Option<u32> {
    let [a, b] = msg.route.media_set;
    if answer {
        b.or(a)
    } else {
        a
    }
}

fn addr_family(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() {
        "IP4"
    } else {
        "IP6"
    }
}

/// Build, send and check one ng command; the reply dictionary on success.
fn ng_call(msg: &mut SipMsg, op: Op, flags: &str, viabranch: Option<&str>) -> Option<Value> {
    let fail = |msg: &mut SipMsg, what: String| {
        msg.log(
            LogLevel::Err,
            &format!("rtpengine: {} failed: {what}", op.name()),
        );
        None
    };
    let Some(relay) = msg.env.services.get_arc::<NgRelay>() else {
        return fail(msg, "module not set up (no rtpengine_sock)".into());
    };
    let f = match NgFlags::parse(flags) {
        Ok(f) => f,
        Err(e) => return fail(msg, e),
    };
    let m = &msg.message;
    let Some(call_id) = f
        .call_id
        .clone()
        .or_else(|| m.call_id().map(str::to_string))
    else {
        return fail(msg, "no Call-ID".into());
    };
    let from_tag = f
        .from_tag
        .clone()
        .or_else(|| m.from_tag().map(str::to_string));
    let to_tag = f.to_tag.clone().or_else(|| m.to_tag().map(str::to_string));
    let via = match (viabranch, f.via) {
        (Some(v), _) if !v.is_empty() => Some(v.to_string()),
        (_, Some(choice)) => {
            let second = match choice {
                ViaChoice::First => false,
                ViaChoice::Second => true,
                ViaChoice::Auto => m.is_response(),
            };
            m.vias()
                .nth(usize::from(second))
                .and_then(Result::ok)
                .and_then(|v| v.branch().map(str::to_string))
        }
        _ => None,
    };
    let mut d = BTreeMap::new();
    f.fill(&mut d);
    d.insert(b"command".to_vec(), Value::str(op.name()));
    d.insert(b"call-id".to_vec(), Value::str(&call_id));
    match &from_tag {
        Some(t) => {
            d.insert(b"from-tag".to_vec(), Value::str(t));
        }
        None if matches!(op, Op::Offer | Op::Answer) => {
            return fail(msg, "no From tag".into());
        }
        None => {}
    }
    let send_to_tag = match op {
        Op::Offer => f.to_tag_always || f.to_tag.is_some(),
        _ => true,
    };
    match &to_tag {
        Some(t) if send_to_tag => {
            d.insert(b"to-tag".to_vec(), Value::str(t));
        }
        None if op == Op::Answer => return fail(msg, "no To tag".into()),
        _ => {}
    }
    if let Some(v) = via {
        d.insert(b"via-branch".to_vec(), Value::str(&v));
    }
    if matches!(op, Op::Offer | Op::Answer) {
        if !has_sdp(msg) {
            return fail(msg, "the message has no SDP body".into());
        }
        d.insert(b"sdp".to_vec(), Value::Bytes(msg.message.body().to_vec()));
        let ip = msg.rcv.src.ip();
        d.insert(
            b"received-from".to_vec(),
            Value::strs(&[addr_family(ip), &ip.to_string()]),
        );
    }
    let payload = Value::Dict(d).encode();
    let set = chosen_set(msg, op == Op::Answer);
    let (node, reply) = match relay.0.command(set, &call_id, &payload) {
        Ok(r) => r,
        Err(e) => return fail(msg, e.to_string()),
    };
    let v = match Value::decode(&reply) {
        Ok(v @ Value::Dict(_)) => v,
        Ok(_) => return fail(msg, format!("{node}: reply is not a dictionary")),
        Err(e) => return fail(msg, format!("{node}: malformed reply ({e})")),
    };
    match v.get("result").and_then(Value::as_str) {
        Some("ok") | Some("pong") => Some(v),
        Some(r) => {
            let reason = v
                .get("error-reason")
                .and_then(Value::as_str)
                .unwrap_or_default();
            fail(msg, format!("{node}: {r}: {reason}"))
        }
        None => fail(msg, format!("{node}: reply has no result")),
    }
}

/// offer/answer: the body replaced by the daemon's SDP.
pub(crate) fn offer_answer(msg: &mut SipMsg, op: Op, flags: &str, viabranch: Option<&str>) -> i32 {
    let Some(v) = ng_call(msg, op, flags, viabranch) else {
        return -1;
    };
    let Some(sdp) = v.get("sdp").and_then(Value::as_bytes) else {
        msg.log(
            LogLevel::Err,
            &format!("rtpengine: {} failed: reply has no SDP", op.name()),
        );
        return -1;
    };
    match msg.message.with_body(sdp) {
        Some(m) => {
            msg.message = m;
            1
        }
        None => {
            msg.log(
                LogLevel::Err,
                &format!(
                    "rtpengine: {}: the new SDP does not fit the message",
                    op.name()
                ),
            );
            -1
        }
    }
}

fn simple(msg: &mut SipMsg, op: Op, flags: &str, viabranch: Option<&str>) -> i32 {
    if ng_call(msg, op, flags, viabranch).is_some() {
        1
    } else {
        -1
    }
}

/// What `*_manage` does with this message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Manage {
    Offer,
    Answer,
    Delete,
    Nothing,
}

/// Kamailio's choice for `rtpengine_manage` / `rtpproxy_manage`.
pub(crate) fn manage_op(msg: &SipMsg) -> Manage {
    let m = &msg.message;
    let sdp = has_sdp(msg);
    if m.is_request() {
        let method = m.method_str().unwrap_or_default();
        if matches!(msg.tm.route, TmRoute::Failure | TmRoute::BranchFailure) {
            return if method == "INVITE" {
                Manage::Delete
            } else {
                Manage::Nothing
            };
        }
        match method {
            "INVITE" | "UPDATE" if sdp => Manage::Offer,
            "ACK" | "PRACK" if sdp => Manage::Answer,
            "BYE" | "CANCEL" => Manage::Delete,
            _ => Manage::Nothing,
        }
    } else {
        let status = m.status().unwrap_or(0);
        let method = m
            .cseq()
            .and_then(Result::ok)
            .map(|c| c.method.as_str().to_string())
            .unwrap_or_default();
        match method.as_str() {
            "INVITE" if status >= 300 => Manage::Delete,
            "INVITE" | "UPDATE" | "PRACK" if sdp && status > 100 => Manage::Answer,
            _ => Manage::Nothing,
        }
    }
}

fn manage(msg: &mut SipMsg, flags: &str, viabranch: Option<&str>) -> i32 {
    match manage_op(msg) {
        Manage::Offer => offer_answer(msg, Op::Offer, flags, viabranch),
        Manage::Answer => offer_answer(msg, Op::Answer, flags, viabranch),
        Manage::Delete => simple(msg, Op::Delete, flags, viabranch),
        Manage::Nothing => -1,
    }
}

/// Offer, answer or delete as the message calls for (see the module doc); -1 when nothing
/// applies or the command failed.
#[kemi(module = "rtpengine", name = "rtpengine_manage0")]
pub fn rtpengine_manage0(msg: &mut SipMsg) -> i32 {
    manage(msg, "", None)
}

/// `rtpengine_manage` with a flag string.
#[kemi(module = "rtpengine", name = "rtpengine_manage")]
pub fn rtpengine_manage(msg: &mut SipMsg, flags: &str) -> i32 {
    manage(msg, flags, None)
}

/// `rtpengine_manage` with a flag string and a `via-branch` value.
#[kemi(module = "rtpengine", name = "rtpengine_manage2")]
pub fn rtpengine_manage2(msg: &mut SipMsg, flags: &str, viabranch: &str) -> i32 {
    manage(msg, flags, Some(viabranch))
}

/// Send the SDP as an offer and put the daemon's SDP in the body.
#[kemi(module = "rtpengine", name = "rtpengine_offer0")]
pub fn rtpengine_offer0(msg: &mut SipMsg) -> i32 {
    offer_answer(msg, Op::Offer, "", None)
}

/// `rtpengine_offer` with a flag string.
#[kemi(module = "rtpengine", name = "rtpengine_offer")]
pub fn rtpengine_offer(msg: &mut SipMsg, flags: &str) -> i32 {
    offer_answer(msg, Op::Offer, flags, None)
}

/// `rtpengine_offer` with a flag string and a `via-branch` value.
#[kemi(module = "rtpengine", name = "rtpengine_offer2")]
pub fn rtpengine_offer2(msg: &mut SipMsg, flags: &str, viabranch: &str) -> i32 {
    offer_answer(msg, Op::Offer, flags, Some(viabranch))
}

/// Send the SDP as an answer and put the daemon's SDP in the body.
#[kemi(module = "rtpengine", name = "rtpengine_answer0")]
pub fn rtpengine_answer0(msg: &mut SipMsg) -> i32 {
    offer_answer(msg, Op::Answer, "", None)
}

/// `rtpengine_answer` with a flag string.
#[kemi(module = "rtpengine", name = "rtpengine_answer")]
pub fn rtpengine_answer(msg: &mut SipMsg, flags: &str) -> i32 {
    offer_answer(msg, Op::Answer, flags, None)
}

/// `rtpengine_answer` with a flag string and a `via-branch` value.
#[kemi(module = "rtpengine", name = "rtpengine_answer2")]
pub fn rtpengine_answer2(msg: &mut SipMsg, flags: &str, viabranch: &str) -> i32 {
    offer_answer(msg, Op::Answer, flags, Some(viabranch))
}

/// Delete the call (or, with a To tag or `via-branch`, that part of it) from the daemon.
#[kemi(module = "rtpengine", name = "rtpengine_delete0")]
pub fn rtpengine_delete0(msg: &mut SipMsg) -> i32 {
    simple(msg, Op::Delete, "", None)
}

/// `rtpengine_delete` with a flag string.
#[kemi(module = "rtpengine", name = "rtpengine_delete")]
pub fn rtpengine_delete(msg: &mut SipMsg, flags: &str) -> i32 {
    simple(msg, Op::Delete, flags, None)
}

/// `rtpengine_delete` with a flag string and a `via-branch` value.
#[kemi(module = "rtpengine", name = "rtpengine_delete2")]
pub fn rtpengine_delete2(msg: &mut SipMsg, flags: &str, viabranch: &str) -> i32 {
    simple(msg, Op::Delete, flags, Some(viabranch))
}

/// ng `query` for this call; 1 or -1.
#[kemi(module = "rtpengine", name = "rtpengine_query0")]
pub fn rtpengine_query0(msg: &mut SipMsg) -> i32 {
    simple(msg, Op::Other("query"), "", None)
}

/// ng `query` with a flag string.
#[kemi(module = "rtpengine", name = "rtpengine_query")]
pub fn rtpengine_query(msg: &mut SipMsg, flags: &str) -> i32 {
    simple(msg, Op::Other("query"), flags, None)
}

/// ng `query` with a flag string and a `via-branch` value.
#[kemi(module = "rtpengine", name = "rtpengine_query2")]
pub fn rtpengine_query2(msg: &mut SipMsg, flags: &str, viabranch: &str) -> i32 {
    simple(msg, Op::Other("query"), flags, Some(viabranch))
}

/// ng `block media` for this call; 1 or -1.
#[kemi(module = "rtpengine", name = "block_media0")]
pub fn block_media0(msg: &mut SipMsg) -> i32 {
    simple(msg, Op::Other("block media"), "", None)
}

/// ng `block media` with a flag string.
#[kemi(module = "rtpengine", name = "block_media")]
pub fn block_media(msg: &mut SipMsg, flags: &str) -> i32 {
    simple(msg, Op::Other("block media"), flags, None)
}

/// ng `block media` with a flag string and a `via-branch` value.
#[kemi(module = "rtpengine", name = "block_media2")]
pub fn block_media2(msg: &mut SipMsg, flags: &str, viabranch: &str) -> i32 {
    simple(msg, Op::Other("block media"), flags, Some(viabranch))
}

/// ng `unblock media` for this call; 1 or -1.
#[kemi(module = "rtpengine", name = "unblock_media0")]
pub fn unblock_media0(msg: &mut SipMsg) -> i32 {
    simple(msg, Op::Other("unblock media"), "", None)
}

/// ng `unblock media` with a flag string.
#[kemi(module = "rtpengine", name = "unblock_media")]
pub fn unblock_media(msg: &mut SipMsg, flags: &str) -> i32 {
    simple(msg, Op::Other("unblock media"), flags, None)
}

/// ng `unblock media` with a flag string and a `via-branch` value.
#[kemi(module = "rtpengine", name = "unblock_media2")]
pub fn unblock_media2(msg: &mut SipMsg, flags: &str, viabranch: &str) -> i32 {
    simple(msg, Op::Other("unblock media"), flags, Some(viabranch))
}

/// ng `silence media` for this call; 1 or -1.
#[kemi(module = "rtpengine", name = "silence_media0")]
pub fn silence_media0(msg: &mut SipMsg) -> i32 {
    simple(msg, Op::Other("silence media"), "", None)
}

/// ng `silence media` with a flag string.
#[kemi(module = "rtpengine", name = "silence_media")]
pub fn silence_media(msg: &mut SipMsg, flags: &str) -> i32 {
    simple(msg, Op::Other("silence media"), flags, None)
}

/// ng `silence media` with a flag string and a `via-branch` value.
#[kemi(module = "rtpengine", name = "silence_media2")]
pub fn silence_media2(msg: &mut SipMsg, flags: &str, viabranch: &str) -> i32 {
    simple(msg, Op::Other("silence media"), flags, Some(viabranch))
}

/// ng `unsilence media` for this call; 1 or -1.
#[kemi(module = "rtpengine", name = "unsilence_media0")]
pub fn unsilence_media0(msg: &mut SipMsg) -> i32 {
    simple(msg, Op::Other("unsilence media"), "", None)
}

/// ng `unsilence media` with a flag string.
#[kemi(module = "rtpengine", name = "unsilence_media")]
pub fn unsilence_media(msg: &mut SipMsg, flags: &str) -> i32 {
    simple(msg, Op::Other("unsilence media"), flags, None)
}

/// ng `unsilence media` with a flag string and a `via-branch` value.
#[kemi(module = "rtpengine", name = "unsilence_media2")]
pub fn unsilence_media2(msg: &mut SipMsg, flags: &str, viabranch: &str) -> i32 {
    simple(msg, Op::Other("unsilence media"), flags, Some(viabranch))
}

/// ng `block DTMF` for this call; 1 or -1.
#[kemi(module = "rtpengine", name = "block_dtmf0")]
pub fn block_dtmf0(msg: &mut SipMsg) -> i32 {
    simple(msg, Op::Other("block DTMF"), "", None)
}

/// ng `block DTMF` with a flag string.
#[kemi(module = "rtpengine", name = "block_dtmf")]
pub fn block_dtmf(msg: &mut SipMsg, flags: &str) -> i32 {
    simple(msg, Op::Other("block DTMF"), flags, None)
}

/// ng `block DTMF` with a flag string and a `via-branch` value.
#[kemi(module = "rtpengine", name = "block_dtmf2")]
pub fn block_dtmf2(msg: &mut SipMsg, flags: &str, viabranch: &str) -> i32 {
    simple(msg, Op::Other("block DTMF"), flags, Some(viabranch))
}

/// ng `unblock DTMF` for this call; 1 or -1.
#[kemi(module = "rtpengine", name = "unblock_dtmf0")]
pub fn unblock_dtmf0(msg: &mut SipMsg) -> i32 {
    simple(msg, Op::Other("unblock DTMF"), "", None)
}

/// ng `unblock DTMF` with a flag string.
#[kemi(module = "rtpengine", name = "unblock_dtmf")]
pub fn unblock_dtmf(msg: &mut SipMsg, flags: &str) -> i32 {
    simple(msg, Op::Other("unblock DTMF"), flags, None)
}

/// ng `unblock DTMF` with a flag string and a `via-branch` value.
#[kemi(module = "rtpengine", name = "unblock_dtmf2")]
pub fn unblock_dtmf2(msg: &mut SipMsg, flags: &str, viabranch: &str) -> i32 {
    simple(msg, Op::Other("unblock DTMF"), flags, Some(viabranch))
}

/// ng `stop media` for this call; 1 or -1.
#[kemi(module = "rtpengine", name = "stop_media0")]
pub fn stop_media0(msg: &mut SipMsg) -> i32 {
    simple(msg, Op::Other("stop media"), "", None)
}

/// ng `stop media` with a flag string.
#[kemi(module = "rtpengine", name = "stop_media")]
pub fn stop_media(msg: &mut SipMsg, flags: &str) -> i32 {
    simple(msg, Op::Other("stop media"), flags, None)
}

/// ng `stop media` with a flag string and a `via-branch` value.
#[kemi(module = "rtpengine", name = "stop_media2")]
pub fn stop_media2(msg: &mut SipMsg, flags: &str, viabranch: &str) -> i32 {
    simple(msg, Op::Other("stop media"), flags, Some(viabranch))
}

/// ng `start forwarding` for this call; 1 or -1.
#[kemi(module = "rtpengine", name = "start_forwarding0")]
pub fn start_forwarding0(msg: &mut SipMsg) -> i32 {
    simple(msg, Op::Other("start forwarding"), "", None)
}

/// ng `start forwarding` with a flag string.
#[kemi(module = "rtpengine", name = "start_forwarding")]
pub fn start_forwarding(msg: &mut SipMsg, flags: &str) -> i32 {
    simple(msg, Op::Other("start forwarding"), flags, None)
}

/// ng `start forwarding` with a flag string and a `via-branch` value.
#[kemi(module = "rtpengine", name = "start_forwarding2")]
pub fn start_forwarding2(msg: &mut SipMsg, flags: &str, viabranch: &str) -> i32 {
    simple(msg, Op::Other("start forwarding"), flags, Some(viabranch))
}

/// ng `stop forwarding` for this call; 1 or -1.
#[kemi(module = "rtpengine", name = "stop_forwarding0")]
pub fn stop_forwarding0(msg: &mut SipMsg) -> i32 {
    simple(msg, Op::Other("stop forwarding"), "", None)
}

/// ng `stop forwarding` with a flag string.
#[kemi(module = "rtpengine", name = "stop_forwarding")]
pub fn stop_forwarding(msg: &mut SipMsg, flags: &str) -> i32 {
    simple(msg, Op::Other("stop forwarding"), flags, None)
}

/// ng `stop forwarding` with a flag string and a `via-branch` value.
#[kemi(module = "rtpengine", name = "stop_forwarding2")]
pub fn stop_forwarding2(msg: &mut SipMsg, flags: &str, viabranch: &str) -> i32 {
    simple(msg, Op::Other("stop forwarding"), flags, Some(viabranch))
}

/// ng `connect` for this call; 1 or -1.
#[kemi(module = "rtpengine", name = "rtpengine_connect0")]
pub fn rtpengine_connect0(msg: &mut SipMsg) -> i32 {
    simple(msg, Op::Other("connect"), "", None)
}

/// ng `connect` with a flag string.
#[kemi(module = "rtpengine", name = "rtpengine_connect")]
pub fn rtpengine_connect(msg: &mut SipMsg, flags: &str) -> i32 {
    simple(msg, Op::Other("connect"), flags, None)
}

/// ng `connect` with a flag string and a `via-branch` value.
#[kemi(module = "rtpengine", name = "rtpengine_connect2")]
pub fn rtpengine_connect2(msg: &mut SipMsg, flags: &str, viabranch: &str) -> i32 {
    simple(msg, Op::Other("connect"), flags, Some(viabranch))
}

/// Play a media file into the call (`play media`; the flags name it: `file=...`).
#[kemi(module = "rtpengine", name = "play_media")]
pub fn play_media(msg: &mut SipMsg, flags: &str) -> i32 {
    simple(msg, Op::Other("play media"), flags, None)
}

/// `play_media` with a `via-branch` value.
#[kemi(module = "rtpengine", name = "play_media2")]
pub fn play_media2(msg: &mut SipMsg, flags: &str, viabranch: &str) -> i32 {
    simple(msg, Op::Other("play media"), flags, Some(viabranch))
}

/// Inject DTMF into the call (`play DTMF`; the flags give `code=...`).
#[kemi(module = "rtpengine", name = "play_dtmf")]
pub fn play_dtmf(msg: &mut SipMsg, flags: &str) -> i32 {
    simple(msg, Op::Other("play DTMF"), flags, None)
}

/// Start recording the call (`start recording`).
#[kemi(module = "rtpengine", name = "start_recording")]
pub fn start_recording(msg: &mut SipMsg) -> i32 {
    simple(msg, Op::Other("start recording"), "", None)
}

/// Stop recording the call (`stop recording`).
#[kemi(module = "rtpengine", name = "stop_recording")]
pub fn stop_recording(msg: &mut SipMsg) -> i32 {
    simple(msg, Op::Other("stop recording"), "", None)
}

/// Query the call and store the daemon's reply as JSON in `$var(name)` / `$avp(name)`
/// (`dpv`); `fmt` is `j` (compact) or `jp` (pretty).
#[kemi(module = "rtpengine", name = "rtpengine_query_v")]
pub fn rtpengine_query_v(msg: &mut SipMsg, fmt: &str, dpv: &str) -> i32 {
    if !fmt.starts_with(['j', 'J']) {
        msg.log(
            LogLevel::Err,
            &format!("rtpengine: invalid format parameter value: {fmt}"),
        );
        return -1;
    }
    let Some(name) = dpv
        .strip_prefix("$var(")
        .and_then(|r| r.strip_suffix(')'))
        .map(str::to_string)
    else {
        msg.log(
            LogLevel::Err,
            &format!("rtpengine: target pv is not writable here: {dpv} (use $var(name))"),
        );
        return -1;
    };
    let Some(v) = ng_call(msg, Op::Other("query"), "", None) else {
        return -1;
    };
    let j = to_json(&v);
    let text = if fmt[1..].starts_with(['p', 'P']) {
        serde_json::to_string_pretty(&j)
    } else {
        serde_json::to_string(&j)
    }
    .unwrap_or_default();
    msg.vars
        .insert(name, kemi_runtime::msg::VarValue::Str(text));
    1
}

/// A bencoded value as JSON (byte strings as lossy UTF-8).
pub fn to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Bytes(b) => serde_json::Value::String(String::from_utf8_lossy(b).into_owned()),
        Value::Int(i) => serde_json::Value::from(*i),
        Value::List(l) => serde_json::Value::Array(l.iter().map(to_json).collect()),
        Value::Dict(d) => serde_json::Value::Object(
            d.iter()
                .map(|(k, v)| (String::from_utf8_lossy(k).into_owned(), to_json(v)))
                .collect(),
        ),
    }
}

/// Subscribe to the call's media (`subscribe request`): flags, the SDP for it is not
/// returned to the script here; 1 or -1.
#[kemi(module = "rtpengine", name = "rtpengine_subscribe_request")]
pub fn rtpengine_subscribe_request(
    msg: &mut SipMsg,
    flags: &str,
    _sdp_pv: &str,
    _totag_pv: &str,
    _streams_pv: &str,
) -> i32 {
    simple(msg, Op::Other("subscribe request"), flags, None)
}

/// Answer a subscription (`subscribe answer`) with this message's SDP.
#[kemi(module = "rtpengine", name = "rtpengine_subscribe_answer")]
pub fn rtpengine_subscribe_answer(msg: &mut SipMsg, flags: &str) -> i32 {
    simple(msg, Op::Other("subscribe answer"), flags, None)
}

/// End a subscription (`unsubscribe`).
#[kemi(module = "rtpengine", name = "rtpengine_unsubscribe")]
pub fn rtpengine_unsubscribe(msg: &mut SipMsg, flags: &str) -> i32 {
    simple(msg, Op::Other("unsubscribe"), flags, None)
}

/// Use set `id` for the relay commands of this message; -1 when no such set.
#[kemi(module = "rtpengine", name = "set_rtpengine_set")]
pub fn set_rtpengine_set(msg: &mut SipMsg, id: i32) -> i32 {
    set_sets::<NgRelay>(msg, id, None, |r| &r.0)
}

/// Use set `id1` for this message's commands and `id2` for its answer.
#[kemi(module = "rtpengine", name = "set_rtpengine_set2")]
pub fn set_rtpengine_set2(msg: &mut SipMsg, id1: i32, id2: i32) -> i32 {
    set_sets::<NgRelay>(msg, id1, Some(id2), |r| &r.0)
}

/// Choose the sets of this message after checking they exist.
pub(crate) fn set_sets<T: std::any::Any + Send + Sync>(
    msg: &mut SipMsg,
    id1: i32,
    id2: Option<i32>,
    relay: fn(&T) -> &Relay,
) -> i32 {
    let Some(state) = msg.env.services.get_arc::<T>() else {
        msg.log(LogLevel::Err, "media relay module not set up");
        return -1;
    };
    let r = relay(&state);
    let mut ids = [None, None];
    for (slot, id) in ids.iter_mut().zip([Some(id1), id2]) {
        let Some(id) = id else { continue };
        match u32::try_from(id).ok().filter(|i| r.set(Some(*i)).is_ok()) {
            Some(i) => *slot = Some(i),
            None => {
                msg.log(
                    LogLevel::Err,
                    &format!("media relay set {id} is not configured"),
                );
                return -1;
            }
        }
    }
    msg.route.media_set = ids;
    1
}

#[cfg(test)]
mod tests;
