//! `lookup` and friends: find the contacts of an address-of-record (from memory, no store
//! access) and turn them into the Request-URI, `$du`, branch flags and parallel branches, with
//! Kamailio's return codes (1 found, -1 not found, -2 method not allowed, -3 error).

use kemi_runtime::msg::{BranchTarget, LogLevel, Proto};
use kemi_runtime::services::OpenConnections;
use kemi_runtime::sip::{HeaderEdit, Uri};
use kemi_runtime::{kemi, SipMsg};

use super::contact::{first_route_uri, method_bit};
use super::usrloc::Contact;
use super::{table_of, Registrar};

/// Whether `c` accepts the request's method (always, unless `method_filtering`).
fn allowed(reg: &Registrar, c: &Contact, method_mask: i32) -> bool {
    !reg.cfg.method_filtering || c.methods & method_mask != 0
}

/// Where a contact's requests go: the first Path hop, else its `received`, else nowhere special.
fn dst_of(c: &Contact) -> Option<String> {
    if !c.path.is_empty() {
        if let Some(hop) = first_route_uri(&c.path) {
            return Some(hop.to_string());
        }
    }
    (!c.received.is_empty()).then(|| String::from(&*c.received))
}

/// Whether `c` can be reached: a contact registered over a WebSocket (its socket `ws:`/`wss:`,
/// no Path) is reached only over the connection it registered on, at its `received` address;
/// once that connection closed, the contact is skipped (Kamailio's usrloc `handle_lost_tcp`,
/// always on for WebSocket). Without the host's connection view every contact counts.
fn reachable(conns: Option<&OpenConnections>, c: &Contact) -> bool {
    let Some(conns) = conns else {
        return true;
    };
    let proto = if c.socket.starts_with("ws:") {
        Proto::Ws
    } else if c.socket.starts_with("wss:") {
        Proto::Wss
    } else {
        return true;
    };
    if !c.path.is_empty() {
        return true;
    }
    let peer = Uri::parse(&c.received).ok().and_then(|u| {
        let ip = u.host_unbracketed().parse::<std::net::IpAddr>().ok()?;
        Some(std::net::SocketAddr::new(ip, u.port?))
    });
    peer.is_some_and(|p| conns.is_open(proto, p))
}

/// The core of `lookup*`: `uri` (else the R-URI in effect) to contacts; `rewrite` makes the
/// first contact the R-URI (`lookup`), else every contact becomes a branch (`lookup_to_dset`).
fn lookup_impl(msg: &mut SipMsg, table: &str, uri: Option<&str>, rewrite: bool) -> i32 {
    let Some((reg, t)) = table_of(msg, table) else {
        return -3;
    };
    // The key is built on the stack from the borrowed URI: no allocation.
    let aor = match uri.filter(|u| !u.is_empty()) {
        Some(u) => reg.aor_key(u).ok_or_else(|| u.to_string()),
        None => match msg.ruri() {
            Some(r) => reg.aor_key(r).ok_or_else(|| r.to_string()),
            None => return -3,
        },
    };
    let aor = match aor {
        Ok(aor) => aor,
        Err(target) => {
            msg.log(LogLevel::Err, &format!("lookup: bad URI [{target}]"));
            return -3;
        }
    };
    // Shared store (Redis): an AoR this node has never seen may have registered at another
    // node before this one started; ask the store (bounded by its timeout). When it cannot
    // answer, the caller learns "error" (-3), not "not registered".
    if reg.ul.shared() && !t.contains(&aor) {
        if let Err(e) = reg.ul.fetch(&t, &aor) {
            // Debug only: the store logs the outage once, not once per lookup.
            msg.log(
                LogLevel::Debug,
                &format!(
                    "lookup: [{}] not in memory and the store cannot answer: {e}",
                    &*aor
                ),
            );
            return -3;
        }
    }
    let now = crate::store::now_unix();
    let mask = crate::view::method(&msg.message).map_or(0, method_bit);
    let append = reg.cfg.append_branches || !rewrite;
    let conns = msg.env.services.get::<OpenConnections>();
    // Under the shard's read lock: only what the request needs is copied out.
    let picked = t.read(&aor, |rec| {
        let rec = rec?;
        let mut any_valid = false;
        let mut first = None;
        let mut rest = Vec::new();
        for c in rec.iter().filter(|c| c.valid(now) && reachable(conns, c)) {
            any_valid = true;
            if !allowed(&reg, c, mask) {
                continue;
            }
            if rewrite && first.is_none() {
                first = Some((
                    String::from(&*c.uri),
                    dst_of(c),
                    String::from(&*c.path),
                    c.cflags,
                ));
            } else if append {
                rest.push(BranchTarget {
                    uri: String::from(&*c.uri),
                    dst: dst_of(c),
                });
            } else {
                break;
            }
        }
        any_valid.then_some((first, rest))
    });
    let Some((first, rest)) = picked else {
        return -1;
    };
    if rewrite && first.is_none() {
        return -2;
    }
    let mut any = false;
    if let Some((uri, dst, path, cflags)) = first {
        msg.route.new_ruri = Some(uri);
        msg.route.dst_uri = dst;
        if !path.is_empty() {
            for hop in path.split(',') {
                msg.route
                    .edits
                    .push(HeaderEdit::Prepend(format!("Route: {}\r\n", hop.trim())));
            }
        }
        msg.route.bflags |= u64::from(cflags as u32);
        any = true;
    }
    any |= !rest.is_empty();
    msg.tm.branches.extend(rest);
    if any {
        1
    } else {
        -2
    }
}

