//! `save`: a REGISTER updates the bindings of its address-of-record (RFC 3261 §10.3) and gets
//! the 200 listing every binding with its remaining time, or the error Kamailio's registrar
//! sends (400 with `P-Registrar-Error`, 423 with `Min-Expires`, 500, 503).

use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::Arc;

use kemi_runtime::msg::{Action, Avp, LogLevel, Proto, Reply, VarValue};
use kemi_runtime::sip::text::Decimal;
use kemi_runtime::sip::HeaderEdit;
use kemi_runtime::sip::HeaderKind;
use kemi_runtime::{kemi, SipMsg};

use super::contact::{self, Contacts, RegError, ReqContact, CALLID_MAX};
use super::usrloc::{insert_ordered, Contact, Persist};
use super::{table_of, PathMode, Registrar};

/// `save` flag: keep the change in memory only (no store write).
pub const SAVE_MEM: i32 = 1;
/// `save` flag: do not send the reply.
pub const SAVE_NOREPLY: i32 = 2;
/// `save` flag: the contact replaces every other of the AoR.
pub const SAVE_REPLACE: i32 = 4;

/// The AVP holding the `set_q_override` value of the current message.
const Q_OVERRIDE_AVP: &str = "__sipd_registrar_q_override";

/// A reply `save` prepared but did not send (flag 2), for `reg_send_reply`.
struct Prepared {
    callid: String,
    cseq: String,
    code: u16,
    reason: &'static str,
    headers: Vec<String>,
}

thread_local! {
    static PREPARED: RefCell<Option<Prepared>> = const { RefCell::new(None) };
}

/// What a successful save did, for the reply.
struct Outcome {
    ret: i32,
    /// The 200's `Contact` line (every valid binding), if any.
    contact: Option<String>,
    path: Option<String>,
}

/// `KSR.registrar.save(table, flags)`: save the REGISTER's contacts for the To AoR. `flags`:
/// 1 memory only, 2 no reply, 4 replace all contacts. Returns 1 (added), 2 (updated),
/// 3 (deleted), 4 (query, no Contact), -1 on error (the error reply is sent, unless flag 2),
/// -2 for too many contacts.
#[kemi(module = "registrar", name = "save")]
pub fn save(msg: &mut SipMsg, table: &str, flags: i32) -> i32 {
    save_impl(msg, table, flags, None)
}

/// `KSR.registrar.save_uri(table, flags, uri)`: `save` for the AoR of `uri` instead of To.
#[kemi(module = "registrar", name = "save_uri")]
pub fn save_uri(msg: &mut SipMsg, table: &str, flags: i32, uri: &str) -> i32 {
    save_impl(msg, table, flags, Some(uri))
}

/// `KSR.registrar.set_q_override(q)`: the q-value (`"0.5"`) for the contacts the next `save`
/// of this message stores. Returns 1, or -1 for a bad value.
#[kemi(module = "registrar", name = "set_q_override")]
pub fn set_q_override(msg: &mut SipMsg, q: &str) -> i32 {
    match contact::parse_q(q) {
        Some(q) => {
            msg.route.avps.push(Avp {
                name: Q_OVERRIDE_AVP.into(),
                value: VarValue::Int(q.into()),
            });
            1
        }
        None => {
            msg.log(LogLevel::Err, &format!("set_q_override: bad q value [{q}]"));
            -1
        }
    }
}

/// `KSR.registrar.add_sock_hdr(name)`: add header `name` with the receiving socket
/// (`udp:127.0.0.1:5060`) to the request. Returns 1, or -1 for a bad name or a reply.
#[kemi(module = "registrar", name = "add_sock_hdr")]
pub fn add_sock_hdr(msg: &mut SipMsg, name: &str) -> i32 {
    if !msg.message.is_request()
        || name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return -1;
    }
    let line = format!("{name}: {}\r\n", socket_of(msg));
    msg.route.edits.push(HeaderEdit::Append(line));
    1
}

