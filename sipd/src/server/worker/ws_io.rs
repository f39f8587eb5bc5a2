//! A worker's WebSocket sockets (RFC 6455, RFC 7118): accepting on `ws:` and `wss:` listeners,
//! the upgrade (after the TLS handshake on `wss:`), and each connection's reader and writer.
//!
//! The TCP accept, the TLS handshake and the upgrade run in the connection's own task under
//! `[websocket] handshake_timeout_ms`, so a client that stalls holds only its own socket. The
//! upgrade must offer the `sip` subprotocol and, when configured, an allowed Origin
//! ([`check_upgrade`]); else it gets an HTTP error and one log line. A connection is then in the
//! worker's table for its transport by peer address, like a TCP one, so replies and requests to
//! a registered WebSocket client (whose `received` is that address) leave over it. Every text
//! or binary frame is one SIP message, routed like a datagram; a frame over `max_frame_size`, a
//! frame that is not SIP, or a protocol error closes the connection with one log line. A ping
//! goes out every `ping_interval`; tungstenite answers the client's pings.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use kemi_runtime::msg::{Proto, RecvInfo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;
use tracing::{debug, warn};

use super::{ConnGuards, Worker};
use crate::server::drop_log;
use crate::transport::limits::ConnPermit;
use crate::transport::tcp::{ConnSender, SEND_QUEUE};
use crate::transport::ws::{check_upgrade, SUBPROTOCOL};
use crate::transport::Wire;

/// How much tungstenite reads at once (and zero-fills before each read).
const READ_BUFFER: usize = 2048;

/// Accept on the `ws:`/`wss:` listener configured as `key`.
pub(super) async fn accept_loop(
    worker: Rc<Worker>,
    listener: TcpListener,
    key: SocketAddr,
    proto: Proto,
) {
    let local = listener.local_addr().unwrap_or(key);
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let permit = match worker.limits.admit(proto, local, peer) {
                    Ok(p) => p,
                    Err(e) => {
                        drop_log::input(peer, proto, format_args!("connection refused: {e}"));
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                tokio::task::spawn_local(upgrade_in(
                    Rc::clone(&worker),
                    stream,
                    peer,
                    key,
                    proto,
                    permit,
                ));
            }
            Err(e) => {
                warn!("{} accept failed: {e}", proto.as_str());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Why a connection did not become a WebSocket.
enum Refused {
    Tls(std::io::Error),
    Upgrade(WsError),
}

/// TLS (on `wss:`) and the upgrade, under the handshake timeout; then the connection runs.
async fn upgrade_in(
    worker: Rc<Worker>,
    stream: TcpStream,
    peer: SocketAddr,
    key: SocketAddr,
    proto: Proto,
    permit: ConnPermit,
) {
    let local = stream.local_addr().unwrap_or(key);
    let limit = worker.ws.handshake_timeout;
    let failure: Option<WsError> = if proto == Proto::Wss {
        let Some(ctx) = worker.tls.clone() else {
            return;
        };
        let Some(acceptor) = ctx.acceptor(key) else {
            warn!(%peer, listener = %key, "wss connection refused: no tls server configuration");
            return;
        };
        let steps = async {
            let tls = acceptor.accept(stream).await.map_err(Refused::Tls)?;
            upgrade(&worker, tls).await.map_err(Refused::Upgrade)
        };
        match tokio::time::timeout(limit, steps).await {
            Ok(Ok(ws)) => {
                let tls = Some(ctx.stats().opened());
                start(&worker, ws, peer, local, proto, tls, permit);
                return;
            }
            Ok(Err(Refused::Tls(e))) => {
                ctx.stats().handshake_failed();
                drop_log::input(
                    peer,
                    proto,
                    format_args!("wss: tls handshake failed, connection closed: {e}"),
                );
                return;
            }
            Ok(Err(Refused::Upgrade(e))) => Some(e),
            Err(_) => {
                // Stalled in the TLS handshake or in the upgrade: both count as refused.
                ctx.stats().handshake_failed();
                None
            }
        }
    } else {
        match tokio::time::timeout(limit, upgrade(&worker, stream)).await {
            Ok(Ok(ws)) => {
                start(&worker, ws, peer, local, proto, None, permit);
                return;
            }
            Ok(Err(e)) => Some(e),
            Err(_) => None,
        }
    };
    worker.limits.stats().upgrade_refused();
    let name = proto.as_str();
    // Bad input: one rate-limited line per refusal (drop_log), with the source.
    match failure {
        None => drop_log::input(
            peer,
            proto,
            format_args!("{name} handshake timed out after {limit:?}, connection closed"),
        ),
        Some(WsError::Http(resp)) => drop_log::input(
            peer,
            proto,
            format_args!(
                "{name} upgrade refused with {}: {}",
                resp.status().as_u16(),
                resp.body()
                    .as_deref()
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default()
            ),
        ),
        Some(e) => drop_log::input(
            peer,
            proto,
            format_args!("{name} upgrade failed, connection closed: {e}"),
        ),
    };
}

/// The server side of the upgrade on `io`, with the `sip` subprotocol and the frame limits.
#[allow(
    clippy::result_large_err,
    reason = "tungstenite's callback returns its ErrorResponse by value"
)]
async fn upgrade<S>(worker: &Worker, io: S) -> Result<WebSocketStream<S>, WsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let cfg = &worker.ws;
    let check = |req: &Request, mut resp: Response| -> Result<Response, ErrorResponse> {
        let protocols = req
            .headers()
            .get_all("sec-websocket-protocol")
            .iter()
            .filter_map(|v| v.to_str().ok());
        let origin = req.headers().get("origin").and_then(|v| v.to_str().ok());
        match check_upgrade(cfg, protocols, origin) {
            Ok(()) => {
                resp.headers_mut().insert(
                    "sec-websocket-protocol",
                    HeaderValue::from_static(SUBPROTOCOL),
                );
                Ok(resp)
            }
            Err(refusal) => {
                let mut r = ErrorResponse::new(Some(refusal.to_string()));
                *r.status_mut() =
                    StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::BAD_REQUEST);
                Err(r)
            }
        }
    };
    // tungstenite zero-fills its read buffer up to its capacity before every read: its 128 KiB
    // default cost 144k instructions per SIP message (callgrind, docs/PERFORMANCE.md, 4 KiB
    // still 6.6k); 2 KiB reads hold a request without SDP, and a larger frame takes more reads.
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .max_frame_size(Some(cfg.max_frame_size))
        .max_message_size(Some(cfg.max_frame_size));
    tokio_tungstenite::accept_hdr_async_with_config(io, check, Some(config)).await
}