/// `KSR.registrar.lookup(table)`: replace the R-URI with the contacts registered for it:
/// the first (highest q) becomes the R-URI (its `received` or first Path hop the `$du`, its
/// branch flags set), the others parallel branches when `append_branches` is 1. Returns 1,
/// -1 (not found / no valid contact), -2 (no contact allows the method), -3 (error).
#[kemi(module = "registrar", name = "lookup")]
pub fn lookup(msg: &mut SipMsg, table: &str) -> i32 {
    lookup_impl(msg, table, None, true)
}

/// `KSR.registrar.lookup_uri(table, uri)`: `lookup` for the AoR of `uri`.
#[kemi(module = "registrar", name = "lookup_uri")]
pub fn lookup_uri(msg: &mut SipMsg, table: &str, uri: &str) -> i32 {
    lookup_impl(msg, table, Some(uri), true)
}

/// `KSR.registrar.lookup_to_dset(table, uri)`: add every contact of `uri` (or of the R-URI
/// when empty) as a branch, leaving the R-URI alone. Returns as `lookup`.
#[kemi(module = "registrar", name = "lookup_to_dset")]
pub fn lookup_to_dset(msg: &mut SipMsg, table: &str, uri: &str) -> i32 {
    lookup_impl(msg, table, Some(uri), false)
}

/// `KSR.registrar.lookup_branches(table)`: `lookup` for the R-URI, then for every branch
/// added before that has no destination of its own, replacing it with its contacts. Returns 1
/// when anything was found, else the R-URI's code.
#[kemi(module = "registrar", name = "lookup_branches")]
pub fn lookup_branches(msg: &mut SipMsg, table: &str) -> i32 {
    let before = std::mem::take(&mut msg.tm.branches);
    let saved = (
        msg.route.new_ruri.clone(),
        msg.route.dst_uri.clone(),
        msg.route.bflags,
    );
    let mut ret = lookup_impl(msg, table, None, true);
    let mut found = ret > 0;
    let mut out = std::mem::take(&mut msg.tm.branches);
    let main = (
        msg.route.new_ruri.clone(),
        msg.route.dst_uri.clone(),
        msg.route.bflags,
    );
    for b in before {
        if b.dst.is_some() {
            out.push(b);
            continue;
        }
        msg.route.new_ruri = None;
        msg.route.dst_uri = None;
        let r = lookup_impl(msg, table, Some(&b.uri), true);
        if r > 0 {
            found = true;
            if let Some(uri) = msg.route.new_ruri.take() {
                out.push(BranchTarget {
                    uri,
                    dst: msg.route.dst_uri.take(),
                });
            }
            out.append(&mut msg.tm.branches);
        } else {
            out.push(b);
        }
    }
    if ret <= 0 {
        (msg.route.new_ruri, msg.route.dst_uri, msg.route.bflags) = saved;
    } else {
        (msg.route.new_ruri, msg.route.dst_uri, msg.route.bflags) = main;
    }
    msg.tm.branches = out;
    if found {
        ret = 1;
    }
    ret
}