/// `KSR.registrar.reg_send_reply()`: send the reply a `save` with flag 2 prepared for this
/// request. Returns 1, or -1 when there is none.
#[kemi(module = "registrar", name = "reg_send_reply")]
pub fn reg_send_reply(msg: &mut SipMsg) -> i32 {
    let callid = msg.message.call_id().unwrap_or("").to_string();
    let cseq = crate::view::cseq_number(&msg.message)
        .unwrap_or("")
        .to_string();
    let prepared = PREPARED.with(|p| {
        let mut p = p.borrow_mut();
        match p.as_ref() {
            Some(r) if r.callid == callid && r.cseq == cseq => p.take(),
            _ => None,
        }
    });
    match prepared {
        Some(p) => {
            send(msg, p.code, p.reason, p.headers);
            1
        }
        None => -1,
    }
}

/// The receiving socket as Kamailio writes it (`udp:127.0.0.1:5060`).
pub(crate) fn socket_of(msg: &SipMsg) -> String {
    format!("{}:{}", msg.rcv.proto.as_str(), msg.rcv.dst)
}

thread_local! {
    /// The last receiving socket's text: a worker serves a socket or two, so this is nearly
    /// always a hit (no formatting, no allocation).
    static SOCKET: RefCell<Option<(Proto, SocketAddr, Arc<str>)>> = const { RefCell::new(None) };
    /// The last User-Agent (or `n/a`) stored: most REGISTERs of a worker carry the same one.
    static USER_AGENT: RefCell<Option<Arc<str>>> = const { RefCell::new(None) };
}

/// [`socket_of`] as a shared string, reused while the socket stays the same.
fn socket_arc(msg: &SipMsg) -> Arc<str> {
    let (proto, dst) = (msg.rcv.proto, msg.rcv.dst);
    SOCKET.with(|c| {
        let mut c = c.borrow_mut();
        match &*c {
            Some((p, d, s)) if *p == proto && *d == dst => Arc::clone(s),
            _ => {
                let s: Arc<str> = socket_of(msg).into();
                *c = Some((proto, dst, Arc::clone(&s)));
                s
            }
        }
    })
}

/// `ua` as a shared string, reused while it stays the same.
fn user_agent_arc(ua: &str) -> Arc<str> {
    USER_AGENT.with(|c| {
        let mut c = c.borrow_mut();
        match &*c {
            Some(s) if **s == *ua => Arc::clone(s),
            _ => {
                let s: Arc<str> = ua.into();
                *c = Some(Arc::clone(&s));
                s
            }
        }
    })
}

fn send(msg: &mut SipMsg, code: u16, reason: &str, headers: impl IntoIterator<Item = String>) {
    if !msg.message.is_request() || crate::view::method(&msg.message) == Some("ACK") {
        return;
    }
    let keep = msg.route.reply_headers.len();
    msg.route.reply_headers.extend(headers);
    let wire = msg.local_reply_wire(code, reason);
    msg.route.reply_headers.truncate(keep);
    msg.outbox.push(Action::Reply(Reply {
        code,
        reason: reason.to_string(),
        wire,
    }));
}

/// `Retry-After` of the 503 to a REGISTER refused by `max_bindings` when `retry_after` is 0.
const FULL_RETRY_AFTER_S: u32 = 5;

/// Reply (or prepare the reply) for `result`.
fn respond(msg: &mut SipMsg, reg: &Registrar, flags: i32, result: Result<Outcome, RegError>) {
    let (code, reason, headers) = match result {
        Ok(out) => {
            let path = out.path.filter(|_| {
                reg.cfg.path_mode != PathMode::Off && contact::supports(&msg.message, "path")
            });
            (
                200,
                "OK",
                [out.contact, path.map(|p| format!("Path: {p}\r\n")), None],
            )
        }
        Err(e) => {
            let (code, reason) = e.reply();
            let min = (e == RegError::LowExpires)
                .then(|| format!("Min-Expires: {}\r\n", reg.cfg.min_expires));
            // An unreachable store or a full table always says when to retry (`retry_after`,
            // else the 5 s of sipd's other 503s).
            let retry_after = match e {
                RegError::StoreDown | RegError::TableFull if reg.cfg.retry_after == 0 => {
                    FULL_RETRY_AFTER_S
                }
                _ => reg.cfg.retry_after,
            };
            let retry =
                (code >= 500 && retry_after > 0).then(|| format!("Retry-After: {retry_after}\r\n"));
            (
                code,
                reason,
                [Some(format!("P-Registrar-Error: {e}\r\n")), min, retry],
            )
        }
    };
    let headers = headers.into_iter().flatten();
    if flags & SAVE_NOREPLY == 0 {
        send(msg, code, reason, headers);
    } else {
        let callid = msg.message.call_id().unwrap_or("").to_string();
        let cseq = crate::view::cseq_number(&msg.message)
            .unwrap_or("")
            .to_string();
        let headers = headers.collect();
        PREPARED.with(|p| {
            *p.borrow_mut() = Some(Prepared {
                callid,
                cseq,
                code,
                reason,
                headers,
            })
        });
    }
}

