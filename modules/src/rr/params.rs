//! `check_route_param` and `is_direction`: reads of the Route entry that named us (the one
//! `loose_route` removes), whose parameters carry what `add_rr_param` and the `ftag` of our
//! Record-Route stored.

use kemi_runtime::msg::LogLevel;
use kemi_runtime::{kemi, SipMsg};

use super::route_set::{self, RouteEntry};
use crate::core::myself::is_myself;
use crate::textops::regex_cache::{self, Flavor};

/// The first Route entry naming us.
fn our_route(msg: &mut SipMsg) -> Option<RouteEntry> {
    route_set::entries(&msg.message)
        .into_iter()
        .find(|e| is_myself(msg, &e.uri.clone()))
}

/// 1 when the parameters of our Route entry (`lr;ftag=x;nat=yes`) match the regular expression
/// `re`, else -1 (also with no such entry).
#[kemi(module = "rr")]
pub fn check_route_param(msg: &mut SipMsg, re: &str) -> i32 {
    let Some(entry) = our_route(msg) else {
        return -1;
    };
    match regex_cache::compile(re, Flavor::PLAIN) {
        Ok(r) => super::super::tm::truth(r.is_match(entry.uri_params().as_bytes())),
        Err(e) => {
            msg.log(
                LogLevel::Err,
                &format!("check_route_param: bad regex [{re}]: {e}"),
            );
            -1
        }
    }
}

/// 1 when the request flows in direction `dir` (`"downstream"`: from the caller, whose From tag
/// our Record-Route recorded as `ftag`; `"upstream"`: the other way), else -1 (also without an
/// `ftag`).
#[kemi(module = "rr")]
pub fn is_direction(msg: &mut SipMsg, dir: &str) -> i32 {
    let downstream = match dir {
        d if d.eq_ignore_ascii_case("downstream") => true,
        d if d.eq_ignore_ascii_case("upstream") => false,
        _ => return -1,
    };
    let Some(entry) = our_route(msg) else {
        return -1;
    };
    let ftag = entry
        .uri_params()
        .split(';')
        .find_map(|p| p.strip_prefix("ftag="))
        .map(str::to_string);
    let Some(ftag) = ftag else {
        return -1;
    };
    let from_is_caller = msg.message.from_tag() == Some(ftag.as_str());
    super::super::tm::truth(from_is_caller == downstream)
}
