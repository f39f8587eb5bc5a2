//! The `nathelper` sub-module (`KSR.nathelper.*`): NAT detection (`nat_uac_test`), Contact
//! rewriting (`fix_nated_contact`, `set_contact_alias`, `add_contact_alias*`, `add_rcv_param`),
//! the received URI for the registrar (`fix_nated_register`) and alias routing
//! (`handle_ruri_alias*`, `set_alias_to_pv`), with Kamailio 5.6's names and return codes.
//!
//! - [`config`]: the modparams and the setup (`received_avp`, `alias_name`, `nat_addr_mode`;
//!   the pinging parameters are accepted, pinging itself is not done).
//! - [`addr`]: private ranges, source URIs, protocol numbers, SDP `c=` lines.
//! - [`contact`]: the first Contact and its rewrite as a header edit.
//!
//! Contact changes are header edits: later reads in the same route (`$ct`, the registrar)
//! still see the Contact as received. Message bodies cannot be changed in sipd, so
//! `fix_nated_sdp`/`fix_nated_sdp_ip` return -1 with a log line.

pub mod addr;
pub mod config;
pub mod contact;

use std::sync::OnceLock;

use kemi_runtime::msg::{Avp, LogLevel, Proto, VarValue};
use kemi_runtime::sip::{HeaderKind, NameAddr, Uri};
use kemi_runtime::{kemi, SipMsg};

use crate::uri_parts::UriParts;
use crate::view;
use addr::{host_of, is_private_ip, is_private_text, parse_ip, src_uri};
use config::NathelperConfig;
use contact::{first_contact_logged, offset_in};

/// The SIP default port.
const SIP_PORT: u16 = 5060;
/// The SIPS/TLS default port.
const SIPS_PORT: u16 = 5061;

/// This server's nathelper settings (the defaults when the module was not set up).
fn cfg(msg: &SipMsg) -> NathelperConfig {
    static DEFAULT: OnceLock<NathelperConfig> = OnceLock::new();
    msg.env
        .services
        .get::<NathelperConfig>()
        .unwrap_or_else(|| DEFAULT.get_or_init(NathelperConfig::default))
        .clone()
}

/// `;alias=ip~port~proto` for the message's source.
fn src_alias(msg: &SipMsg, alias_name: &str) -> String {
    format!(
        ";{alias_name}={}~{}~{}",
        host_of(msg.rcv.src.ip()),
        msg.rcv.src.port(),
        msg.rcv.proto.number()
    )
}

// ----- nat_uac_test -----

/// Flag 1: the first Contact's host is a private address.
fn contact_private(msg: &SipMsg, mode: i64) -> bool {
    contact::first_contact(msg).is_ok_and(|c| {
        Uri::parse(c.uri()).is_ok_and(|u| is_private_text(u.host, mode) == Some(true))
    })
}

/// Flag 2: the top Via's host is not the source IP (Kamailio's `received_via_test`, no DNS).
fn via_differs(msg: &SipMsg) -> bool {
    match msg.message.top_via() {
        Some(Ok(v)) => parse_ip(v.host) != Some(msg.rcv.src.ip()),
        _ => false,
    }
}

/// Flag 16: the source port is not the top Via's port (5060 when absent).
fn via_port_differs(msg: &SipMsg) -> bool {
    match msg.message.top_via() {
        Some(Ok(v)) => msg.rcv.src.port() != v.port.unwrap_or(SIP_PORT),
        _ => false,
    }
}

/// Flag 4: the top Via's host is a private address.
fn via_private(msg: &SipMsg, mode: i64) -> bool {
    matches!(msg.message.top_via(), Some(Ok(v)) if is_private_text(v.host, mode) == Some(true))
}

/// The SDP body, when the message carries one.
fn sdp_body(msg: &SipMsg) -> Option<&str> {
    let ctype = msg.message.content_type().unwrap_or("application/sdp");
    let mime = ctype.split(';').next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("application/sdp") {
        return None;
    }
    std::str::from_utf8(msg.message.body())
        .ok()
        .filter(|b| !b.is_empty())
}