/// `Contact: <uri>;q=..;expires=..;received=".."` for every valid binding, or None.
pub(crate) fn contact_line(reg: &Registrar, bindings: &[Contact], now: i64) -> Option<String> {
    let mut line = String::new();
    for c in bindings.iter().filter(|c| c.valid(now)) {
        if line.is_empty() {
            line.reserve(64 + c.uri.len());
            line.push_str("Contact: ");
        } else {
            line.push_str(", ");
        }
        line.push('<');
        line.push_str(&c.uri);
        line.push('>');
        if c.q >= 0 {
            line.push_str(";q=");
            contact::push_q(&mut line, c.q);
        }
        line.push_str(";expires=");
        let left = if c.expires == 0 { 0 } else { c.expires - now };
        push_int(&mut line, left);
        if !reg.cfg.received_param.is_empty() && !c.received.is_empty() {
            line.push(';');
            line.push_str(&reg.cfg.received_param);
            line.push_str("=\"");
            line.push_str(&c.received);
            line.push('"');
        }
        if !c.instance.is_empty() {
            line.push_str(";+sip.instance=\"");
            line.push_str(&c.instance);
            line.push('"');
        }
        if c.reg_id > 0 {
            line.push_str(";reg-id=");
            push_int(&mut line, i64::from(c.reg_id));
        }
    }
    if line.is_empty() {
        return None;
    }
    line.push_str("\r\n");
    Some(line)
}

/// Append `n` in decimal without `core::fmt`.
fn push_int(out: &mut String, n: i64) {
    if n < 0 {
        out.push('-');
    }
    out.push_str(Decimal::new(n.unsigned_abs()).as_str());
}

fn save_impl(msg: &mut SipMsg, table: &str, flags: i32, uri: Option<&str>) -> i32 {
    let Some((reg, t)) = table_of(msg, table) else {
        return -1;
    };
    if !msg.message.is_request() {
        return -1;
    }
    let result = apply(msg, &reg, &t, flags, uri);
    let rc = match &result {
        Ok(out) => out.ret,
        Err(e) => {
            msg.log(LogLevel::Info, &format!("registrar: save refused: {e}"));
            if *e == RegError::TooMany {
                -2
            } else {
                -1
            }
        }
    };
    respond(msg, &reg, flags, result);
    rc
}

/// The per-message facts every stored contact shares (borrowed from the request).
struct Common<'a> {
    callid: &'a str,
    cseq: i32,
    user_agent: Arc<str>,
    socket: Arc<str>,
    path: &'a str,
    received: Option<String>,
    /// A WebSocket client's source (`sip:ip:port;transport=ws`), used when nothing else set
    /// `received`: its Contact host does not exist (RFC 7118 5), its connection is the way back.
    conn_received: Option<String>,
    cflags: i32,
    methods: i32,
    q_override: Option<i32>,
}

