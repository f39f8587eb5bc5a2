//! R-URI and destination URI setters: `seturi`, `setuser`, `sethost`, `setdsturi`,
//! `resetdsturi`, `isdsturiset`. Also the helpers `$ru`/`$rU`/`$rd`/`$rp` writes share.

use kemi_runtime::msg::LogLevel;
use kemi_runtime::{kemi, SipMsg};

use crate::uri_parts::UriParts;
use crate::view;

/// Which part of the R-URI a rewrite replaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RuriPart {
    /// The user (`""` removes it).
    User,
    /// The host.
    Host,
    /// The port (`""` removes it).
    Port,
}

/// Replace the whole R-URI; false (logged) when `uri` is not a URI.
pub(crate) fn set_ruri(msg: &mut SipMsg, uri: &str) -> bool {
    if UriParts::parse(uri).is_none() {
        msg.log(
            LogLevel::Err,
            &format!("updating r-uri failed: invalid uri [{uri}]"),
        );
        return false;
    }
    msg.route.new_ruri = Some(uri.to_string());
    true
}

/// Replace one part of the R-URI in effect; false (logged) when there is no R-URI to change.
pub(crate) fn set_ruri_part(msg: &mut SipMsg, part: RuriPart, value: &str) -> bool {
    let rewritten = view::current_ruri(msg).and_then(|cur| {
        let parts = UriParts::parse(cur)?;
        match part {
            RuriPart::User => parts.with_user(cur, value),
            RuriPart::Host if !value.is_empty() => parts.with_host(cur, value),
            RuriPart::Host => None,
            RuriPart::Port => parts.with_port(cur, value),
        }
    });
    match rewritten {
        Some(uri) => {
            msg.route.new_ruri = Some(uri);
            true
        }
        None => {
            msg.log(
                LogLevel::Err,
                &format!("cannot rewrite the r-uri {part:?} to [{value}]"),
            );
            false
        }
    }
}

/// Replace the Request-URI with `uri`. Returns false when `uri` is not a valid URI.
#[kemi]
pub fn seturi(msg: &mut SipMsg, uri: &str) -> bool {
    set_ruri(msg, uri)
}

/// Replace the user part of the Request-URI (`""` removes it). Returns false when the message has
/// no usable R-URI.
#[kemi]
pub fn setuser(msg: &mut SipMsg, user: &str) -> bool {
    set_ruri_part(msg, RuriPart::User, user)
}

/// Replace the host part of the Request-URI. Returns false when the message has no usable R-URI
/// or `host` is empty.
#[kemi]
pub fn sethost(msg: &mut SipMsg, host: &str) -> bool {
    set_ruri_part(msg, RuriPart::Host, host)
}

/// Set the destination URI (`$du`): where the request is sent, whatever its R-URI. Returns true
/// even when `uri` is empty and nothing is set, as Kamailio does (the error is logged).
#[kemi]
pub fn setdsturi(msg: &mut SipMsg, uri: &str) -> bool {
    if uri.is_empty() {
        msg.log(LogLevel::Err, "setting dst uri failed: empty uri");
    } else {
        msg.route.dst_uri = Some(uri.to_string());
    }
    true
}

/// Clear the destination URI (`$du`). Always returns true.
#[kemi]
pub fn resetdsturi(msg: &mut SipMsg) -> bool {
    msg.route.dst_uri = None;
    true
}

/// True when a destination URI (`$du`) is set.
#[kemi]
pub fn isdsturiset(msg: &mut SipMsg) -> bool {
    msg.route.dst_uri.as_deref().is_some_and(|d| !d.is_empty())
}
