//! `record_route`, `record_route_params`, `record_route_preset*`,
//! `record_route_advertised_address`, `add_rr_param`, `remove_record_route`: what the host is
//! to insert, kept in `msg.route.record_route`.

use kemi_runtime::msg::RecordRoute;
use kemi_runtime::{kemi, SipMsg};

/// The Record-Route request of `msg`, created on first use; `None` for replies.
fn rr(msg: &mut SipMsg) -> Option<&mut RecordRoute> {
    if !msg.message.is_request() {
        return None;
    }
    Some(
        msg.route
            .record_route
            .get_or_insert_with(RecordRoute::default),
    )
}

fn append_params(rr: &mut RecordRoute, params: &str) {
    let params = params.trim();
    if params.is_empty() {
        return;
    }
    if !params.starts_with(';') {
        rr.params.push(';');
    }
    rr.params.push_str(params);
}

/// Record-Route this request through us (`;lr`, the From tag as `ftag`). Returns 1, or -1 for
/// a reply.
#[kemi(module = "rr")]
pub fn record_route(msg: &mut SipMsg) -> i32 {
    rr(msg).map_or(-1, |_| 1)
}

/// `record_route` with extra URI parameters (`";a=b"`).
#[kemi(module = "rr")]
pub fn record_route_params(msg: &mut SipMsg, params: &str) -> i32 {
    match rr(msg) {
        Some(rr) => {
            append_params(rr, params);
            1
        }
        None => -1,
    }
}

/// Add a parameter (`";nat=yes"`) to the Record-Route this request gets. Returns 1, or -1 when
/// `record_route` was not called (yet) or the message is a reply.
#[kemi(module = "rr")]
pub fn add_rr_param(msg: &mut SipMsg, param: &str) -> i32 {
    match msg.route.record_route.as_mut() {
        Some(rr) if msg.message.is_request() => {
            append_params(rr, param);
            1
        }
        _ => -1,
    }
}

/// Record-Route with the given URI (`"sip:proxy.example;lr"`) instead of our socket.
#[kemi(module = "rr")]
pub fn record_route_preset_one(msg: &mut SipMsg, addr1: &str) -> i32 {
    match rr(msg) {
        Some(rr) => {
            rr.preset = Some((addr1.to_string(), None));
            1
        }
        None => -1,
    }
}

/// Record-Route twice with the given URIs (top first), instead of our sockets.
#[kemi(module = "rr")]
pub fn record_route_preset(msg: &mut SipMsg, addr1: &str, addr2: &str) -> i32 {
    match rr(msg) {
        Some(rr) => {
            let second = (!addr2.is_empty()).then(|| addr2.to_string());
            rr.preset = Some((addr1.to_string(), second));
            1
        }
        None => -1,
    }
}

/// Record-Route advertising `addr` (`host[:port]`) instead of the socket address.
#[kemi(module = "rr")]
pub fn record_route_advertised_address(msg: &mut SipMsg, addr: &str) -> i32 {
    match rr(msg) {
        Some(rr) => {
            rr.advertised = Some(addr.to_string());
            1
        }
        None => -1,
    }
}

/// Forget the Record-Route asked for so far. Returns 1.
#[kemi(module = "rr")]
pub fn remove_record_route(msg: &mut SipMsg) -> i32 {
    msg.route.record_route = None;
    1
}