fn common<'a>(msg: &'a SipMsg, reg: &Registrar, path: &'a str) -> Result<Common<'a>, RegError> {
    let m = &msg.message;
    let callid = m.call_id().ok_or(RegError::CallIdMissing)?.trim();
    if callid.len() > CALLID_MAX {
        return Err(RegError::CallIdLen);
    }
    let cseq = crate::view::cseq_number(m).ok_or(RegError::CseqMissing)?;
    let cseq: i32 = cseq.trim().parse().map_err(|_| RegError::InvalidCseq)?;
    let user_agent = match m.user_agent() {
        Some(ua) if !ua.is_empty() && ua.len() < 256 => ua,
        _ => "n/a",
    };
    let mut cflags = (msg.route.bflags & 0xffff_ffff) as u32 as i32;
    let mut received = None;
    if reg.cfg.path_use_received {
        if let Some(r) = contact::first_route_uri(path)
            .and_then(|u| kemi_runtime::sip::Uri::parse(u).ok())
            .and_then(|u| u.param("received"))
            .filter(|r| !r.is_empty())
        {
            received = Some(r.trim_matches('"').to_string());
            if (0..32).contains(&reg.ul.cfg.nat_bflag) {
                cflags |= 1 << reg.ul.cfg.nat_bflag;
            }
        }
    }
    let conn_received =
        (path.is_empty() && matches!(msg.rcv.proto, Proto::Ws | Proto::Wss)).then(|| {
            let src = msg.rcv.src;
            let host = match src.ip() {
                std::net::IpAddr::V6(ip) => format!("[{ip}]"),
                std::net::IpAddr::V4(ip) => ip.to_string(),
            };
            format!(
                "sip:{host}:{};transport={}",
                src.port(),
                msg.rcv.proto.as_str()
            )
        });
    let methods = {
        let mut allow = m.list(HeaderKind::Allow).peekable();
        if allow.peek().is_some() {
            allow.fold(0, |acc, v| acc | contact::methods_mask(v))
        } else {
            -1
        }
    };
    let q_override = msg
        .route
        .avps
        .iter()
        .rev()
        .find(|a| a.name == Q_OVERRIDE_AVP)
        .and_then(|a| match a.value {
            VarValue::Int(q) => i32::try_from(q).ok(),
            VarValue::Str(_) => None,
        });
    Ok(Common {
        callid,
        cseq,
        user_agent: user_agent_arc(user_agent),
        socket: socket_arc(msg),
        path,
        received,
        conn_received,
        cflags,
        methods,
        q_override,
    })
}

/// The received AVP's value (newest), if set.
fn received_avp(msg: &SipMsg, reg: &Registrar) -> Option<String> {
    let name = reg.cfg.received_avp.as_deref()?;
    msg.route
        .avps
        .iter()
        .rev()
        .find(|a| a.name == name)
        .map(|a| match &a.value {
            VarValue::Str(s) => s.clone(),
            VarValue::Int(i) => i.to_string(),
        })
        .filter(|s| !s.is_empty())
}

/// The Path header values, comma-joined ("" when none), each checked to hold a `<uri>`.
fn path_of(msg: &SipMsg) -> Result<String, RegError> {
    let mut parts = Vec::new();
    for h in msg.message.find("Path") {
        for v in h.value.split(',') {
            let v = v.trim();
            if v.is_empty() {
                continue;
            }
            let na =
                kemi_runtime::sip::NameAddr::parse(v, "Path").map_err(|_| RegError::PathParse)?;
            if na.parsed_uri().is_err() {
                return Err(RegError::PathParse);
            }
            parts.push(v.to_string());
        }
    }
    Ok(parts.join(","))
}

/// The expiry (seconds, 0 = remove) of one contact: its `expires` param, else the Expires
/// header, else `default_expires`; raised to `min_expires` (or refused with mode 1) and capped
/// at `max_expires`.
fn contact_expires(reg: &Registrar, c: &ReqContact<'_>, hdr: Option<u32>) -> Result<u32, RegError> {
    let mut e = c.expires.or(hdr).unwrap_or(reg.cfg.default_expires);
    if e != 0 {
        if e < reg.cfg.min_expires {
            if reg.cfg.min_expires_mode {
                return Err(RegError::LowExpires);
            }
            e = reg.cfg.min_expires;
        }
        if reg.cfg.max_expires > 0 && e > reg.cfg.max_expires {
            e = reg.cfg.max_expires;
        }
    }
    Ok(e)
}

/// What one REGISTER contact becomes: expiry (seconds), q and `received`.
struct Binding<'a> {
    expires: u32,
    q: i32,
    received: &'a str,
}

/// The expiry, q and `received` of contact `c` (checked: a `received` past
/// [`contact::RECEIVED_MAX`] is refused).
fn binding<'a>(
    reg: &Registrar,
    com: &'a Common<'_>,
    c: &ReqContact<'a>,
    hdr: Option<u32>,
    avp_received: Option<&'a str>,
) -> Result<Binding<'a>, RegError> {
    let expires = contact_expires(reg, c, hdr)?;
    let q = com.q_override.or(c.q).unwrap_or(reg.cfg.default_q);
    let received = com
        .received
        .as_deref()
        .or(c.received)
        .or(avp_received)
        .or(com.conn_received.as_deref())
        .unwrap_or("");
    if received.len() > contact::RECEIVED_MAX {
        return Err(RegError::ContactLen);
    }
    Ok(Binding {
        expires,
        q,
        received,
    })
}

