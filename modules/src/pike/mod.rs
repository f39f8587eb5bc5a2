//! The `pike` module (`KSR.pike.*`): flood detection per source IP, with Kamailio's parameters
//! `sampling_time_unit` (2 s), `reqs_density_per_unit` (30) and `remove_latency` (120 s).
//!
//! Each IP has two hit counters, the previous and the current sampling unit, as a Kamailio IP
//! leaf has. An IP turns red ("blocked") when a counter reaches the density, or their average
//! does (Kamailio's `is_hot_leaf`); it stays red until a unit ends in which it is no longer hot,
//! so a flood is blocked for the rest of its unit and the next one. `pike_check_*` returns -2
//! the first time an IP turns red, -1 while it stays red, 1 otherwise (also on bad input to
//! `pike_check_req`, as Kamailio). An IP not seen for `remove_latency` seconds is forgotten.
//!
//! Difference from Kamailio: Kamailio keeps a tree of address bytes that a new address must
//! first grow (between x and 3x hits for IPv4, up to 9x for IPv6, x being the density) before
//! its leaf counts; here every address counts from its first request, so an IP is blocked at
//! exactly `reqs_density_per_unit` requests in one unit. Units are aligned on a clock shared by
//! all IPs (Kamailio's timer ticks), checked lazily at each hit. State is a sharded map (64
//! shards, one `Mutex<HashMap>` each): no lock is shared by all requests.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use kemi_runtime::msg::LogLevel;
use kemi_runtime::{kemi, SipMsg};

use crate::setup::{SetupCtx, SetupError};

const SHARDS: usize = 64;

#[derive(Clone, Copy, Debug)]
struct Entry {
    prev: u32,
    curr: u32,
    /// The unit `curr` counts.
    unit: u64,
    red: bool,
    last_seen: Instant,
}

/// What `pike_check_*` found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Under the limit (1).
    Allowed,
    /// Turned red with this request (-2).
    NewlyBlocked,
    /// Already red (-1).
    Blocked,
}

impl Verdict {
    /// The script return code.
    pub fn code(self) -> i32 {
        match self {
            Verdict::Allowed => 1,
            Verdict::NewlyBlocked => -2,
            Verdict::Blocked => -1,
        }
    }
}

/// The flood detector of one server.
#[derive(Debug)]
pub struct PikeState {
    unit: Duration,
    density: u32,
    latency: Duration,
    log_level: LogLevel,
    start: Instant,
    shards: Box<[Mutex<HashMap<IpAddr, Entry>>]>,
}