fn registered_impl(msg: &mut SipMsg, table: &str, uri: Option<&str>) -> i32 {
    let Some((reg, t)) = table_of(msg, table) else {
        return -1;
    };
    let aor = match uri.filter(|u| !u.is_empty()) {
        Some(u) => reg.aor_key(u),
        None => msg.ruri().and_then(|r| reg.aor_key(r)),
    };
    let Some(aor) = aor else {
        return -1;
    };
    let now = crate::store::now_unix();
    if t.read(&aor, |c| c.is_some_and(|c| c.iter().any(|c| c.valid(now)))) {
        1
    } else {
        -1
    }
}

/// `KSR.registrar.registered(table)`: 1 when the R-URI's AoR has a valid contact, else -1.
#[kemi(module = "registrar", name = "registered")]
pub fn registered(msg: &mut SipMsg, table: &str) -> i32 {
    registered_impl(msg, table, None)
}

/// `KSR.registrar.registered_uri(table, uri)`: `registered` for `uri`.
#[kemi(module = "registrar", name = "registered_uri")]
pub fn registered_uri(msg: &mut SipMsg, table: &str, uri: &str) -> i32 {
    registered_impl(msg, table, Some(uri))
}

/// `KSR.registrar.registered_flags(table, uri, flags)`: `registered` for `uri`; the match
/// flags (Contact/Call-ID/received matching) are accepted and not applied.
#[kemi(module = "registrar", name = "registered_flags")]
pub fn registered_flags(msg: &mut SipMsg, table: &str, uri: &str, flags: i32) -> i32 {
    let _ = flags;
    registered_impl(msg, table, Some(uri))
}

/// `KSR.registrar.registered_action(table, uri, flags, actionflags)`: `registered` for `uri`;
/// the match and action flags are accepted and not applied.
#[kemi(module = "registrar", name = "registered_action")]
pub fn registered_action(
    msg: &mut SipMsg,
    table: &str,
    uri: &str,
    flags: i32,
    actionflags: i32,
) -> i32 {
    let _ = (flags, actionflags);
    registered_impl(msg, table, Some(uri))
}

/// `KSR.registrar.unregister(table, uri)`: remove every contact of `uri`'s AoR. Returns 1, or
/// -1 for a bad table or URI.
#[kemi(module = "registrar", name = "unregister")]
pub fn unregister(msg: &mut SipMsg, table: &str, uri: &str) -> i32 {
    let Some((reg, t)) = table_of(msg, table) else {
        return -1;
    };
    let Some(aor) = reg.aor_of(uri) else {
        return -1;
    };
    reg.ul.remove_aor(&t, &aor);
    1
}

/// `KSR.registrar.unregister_ruid(table, uri, ruid)`: remove the contact `ruid` of `uri`'s AoR.
/// Returns 1, or -1 when there is no such contact.
#[kemi(module = "registrar", name = "unregister_ruid")]
pub fn unregister_ruid(msg: &mut SipMsg, table: &str, uri: &str, ruid: &str) -> i32 {
    let Some((reg, t)) = table_of(msg, table) else {
        return -1;
    };
    let Some(aor) = reg.aor_of(uri) else {
        return -1;
    };
    if reg.ul.remove_contact(&t, &aor, ruid, true) {
        1
    } else {
        -1
    }
}