/// An instance id without its `<>`.
fn strip_instance(s: &str) -> &str {
    s.strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .unwrap_or(s)
}

/// Where a REGISTER contact matches a stored one: by `+sip.instance` and `reg-id` when it has
/// an instance, else by the exact contact URI.
fn find(rec: &[Contact], c: &ReqContact<'_>) -> Option<usize> {
    match c.instance {
        Some(inst) => {
            let want = strip_instance(inst);
            let reg_id = c.reg_id.unwrap_or(0);
            rec.iter().position(|p| {
                !p.instance.is_empty() && p.reg_id == reg_id && strip_instance(&p.instance) == want
            })
        }
        None => rec.iter().position(|p| *p.uri == *c.uri),
    }
}

/// What to do with a matched contact given Call-ID/CSeq (Kamailio's `get_ucontact`).
enum Seq {
    /// Apply the change.
    Apply,
    /// A retransmission: skip this contact.
    Skip,
}

fn check_seq(reg: &Registrar, old: &Contact, com: &Common<'_>, now: i64) -> Result<Seq, RegError> {
    if *old.callid != *com.callid {
        return Ok(Seq::Apply);
    }
    if com.cseq < old.cseq {
        return Err(RegError::InvalidCseq);
    }
    if com.cseq == old.cseq {
        return if old.last_modified + reg.ul.cfg.cseq_delay > now {
            Ok(Seq::Skip)
        } else {
            Err(RegError::InvalidCseq)
        };
    }
    Ok(Seq::Apply)
}

/// With flag 4: drop every contact of `rec` but the one at `keep`.
fn keep_only(rec: &mut Vec<Contact>, keep: usize, ops: &mut Vec<Persist>, db: bool) {
    let mut i = 0;
    rec.retain(|p| {
        let k = i == keep;
        i += 1;
        if !k && db {
            ops.push(Persist::Delete(p.ruid.to_string()));
        }
        k
    });
}

