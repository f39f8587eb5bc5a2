//! [`ConnLimits`]: the bounds on accepted stream connections (per listener, per source IP) and
//! the per-transport counters of stream connections ([`StreamStats`]), shared by every worker.
//!
//! A connection takes a [`ConnPermit`] at accept, before any handshake, and gives it back when
//! its last task ends; a connection over a limit is closed at once with one log line and one
//! count. The counts sit behind one mutex taken twice per connection (accept and close), never
//! per message.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use kemi_runtime::msg::Proto;

/// Which limit refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LimitHit {
    /// The listener already has `max_connections_per_listener` connections.
    #[error("listener has {0} connections (max_connections_per_listener)")]
    Listener(usize),
    /// The source IP already has `max_connections_per_ip` connections.
    #[error("source has {0} connections (max_connections_per_ip)")]
    Ip(usize),
}

#[derive(Default)]
struct Counts {
    listeners: HashMap<SocketAddr, usize>,
    ips: HashMap<IpAddr, usize>,
}

/// Accepted-connection limits; 0 disables one.
#[derive(Default)]
pub struct ConnLimits {
    per_listener: usize,
    per_ip: usize,
    counts: Mutex<Counts>,
    stats: StreamStats,
}

impl std::fmt::Debug for ConnLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnLimits")
            .field("per_listener", &self.per_listener)
            .field("per_ip", &self.per_ip)
            .finish()
    }
}

/// Held by a connection: its place in the counts (accepted ones: per listener and source IP
/// too).
pub struct ConnPermit {
    limits: Arc<ConnLimits>,
    /// The listener and source IP it counts against; `None` for an outgoing connection.
    counted: Option<(SocketAddr, IpAddr)>,
    proto: Proto,
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        self.limits
            .stats
            .slot(self.proto)
            .open
            .fetch_sub(1, Ordering::Relaxed);
        let Some((listener, ip)) = self.counted else {
            return;
        };
        if let Ok(mut c) = self.limits.counts.lock() {
            if let Some(n) = c.listeners.get_mut(&listener) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    c.listeners.remove(&listener);
                }
            }
            if let Some(n) = c.ips.get_mut(&ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    c.ips.remove(&ip);
                }
            }
        }
    }
}

impl ConnLimits {
    /// Limits of `per_listener` and `per_ip` connections (0: none).
    pub fn new(per_listener: usize, per_ip: usize) -> ConnLimits {
        ConnLimits {
            per_listener,
            per_ip,
            ..ConnLimits::default()
        }
    }

