//! The keepalive prober: every `ds_ping_interval` it sends `ds_ping_method` (OPTIONS) to each
//! destination the probing mode selects, and turns answers and silences into state changes
//! ([`DispatcherState::probe_result`]).
//!
//! It runs on its own thread, off the message path, with a minimal client transaction of its
//! own (sipd has no facility for requests it originates): one UDP socket per address family,
//! bound to the IP of the server's first UDP listener of that family on an ephemeral port
//! (the probe's Via names it, so replies come straight back); a probe is retransmitted like
//! an RFC 3261 non-INVITE request (timer E: 500 ms doubling up to 4 s), matched to its final
//! reply by the Via branch, and counts as unanswered after `ds_ping_timeout`. Destinations
//! over TCP or TLS are not probed (their state changes only by script or RPC). The thread
//! ends when the server stops or the dispatcher state is dropped.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kemi_runtime::msg::Proto;
use kemi_runtime::sip::Message;

use super::state::{DispatcherState, ProbeTarget};

/// RFC 3261 T1 and T2.
const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);
/// How long one receive waits before the loop looks at its timers again.
const TICK: Duration = Duration::from_millis(25);
/// Datagrams read per socket per turn at most.
const READS_PER_TURN: usize = 64;

/// One probe waiting for its final reply.
struct Pending {
    set: i32,
    uri: String,
    wire: Vec<u8>,
    to: SocketAddr,
    sock: usize,
    retransmit_at: Instant,
    interval: Duration,
    deadline: Instant,
}

/// A log line at most every 10 s per kind.
#[derive(Default)]
struct Quiet {
    last: HashMap<&'static str, Instant>,
}

impl Quiet {
    fn warn(&mut self, kind: &'static str, text: &str) {
        let now = Instant::now();
        if self
            .last
            .get(kind)
            .is_some_and(|t| now.duration_since(*t) < Duration::from_secs(10))
        {
            return;
        }
        self.last.insert(kind, now);
        tracing::warn!("dispatcher: {text}");
    }
}

/// Start the prober of `state` when `ds_ping_interval` is set and a list file was loaded:
/// its sockets bind the IPs of
/// `udp_listen` (one per family, the first of each); it stops when `stopped()` turns true.
pub fn spawn(
    state: &Arc<DispatcherState>,
    udp_listen: &[SocketAddr],
    stopped: impl Fn() -> bool + Send + 'static,
) -> std::io::Result<Option<JoinHandle<()>>> {
    if state.config.ping_interval.is_zero() || !state.has_list() {
        return Ok(None);
    }
    let mut socks = Vec::new();
    for v6 in [false, true] {
        if let Some(a) = udp_listen.iter().find(|a| a.is_ipv6() == v6) {
            let s = UdpSocket::bind(SocketAddr::new(a.ip(), 0))?;
            s.set_read_timeout(Some(TICK))?;
            socks.push(s);
        }
    }
    if socks.is_empty() {
        tracing::warn!("dispatcher: no UDP listener, so no probes are sent");
        return Ok(None);
    }
    let weak = Arc::downgrade(state);
    let thread = std::thread::Builder::new()
        .name("sipd-ds-probe".into())
        .spawn(move || run(&weak, &socks, &stopped))?;
    Ok(Some(thread))
}

fn run(weak: &Weak<DispatcherState>, socks: &[UdpSocket], stopped: &dyn Fn() -> bool) {
    let mut pending: HashMap<String, Pending> = HashMap::new();
    let mut next_round = Instant::now();
    let mut seq: u64 = 0;
    let salt = random_hex();
    let mut quiet = Quiet::default();
    let mut buf = vec![0u8; 65_535];
    loop {
        if stopped() {
            return;
        }
        let Some(state) = weak.upgrade() else {
            return;
        };
        let now = Instant::now();
        if now >= next_round {
            next_round = now + state.config.ping_interval;
            for t in state.probe_targets() {
                if pending.values().any(|p| p.set == t.set && p.uri == t.uri) {
                    continue;
                }
                seq += 1;
                match send_probe(&state, socks, &t, &salt, seq, &mut quiet) {
                    Some((branch, p)) => {
                        pending.insert(branch, p);
                    }
                    None if t.proto != Proto::Udp => {}
                    None => state.probe_result(t.set, &t.uri, None),
                }
            }
        }
        // Retransmissions and timeouts.
        let mut expired = Vec::new();
        for (branch, p) in pending.iter_mut() {
            if now >= p.deadline {
                expired.push(branch.clone());
            } else if now >= p.retransmit_at {
                if let Some(s) = socks.get(p.sock) {
                    let _ = s.send_to(&p.wire, p.to);
                }
                p.interval = (p.interval * 2).min(T2);
                p.retransmit_at = now + p.interval;
            }
        }
        for b in expired {
            if let Some(p) = pending.remove(&b) {
                state.probe_result(p.set, &p.uri, None);
            }
        }
        // Replies.
        for s in socks {
            for _ in 0..READS_PER_TURN {
                let n = match s.recv_from(&mut buf) {
                    Ok((n, _)) => n,
                    Err(_) => break,
                };
                let Some(data) = buf.get(..n) else { break };
                let Ok(m) = Message::parse(bytes::Bytes::copy_from_slice(data)) else {
                    quiet.warn("parse", "an unparsable datagram came to the probe socket");
                    continue;
                };
                let (Some(code), Some(branch)) = (m.status(), m.top_via_branch()) else {
                    continue;
                };
                if code < 200 {
                    continue;
                }
                if let Some(p) = pending.remove(branch) {
                    state.probe_result(p.set, &p.uri, Some(code));
                }
                if pending.is_empty() {
                    break;
                }
            }
        }
        // Each receive above waited at most one tick: the loop turns at least every tick
        // per socket, so a stop is noticed quickly.
        drop(state);
    }
}