/// Flag 8: an SDP stream's connection address (its own `c=`, else the session's) is private.
fn sdp_private(msg: &SipMsg, mode: i64) -> bool {
    let Some(sdp) = sdp_body(msg).and_then(addr::sdp_addrs) else {
        return false;
    };
    for stream in &sdp.streams {
        let Some((kind, a)) = stream.or(sdp.session) else {
            break;
        };
        if !kind.eq_ignore_ascii_case("IP4") || addr::is_null_addr(kind, a) {
            break;
        }
        if is_private_text(a, mode) == Some(true) {
            return true;
        }
    }
    false
}

/// Flag 256: the session-level SDP connection address is not the source IP.
fn sdp_cline_differs(msg: &SipMsg) -> bool {
    let Some(sdp) = sdp_body(msg).and_then(addr::sdp_addrs) else {
        return false;
    };
    match sdp.session {
        Some((_, a)) => parse_ip(a) != Some(msg.rcv.src.ip()),
        None => false,
    }
}

/// Flag 128: the first Contact's port (5060 when absent) is not the source port.
fn contact_port_differs(msg: &SipMsg) -> bool {
    contact::first_contact(msg).is_ok_and(|c| {
        Uri::parse(c.uri()).is_ok_and(|u| u.port.unwrap_or(SIP_PORT) != msg.rcv.src.port())
    })
}

/// The transport of a URI (`transport=` param), if known.
fn uri_proto(u: &Uri<'_>) -> Option<Proto> {
    u.param("transport").and_then(Proto::parse)
}

/// Default port for a transport (Kamailio's `GET_SIP_PORT`).
fn default_port(port: Option<u16>, proto: Option<Proto>) -> u16 {
    port.filter(|p| *p != 0)
        .unwrap_or(if proto == Some(Proto::Tls) {
            SIPS_PORT
        } else {
            SIP_PORT
        })
}

/// Hosts differ: by IP when both are IPs, by text when neither is, else they differ.
fn hosts_differ(a: &str, b: &str) -> bool {
    match (parse_ip(a), parse_ip(b)) {
        (Some(x), Some(y)) => x != y,
        (None, None) => a != b,
        _ => true,
    }
}

/// Flag 512: the target differs from the R-URI (requests: `$du` vs R-URI) or from the second
/// Via (replies: its `received`/`rport`), or goes over WebSocket.
fn destination_differs(msg: &SipMsg) -> bool {
    let is_ws = |p: Option<Proto>| matches!(p, Some(Proto::Ws | Proto::Wss));
    if msg.message.is_response() {
        let Some(Ok(v2)) = msg.message.vias().nth(1) else {
            return false;
        };
        if is_ws(Proto::parse(v2.transport)) {
            return true;
        }
        let proto = Proto::parse(v2.transport);
        if let Some(rport) = v2.rport().and_then(|r| r.parse::<u16>().ok()) {
            if rport != 0 && rport != default_port(v2.port, proto) {
                return true;
            }
        }
        return match v2.received() {
            Some(rcvd) if !rcvd.is_empty() => hosts_differ(rcvd, v2.host),
            _ => false,
        };
    }
    let Some(ruri) = view::current_ruri(msg).and_then(|r| Uri::parse(r).ok()) else {
        return false;
    };
    let du = msg.route.dst_uri.as_deref().filter(|d| !d.is_empty());
    let Some(du) = du else {
        return is_ws(uri_proto(&ruri));
    };
    let Ok(du) = Uri::parse(du) else {
        return false;
    };
    if is_ws(uri_proto(&du)) {
        return true;
    }
    if default_port(du.port, uri_proto(&du)) != default_port(ruri.port, uri_proto(&ruri)) {
        return true;
    }
    !du.host.is_empty() && hosts_differ(du.host, ruri.host)
}

