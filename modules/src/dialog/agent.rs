//! The dialog agent: a thread of its own (off the message path) that ends dialogs whose
//! timeout passed and sends the BYEs sipd originates (`send_bye` on a timeout, `dlg_bye`,
//! RPC `dlg.end_dlg`).
//!
//! A BYE is built from what the dialog learned (Kamailio's `dlg_bye`): to the callee with the
//! INVITE's From and To plus the callee's tag, the caller's next CSeq, the callee's Contact as
//! Request-URI and its route set; to the caller the other way round. It leaves from the UDP
//! listen socket the leg talks to (a duplicate of it: the phone behind a NAT sees the address it
//! knows), to the first Route hop or, without a route set, to the address the leg's messages
//! came from. It is retransmitted like any non-INVITE request (timer E: 500 ms doubling up to
//! 4 s) until a final reply, which the workers hand over by Via branch
//! ([`super::BRANCH_PREFIX`]), or for 32 s. Legs over TCP, TLS or WebSocket get no BYE (logged).

use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kemi_runtime::msg::Proto;
use kemi_runtime::sip::{NameAddr, Uri};

use super::state::{ByeJob, DialogState, DlgCell, DlgInner, Side};
use super::BRANCH_PREFIX;

/// RFC 3261 T1 and T2.
const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);
/// 64 * T1: how long a BYE waits for its final reply.
const GIVE_UP: Duration = Duration::from_secs(32);
/// How often timeouts and retransmissions are looked at while dialogs or BYEs are live.
const TICK: Duration = Duration::from_millis(50);
/// How long the agent sleeps when there is nothing to watch (a job wakes it at once).
const IDLE: Duration = Duration::from_millis(200);

/// A BYE waiting for its final reply.
#[derive(Debug)]
pub struct PendingBye {
    wire: Vec<u8>,
    to: SocketAddr,
    sock: usize,
    retransmit_at: Instant,
    interval: Duration,
    deadline: Instant,
}

/// Start the agent of `state`, sending from `socks` (duplicates of the UDP listen sockets);
/// it stops when `stopped()` turns true or the state is dropped.
pub fn spawn(
    state: &Arc<DialogState>,
    socks: Vec<UdpSocket>,
    stopped: impl Fn() -> bool + Send + 'static,
) -> std::io::Result<JoinHandle<()>> {
    let (tx, rx) = std::sync::mpsc::channel::<ByeJob>();
    if socks.is_empty() {
        tracing::warn!(
            "dialog: no UDP listener, so sipd sends no BYE (timeouts still end dialogs)"
        );
    } else {
        let _ = state.agent.set(tx);
    }
    let weak = Arc::downgrade(state);
    std::thread::Builder::new()
        .name("sipd-dialog".into())
        .spawn(move || run(&weak, &socks, &rx, &stopped))
}

fn run(
    weak: &Weak<DialogState>,
    socks: &[UdpSocket],
    rx: &std::sync::mpsc::Receiver<ByeJob>,
    stopped: &dyn Fn() -> bool,
) {
    let mut seq: u64 = 0;
    loop {
        if stopped() {
            return;
        }
        let idle = weak
            .upgrade()
            .is_none_or(|s| s.live() == 0 && s.pending_byes() == 0);
        let job = rx.recv_timeout(if idle { IDLE } else { TICK });
        let Some(state) = weak.upgrade() else {
            return;
        };
        match job {
            Ok(job) => {
                for side in job.sides {
                    seq += 1;
                    send_bye(&state, socks, &job.cell, side, seq);
                }
            }
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {}
        }
        for cell in state.expired(state.now_ms()) {
            tracing::debug!(call_id = &*cell.call_id, "dialog timed out");
            let confirmed = cell.lock().state.is_confirmed();
            if state.config.send_bye && confirmed && !socks.is_empty() {
                for side in [Side::Caller, Side::Callee] {
                    seq += 1;
                    send_bye(&state, socks, &cell, side, seq);
                }
            }
            state.end(&cell, true);
        }
        retransmit(&state, socks);
    }
}

/// Resend the BYEs whose timer E fired; forget those past 64*T1.
fn retransmit(state: &DialogState, socks: &[UdpSocket]) {
    let now = Instant::now();
    let mut pending = state
        .pending
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    pending.retain(|_, p| {
        if now >= p.deadline {
            return false;
        }
        if now >= p.retransmit_at {
            if let Some(s) = socks.get(p.sock) {
                let _ = s.send_to(&p.wire, p.to);
            }
            p.interval = (p.interval * 2).min(T2);
            p.retransmit_at = now + p.interval;
        }
        true
    });
}