impl PikeState {
    /// A detector: `density` requests per `unit` turn an IP red; IPs idle for `latency` go.
    pub fn new(unit: Duration, density: u32, latency: Duration) -> PikeState {
        PikeState {
            unit: unit.max(Duration::from_millis(1)),
            density: density.max(1),
            latency,
            log_level: LogLevel::Warn,
            start: Instant::now(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    fn shard(&self, ip: &IpAddr) -> &Mutex<HashMap<IpAddr, Entry>> {
        let h = match ip {
            IpAddr::V4(a) => u32::from(*a) as usize,
            IpAddr::V6(a) => {
                let b = a.octets();
                usize::from(b[15]) ^ (usize::from(b[14]) << 8) ^ (usize::from(b[7]) << 3)
            }
        };
        // Mix the low bits so that a /24 spreads over every shard.
        let h = h ^ (h >> 8) ^ (h >> 16);
        &self.shards[h % SHARDS]
    }

    fn hot(&self, e: &Entry) -> bool {
        let x = self.density;
        e.prev >= x || e.curr >= x || (e.prev + e.curr) / 2 >= x
    }

    /// Count one request from `ip` and judge it.
    pub fn check(&self, ip: IpAddr) -> Verdict {
        let now = Instant::now();
        let unit = (now.duration_since(self.start).as_nanos() / self.unit.as_nanos()) as u64;
        let mut map = self
            .shard(&ip)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let e = map.entry(ip).or_insert(Entry {
            prev: 0,
            curr: 0,
            unit,
            red: false,
            last_seen: now,
        });
        if unit > e.unit {
            // One or more unit ends since the last hit (Kamailio's timer refresh).
            e.prev = if unit == e.unit + 1 { e.curr } else { 0 };
            e.curr = 0;
            e.unit = unit;
            if e.red && !self.hot(e) {
                e.red = false;
                tracing::event!(tracing::Level::INFO, %ip, "PIKE - UNBLOCKing ip");
            }
        }
        e.last_seen = now;
        e.curr = e.curr.saturating_add(1);
        if e.red {
            Verdict::Blocked
        } else if self.hot(e) {
            e.red = true;
            Verdict::NewlyBlocked
        } else {
            Verdict::Allowed
        }
    }

    /// Forget IPs idle for `remove_latency`; how many went.
    pub fn sweep(&self) -> usize {
        let now = Instant::now();
        self.shards
            .iter()
            .map(|s| {
                let mut map = s.lock().unwrap_or_else(PoisonError::into_inner);
                let before = map.len();
                map.retain(|_, e| now.duration_since(e.last_seen) < self.latency);
                before - map.len()
            })
            .sum()
    }

    /// IPs tracked now.
    pub fn tracked(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }
}

/// Set up pike from its modparams.
pub fn setup(ctx: &mut SetupCtx<'_>) -> Result<(), SetupError> {
    let p = ctx.params("pike");
    p.check_known(&[
        "sampling_time_unit",
        "reqs_density_per_unit",
        "remove_latency",
        "pike_log_level",
    ])?;
    let positive = |name: &str, default: i64| -> Result<u64, SetupError> {
        let v = p.int(name, default)?;
        if v <= 0 {
            return Err(p.error(name, "must be a positive integer").into());
        }
        Ok(v as u64)
    };
    let unit = positive("sampling_time_unit", 2)?;
    let density = positive("reqs_density_per_unit", 30)?;
    let latency = positive("remove_latency", 120)?;
    let mut state = PikeState::new(
        Duration::from_secs(unit),
        u32::try_from(density).unwrap_or(u32::MAX),
        Duration::from_secs(latency),
    );
    // Kamailio's numeric levels: L_ERR -1 (and below), L_WARN 0, L_NOTICE 1, L_INFO 2, L_DBG 3.
    state.log_level = match p.int("pike_log_level", 1)? {
        i64::MIN..=-1 => LogLevel::Err,
        0 => LogLevel::Warn,
        1 => LogLevel::Notice,
        2 => LogLevel::Info,
        _ => LogLevel::Debug,
    };
    let state = Arc::new(state);
    let sweeper = Arc::clone(&state);
    ctx.services.every(
        "pike cleanup",
        Duration::from_secs(unit.min(latency)),
        move || {
            sweeper.sweep();
        },
    );
    ctx.services.insert(state);
    Ok(())
}

fn check(msg: &mut SipMsg, ip: IpAddr) -> i32 {
    let Some(state) = msg.env.services.get_arc::<PikeState>() else {
        msg.log(LogLevel::Err, "pike: module not set up");
        // Kamailio returns true on internal errors, so as not to block the IP.
        return 1;
    };
    let v = state.check(ip);
    if v == Verdict::NewlyBlocked {
        msg.log(state.log_level, &format!("PIKE - BLOCKing ip {ip}"));
    }
    v.code()
}

/// Count this request against its source IP. 1 when allowed, -2 when the IP has just turned
/// into a source of flooding, -1 while it stays one.
#[kemi(module = "pike", name = "pike_check_req")]
pub fn pike_check_req(msg: &mut SipMsg) -> i32 {
    let ip = msg.rcv.src.ip();
    // An IPv4-mapped IPv6 source counts as its IPv4 address.
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    check(msg, ip)
}

/// Like `pike_check_req`, for the IP address `ipaddr` (-1 when it does not parse).
#[kemi(module = "pike", name = "pike_check_ip")]
pub fn pike_check_ip(msg: &mut SipMsg, ipaddr: &str) -> i32 {
    let text = ipaddr.trim();
    let text = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    match text.parse::<IpAddr>() {
        Ok(ip) => check(msg, ip),
        Err(_) => {
            msg.log(
                LogLevel::Err,
                &format!("pike: failed to parse ip address: {ipaddr}"),
            );
            -1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_at_density_and_releases() {
        let p = PikeState::new(Duration::from_millis(200), 3, Duration::from_secs(10));
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "::1".parse().unwrap();
        assert_eq!(p.check(a), Verdict::Allowed);
        assert_eq!(p.check(a), Verdict::Allowed);
        let third = p.check(a);
        // The unit may have rolled between hits; in that case the third hit is allowed.
        if third == Verdict::NewlyBlocked {
            assert_eq!(p.check(a), Verdict::Blocked);
        }
        assert_eq!(p.check(b), Verdict::Allowed);
        std::thread::sleep(Duration::from_millis(450));
        assert_eq!(p.check(a), Verdict::Allowed);
        assert_eq!(p.tracked(), 2);
    }
}