/// Guess whether the sender is behind a NAT; `flags` ORs the tests (Kamailio's bits): 1 Contact
/// host private, 2 top Via host is not the source IP, 4 top Via host private, 8 SDP address
/// private, 16 source port is not the Via port, 32 source IP private, 64 arrived over
/// WebSocket, 128 Contact port is not the source port, 256 SDP `c=` is not the source IP, 512
/// the destination differs from the R-URI/2nd Via or is WebSocket. Returns 1 when a test holds,
/// else -1.
#[kemi(module = "nathelper")]
pub fn nat_uac_test(msg: &mut SipMsg, flags: i32) -> i32 {
    let mode = cfg(msg).nat_addr_mode;
    let has = |bit: i32| flags & bit != 0;
    let found = (has(16) && via_port_differs(msg))
        || (has(2) && via_differs(msg))
        || (has(1) && contact_private(msg, mode))
        || (has(8) && sdp_private(msg, mode))
        || (has(4) && via_private(msg, mode))
        || (has(32) && is_private_ip(msg.rcv.src.ip(), mode))
        || (has(64) && matches!(msg.rcv.proto, Proto::Ws | Proto::Wss))
        || (has(128) && contact_port_differs(msg))
        || (has(256) && sdp_cline_differs(msg))
        || (has(512) && destination_differs(msg));
    if found {
        1
    } else {
        -1
    }
}

/// 1 when `address` is an IPv4 address in a private range (10/8, 172.16/12, 192.168/16,
/// 100.64/10, 192.0.0.0/29, and 192.0.0.0/24 with `nat_addr_mode=1`), else -1.
#[kemi(module = "nathelper")]
pub fn is_rfc1918(msg: &mut SipMsg, address: &str) -> i32 {
    match is_private_text(address, cfg(msg).nat_addr_mode) {
        Some(true) => 1,
        _ => -1,
    }
}

// ----- Contact rewriting -----

/// Rewrite the host:port of the first Contact URI with the source address and port (a
/// `maddr` parameter is removed). Returns 1, or -1 without a usable Contact or when the
/// Contact was already changed.
#[kemi(module = "nathelper")]
pub fn fix_nated_contact(msg: &mut SipMsg) -> i32 {
    const F: &str = "fix_nated_contact";
    let Some(c) = first_contact_logged(msg, F) else {
        return -1;
    };
    let uri = c.uri();
    let Some(parts) = UriParts::parse(uri) else {
        return -1;
    };
    let hp_end = if parts.has_port {
        parts.port.end
    } else {
        parts.host.end
    };
    let (Some(head), Some(rest)) = (uri.get(..parts.host.start), uri.get(hp_end..)) else {
        return -1;
    };
    let rest = without_param(rest, "maddr");
    let new_uri = format!(
        "{head}{}:{}{rest}",
        host_of(msg.rcv.src.ip()),
        msg.rcv.src.port()
    );
    if contact::replace(msg, &c, c.uri.clone(), &new_uri, F) {
        1
    } else {
        -1
    }
}

/// `rest` (the URI after host:port: `;params?headers`) without the parameters named `name`.
fn without_param(rest: &str, name: &str) -> String {
    let (params, headers) = match rest.split_once('?') {
        Some((p, h)) => (p, Some(h)),
        None => (rest, None),
    };
    let mut out = String::with_capacity(rest.len());
    for p in params.split(';').filter(|p| !p.is_empty()) {
        let pname = p.split('=').next().unwrap_or("").trim();
        if !pname.eq_ignore_ascii_case(name) {
            out.push(';');
            out.push_str(p);
        }
    }
    if let Some(h) = headers {
        out.push('?');
        out.push_str(h);
    }
    out
}

/// `uri` without its last `;<alias>=ip~port~proto` parameter (Kamailio's
/// `uri_trim_rcv_alias`); `None` when there is none.
fn trim_alias(uri: &str, alias_name: &str) -> Option<String> {
    let needle = format!(";{alias_name}=");
    let start = uri.rfind(&needle)?;
    let val = uri.get(start + needle.len()..)?;
    let (_ip, rest) = val.split_once('~')?;
    let (_port, rest) = rest.split_once('~')?;
    let mut chars = rest.chars();
    chars.next()?;
    let after = chars.as_str();
    if !(after.is_empty() || after.starts_with(';')) {
        return None;
    }
    let end = uri.len() - after.len();
    Some(format!("{}{}", uri.get(..start)?, uri.get(end..)?))
}

