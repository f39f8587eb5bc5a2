//! The `siptrace` module (`KSR.siptrace.*`): SIP messages copied as HEP v3 packets to a capture
//! server (Homer, `sngrep -L udp:IP:PORT`), with Kamailio's parameters:
//!
//! - `duplicate_uri`: where to send, `sip:IP:PORT` (also `udp:IP:PORT` or `IP:PORT`); required.
//! - `hep_mode_on` (1), `hep_version` (3): sipd sends HEP v3 only, so other values are refused.
//! - `hep_capture_id` (1): the capture agent id in every packet.
//! - `trace_on` (0): the switch, also `sipd rpc siptrace.status on|off|check`.
//! - `trace_mode` (0): 1 copies every message in and out without the script asking (Kamailio's
//!   "mirror all" mode); 0 copies what the script asks for.
//!
//! Exports: `sip_trace()` copies the current message and traces its transaction (every message
//! in and out with its Call-ID and CSeq number for 40 s), `sip_trace_mode("m"|"t"|"d")` the
//! message only, its transaction, or its dialog (every message of the Call-ID until it has been
//! idle for 2 h). The host calls [`Tracer::on_wire`] for each message it receives or sends.
//!
//! Differences from Kamailio: HEP only (no SIP duplication, no database); a transaction is found
//! again by Call-ID and CSeq number rather than through tm callbacks. A packet that cannot be
//! sent (a full socket buffer) is counted in [`Tracer::failed`], never waited for.

pub mod calls;
pub mod hep;

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use kemi_runtime::msg::Proto;
use kemi_runtime::{kemi, SipMsg};

use crate::setup::{SetupCtx, SetupError};
use calls::Calls;
pub use hep::Transport;

/// The server's tracer: where HEP goes, what is traced, and counters.
#[derive(Debug)]
pub struct Tracer {
    socket: UdpSocket,
    dest: SocketAddr,
    capture_id: u32,
    on: AtomicBool,
    all: bool,
    calls: Calls,
    sent: AtomicU64,
    failed: AtomicU64,
}

/// Which way a message went through sipd.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Received.
    In,
    /// Sent.
    Out,
}

impl Tracer {
    /// A tracer sending to `dest`, switched `on` or not, copying every message when `all`.
    pub fn new(dest: SocketAddr, capture_id: u32, on: bool, all: bool) -> std::io::Result<Tracer> {
        let bind: SocketAddr = match dest {
            SocketAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let socket = UdpSocket::bind(bind)?;
        socket.set_nonblocking(true)?;
        Ok(Tracer {
            socket,
            dest,
            capture_id,
            on: AtomicBool::new(on),
            all,
            calls: Calls::default(),
            sent: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        })
    }

    /// Whether tracing is switched on.
    pub fn is_on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    /// Switch tracing on or off (`siptrace.status`).
    pub fn set_on(&self, on: bool) {
        self.on.store(on, Ordering::Relaxed);
    }

    /// Packets sent.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Packets that could not be sent.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// Where packets go.
    pub fn destination(&self) -> SocketAddr {
        self.dest
    }

    /// A message `wire` went through sipd over `proto` from `src` to `dst`: copy it when
    /// tracing is on and it is traced (every message in `trace_mode` 1, else one of a traced
    /// transaction or dialog). Costs one atomic load while tracing is off or nothing is traced.
    pub fn on_wire(&self, proto: Proto, src: SocketAddr, dst: SocketAddr, wire: &[u8]) {
        if !self.is_on() || (!self.all && self.calls.is_empty()) {
            return;
        }
        let (call_id, cseq) = calls::call_of(wire);
        if self.all || (!call_id.is_empty() && self.calls.contains(call_id, cseq)) {
            self.send(proto, src, dst, wire, call_id);
        }
    }

    /// Copy one message now.
    fn send(&self, proto: Proto, src: SocketAddr, dst: SocketAddr, wire: &[u8], call_id: &[u8]) {
        let transport = match proto {
            Proto::Udp => Transport::Udp,
            _ => Transport::Tcp,
        };
        let mut packet = Vec::with_capacity(wire.len() + 128);
        hep::encode(
            &hep::Captured {
                transport,
                src,
                dst,
                time: SystemTime::now(),
                capture_id: self.capture_id,
                payload: wire,
                correlation: call_id,
            },
            &mut packet,
        );
        match self.socket.send_to(&packet, self.dest) {
            Ok(_) => self.sent.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.failed.fetch_add(1, Ordering::Relaxed),
        };
    }

    /// Start tracing the call of the received message `msg` in `mode`, and copy `msg` itself
    /// (it went past [`Tracer::on_wire`] before the script asked).
    fn trace(&self, msg: &SipMsg, mode: Mode) -> i32 {
        if !self.is_on() {
            return -1;
        }
        let wire = msg.message.as_bytes();
        let (call_id, cseq) = calls::call_of(wire);
        let already = self.all || (!call_id.is_empty() && self.calls.contains(call_id, cseq));
        match mode {
            Mode::Message => {}
            Mode::Transaction => self.calls.add(call_id, cseq, calls::TRANSACTION),
            Mode::Dialog => self.calls.add(call_id, None, calls::DIALOG_IDLE),
        }
        if !already {
            self.send(msg.rcv.proto, msg.rcv.src, msg.rcv.dst, wire, call_id);
        }
        1
    }
}

/// What `sip_trace_mode` traces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Message,
    Transaction,
    Dialog,
}