/// Send one probe; `None` when it could not be sent (no address, no socket of its family,
/// a transport sipd does not probe, a send error).
fn send_probe(
    state: &DispatcherState,
    socks: &[UdpSocket],
    t: &ProbeTarget,
    salt: &str,
    seq: u64,
    quiet: &mut Quiet,
) -> Option<(String, Pending)> {
    if t.proto != Proto::Udp {
        quiet.warn(
            "proto",
            &format!("{} is not probed: sipd probes over UDP only", t.uri),
        );
        return None;
    }
    let Some(to) = t.addr else {
        quiet.warn("addr", &format!("{} has no address to probe", t.uri));
        return None;
    };
    let Some((idx, sock)) = socks
        .iter()
        .enumerate()
        .find(|(_, s)| s.local_addr().is_ok_and(|a| a.is_ipv6() == to.is_ipv6()))
    else {
        quiet.warn(
            "family",
            &format!("{} is not probed: no UDP listener of its family", t.uri),
        );
        return None;
    };
    let local = sent_by(sock.local_addr().ok()?, to)?;
    let branch = format!("z9hG4bKsd.ds{salt}.{seq:x}");
    let wire = request(
        &state.config.ping_method,
        &t.uri,
        &t.from,
        local,
        &branch,
        &format!("{salt}-{seq:x}@sipd.ds"),
    );
    if let Err(e) = sock.send_to(&wire, to) {
        quiet.warn("send", &format!("probe to {to} not sent: {e}"));
        return None;
    }
    state
        .probes
        .sent
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let now = Instant::now();
    Some((
        branch,
        Pending {
            set: t.set,
            uri: t.uri.clone(),
            wire,
            to,
            sock: idx,
            retransmit_at: now + T1,
            interval: T1,
            deadline: now + state.config.ping_timeout,
        },
    ))
}

/// The address the probe's Via names: the socket's, or, when it is bound to the unspecified
/// address (a `0.0.0.0` listener), the source address the system routes `to` from (a
/// connected socket sends nothing).
fn sent_by(local: SocketAddr, to: SocketAddr) -> Option<SocketAddr> {
    if !local.ip().is_unspecified() {
        return Some(local);
    }
    let probe = UdpSocket::bind(SocketAddr::new(local.ip(), 0)).ok()?;
    probe.connect(to).ok()?;
    Some(SocketAddr::new(probe.local_addr().ok()?.ip(), local.port()))
}

