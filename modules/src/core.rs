//! The core sub-module (`KSR.<fn>`): logging, flags, methods, URIs.

use kemi_runtime::msg::LogLevel;
use kemi_runtime::{kemi, SipMsg};

/// Log `text` at info level.
#[kemi(name = "info")]
pub fn info(msg: &mut SipMsg, text: &str) {
    msg.log(LogLevel::Info, text);
}

/// Set message flag `flag` (0..63).
#[kemi(name = "setflag")]
pub fn setflag(msg: &mut SipMsg, flag: i32) -> bool {
    match u32::try_from(flag) {
        Ok(f) if f < 64 => {
            msg.route.flags |= 1 << f;
            true
        }
        _ => false,
    }
}

/// Log `text` at the level named by `level`.
#[kemi(name = "log")]
pub fn log(msg: &mut SipMsg, level: &str, text: &str) {
    msg.log(LogLevel::parse_or_err(level), text);
}