/// `sip:IP:PORT`, `udp:IP:PORT` or `IP:PORT` (`duplicate_uri`).
fn parse_destination(uri: &str) -> Option<SocketAddr> {
    let rest = uri
        .strip_prefix("sip:")
        .or_else(|| uri.strip_prefix("udp:"))
        .unwrap_or(uri);
    let rest = rest.split(';').next().unwrap_or(rest);
    rest.parse().ok()
}

/// Read `[modparam.siptrace]` and register the [`Tracer`].
pub fn setup(ctx: &mut SetupCtx<'_>) -> Result<(), SetupError> {
    let p = ctx.params("siptrace");
    p.check_known(&[
        "duplicate_uri",
        "hep_mode_on",
        "hep_version",
        "hep_capture_id",
        "trace_on",
        "trace_mode",
    ])?;
    if p.int("hep_mode_on", 1)? != 1 {
        return Err(p
            .error(
                "hep_mode_on",
                "sipd sends HEP only: set 1 (or leave it out)",
            )
            .into());
    }
    if p.int("hep_version", 3)? != 3 {
        return Err(p
            .error("hep_version", "sipd sends HEP version 3 only")
            .into());
    }
    let Some(uri) = p.str("duplicate_uri")? else {
        // Without a destination there is nothing to trace to: the module stays unset and its
        // functions return -1 (as Kamailio's do with tracing off). Other parameters without it
        // would be silently useless, so they are refused.
        for name in ["hep_capture_id", "trace_on", "trace_mode"] {
            if p.int(name, i64::MIN)? != i64::MIN {
                return Err(p
                    .error(
                        name,
                        "needs duplicate_uri: where HEP goes, e.g. \"sip:127.0.0.1:9060\"",
                    )
                    .into());
            }
        }
        return Ok(());
    };
    let dest = parse_destination(&uri).ok_or_else(|| {
        p.error(
            "duplicate_uri",
            format!("`{uri}` is not sip:IP:PORT (a capture server's address)"),
        )
    })?;
    let capture_id = u32::try_from(p.int("hep_capture_id", 1)?)
        .map_err(|_| p.error("hep_capture_id", "must be 0..4294967295"))?;
    let all = match p.int("trace_mode", 0)? {
        0 => false,
        1 => true,
        _ => {
            return Err(p
                .error(
                    "trace_mode",
                    "must be 0 (as the script asks) or 1 (every message)",
                )
                .into())
        }
    };
    let on = p.int("trace_on", 0)? != 0;
    let tracer = Tracer::new(dest, capture_id, on, all).map_err(|source| SetupError::Io {
        module: "siptrace".into(),
        source,
    })?;
    let tracer = Arc::new(tracer);
    let sweeper = Arc::clone(&tracer);
    ctx.services
        .every("siptrace cleanup", Duration::from_secs(10), move || {
            sweeper.calls.sweep()
        });
    ctx.services.insert(tracer);
    Ok(())
}

fn tracer(msg: &SipMsg) -> Option<&Tracer> {
    msg.env.services.get::<Tracer>()
}

/// Copy the current message to the capture server and trace its transaction (every message in
/// and out with its Call-ID and CSeq number). 1 when copied, -1 when tracing is off or the
/// module is not set up.
#[kemi(module = "siptrace", name = "sip_trace")]
pub fn sip_trace(msg: &mut SipMsg) -> i32 {
    match tracer(msg) {
        Some(t) => t.trace(msg, Mode::Transaction),
        None => -1,
    }
}

/// Copy the current message and trace, by `mode`: "m" the message only, "t" its transaction,
/// "d" its dialog (upper case too). -1 for another mode, when tracing is off or not set up.
#[kemi(module = "siptrace", name = "sip_trace_mode")]
pub fn sip_trace_mode(msg: &mut SipMsg, mode: &str) -> i32 {
    let mode = match mode {
        "m" | "M" => Mode::Message,
        "t" | "T" => Mode::Transaction,
        "d" | "D" => Mode::Dialog,
        _ => return -1,
    };
    match tracer(msg) {
        Some(t) => t.trace(msg, mode),
        None => -1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations() {
        let want: SocketAddr = "127.0.0.1:9060".parse().unwrap();
        for uri in [
            "sip:127.0.0.1:9060",
            "udp:127.0.0.1:9060",
            "127.0.0.1:9060",
            "sip:127.0.0.1:9060;transport=udp",
        ] {
            assert_eq!(parse_destination(uri), Some(want), "{uri}");
        }
        assert_eq!(parse_destination("sip:homer.example"), None);
    }
}