/// The probe request.
pub fn request(
    method: &str,
    uri: &str,
    from: &str,
    local: SocketAddr,
    branch: &str,
    call_id: &str,
) -> Vec<u8> {
    let sent_by = match local {
        SocketAddr::V4(a) => a.to_string(),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    };
    let tag = call_id.split('@').next().unwrap_or(call_id);
    format!(
        "{method} {uri} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {sent_by};branch={branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <{from}>;tag={tag}\r\n\
         To: <{uri}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 10 {method}\r\n\
         Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

fn random_hex() -> String {
    let mut b = [0u8; 6];
    if getrandom::getrandom(&mut b).is_err() {
        // The clock is a good enough salt for branches that only need to be ours.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        return format!("{:x}", t & 0xffff_ffff_ffff);
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::super::list;
    use super::super::state::{DsConfig, Source};
    use super::*;

    /// Receive one probe (within 3 s) as the destination; its text.
    fn probe(peer: &UdpSocket) -> String {
        let mut buf = [0u8; 4096];
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok((n, _)) = peer.recv_from(&mut buf) {
                return String::from_utf8_lossy(&buf[..n]).into_owned();
            }
        }
        panic!("no probe within 3 s");
    }

    /// Answer `req` with `code`.
    fn answer(peer: &UdpSocket, req: &str, code: u16) {
        let mut out = format!("SIP/2.0 {code} Whatever\r\n");
        for line in req.lines() {
            if ["Via:", "From:", "To:", "Call-ID:", "CSeq:"]
                .iter()
                .any(|h| line.starts_with(h))
            {
                out.push_str(line);
                out.push_str("\r\n");
            }
        }
        out.push_str("Content-Length: 0\r\n\r\n");
        let via = req
            .lines()
            .find(|l| l.starts_with("Via:"))
            .and_then(|l| l.split_whitespace().nth(2))
            .and_then(|hp| hp.split(';').next())
            .and_then(|hp| hp.parse::<SocketAddr>().ok())
            .expect("Via sent-by");
        peer.send_to(out.as_bytes(), via).expect("reply");
    }

    fn branch(req: &str) -> String {
        req.split("branch=")
            .nth(1)
            .and_then(|b| b.split([';', '\r', '\n']).next())
            .unwrap_or("")
            .to_string()
    }

    fn wait_state(ds: &DispatcherState, uri: &str, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(3);
        let now = || ds.current().find(1, uri).map(|d| d.state_letters());
        while Instant::now() < deadline {
            if now().as_deref() == Some(want) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("{uri} is {:?}, want {want}", now());
    }

    #[test]
    fn probes_retransmit_match_by_branch_and_change_states() {
        let peer = UdpSocket::bind("127.0.0.1:0").expect("peer");
        peer.set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let uri = format!("sip:{}", peer.local_addr().expect("addr"));
        let config = DsConfig {
            ping_interval: Duration::from_millis(300),
            ping_timeout: Duration::from_millis(1200),
            probing_mode: 1,
            reply_codes: vec![404],
            ..DsConfig::default()
        };
        let entries = list::parse(&format!("1 {uri}\n")).expect("list");
        let ds = Arc::new(DispatcherState::new(
            config,
            entries,
            Some(Source::File("unused".into())),
        ));
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = spawn(&ds, &["127.0.0.1:0".parse().expect("addr")], move || {
            flag.load(Ordering::Relaxed)
        })
        .expect("spawn")
        .expect("a prober");

        // Unanswered, the probe is retransmitted with its branch; the answer to the
        // retransmission counts.
        let first = probe(&peer);
        assert!(
            first.starts_with(&format!("OPTIONS {uri} SIP/2.0\r\n")),
            "{first}"
        );
        assert!(
            first.contains("From: <sip:dispatcher@localhost>;tag="),
            "{first}"
        );
        let again = probe(&peer);
        assert_eq!(branch(&again), branch(&first), "a retransmission");
        answer(&peer, &again, 200);
        wait_state(&ds, &uri, "AP");
        // 404 is in ds_ping_reply_codes: still up. 503 is not: down (threshold 1).
        let next = probe(&peer);
        assert_ne!(branch(&next), branch(&first), "a new probe, a new branch");
        answer(&peer, &next, 404);
        std::thread::sleep(Duration::from_millis(100));
        wait_state(&ds, &uri, "AP");
        answer(&peer, &probe(&peer), 503);
        wait_state(&ds, &uri, "IP");
        answer(&peer, &probe(&peer), 200);
        wait_state(&ds, &uri, "AP");
        // Silence: inactive after ds_ping_timeout.
        let t0 = Instant::now();
        wait_state(&ds, &uri, "IP");
        assert!(
            t0.elapsed() >= Duration::from_millis(900),
            "{:?}",
            t0.elapsed()
        );

        stop.store(true, Ordering::Relaxed);
        thread.join().expect("prober ends");
    }

    #[test]
    fn via_names_a_routable_address() {
        let lo: SocketAddr = "127.0.0.1:40000".parse().expect("addr");
        let to: SocketAddr = "127.0.0.1:5060".parse().expect("addr");
        assert_eq!(sent_by(lo, to), Some(lo));
        let any: SocketAddr = "0.0.0.0:40000".parse().expect("addr");
        assert_eq!(sent_by(any, to), Some(lo), "the route's source, our port");
    }

    #[test]
    fn probe_request_parses_with_our_branch() {
        let wire = request(
            "OPTIONS",
            "sip:127.0.0.1:5080",
            "sip:dispatcher@localhost",
            "127.0.0.1:40000".parse().unwrap(),
            "z9hG4bKsd.dsabc.1",
            "abc-1@sipd.ds",
        );
        let m = Message::parse(bytes::Bytes::from(wire)).unwrap();
        assert_eq!(m.method_str(), Some("OPTIONS"));
        assert_eq!(m.top_via_branch(), Some("z9hG4bKsd.dsabc.1"));
        assert_eq!(m.call_id(), Some("abc-1@sipd.ds"));
    }
}