/// Register an upgraded connection and start its writer and reader.
fn start<S>(
    worker: &Rc<Worker>,
    ws: WebSocketStream<S>,
    peer: SocketAddr,
    local: SocketAddr,
    proto: Proto,
    tls: Option<crate::transport::tls::OpenGuard>,
    permit: ConnPermit,
) where
    S: AsyncRead + AsyncWrite + Unpin + 'static,
{
    debug!(%peer, %local, "{} connection accepted", proto.as_str());
    let (sink, stream) = ws.split();
    let (tx, rx) = mpsc::channel(SEND_QUEUE);
    let id = worker.table(proto).insert(peer, tx.clone());
    tokio::task::spawn_local(write_loop(Rc::clone(worker), sink, rx, peer));
    let rcv = RecvInfo {
        proto,
        src: peer,
        dst: local,
    };
    let guards = ConnGuards {
        tls,
        permit: Some(permit),
    };
    tokio::task::spawn_local(read_loop(Rc::clone(worker), stream, rcv, tx, id, guards));
}

/// Send what is queued for the connection, one SIP message per text frame (binary when it is
/// not UTF-8), and a ping every `ping_interval`; an empty buffer asks for the close.
async fn write_loop<S>(
    worker: Rc<Worker>,
    mut sink: futures_util::stream::SplitSink<WebSocketStream<S>, Message>,
    mut rx: mpsc::Receiver<Wire>,
    peer: SocketAddr,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let every = worker.ws.ping_interval;
    let mut ping = tokio::time::interval(if every.is_zero() {
        Duration::from_secs(86_400 * 365)
    } else {
        every
    });
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.tick().await;
    loop {
        let frame = tokio::select! {
            m = rx.recv() => match m {
                None => break,
                Some(wire) if wire.is_empty() => {
                    debug!(%peer, "closing websocket connection as asked");
                    break;
                }
                Some(wire) => match String::from_utf8(wire.into_vec()) {
                    Ok(text) => Message::text(text),
                    Err(e) => Message::binary(e.into_bytes()),
                },
            },
            _ = ping.tick(), if !every.is_zero() => Message::Ping(Bytes::new()),
        };
        let data = !matches!(frame, Message::Ping(_));
        if let Err(e) = sink.send(frame).await {
            debug!(%peer, "websocket write failed, closing: {e}");
            break;
        }
        if data {
            worker.limits.stats().frame_out();
        }
    }
    let _ = sink.close().await;
}

/// Read frames until the connection closes, idles out or misbehaves; route each SIP message.
async fn read_loop<S>(
    worker: Rc<Worker>,
    mut stream: futures_util::stream::SplitStream<WebSocketStream<S>>,
    rcv: RecvInfo,
    tx: ConnSender,
    id: u64,
    _guards: ConnGuards,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut out = Vec::with_capacity(4);
    let (peer, proto) = (rcv.src, rcv.proto.as_str());
    loop {
        let next = tokio::select! {
            r = tokio::time::timeout(worker.idle, stream.next()) => r,
            () = tx.closed() => break,
        };
        let frame: Bytes = match next {
            Err(_) => {
                debug!(%peer, "closing idle {proto} connection");
                break;
            }
            Ok(None) => break,
            Ok(Some(Err(WsError::Capacity(e)))) => {
                drop_log::input(
                    peer,
                    rcv.proto,
                    format_args!("closing {proto} connection: frame too large: {e}"),
                );
                break;
            }
            Ok(Some(Err(e))) => {
                drop_log::input(
                    peer,
                    rcv.proto,
                    format_args!("closing {proto} connection: {e}"),
                );
                break;
            }
            Ok(Some(Ok(Message::Text(t)))) => Bytes::from(t),
            Ok(Some(Ok(Message::Binary(b)))) => b,
            Ok(Some(Ok(Message::Close(_)))) => break,
            Ok(Some(Ok(_))) => continue,
        };
        worker.limits.stats().frame_in();
        if frame.iter().all(|b| matches!(b, b'\r' | b'\n' | b' ')) {
            // A keepalive (RFC 5626 4.4.1 over a stream): nothing to route.
            continue;
        }
        let parsed = worker.pipeline.borrow_mut().handle(frame, rcv, &mut out);
        for o in out.drain(..) {
            worker.send(o, Some((&tx, peer))).await;
        }
        worker.arm_tm_timers();
        if !parsed {
            drop_log::input(
                peer,
                rcv.proto,
                format_args!("closing {proto} connection: a frame that is not a SIP message"),
            );
            break;
        }
    }
    // The writer sends the close frame and shuts the socket.
    let _ = tx.try_send(Wire::Owned(Vec::new()));
    worker.table(rcv.proto).remove(peer, id);
    debug!(%peer, "{proto} connection closed");
}
