//! A worker's TLS sockets: accepting on `tls:` listeners and opening outgoing TLS
//! connections. Each handshake runs in its own task under the configured handshake timeout, so
//! a client that stalls mid-handshake holds nothing but its own socket; a failed handshake is
//! one log line and one count, and the connection is closed. Once the handshake is done the
//! connection is read and written by the same code as a TCP one ([`Worker::start_connection`]).

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use kemi_runtime::msg::Proto;
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info, warn};

use super::{send_on, ConnGuards, Worker, CONNECT_TIMEOUT};
use crate::server::drop_log;

/// Accept on the TLS listener configured as `key`: TCP accept, then the handshake in a task.
pub(super) async fn accept_loop(worker: Rc<Worker>, listener: TcpListener, key: SocketAddr) {
    let local = listener.local_addr().unwrap_or(key);
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let permit = match worker.limits.admit(Proto::Tls, local, peer) {
                    Ok(p) => p,
                    Err(e) => {
                        drop_log::input(peer, Proto::Tls, format_args!("connection refused: {e}"));
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                tokio::task::spawn_local(handshake_in(
                    Rc::clone(&worker),
                    stream,
                    peer,
                    key,
                    permit,
                ));
            }
            Err(e) => {
                warn!("tls accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// The server side of one handshake; on success the connection starts like a TCP one.
async fn handshake_in(
    worker: Rc<Worker>,
    stream: TcpStream,
    peer: SocketAddr,
    key: SocketAddr,
    permit: crate::transport::limits::ConnPermit,
) {
    let Some(ctx) = worker.tls.clone() else {
        return;
    };
    let Some(acceptor) = ctx.acceptor(key) else {
        warn!(%peer, listener = %key, "tls connection refused: no server configuration");
        return;
    };
    let local = stream.local_addr().unwrap_or(key);
    let limit = ctx.handshake_timeout();
    let tls = match tokio::time::timeout(limit, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            ctx.stats().handshake_failed();
            info!(%peer, %local, "tls handshake failed, connection closed: {e}");
            return;
        }
        Err(_) => {
            ctx.stats().handshake_failed();
            info!(%peer, %local, "tls handshake timed out after {limit:?}, connection closed");
            return;
        }
    };
    let (_, session) = tls.get_ref();
    debug!(
        %peer,
        version = ?session.protocol_version(),
        sni = session.server_name().unwrap_or(""),
        client_cert = session.peer_certificates().is_some_and(|c| !c.is_empty()),
        "tls connection accepted"
    );
    let guards = ConnGuards {
        tls: Some(ctx.stats().opened()),
        permit: Some(permit),
    };
    let (rd, wr) = tokio::io::split(tls);
    worker.start_connection(rd, wr, peer, local, Proto::Tls, guards);
}

/// Open a TLS connection to `dst` (TCP connect, handshake verifying the server), then send
/// `wire` on it; each step bounded in time, each failure one log line.
pub(super) async fn connect_and_send(
    worker: Rc<Worker>,
    dst: SocketAddr,
    wire: crate::transport::Wire,
    close: bool,
) {
    let Some(ctx) = worker.tls.clone() else {
        info!(%dst, "cannot send over tls: no [tls] section configured");
        return;
    };
    let Some(connector) = ctx.connector() else {
        return;
    };
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(dst)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            info!(%dst, "tls connect failed: {e}");
            return;
        }
        Err(_) => {
            info!(%dst, "tls connect timed out");
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    let local = stream.local_addr().unwrap_or(dst);
    let name = ctx.server_name(dst);
    let limit = ctx.handshake_timeout();
    let tls = match tokio::time::timeout(limit, connector.connect(name.clone(), stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            ctx.stats().handshake_failed();
            info!(%dst, server_name = ?name, "tls handshake with the server failed: {e}");
            return;
        }
        Err(_) => {
            ctx.stats().handshake_failed();
            info!(%dst, "tls handshake with the server timed out after {limit:?}");
            return;
        }
    };
    debug!(%dst, server_name = ?name, "tls connection opened");
    let guards = ConnGuards {
        tls: Some(ctx.stats().opened()),
        permit: Some(worker.limits.opened(Proto::Tls)),
    };
    let (rd, wr) = tokio::io::split(tls);
    let tx = worker.start_connection(rd, wr, dst, local, Proto::Tls, guards);
    send_on(&tx, dst, wire, close);
}