    /// Admit a connection from `peer` accepted on `listener` over `proto`, or say which limit
    /// it hits (and count the refusal).
    pub fn admit(
        self: &Arc<Self>,
        proto: Proto,
        listener: SocketAddr,
        peer: SocketAddr,
    ) -> Result<ConnPermit, LimitHit> {
        let ip = peer.ip();
        let admitted = match self.counts.lock() {
            Ok(mut c) => {
                let on_listener = c.listeners.get(&listener).copied().unwrap_or(0);
                let from_ip = c.ips.get(&ip).copied().unwrap_or(0);
                if self.per_listener > 0 && on_listener >= self.per_listener {
                    Err(LimitHit::Listener(on_listener))
                } else if self.per_ip > 0 && from_ip >= self.per_ip {
                    Err(LimitHit::Ip(from_ip))
                } else {
                    *c.listeners.entry(listener).or_insert(0) += 1;
                    *c.ips.entry(ip).or_insert(0) += 1;
                    Ok(())
                }
            }
            Err(_) => Ok(()),
        };
        let slot = self.stats.slot(proto);
        match admitted {
            Ok(()) => {
                slot.open.fetch_add(1, Ordering::Relaxed);
                Ok(ConnPermit {
                    limits: Arc::clone(self),
                    counted: Some((listener, ip)),
                    proto,
                })
            }
            Err(e) => {
                slot.refused.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// A connection opened by sipd (outgoing): counted as open, not limited, and not counted
    /// against its peer's IP.
    pub fn opened(self: &Arc<Self>, proto: Proto) -> ConnPermit {
        self.stats.slot(proto).open.fetch_add(1, Ordering::Relaxed);
        ConnPermit {
            limits: Arc::clone(self),
            counted: None,
            proto,
        }
    }

    /// The counters.
    pub fn stats(&self) -> &StreamStats {
        &self.stats
    }
}

/// One transport's connection counters.
#[derive(Debug, Default)]
pub struct ProtoStats {
    open: AtomicI64,
    refused: AtomicU64,
    refused_503: AtomicU64,
}

impl ProtoStats {
    /// Connections open now.
    pub fn open(&self) -> i64 {
        self.open.load(Ordering::Relaxed)
    }

    /// Connections refused by a limit since start.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Of the refused connections, those whose first request was answered 503.
    pub fn refused_503(&self) -> u64 {
        self.refused_503.load(Ordering::Relaxed)
    }

    /// One refused connection's request answered 503.
    pub fn answered_503(&self) {
        self.refused_503.fetch_add(1, Ordering::Relaxed);
    }
}

/// Per-transport stream counters and the WebSocket frame counts.
#[derive(Debug, Default)]
pub struct StreamStats {
    tcp: ProtoStats,
    tls: ProtoStats,
    ws: ProtoStats,
    wss: ProtoStats,
    ws_frames_in: AtomicU64,
    ws_frames_out: AtomicU64,
    ws_refused_upgrades: AtomicU64,
}

impl StreamStats {
    /// The counters of `proto` (UDP and SCTP share TCP's, which they never touch).
    pub fn slot(&self, proto: Proto) -> &ProtoStats {
        match proto {
            Proto::Tls => &self.tls,
            Proto::Ws => &self.ws,
            Proto::Wss => &self.wss,
            _ => &self.tcp,
        }
    }

    /// One WebSocket text or binary frame received.
    pub fn frame_in(&self) {
        self.ws_frames_in.fetch_add(1, Ordering::Relaxed);
    }

    /// One WebSocket frame sent.
    pub fn frame_out(&self) {
        self.ws_frames_out.fetch_add(1, Ordering::Relaxed);
    }

    /// One upgrade refused, failed or timed out.
    pub fn upgrade_refused(&self) {
        self.ws_refused_upgrades.fetch_add(1, Ordering::Relaxed);
    }

    /// (frames in, frames out, refused upgrades) since start.
    pub fn ws_counts(&self) -> (u64, u64, u64) {
        (
            self.ws_frames_in.load(Ordering::Relaxed),
            self.ws_frames_out.load(Ordering::Relaxed),
            self.ws_refused_upgrades.load(Ordering::Relaxed),
        )
    }
}

impl crate::metrics::prom::GaugeSource for ConnLimits {
    fn gauges(&self) -> Vec<(&'static str, &'static str, i64)> {
        let s = &self.stats;
        vec![
            (
                "tcp_connections_open",
                "Open plain TCP connections",
                s.tcp.open(),
            ),
            (
                "ws_connections_open",
                "Open WebSocket (ws:) connections",
                s.ws.open(),
            ),
            (
                "wss_connections_open",
                "Open secure WebSocket (wss:) connections",
                s.wss.open(),
            ),
        ]
    }

    fn counters(&self) -> Vec<(&'static str, &'static str, u64)> {
        let s = &self.stats;
        let (fin, fout, refused) = s.ws_counts();
        vec![
            (
                "tcp_connections_refused",
                "TCP connections refused at accept by a connection limit",
                s.tcp.refused(),
            ),
            (
                "tcp_connections_refused_503",
                "Refused TCP connections whose first request was answered 503 with Retry-After",
                s.tcp.refused_503(),
            ),
            (
                "tls_connections_refused",
                "TLS connections closed at accept by a connection limit",
                s.tls.refused(),
            ),
            (
                "ws_connections_refused",
                "ws: connections closed at accept by a connection limit",
                s.ws.refused(),
            ),
            (
                "wss_connections_refused",
                "wss: connections closed at accept by a connection limit",
                s.wss.refused(),
            ),
            (
                "ws_frames_received",
                "WebSocket text and binary frames received (ws: and wss:)",
                fin,
            ),
            (
                "ws_frames_sent",
                "WebSocket text and binary frames sent, one SIP message each (ws: and wss:)",
                fout,
            ),
            (
                "ws_upgrades_refused",
                "WebSocket upgrades refused (subprotocol, origin), failed or timed out",
                refused,
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_listener_and_per_ip() {
        let l = Arc::new(ConnLimits::new(3, 2));
        let lst: SocketAddr = "127.0.0.1:5060".parse().unwrap();
        let a: SocketAddr = "127.0.0.2:1000".parse().unwrap();
        let b: SocketAddr = "127.0.0.3:1000".parse().unwrap();
        let p1 = l.admit(Proto::Ws, lst, a).unwrap();
        let _p2 = l.admit(Proto::Ws, lst, a).unwrap();
        assert_eq!(l.admit(Proto::Ws, lst, a).err(), Some(LimitHit::Ip(2)));
        let p3 = l.admit(Proto::Ws, lst, b).unwrap();
        assert_eq!(
            l.admit(Proto::Ws, lst, b).err(),
            Some(LimitHit::Listener(3))
        );
        assert_eq!(l.stats().slot(Proto::Ws).open(), 3);
        assert_eq!(l.stats().slot(Proto::Ws).refused(), 2);
        drop(p1);
        let _p4 = l.admit(Proto::Ws, lst, a).unwrap();
        assert_eq!(l.stats().slot(Proto::Ws).open(), 3);
        // An outgoing connection (to `a`'s IP, say), opened and closed, leaves the counts alone.
        drop(l.opened(Proto::Tcp));
        drop(p3);
        assert_eq!(l.admit(Proto::Ws, lst, a).err(), Some(LimitHit::Ip(2)));
        assert_eq!(l.stats().slot(Proto::Tcp).open(), 0);
        let none = Arc::new(ConnLimits::new(0, 0));
        let held: Vec<_> = (0..100)
            .map(|_| none.admit(Proto::Tcp, lst, a).unwrap())
            .collect();
        assert_eq!(none.stats().slot(Proto::Tcp).open(), 100);
        drop(held);
        assert_eq!(none.stats().slot(Proto::Tcp).open(), 0);
    }
}
