//! `loose_route`, `loose_route_preloaded`, `loose_route_mode`: RFC 3261 16.4 and 16.6 steps 6-7
//! with 16.12's strict routers.
//!
//! 1. A previous strict router put our Record-Route URI in the Request-URI: the last Route value
//!    becomes the Request-URI and is removed (16.4).
//! 2. Our own entries at the top of the Route set are removed (up to two, for double
//!    Record-Route).
//! 3. The next Route entry, if any, is the next hop: a loose router (`;lr`) becomes `$du`; a
//!    strict one becomes the Request-URI, and the Request-URI goes to the end of the Route set
//!    (16.6 step 7).

use kemi_runtime::msg::LogLevel;
use kemi_runtime::sip::Uri;
use kemi_runtime::{kemi, SipMsg};

use super::route_set::{self, RouteEntry};
use crate::core::myself::is_myself;

/// Whether the R-URI in effect is a URI we record-routed with (ours, no user part).
fn ruri_is_our_rr(msg: &mut SipMsg) -> bool {
    let Some(ruri) = msg.ruri().map(str::to_string) else {
        return false;
    };
    let no_user = Uri::parse(&ruri).is_ok_and(|u| u.user.is_none());
    no_user && is_myself(msg, &ruri)
}

/// The Route processing; 1 when the Route set decided the next hop, -1 when there was no
/// Route header or only our own on an initial request (`preloaded` asks for the latter check).
fn process(msg: &mut SipMsg) -> i32 {
    let r = route(msg);
    if r > 0 {
        // Kamailio's rr callbacks: the dialog module follows in-dialog requests routed here.
        crate::dialog::on_loose_route(msg);
    }
    r
}

fn route(msg: &mut SipMsg) -> i32 {
    if !msg.message.is_request() {
        return -1;
    }
    let mut all: Vec<RouteEntry> = route_set::entries(&msg.message);
    if all.is_empty() {
        return -1;
    }
    let mut removed = Vec::new();
    let mut new_ruri = None;
    let mut live: Vec<usize> = (0..all.len()).collect();
    if ruri_is_our_rr(msg) {
        if let Some(last) = live.pop() {
            new_ruri = all.get(last).map(|e| e.uri.clone());
            removed.push(last);
        }
    }
    let mut ours = 0;
    while ours < 2 {
        let Some(&i) = live.first() else { break };
        let uri = all.get(i).map(|e| e.uri.clone()).unwrap_or_default();
        if !is_myself(msg, &uri) {
            break;
        }
        removed.push(i);
        live.remove(0);
        ours += 1;
    }
    let initial = msg.message.to_tag().is_none_or(str::is_empty);
    if ours > 0 && live.is_empty() && new_ruri.is_none() && initial {
        // A preloaded Route naming only us: nothing to route by.
        let edits = route_set::edits(&all, &removed, None, &msg.message);
        msg.route.edits.extend(edits);
        return -1;
    }
    let mut append = None;
    if let Some(&next) = live.first() {
        let entry = all.get(next).cloned();
        if let Some(e) = entry {
            if e.is_loose() {
                msg.route.dst_uri = Some(e.uri.clone());
            } else {
                // Strict next hop: it becomes the R-URI, the R-URI goes last in the Route set.
                let old = new_ruri.clone().or_else(|| msg.ruri().map(str::to_string));
                removed.push(next);
                new_ruri = Some(e.uri.clone());
                append = old.map(|o| format!("<{o}>"));
            }
        }
    }
    let edits = route_set::edits(&all, &removed, append.as_deref(), &msg.message);
    msg.route.edits.extend(edits);
    if let Some(r) = new_ruri {
        msg.route.new_ruri = Some(r);
    }
    all.clear();
    1
}

/// Route by the Route set (see the module doc). Returns 1 when Route headers decided the next
/// hop (`$du` or a new R-URI set), -1 when there are none (or only our own on an initial
/// request).
#[kemi(module = "rr")]
pub fn loose_route(msg: &mut SipMsg) -> i32 {
    process(msg)
}

/// `loose_route` for initial requests only (no To tag): -1 for in-dialog requests.
#[kemi(module = "rr")]
pub fn loose_route_preloaded(msg: &mut SipMsg) -> i32 {
    if msg.message.to_tag().is_some_and(|t| !t.is_empty()) {
        return -1;
    }
    process(msg)
}

/// `loose_route` with Kamailio's `mode` bits; only mode 0 (full processing) is supported, other
/// values are processed the same way and logged once per call.
#[kemi(module = "rr")]
pub fn loose_route_mode(msg: &mut SipMsg, mode: i32) -> i32 {
    if mode != 0 {
        msg.log(
            LogLevel::Debug,
            &format!("loose_route_mode: mode {mode} handled as 0"),
        );
    }
    process(msg)
}

/// 1 when the request has a Route entry after ours (a next hop in the Route set), else -1.
#[kemi(module = "rr")]
pub fn next_hop_route(msg: &mut SipMsg) -> i32 {
    let all = route_set::entries(&msg.message);
    let mut rest = all
        .iter()
        .map(|e| e.uri.clone())
        .collect::<Vec<_>>()
        .into_iter();
    for uri in rest.by_ref() {
        if !is_myself(msg, &uri) {
            return 1;
        }
    }
    -1
}