fn set_alias(msg: &mut SipMsg, trim: bool) -> i32 {
    const F: &str = "set_contact_alias";
    let Some(c) = first_contact_logged(msg, F) else {
        return -1;
    };
    let alias_name = cfg(msg).alias_name;
    let uri = c.uri();
    let base = if trim {
        trim_alias(uri, &alias_name).unwrap_or_else(|| uri.to_string())
    } else {
        uri.to_string()
    };
    let new_uri = format!("{base}{}", src_alias(msg, &alias_name));
    let with = if c.bracketed {
        new_uri
    } else {
        format!("<{new_uri}>")
    };
    if contact::replace(msg, &c, c.uri.clone(), &with, F) {
        1
    } else {
        -1
    }
}

/// Add `;alias=ip~port~proto` (the source address, port and Kamailio's protocol number) at
/// the end of the first Contact URI, putting the URI in `<>` when needed. Returns 1, or -1
/// without a usable Contact.
#[kemi(module = "nathelper")]
pub fn set_contact_alias(msg: &mut SipMsg) -> i32 {
    set_alias(msg, false)
}

/// `set_contact_alias`, removing an `alias` parameter the Contact URI already had.
#[kemi(module = "nathelper")]
pub fn set_contact_alias_trim(msg: &mut SipMsg) -> i32 {
    set_alias(msg, true)
}

/// Insert `param` after host:port of the first Contact URI, adding `<>` when it had none.
fn insert_alias(msg: &mut SipMsg, c: &contact::FirstContact, param: &str, func: &str) -> i32 {
    let uri = c.uri();
    let Some(parts) = UriParts::parse(uri) else {
        return -1;
    };
    let hp_end = if parts.has_port {
        parts.port.end
    } else {
        parts.host.end
    };
    let (Some(head), Some(tail)) = (uri.get(..hp_end), uri.get(hp_end..)) else {
        return -1;
    };
    let with = if c.bracketed {
        format!("{head}{param}{tail}")
    } else {
        format!("<{head}{param}>{tail}")
    };
    if contact::replace(msg, c, c.uri.clone(), &with, func) {
        1
    } else {
        -1
    }
}

/// Add `;alias=ip~port~proto` for the source address after host:port of the first Contact
/// URI, unless the Contact already names the source (same IP, port and `transport`; a Contact
/// without `transport` never matches, as in Kamailio). Returns 1 when added, 2 when there is
/// no Contact or nothing to add, -1 on error.
#[kemi(module = "nathelper")]
pub fn add_contact_alias(msg: &mut SipMsg) -> i32 {
    const F: &str = "add_contact_alias";
    let c = match contact::first_contact_or_code(msg, F) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Ok(u) = Uri::parse(c.uri()) {
        let same = parse_ip(u.host) == Some(msg.rcv.src.ip())
            && (u.port == Some(msg.rcv.src.port())
                || (u.port.is_none() && msg.rcv.src.port() == SIP_PORT))
            && uri_proto(&u) == Some(msg.rcv.proto);
        if same {
            return 2;
        }
    }
    let param = src_alias(msg, &cfg(msg).alias_name);
    insert_alias(msg, &c, &param, F)
}

