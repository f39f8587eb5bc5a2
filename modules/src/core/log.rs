//! Script logging (`KSR.dbg` ... `KSR.crit`, `KSR.log`), `KSR.set_drop` and `KSR.get_debug`.

use kemi_runtime::msg::LogLevel;
use kemi_runtime::{kemi, SipMsg};
use tracing::level_filters::LevelFilter;

/// Log `text` at debug level.
#[kemi]
pub fn dbg(msg: &mut SipMsg, text: &str) {
    msg.log(LogLevel::Debug, text);
}

/// Log `text` at error level.
#[kemi]
pub fn err(msg: &mut SipMsg, text: &str) {
    msg.log(LogLevel::Err, text);
}

/// Log `text` at info level.
#[kemi]
pub fn info(msg: &mut SipMsg, text: &str) {
    msg.log(LogLevel::Info, text);
}

/// Log `text` at warning level.
#[kemi]
pub fn warn(msg: &mut SipMsg, text: &str) {
    msg.log(LogLevel::Warn, text);
}

/// Log `text` at notice level.
#[kemi]
pub fn notice(msg: &mut SipMsg, text: &str) {
    msg.log(LogLevel::Notice, text);
}

/// Log `text` at critical level.
#[kemi]
pub fn crit(msg: &mut SipMsg, text: &str) {
    msg.log(LogLevel::Crit, text);
}

/// Log `text` at the level named by `level`: `dbg`, `info`, `notice`, `warn`, `err` or `crit`.
/// Any other name logs at `err`.
#[kemi]
pub fn log(msg: &mut SipMsg, level: &str, text: &str) {
    msg.log(LogLevel::parse_or_err(level), text);
}

/// Mark the message to be dropped. The script goes on running; use `KSR.x.drop()` to also stop
/// it. Only has an effect where the host honours drop (reply and onsend routes, events).
#[kemi]
pub fn set_drop(msg: &mut SipMsg) {
    msg.route.drop = true;
}

/// The current log level, in Kamailio's numbers: 3 debug, 2 info, 1 notice, 0 warning,
/// -1 error, -5 when logging is off.
#[kemi]
pub fn get_debug(_msg: &mut SipMsg) -> i32 {
    debug_level(LevelFilter::current())
}

fn debug_level(filter: LevelFilter) -> i32 {
    if filter >= LevelFilter::DEBUG {
        3
    } else if filter >= LevelFilter::INFO {
        2
    } else if filter >= LevelFilter::WARN {
        0
    } else if filter >= LevelFilter::ERROR {
        -1
    } else {
        -5
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_map_to_kamailio_numbers() {
        assert_eq!(debug_level(LevelFilter::TRACE), 3);
        assert_eq!(debug_level(LevelFilter::DEBUG), 3);
        assert_eq!(debug_level(LevelFilter::INFO), 2);
        assert_eq!(debug_level(LevelFilter::WARN), 0);
        assert_eq!(debug_level(LevelFilter::ERROR), -1);
        assert_eq!(debug_level(LevelFilter::OFF), -5);
    }
}
