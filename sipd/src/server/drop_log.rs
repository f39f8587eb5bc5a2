//! One log line per dropped or refused input message, with the reason and the source,
//! rate-limited per worker ([`super::rate_limit`]) so that a flood of garbage cannot fill the
//! disk; the next line that gets through says how many were left out.

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
}