fn apply(
    msg: &SipMsg,
    reg: &Registrar,
    t: &super::usrloc::Table,
    flags: i32,
    uri: Option<&str>,
) -> Result<Outcome, RegError> {
    let m = &msg.message;
    let aor = match uri.filter(|u| !u.is_empty()) {
        Some(u) => reg.aor_key(u),
        None => {
            let to = m.to_hdr().ok_or(RegError::ToMissing)?;
            reg.aor_key(to.map_err(|_| RegError::AorParse)?.uri)
        }
    }
    .ok_or(RegError::AorParse)?;
    let aor: &str = &aor;
    if aor.is_empty() || (!reg.ul.cfg.use_domain && aor.contains('@')) {
        return Err(RegError::ToUser);
    }
    if m.call_id().is_none() {
        return Err(RegError::CallIdMissing);
    }
    if m.cseq().is_none() {
        return Err(RegError::CseqMissing);
    }
    let hdr_expires = contact::expires_header(m)?;
    let contacts = contact::contacts(m, reg.cfg.contact_max_size)?;
    let path = if reg.cfg.use_path {
        path_of(msg)?
    } else {
        String::new()
    };
    if !path.is_empty()
        && reg.cfg.path_mode == PathMode::Strict
        && !contact::supports(&msg.message, "path")
    {
        return Err(RegError::PathUnsupported);
    }
    let com = common(msg, reg, &path)?;
    let avp_received = received_avp(msg, reg);
    let avp_received = avp_received.as_deref();
    let now = crate::store::now_unix();

    // Everything that can fail on input is checked before the record is touched.
    let list: &[ReqContact<'_>] = match &contacts {
        Contacts::List(list) => {
            for c in list {
                binding(reg, &com, c, hdr_expires, avp_received)?;
            }
            list
        }
        _ => &[],
    };

    // Store operations are only built when they will be written.
    let db = flags & SAVE_MEM == 0 && reg.ul.persists();
    // A shared store that is down: a change this node alone would know is refused (a lookup
    // at another node would miss it, and this node would lose it at the resync).
    if db && !matches!(contacts, Contacts::None) && reg.ul.store_down() {
        return Err(RegError::StoreDown);
    }
    let desc = reg.ul.cfg.desc_time_order;
    let max = reg.cfg.max_contacts;
    let (ret, line, ops) = t.write(aor, |rec| -> Result<_, RegError> {
        let mut ops = Vec::new();
        let ret = match &contacts {
            Contacts::None => 4,
            Contacts::Star => {
                if db {
                    ops.extend(rec.drain(..).map(|c| Persist::Delete(c.ruid.into())));
                } else {
                    rec.clear();
                }
                3
            }
            Contacts::List(_) => {
                // Pass 1: CSeq ordering and max_contacts, without changing anything.
                let mut count = rec.iter().filter(|c| c.valid(now)).count();
                let mut adding = 0;
                for c in list {
                    let e = contact_expires(reg, c, hdr_expires)?;
                    match find(rec, c) {
                        Some(i) => {
                            check_seq(reg, &rec[i], &com, now)?;
                            if e == 0 {
                                count = count.saturating_sub(1);
                            }
                        }
                        None if e != 0 => {
                            count += 1;
                            adding += 1;
                        }
                        None => {}
                    }
                }
                if max > 0 && flags & SAVE_REPLACE == 0 && count > max {
                    return Err(RegError::TooMany);
                }
                let bound = reg.ul.cfg.max_bindings;
                if bound > 0 && adding > 0 && t.contact_count() + adding > bound {
                    reg.ul.count_refused_full();
                    return Err(RegError::TableFull);
                }
                // Pass 2: apply.
                let fresh = rec.is_empty();
                let mut rc = 0;
                for c in list {
                    let b = binding(reg, &com, c, hdr_expires, avp_received)?;
                    let existing = find(rec, c);
                    if let Some(i) = existing {
                        if matches!(check_seq(reg, &rec[i], &com, now)?, Seq::Skip) {
                            continue;
                        }
                    }
                    let new = |ruid: Box<str>, flags: i32| Contact {
                        ruid,
                        uri: c.uri.into(),
                        received: b.received.into(),
                        path: com.path.into(),
                        expires: if b.expires == 0 {
                            0
                        } else {
                            now + i64::from(b.expires)
                        },
                        q: b.q,
                        callid: com.callid.into(),
                        cseq: com.cseq,
                        last_modified: now,
                        flags,
                        cflags: com.cflags,
                        user_agent: Arc::clone(&com.user_agent),
                        socket: Arc::clone(&com.socket),
                        methods: c.methods.unwrap_or(com.methods),
                        instance: c.instance.unwrap_or("").into(),
                        reg_id: if c.instance.is_some() {
                            c.reg_id.unwrap_or(0)
                        } else {
                            0
                        },
                    };
                    match existing {
                        None if b.expires == 0 => continue,
                        None => {
                            let new = new(reg.ul.next_ruid(), 0);
                            if db {
                                ops.push(reg.ul.put(aor, &new));
                            }
                            let at = insert_ordered(rec, new, desc);
                            rc = 1;
                            if flags & SAVE_REPLACE != 0 {
                                keep_only(rec, at, &mut ops, db);
                                break;
                            }
                        }
                        Some(i) if b.expires == 0 => {
                            let old = rec.remove(i);
                            if db {
                                ops.push(Persist::Delete(old.ruid.into()));
                            }
                            rc = 3;
                        }
                        Some(i) => {
                            let old = rec.remove(i);
                            let new = new(old.ruid, old.flags);
                            if !new.instance.is_empty() && *old.callid != *new.callid {
                                // A new Call-ID for this instance: its other bindings go.
                                rec.retain(|p| {
                                    let k = p.instance != new.instance;
                                    if !k && db {
                                        ops.push(Persist::Delete(p.ruid.to_string()));
                                    }
                                    k
                                });
                            }
                            if db {
                                ops.push(reg.ul.put(aor, &new));
                            }
                            let at = if old.q == new.q && !desc {
                                let at = i.min(rec.len());
                                rec.insert(at, new);
                                at
                            } else {
                                insert_ordered(rec, new, desc)
                            };
                            rc = 2;
                            if flags & SAVE_REPLACE != 0 {
                                keep_only(rec, at, &mut ops, db);
                                break;
                            }
                        }
                    }
                }
                if fresh || rc == 0 {
                    1
                } else {
                    rc
                }
            }
        };
        // The 200 lists every binding: written here, without copying the record out.
        Ok((ret, contact_line(reg, rec, now), ops))
    })?;
    if db {
        reg.ul.persist(t, ops);
    }
    Ok(Outcome {
        ret,
        contact: line,
        path: (!path.is_empty()).then_some(path),
    })
}
