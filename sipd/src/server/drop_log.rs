//! One log line per dropped or refused input message, with the reason and the source,
//! rate-limited per worker ([`super::rate_limit`]) so that a flood of garbage cannot fill the
//! disk; the next line that gets through says how many were left out. An address sipd cannot
//! send to is logged once per source IP per minute ([`unanswerable`]).

use std::fmt::Display;
use std::net::SocketAddr;
use std::time::Instant;

use kemi_runtime::msg::Proto;

use super::rate_limit::LogBudget;

thread_local! {
    static BUDGET: LogBudget = const { LogBudget::new() };
}

/// Log `what` (e.g. "dropping request: top Via does not parse") for a message from `src` over
/// `proto`, unless this worker's budget for such lines is spent. Returns whether a line was
/// written.
pub fn input(src: SocketAddr, proto: Proto, what: impl Display) -> bool {
    let Some(left_out) = BUDGET.with(|b| b.admit(Instant::now())) else {
        return false;
    };
    let proto = proto.as_str();
    if left_out > 0 {
        tracing::info!(%src, proto, left_out, "{what} ({left_out} earlier such lines not logged)");
    } else {
        tracing::info!(%src, proto, "{what}");
    }
    true
}

/// Per source: a reply (or a request) sipd could not send to an address is logged at most
/// once per [`UNANSWERABLE_EVERY`] for that IP, per worker; at most this many sources are
/// remembered (beyond that, such lines fall back to the shared budget above).
const UNANSWERABLE_SOURCES: usize = 4096;
/// How often one unreachable source is logged.
pub const UNANSWERABLE_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

thread_local! {
    static UNANSWERABLE: std::cell::RefCell<std::collections::HashMap<std::net::IpAddr, Instant>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// Log that sipd could not send to `dst` (`why`), once per source IP per minute on this
/// worker. Returns whether a line was written.
pub fn unanswerable(dst: SocketAddr, proto: Proto, why: impl Display) -> bool {
    let now = Instant::now();
    let fresh = UNANSWERABLE.with(|seen| {
        let mut seen = seen.borrow_mut();
        if let Some(last) = seen.get(&dst.ip()) {
            if now.duration_since(*last) < UNANSWERABLE_EVERY {
                return Some(false);
            }
        }
        if seen.len() >= UNANSWERABLE_SOURCES {
            seen.retain(|_, last| now.duration_since(*last) < UNANSWERABLE_EVERY);
            if seen.len() >= UNANSWERABLE_SOURCES {
                return None;
            }
        }
        seen.insert(dst.ip(), now);
        Some(true)
    });
    match fresh {
        Some(true) => {
            tracing::info!(%dst, proto = proto.as_str(), "cannot send to {dst}: {why} (logged once a minute per source)");
            true
        }
        Some(false) => false,
        None => input(dst, proto, format_args!("cannot send to {dst}: {why}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::rate_limit::BURST;

    #[test]
    fn a_flood_of_garbage_logs_a_burst() {
        let src: SocketAddr = "127.0.0.1:5060".parse().expect("addr");
        let logged = (0..500)
            .filter(|_| input(src, Proto::Udp, "dropping unparsable message"))
            .count();
        assert_eq!(logged, BURST as usize);
    }

    #[test]
    fn an_unreachable_source_is_logged_once_a_minute() {
        let a: SocketAddr = "127.0.0.2:5060".parse().expect("addr");
        let b: SocketAddr = "127.0.0.3:5060".parse().expect("addr");
        assert!(unanswerable(a, Proto::Udp, "refused"));
        assert!(!unanswerable(a, Proto::Udp, "refused"));
        assert!(!unanswerable(
            "127.0.0.2:7".parse().expect("addr"),
            Proto::Udp,
            "x"
        ));
        assert!(unanswerable(b, Proto::Udp, "refused"));
    }
}