/// Add `;alias=ip~port~proto` with the given address, port and protocol name (`udp`, `tcp`,
/// `tls`, `sctp`, `ws`, `wss`) after host:port of the first Contact URI. Returns 1, 2 without
/// a Contact, -1 for a bad parameter or Contact.
#[kemi(module = "nathelper")]
pub fn add_contact_alias_addr(msg: &mut SipMsg, ip: &str, port: &str, proto: &str) -> i32 {
    const F: &str = "add_contact_alias";
    if parse_ip(ip).is_none() {
        msg.log(
            LogLevel::Err,
            &format!("{F}: ip param value {ip} is not a valid IP address"),
        );
        return -1;
    }
    if !matches!(port.parse::<u32>(), Ok(1..=65535)) {
        msg.log(
            LogLevel::Err,
            &format!("{F}: port param value {port} is not a valid port"),
        );
        return -1;
    }
    let Some(p) = Proto::parse(proto) else {
        msg.log(
            LogLevel::Err,
            &format!("{F}: proto param value {proto} is not a known protocol"),
        );
        return -1;
    };
    let c = match contact::first_contact_or_code(msg, F) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let param = format!(";{}={ip}~{port}~{}", cfg(msg).alias_name, p.number());
    insert_alias(msg, &c, &param, F)
}

/// Add the source as a `received` parameter to every Contact: as a header parameter
/// (`;received="sip:ip:port;transport=x"`) when `flag` is 0, else inside the URI (UDP only).
/// Returns 1, or -1 (no Contact, or `flag` set on another transport).
#[kemi(module = "nathelper")]
pub fn add_rcv_param(msg: &mut SipMsg, flag: i32) -> i32 {
    const F: &str = "add_rcv_param";
    let in_uri = flag != 0;
    if in_uri && msg.rcv.proto != Proto::Udp {
        msg.log(
            LogLevel::Err,
            &format!("{F}: adding received parameter to Contact URI works only for UDP"),
        );
        return -1;
    }
    let rcv = src_uri(msg.rcv.proto, msg.rcv.src);
    let mut new_edits = Vec::new();
    let mut any = false;
    for h in msg.message.find_kind(HeaderKind::Contact) {
        let mut value = String::with_capacity(h.value.len() + 48);
        let mut last = 0;
        for elem in msg.message.list(HeaderKind::Contact) {
            let Some(off) = offset_in(h.value, elem) else {
                continue;
            };
            let Ok(na) = NameAddr::parse(elem, "Contact") else {
                return -1;
            };
            if na.is_star() {
                continue;
            }
            let at = if in_uri {
                offset_in(h.value, na.uri).map(|o| o + na.uri.len())
            } else {
                offset_in(h.value, na.raw).map(|o| o + na.raw.len())
            };
            let Some(at) = at.filter(|a| *a >= off) else {
                return -1;
            };
            value.push_str(h.value.get(last..at).unwrap_or_default());
            if in_uri {
                value.push_str(&format!(";received={rcv}"));
            } else {
                value.push_str(&format!(";received=\"{rcv}\""));
            }
            last = at;
            any = true;
        }
        value.push_str(h.value.get(last..).unwrap_or_default());
        new_edits.push((h.index, format!("{}: {value}\r\n", h.name)));
    }
    if !any {
        msg.log(LogLevel::Err, &format!("{F}: no Contact to change"));
        return -1;
    }
    for (index, _) in &new_edits {
        if contact::already_edited(msg, *index) {
            msg.log(
                LogLevel::Err,
                &format!("{F}: you can't update the Contact twice, check your script"),
            );
            return -1;
        }
    }
    for (index, line) in new_edits {
        msg.route
            .edits
            .push(kemi_runtime::sip::HeaderEdit::Remove(index));
        msg.route
            .edits
            .push(kemi_runtime::sip::HeaderEdit::InsertBefore(index, line));
    }
    1
}

/// Put the source as a URI (`sip:ip:port`, `;transport=x` unless UDP) into the AVP named by
/// the `received_avp` modparam (`$avp(RECEIVED)` by default), for the registrar's `save` to
/// store as `received`. Returns 1 (also when `received_avp` is disabled).
#[kemi(module = "nathelper")]
pub fn fix_nated_register(msg: &mut SipMsg) -> i32 {
    let Some(name) = cfg(msg).received_avp else {
        return 1;
    };
    let uri = src_uri(msg.rcv.proto, msg.rcv.src);
    msg.route.avps.push(Avp {
        name,
        value: VarValue::Str(uri),
    });
    1
}

