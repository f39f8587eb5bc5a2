//! The media relay instances of one server (rtpengine's ng port or an rtpproxy-protocol port):
//! sets of weighted nodes from `rtpengine_sock` / `rtpproxy_sock`, the choice of a node for a
//! call, and one request/reply exchange over UDP with a cookie, a timeout and retries.
//!
//! The exchange blocks the calling worker, as Kamailio's does, but never beyond
//! `timeout × (retries + 1)` per node and `queried_nodes_limit` nodes. A node that does not
//! answer (or refuses: ICMP port unreachable) is disabled for `disable_tout` and the next
//! node of the set is tried.

use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Largest reply read (rtpengine's SDP answers fit easily).
const MAX_REPLY: usize = 65_535;

/// Why a relay command failed.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// `set_*_set` named a set that is not configured.
    #[error("no media relay set {0}")]
    NoSet(u32),
    /// Every node of the set is disabled.
    #[error("no media relay node available in set {0}")]
    NoNode(u32),
    /// The nodes tried did not answer.
    #[error("no answer from {0}")]
    Timeout(String),
}

/// A `*_sock` value that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("bad media relay socket `{0}`: {1}")]
pub struct SockError(pub String, pub &'static str);

/// One relay instance.
#[derive(Debug)]
pub struct Node {
    /// As configured (`udp:127.0.0.1:2223`).
    pub url: String,
    /// Where commands go.
    pub addr: SocketAddr,
    /// Share of the calls of its set.
    pub weight: u32,
    /// Milliseconds since the relay's start until which the node is disabled; 0 when
    /// enabled, `u64::MAX` when disabled by RPC until enabled again.
    disabled_until: AtomicU64,
}

/// A set of nodes (`N == ...`; 0 without a number).
#[derive(Debug)]
pub struct Set {
    /// The set number.
    pub id: u32,
    /// Its nodes, in configuration order.
    pub nodes: Vec<Node>,
}

/// The relay configuration and state shared by every worker.
#[derive(Debug)]
pub struct Relay {
    /// Every set, in configuration order; the first one is the default.
    pub sets: Vec<Set>,
    /// Wait per attempt.
    pub timeout: Duration,
    /// Attempts after the first one.
    pub retries: u32,
    /// Most nodes tried per command.
    pub nodes_limit: usize,
    /// How long a silent node stays disabled.
    pub disable_tout: Duration,
    start: Instant,
    /// Random per relay: rtpengine answers a repeated cookie from its cache, so cookies of
    /// two servers in one process (or a restarted one with the same pid) must differ.
    nonce: u32,
    seq: AtomicU64,
}

/// The nodes of one `*_sock` value: an optional `N ==` set number, then whitespace- or
/// `;`-separated `[udp:|udp6:]host:port[=weight]` entries.
pub fn parse_sock(value: &str) -> Result<(u32, Vec<Node>), SockError> {
    let err = |m| SockError(value.to_string(), m);
    let (set, rest) = match value.split_once("==") {
        Some((n, rest)) => (
            n.trim()
                .parse::<u32>()
                .map_err(|_| err("set number is not a number"))?,
            rest,
        ),
        None => (0, value),
    };
    let mut nodes = Vec::new();
    for item in rest
        .split(|c: char| c.is_whitespace() || c == ';')
        .filter(|s| !s.is_empty())
    {
        let (url, weight) = match item.rsplit_once('=') {
            Some((u, w)) => (
                u,
                w.parse::<u32>()
                    .map_err(|_| err("weight is not a number"))?,
            ),
            None => (item, 1),
        };
        let hostport = if let Some(h) = url.strip_prefix("udp:") {
            h
        } else if let Some(h) = url.strip_prefix("udp6:") {
            h
        } else if url.starts_with("unix:") || url.starts_with("ws:") || url.starts_with("wss:") {
            return Err(err("only udp: instances are supported"));
        } else {
            url
        };
        let addr = hostport
            .to_socket_addrs()
            .map_err(|_| err("host:port does not resolve"))?
            .next()
            .ok_or_else(|| err("host:port does not resolve"))?;
        nodes.push(Node {
            url: url.to_string(),
            addr,
            weight,
            disabled_until: AtomicU64::new(0),
        });
    }
    if nodes.is_empty() {
        return Err(err("no instance"));
    }
    Ok((set, nodes))
}

impl Relay {
    /// A relay from `*_sock` values (several values of one set add up).
    pub fn new(socks: &[String]) -> Result<Relay, SockError> {
        let mut sets: Vec<Set> = Vec::new();
        for s in socks {
            let (id, nodes) = parse_sock(s)?;
            match sets.iter_mut().find(|x| x.id == id) {
                Some(set) => set.nodes.extend(nodes),
                None => sets.push(Set { id, nodes }),
            }
        }
        Ok(Relay {
            sets,
            timeout: Duration::from_millis(1000),
            retries: 5,
            nodes_limit: 10,
            disable_tout: Duration::from_secs(60),
            start: Instant::now(),
            nonce: {
                let mut b = [0u8; 4];
                // Without randomness the start time still tells servers apart.
                if getrandom::getrandom(&mut b).is_err() {
                    b = (std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.subsec_nanos()))
                    .to_le_bytes();
                }
                u32::from_le_bytes(b)
            },
            seq: AtomicU64::new(0),
        })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis())
            .unwrap_or(u64::MAX - 1)
            .max(1)
    }

    /// Whether `node` takes commands now.
    pub fn enabled(&self, node: &Node) -> bool {
        let until = node.disabled_until.load(Ordering::Relaxed);
        until == 0 || (until != u64::MAX && until <= self.now_ms())
    }

    /// Disable `node` for `disable_tout`.
    pub fn disable(&self, node: &Node) {
        let until = self
            .now_ms()
            .saturating_add(u64::try_from(self.disable_tout.as_millis()).unwrap_or(u64::MAX - 1));
        // An RPC disable stays.
        let _ = node
            .disabled_until
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                (v != u64::MAX).then_some(until.min(u64::MAX - 1))
            });
    }

    /// Enable (`true`) or disable until enabled again (`false`), by RPC.
    pub fn set_enabled(&self, node: &Node, on: bool) {
        node.disabled_until
            .store(if on { 0 } else { u64::MAX }, Ordering::Relaxed);
    }

    /// The nodes matching `url` (`all` for every node).
    pub fn find<'a>(&'a self, url: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.sets
            .iter()
            .flat_map(|s| s.nodes.iter())
            .filter(move |n| url == "all" || n.url == url)
    }

    /// The set `id`, or the default one.
    pub fn set(&self, id: Option<u32>) -> Result<&Set, RelayError> {
        match id {
            Some(id) => self
                .sets
                .iter()
                .find(|s| s.id == id)
                .ok_or(RelayError::NoSet(id)),
            None => self.sets.first().ok_or(RelayError::NoSet(0)),
        }
    }

    /// The enabled nodes of `set` in the order to try them for `call_id`: the one the
    /// weighted hash of the Call-ID picks (so every command of a call goes to the same node
    /// while it is up), then the others in configuration order.
    pub fn order<'a>(&self, set: &'a Set, call_id: &str) -> Vec<&'a Node> {
        let up: Vec<&Node> = set.nodes.iter().filter(|n| self.enabled(n)).collect();
        let total: u64 = up.iter().map(|n| u64::from(n.weight)).sum();
        if total == 0 {
            return up;
        }
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in call_id.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        let mut pick = h % total;
        let mut first = 0;
        for (i, n) in up.iter().enumerate() {
            let w = u64::from(n.weight);
            if pick < w {
                first = i;
                break;
            }
            pick -= w;
        }
        let mut out = Vec::with_capacity(up.len());
        out.push(up[first]);
        out.extend(
            up.iter()
                .enumerate()
                .filter(|(i, _)| *i != first)
                .map(|(_, n)| *n),
        );
        out.truncate(self.nodes_limit.max(1));
        out
    }

    /// A fresh cookie.
    pub fn cookie(&self) -> String {
        format!(
            "{}_{:08x}_{}",
            std::process::id(),
            self.nonce,
            self.seq.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// Send `payload` to the nodes of set `set` for call `call_id` until one answers; the
    /// answering node's URL and its reply (after the cookie).
    pub fn command(
        &self,
        set: Option<u32>,
        call_id: &str,
        payload: &[u8],
    ) -> Result<(String, Vec<u8>), RelayError> {
        let set = self.set(set)?;
        let nodes = self.order(set, call_id);
        if nodes.is_empty() {
            return Err(RelayError::NoNode(set.id));
        }
        let mut tried = Vec::new();
        for node in nodes {
            match self.exchange(node, payload) {
                Ok(reply) => return Ok((node.url.clone(), reply)),
                Err(e) => {
                    tracing::warn!(node = %node.url, error = %e, "media relay did not answer, disabled for {:?}", self.disable_tout);
                    self.disable(node);
                    tried.push(node.url.clone());
                }
            }
        }
        Err(RelayError::Timeout(tried.join(", ")))
    }

    /// One command to one node: up to `retries + 1` sends, each waiting `timeout` for the
    /// reply with this command's cookie (other datagrams are stale replies, skipped).
    pub fn exchange(&self, node: &Node, payload: &[u8]) -> std::io::Result<Vec<u8>> {
        let bind: SocketAddr = if node.addr.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        }
        .parse()
        .map_err(|_| std::io::Error::other("bind address"))?;
        let sock = UdpSocket::bind(bind)?;
        sock.connect(node.addr)?;
        let cookie = self.cookie();
        let mut out = Vec::with_capacity(cookie.len() + 1 + payload.len());
        out.extend_from_slice(cookie.as_bytes());
        out.push(b' ');
        out.extend_from_slice(payload);
        let mut buf = vec![0u8; MAX_REPLY];
        let timeout = self.timeout.max(Duration::from_millis(1));
        for _ in 0..=self.retries {
            sock.send(&out)?;
            let deadline = Instant::now() + timeout;
            // Bounded: each pass waits on the socket until the deadline.
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                sock.set_read_timeout(Some(left))?;
                match sock.recv(&mut buf) {
                    Ok(n) => {
                        let got = buf.get(..n).unwrap_or_default();
                        if let Some(rest) = got
                            .strip_prefix(cookie.as_bytes())
                            .and_then(|r| r.strip_prefix(b" "))
                        {
                            return Ok(rest.to_vec());
                        }
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        break
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no reply within {:?} x {}", timeout, self.retries + 1),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sock_values_parse_sets_and_weights() {
        let (set, nodes) = parse_sock("udp:127.0.0.1:2223=2 udp:127.0.0.1:2224=1").unwrap();
        assert_eq!(set, 0);
        assert_eq!(nodes.len(), 2);
        assert_eq!(nodes[0].weight, 2);
        assert_eq!(nodes[1].addr.port(), 2224);
        let (set, nodes) = parse_sock("1 == udp:127.0.0.1:2225; 127.0.0.1:2226").unwrap();
        assert_eq!(set, 1);
        assert_eq!(nodes[1].url, "127.0.0.1:2226");
        assert!(parse_sock("x == udp:127.0.0.1:1").is_err());
        assert!(parse_sock("udp:127.0.0.1:1=w").is_err());
        assert!(parse_sock("unix:/run/x.sock").is_err());
        assert!(parse_sock("   ").is_err());
    }

    #[test]
    fn weighted_choice_is_stable_and_skips_disabled_nodes() {
        let r = Relay::new(&["udp:127.0.0.1:2223=3 udp:127.0.0.1:2224=1".into()]).unwrap();
        let set = r.set(None).unwrap();
        let mut first = [0u32; 2];
        for i in 0..400 {
            let order = r.order(set, &format!("call-{i}"));
            assert_eq!(order.len(), 2);
            first[usize::from(order[0].addr.port() == 2224)] += 1;
            assert_eq!(order[0].url, r.order(set, &format!("call-{i}"))[0].url);
        }
        assert!(first[0] > 2 * first[1], "{first:?}");
        r.disable(&set.nodes[0]);
        assert_eq!(r.order(set, "x")[0].addr.port(), 2224);
        r.set_enabled(&set.nodes[0], true);
        assert_eq!(r.order(set, "x").len(), 2);
        assert!(r.set(Some(7)).is_err());
    }
}
