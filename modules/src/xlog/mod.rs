//! The `xlog` sub-module (`KSR.xlog.*`): log lines with pseudo-variables interpolated.
//!
//! `KSR.xlog.xinfo("call from $fu to $ru, ua=$hdr(User-Agent)\n")` prints the PVs' values for
//! the current message; `$$` prints a `$`; a null value, an unknown PV and a transformation
//! print `<null>` (see [`format`]). Formats are parsed once per worker thread and cached.
//! Lines go through `SipMsg::log`, so `sipd route-test` captures them. `alert` (and `L_BUG`)
//! log at `crit`, the highest level the log model has.

pub mod format;

use kemi_runtime::msg::LogLevel;
use kemi_runtime::{kemi, SipMsg};

/// Syslog facility names `xlog_facility` accepts.
const FACILITIES: &[&str] = &[
    "LOG_AUTH",
    "LOG_AUTHPRIV",
    "LOG_CRON",
    "LOG_DAEMON",
    "LOG_FTP",
    "LOG_KERN",
    "LOG_LOCAL0",
    "LOG_LOCAL1",
    "LOG_LOCAL2",
    "LOG_LOCAL3",
    "LOG_LOCAL4",
    "LOG_LOCAL5",
    "LOG_LOCAL6",
    "LOG_LOCAL7",
    "LOG_LPR",
    "LOG_MAIL",
    "LOG_NEWS",
    "LOG_SYSLOG",
    "LOG_USER",
    "LOG_UUCP",
];

/// A level name as xlog takes it (`L_DBG`, `L_INFO`, `L_NOTICE`, `L_WARN`, `L_ERR`, `L_CRIT`,
/// `L_ALERT`, `L_BUG`): Kamailio looks only at the letter after `L_`.
fn parse_level(level: &str) -> Option<LogLevel> {
    if level.len() < 3 {
        return None;
    }
    match level.as_bytes().get(2)? {
        b'D' => Some(LogLevel::Debug),
        b'I' => Some(LogLevel::Info),
        b'N' => Some(LogLevel::Notice),
        b'W' => Some(LogLevel::Warn),
        b'E' => Some(LogLevel::Err),
        b'C' | b'A' | b'B' => Some(LogLevel::Crit),
        _ => None,
    }
}

/// Interpolate `fmt` and log it at `level`.
fn emit(msg: &mut SipMsg, level: LogLevel, fmt: &str) -> i32 {
    let line = format::render(msg, fmt);
    msg.log(level, &line);
    1
}

/// Log `fmt` at debug level, with PVs (`$ru`, `$hdr(Name)`, `$var(x)`, ...) replaced by their
/// values. Returns 1.
#[kemi(module = "xlog")]
pub fn xdbg(msg: &mut SipMsg, fmt: &str) -> i32 {
    emit(msg, LogLevel::Debug, fmt)
}

/// Log `fmt` at info level, with PVs replaced by their values. Returns 1.
#[kemi(module = "xlog")]
pub fn xinfo(msg: &mut SipMsg, fmt: &str) -> i32 {
    emit(msg, LogLevel::Info, fmt)
}

/// Log `fmt` at notice level, with PVs replaced by their values. Returns 1.
#[kemi(module = "xlog")]
pub fn xnotice(msg: &mut SipMsg, fmt: &str) -> i32 {
    emit(msg, LogLevel::Notice, fmt)
}

/// Log `fmt` at warning level, with PVs replaced by their values. Returns 1.
#[kemi(module = "xlog")]
pub fn xwarn(msg: &mut SipMsg, fmt: &str) -> i32 {
    emit(msg, LogLevel::Warn, fmt)
}

/// Log `fmt` at error level, with PVs replaced by their values. Returns 1.
#[kemi(module = "xlog")]
pub fn xerr(msg: &mut SipMsg, fmt: &str) -> i32 {
    emit(msg, LogLevel::Err, fmt)
}

/// Log `fmt` at alert level (logged as critical), with PVs replaced by their values. Returns 1.
#[kemi(module = "xlog")]
pub fn xalert(msg: &mut SipMsg, fmt: &str) -> i32 {
    emit(msg, LogLevel::Crit, fmt)
}

/// Log `fmt` at critical level, with PVs replaced by their values. Returns 1.
#[kemi(module = "xlog")]
pub fn xcrit(msg: &mut SipMsg, fmt: &str) -> i32 {
    emit(msg, LogLevel::Crit, fmt)
}

/// Log `fmt` at `level` (`"L_DBG"`, `"L_INFO"`, `"L_NOTICE"`, `"L_WARN"`, `"L_ERR"`, `"L_CRIT"`,
/// `"L_ALERT"`), with PVs replaced by their values. Returns 1, or -1 for an unknown level.
#[kemi(module = "xlog")]
pub fn xlog(msg: &mut SipMsg, level: &str, fmt: &str) -> i32 {
    match parse_level(level) {
        Some(l) => emit(msg, l, fmt),
        None => {
            msg.log(LogLevel::Err, &format!("unknown log level [{level}]"));
            -1
        }
    }
}

/// Like `xlog`, for syslog `facility` (`"LOG_LOCAL0"` ... `"LOG_LOCAL7"`, `"LOG_DAEMON"`, ...).
/// sipd logs through one sink, so the facility is checked but does not change where the line
/// goes. Returns 1, or -1 for an unknown facility or level.
#[kemi(module = "xlog")]
pub fn xlog_facility(msg: &mut SipMsg, facility: &str, level: &str, fmt: &str) -> i32 {
    if !FACILITIES.contains(&facility) {
        msg.log(
            LogLevel::Err,
            &format!("invalid syslog facility [{facility}]"),
        );
        return -1;
    }
    xlog(msg, level, fmt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_names() {
        assert_eq!(parse_level("L_DBG"), Some(LogLevel::Debug));
        assert_eq!(parse_level("L_INFO"), Some(LogLevel::Info));
        assert_eq!(parse_level("L_ALERT"), Some(LogLevel::Crit));
        assert_eq!(parse_level("L_ERR"), Some(LogLevel::Err));
        assert_eq!(parse_level("L_"), None);
        assert_eq!(parse_level("L_X"), None);
        assert_eq!(parse_level("é"), None);
    }
}