// ----- alias routing -----

/// The `alias` parameter of a URI's parameter list: (its range in the URI including the `;`,
/// the `$du` it encodes), the first one (`last == false`) or the last one.
fn find_alias(
    uri: &str,
    alias_name: &str,
    last: bool,
) -> Result<Option<(std::ops::Range<usize>, String)>, &'static str> {
    let Ok(parsed) = Uri::parse(uri) else {
        return Err("while parsing Request-URI");
    };
    let params = parsed.params.as_str();
    let Some(base) = offset_in(uri, params) else {
        return Ok(None);
    };
    let prefix = format!("{alias_name}=");
    let mut found = None;
    let mut pos = 0;
    for p in params.split(';') {
        if p.starts_with(&prefix) {
            found = Some((base + pos, p));
            if !last {
                break;
            }
        }
        pos += p.len() + 1;
    }
    let Some((start, p)) = found else {
        return Ok(None);
    };
    let val = p.get(prefix.len()..).unwrap_or_default();
    let (ip, rest) = val.split_once('~').ok_or("no '~' in alias param value")?;
    let (port, proto) = rest
        .split_once('~')
        .ok_or("no second '~' in alias param value")?;
    let mut chars = proto.chars();
    let digit = chars.next().ok_or("no proto in alias param")?;
    if !chars.as_str().is_empty() {
        return Err("invalid alias param value");
    }
    let n = digit
        .to_digit(10)
        .and_then(|d| u8::try_from(d).ok())
        .ok_or("unknown proto in alias param")?;
    let transport = addr::transport_of_number(n).ok_or("unknown proto in alias param")?;
    let mut du = format!("sip:{ip}:{port}");
    if n != 1 {
        du.push_str(";transport=");
        du.push_str(transport);
    }
    // The `;` before the parameter is removed with it.
    Ok(Some((start - 1..start + p.len(), du)))
}

/// `handle_ruri_alias` with `mode`: 0 takes the first `alias` parameter of the R-URI,
/// anything else the last one. Sets `$du` to `sip:ip:port[;transport=x]` and removes the
/// parameter from the R-URI. Returns 1 when done, 2 when there is no alias, -1 on error.
#[kemi(module = "nathelper")]
pub fn handle_ruri_alias_mode(msg: &mut SipMsg, mode: i32) -> i32 {
    let alias_name = cfg(msg).alias_name;
    let Some(cur) = view::current_ruri(msg).map(str::to_string) else {
        msg.log(LogLevel::Err, "handle_ruri_alias: no Request-URI");
        return -1;
    };
    match find_alias(&cur, &alias_name, mode != 0) {
        Ok(Some((range, du))) => {
            let (Some(head), Some(tail)) = (cur.get(..range.start), cur.get(range.end..)) else {
                return -1;
            };
            msg.route.new_ruri = Some(format!("{head}{tail}"));
            msg.route.dst_uri = Some(du);
            1
        }
        Ok(None) => 2,
        Err(e) => {
            msg.log(LogLevel::Err, &format!("handle_ruri_alias: {e}"));
            -1
        }
    }
}

/// When the R-URI has an `alias` parameter (as `set_contact_alias` writes it), set `$du` to
/// the address it encodes and remove the first such parameter from the R-URI. Returns 1 when
/// done, 2 when there is no alias, -1 on error.
#[kemi(module = "nathelper")]
pub fn handle_ruri_alias(msg: &mut SipMsg) -> i32 {
    handle_ruri_alias_mode(msg, 0)
}