/// Build and send one BYE to `side` of `cell`.
fn send_bye(state: &DialogState, socks: &[UdpSocket], cell: &DlgCell, side: Side, seq: u64) {
    let mut inner = cell.lock();
    let leg = match side {
        Side::Caller => &inner.caller,
        Side::Callee => &inner.callee,
    };
    if leg.proto != Proto::Udp {
        tracing::warn!(
            call_id = &*cell.call_id,
            "dialog: no BYE to the {side:?} over {}: sipd sends its own BYEs over UDP only",
            leg.proto.as_str()
        );
        return;
    }
    let Some(to) = destination(&inner, side) else {
        tracing::warn!(
            call_id = &*cell.call_id,
            "dialog: no address to send the {side:?} a BYE"
        );
        return;
    };
    let local = leg.local;
    let Some((idx, sock)) = socks
        .iter()
        .enumerate()
        .find(|(_, s)| s.local_addr().ok() == local)
        .or_else(|| {
            socks
                .iter()
                .enumerate()
                .find(|(_, s)| s.local_addr().is_ok_and(|a| a.is_ipv6() == to.is_ipv6()))
        })
    else {
        tracing::warn!(
            call_id = &*cell.call_id,
            "dialog: no UDP socket of the family of {to}"
        );
        return;
    };
    let Some(sent_by) = sock.local_addr().ok().and_then(|l| sent_by(l, to)) else {
        return;
    };
    let branch = format!("{BRANCH_PREFIX}.{}.{}.{seq:x}", cell.h_entry, cell.h_id);
    let wire = bye_request(&mut inner, &cell.call_id, side, sent_by, &branch);
    drop(inner);
    if let Err(e) = sock.send_to(&wire, to) {
        tracing::warn!(
            call_id = &*cell.call_id,
            "dialog: BYE to {to} not sent: {e}"
        );
        return;
    }
    tracing::debug!(
        call_id = &*cell.call_id,
        "dialog: BYE sent to the {side:?} at {to}"
    );
    let now = Instant::now();
    state
        .pending
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(
            branch,
            PendingBye {
                wire,
                to,
                sock: idx,
                retransmit_at: now + T1,
                interval: T1,
                deadline: now + GIVE_UP,
            },
        );
}

/// Where a request to `side` goes: its first Route hop, else where its messages came from,
/// else its Contact.
fn destination(inner: &DlgInner, side: Side) -> Option<SocketAddr> {
    let leg = match side {
        Side::Caller => &inner.caller,
        Side::Callee => &inner.callee,
    };
    let uri_addr = |uri: &str| -> Option<SocketAddr> {
        let u = Uri::parse(uri).ok()?;
        let port = u.port.unwrap_or(5060);
        (u.host_unbracketed(), port).to_socket_addrs().ok()?.next()
    };
    if let Some(first) = leg.route_set.first() {
        return NameAddr::parse(first, "Route")
            .ok()
            .and_then(|n| uri_addr(n.uri));
    }
    leg.addr.or_else(|| uri_addr(&leg.contact))
}

/// The BYE to `side`, with the next CSeq of the other side (which it then keeps).
pub fn bye_request(
    inner: &mut DlgInner,
    call_id: &str,
    side: Side,
    local: SocketAddr,
    branch: &str,
) -> Vec<u8> {
    let with_tag = |v: &str, tag: &str| {
        if tag.is_empty() {
            v.to_string()
        } else {
            format!("{v};tag={tag}")
        }
    };
    let (ruri, routes, from, to, cseq) = match side {
        Side::Callee => {
            inner.caller.cseq = inner.caller.cseq.saturating_add(1);
            (
                inner.callee.contact.clone(),
                inner.callee.route_set.clone(),
                inner.from.clone(),
                with_tag(&inner.to, &inner.callee.tag),
                inner.caller.cseq,
            )
        }
        Side::Caller => {
            inner.callee.cseq = inner.callee.cseq.saturating_add(1);
            (
                inner.caller.contact.clone(),
                inner.caller.route_set.clone(),
                with_tag(&inner.to, &inner.callee.tag),
                inner.from.clone(),
                inner.callee.cseq,
            )
        }
    };
    let sent_by = match local {
        SocketAddr::V4(a) => a.to_string(),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    };
    let mut out =
        format!("BYE {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP {sent_by};branch={branch};rport\r\n");
    if !routes.is_empty() {
        out.push_str("Route: ");
        out.push_str(&routes.join(", "));
        out.push_str("\r\n");
    }
    out.push_str(&format!(
        "Max-Forwards: 70\r\nFrom: {from}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} BYE\r\nContent-Length: 0\r\n\r\n"
    ));
    out.into_bytes()
}

/// The address a Via names for a socket bound to `local`: itself, or, bound to the unspecified
/// address, the source the system routes `to` from.
fn sent_by(local: SocketAddr, to: SocketAddr) -> Option<SocketAddr> {
    if !local.ip().is_unspecified() {
        return Some(local);
    }
    let probe = UdpSocket::bind(SocketAddr::new(local.ip(), 0)).ok()?;
    probe.connect(to).ok()?;
    Some(SocketAddr::new(probe.local_addr().ok()?.ip(), local.port()))
}