/// Read `;alias=ip~port~proto` from the (single) first Contact and write
/// `sip:ip:port;transport=x` into PV `pvname`. Returns 1, or -1 (no single Contact, no alias,
/// or a PV that cannot be written).
#[kemi(module = "nathelper")]
pub fn set_alias_to_pv(msg: &mut SipMsg, pvname: &str) -> i32 {
    const F: &str = "set_alias_to_pv";
    let alias_name = cfg(msg).alias_name;
    let Some(h) = msg.message.first_kind(HeaderKind::Contact) else {
        return -1;
    };
    let values: Vec<&str> = msg
        .message
        .list(HeaderKind::Contact)
        .filter(|v| offset_in(h.value, v).is_some())
        .collect();
    let [elem] = values.as_slice() else {
        msg.log(
            LogLevel::Err,
            &format!("{F}: couldn't parse Contact header"),
        );
        return -1;
    };
    let needle = format!(";{alias_name}=");
    let Some(start) = elem.find(&needle) else {
        msg.log(LogLevel::Err, &format!("{F}: alias sign couldn't be found"));
        return -1;
    };
    let val = elem.get(start + needle.len()..).unwrap_or_default();
    let parsed = val.split_once('~').and_then(|(host, rest)| {
        let (port, proto) = rest.split_once('~')?;
        let digits: String = proto.chars().take_while(char::is_ascii_digit).collect();
        let n = digits.parse::<u8>().unwrap_or(0);
        Some((host, port, addr::transport_of_number(n).unwrap_or("")))
    });
    let Some((host, port, transport)) = parsed else {
        msg.log(LogLevel::Err, &format!("{F}: malformed alias parameter"));
        return -1;
    };
    let uri = format!("sip:{host}:{port};transport={transport}");
    if crate::pv::sets(msg, pvname, &uri) {
        1
    } else {
        msg.log(
            LogLevel::Err,
            &format!("{F}: destination pseudo-variable is not writable: [{pvname}]"),
        );
        -1
    }
}

// ----- SDP -----

fn no_sdp_rewrite(msg: &mut SipMsg, func: &str) -> i32 {
    msg.log(
        LogLevel::Err,
        &format!(
            "nathelper.{func}: not available: sipd cannot rewrite message bodies \
             (use an RTP relay, or leave SDP untouched)"
        ),
    );
    -1
}

/// Not available in sipd (message bodies cannot be changed): logs and returns -1.
#[kemi(module = "nathelper")]
pub fn fix_nated_sdp(msg: &mut SipMsg, _flags: i32) -> i32 {
    no_sdp_rewrite(msg, "fix_nated_sdp")
}

/// Not available in sipd (message bodies cannot be changed): logs and returns -1.
#[kemi(module = "nathelper")]
pub fn fix_nated_sdp_ip(msg: &mut SipMsg, _flags: i32, _ip: &str) -> i32 {
    no_sdp_rewrite(msg, "fix_nated_sdp_ip")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_params() {
        let (r, du) = find_alias("sip:a@h;x=1;alias=10.0.0.1~5070~2;y", "alias", false)
            .unwrap()
            .unwrap();
        assert_eq!(du, "sip:10.0.0.1:5070;transport=tcp");
        let u = "sip:a@h;x=1;alias=10.0.0.1~5070~2;y";
        assert_eq!(format!("{}{}", &u[..r.start], &u[r.end..]), "sip:a@h;x=1;y");
        let (_, du) = find_alias("sip:h;alias=1.2.3.4~5~1;alias=5.6.7.8~9~6", "alias", true)
            .unwrap()
            .unwrap();
        assert_eq!(du, "sip:5.6.7.8:9;transport=ws");
        assert_eq!(find_alias("sip:h;lr", "alias", false), Ok(None));
        assert!(find_alias("sip:h;alias=1.2.3.4", "alias", false).is_err());
        assert!(find_alias("sip:h;alias=1.2.3.4~5~9", "alias", false).is_err());
        assert!(find_alias("sip:h;alias=1.2.3.4~5~12", "alias", false).is_err());
        assert_eq!(
            trim_alias("sip:a@h;alias=1.2.3.4~5~1;x", "alias").as_deref(),
            Some("sip:a@h;x")
        );
        assert_eq!(without_param(";a=1;maddr=x;b?h=1", "maddr"), ";a=1;b?h=1");
    }
}
