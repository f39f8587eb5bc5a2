//! The control interface of a running sipd: JSON-RPC 2.0 on a Unix socket (mode 0600, owner-only
//! peers), optionally over HTTP, plus the Prometheus endpoint; and the `sipd rpc` client.
//!
//! - [`jsonrpc`]: request/response framing and error codes.
//! - [`methods`]: the methods (Kamailio's names) over an [`RpcContext`].
//! - [`socket`]: binding the socket file privately.
//! - [`http`]: the minimal HTTP used by the HTTP transport and `/metrics`.
//! - [`client`]: what `sipd rpc` uses.
//!
//! [`OpsThread::start`] binds every configured listener (so a mistake fails `sipd run` at once)
//! and serves them on one thread with its own current-thread runtime, away from the workers.
//! A reload stages the new script on that thread, so other RPC clients wait for it meanwhile.

pub mod client;
pub mod dialog;
pub mod dispatcher;
pub mod htable;
pub mod http;
pub mod jsonrpc;
pub mod methods;
pub mod permissions;
pub mod rtpengine;
pub mod siptrace;
pub mod socket;
pub mod ul;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener, UnixStream};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::config::{MetricsConfig, RpcConfig};
use crate::metrics::prom;
pub use jsonrpc::RpcError;
pub use methods::RpcContext;

/// The socket path when `[rpc]` names none, for the instance called `name` (`--name`), the same
/// in `sipd run` and `sipd rpc` run by the same user: `$XDG_RUNTIME_DIR/sipd[-NAME].sock`; as root
/// without it `/run/sipd/sipd[-NAME].sock`; else `/tmp/sipd-<uid>[-NAME].sock`.
pub fn default_socket(name: Option<&str>) -> PathBuf {
    let suffix = name.map(|n| format!("-{n}")).unwrap_or_default();
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return Path::new(&dir).join(format!("sipd{suffix}.sock"));
    }
    // The owner of /proc/self is the process's effective uid.
    let uid = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m));
    match uid {
        Ok(0) => PathBuf::from(format!("/run/sipd/sipd{suffix}.sock")),
        Ok(uid) => PathBuf::from(format!("/tmp/sipd-{uid}{suffix}.sock")),
        Err(_) => PathBuf::from(format!("/tmp/sipd{suffix}.sock")),
    }
}

/// True when `name` can name an instance (and so a socket file): 1 to 64 of `A-Z a-z 0-9 _ . -`,
/// not starting with `.`.
pub fn valid_instance_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Why the control listeners did not start.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// The Unix socket.
    #[error("rpc socket: {0}")]
    Socket(#[from] socket::SocketError),
    /// A TCP listener.
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind {
        /// What it was for.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// The thread or its runtime.
    #[error("starting the rpc thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// The thread serving RPC and metrics.
#[derive(Debug)]
pub struct OpsThread {
    thread: Option<JoinHandle<()>>,
    /// The Unix socket path, when RPC is on.
    pub socket: Option<PathBuf>,
    /// The HTTP RPC address, when configured.
    pub http: Option<SocketAddr>,
    /// The metrics address, when configured.
    pub metrics: Option<SocketAddr>,
}

fn bind_tcp(what: &'static str, addr: SocketAddr) -> Result<std::net::TcpListener, OpsError> {
    let err = |source| OpsError::Bind { what, addr, source };
    let l = std::net::TcpListener::bind(addr).map_err(err)?;
    l.set_nonblocking(true).map_err(err)?;
    Ok(l)
}

struct Listeners {
    unix: Option<(std::os::unix::net::UnixListener, u32)>,
    http: Option<std::net::TcpListener>,
    metrics: Option<std::net::TcpListener>,
}

impl OpsThread {
    /// Bind what `rpc` and `metrics` configure and serve it until `shutdown` turns true.
    /// Returns `None` when neither is configured.
    pub fn start(
        ctx: RpcContext,
        rpc: Option<&RpcConfig>,
        metrics: Option<&MetricsConfig>,
        extra: Option<Arc<dyn prom::GaugeSource>>,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Option<OpsThread>, OpsError> {
        if rpc.is_none() && metrics.is_none() {
            return Ok(None);
        }
        let mut l = Listeners {
            unix: None,
            http: None,
            metrics: None,
        };
        let mut me = OpsThread {
            thread: None,
            socket: None,
            http: None,
            metrics: None,
        };
        if let Some(r) = rpc {
            match socket::bind_private(&r.socket) {
                Ok(bound) => {
                    l.unix = Some(bound);
                    me.socket = Some(r.socket.clone());
                }
                Err(socket::SocketError::InUse(path)) if !r.explicit => warn!(
                    "rpc: the default control socket {} belongs to another running sipd: this \
                     one has no control socket; give each instance a name (--name NAME, then \
                     `sipd rpc --name NAME ...`) or set [rpc] socket",
                    path.display()
                ),
                Err(e) => return Err(e.into()),
            }
            if let Some(addr) = r.http {
                let t = bind_tcp("rpc.http", addr)?;
                let bound = t.local_addr()?;
                if !addr.ip().is_loopback() {
                    warn!("!!! JSON-RPC over HTTP listens on {bound}, NOT a loopback address: anyone who can reach it can reload scripts and read counters; there is no authentication !!!");
                }
                l.http = Some(t);
                me.http = Some(bound);
            }
        }
        if let Some(m) = metrics {
            let t = bind_tcp("metrics.listen", m.listen)?;
            let bound = t.local_addr()?;
            if !m.listen.ip().is_loopback() {
                warn!("metrics endpoint listens on {bound}, not a loopback address: anyone who can reach it can read the counters");
            }
            l.metrics = Some(t);
            me.metrics = Some(bound);
        }
        let registry = Arc::new(prom::registry(Arc::clone(&ctx.metrics), extra));
        let socket_path = me.socket.clone();
        // The caller's span (the node's, see `NodeId::span`) marks this thread's log lines too.
        let span = tracing::Span::current();
        let thread = std::thread::Builder::new()
            .name("sipd-ops".into())
            .spawn(move || {
                let _node = span.enter();
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        warn!("rpc thread: cannot start its runtime: {e}");
                        return;
                    }
                };
                rt.block_on(serve(l, Arc::new(ctx), registry, shutdown));
                if let Some(p) = socket_path {
                    let _ = std::fs::remove_file(p);
                }
            })?;
        me.thread = Some(thread);
        if let Some(p) = &me.socket {
            info!("rpc listening on {}", p.display());
        }
        if let Some(a) = me.http {
            info!("rpc over http listening on {a}");
        }
        if let Some(a) = me.metrics {
            info!("metrics on http://{a}/metrics");
        }
        Ok(Some(me))
    }

    /// Wait for the thread (after the shutdown signal was sent).
    pub fn join(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn serve(
    l: Listeners,
    ctx: Arc<RpcContext>,
    registry: Arc<prometheus_client::registry::Registry>,
    mut shutdown: watch::Receiver<bool>,
) {
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async move {
            if let Some((u, owner)) = l.unix {
                match UnixListener::from_std(u) {
                    Ok(u) => {
                        tokio::task::spawn_local(unix_loop(u, owner, Arc::clone(&ctx)));
                    }
                    Err(e) => warn!("rpc socket: {e}"),
                }
            }
            if let Some(t) = l.http {
                match TcpListener::from_std(t) {
                    Ok(t) => {
                        let ctx = Arc::clone(&ctx);
                        tokio::task::spawn_local(tcp_loop(t, move |req| rpc_over_http(&ctx, req)));
                    }
                    Err(e) => warn!("rpc http: {e}"),
                }
            }
            if let Some(t) = l.metrics {
                match TcpListener::from_std(t) {
                    Ok(t) => {
                        tokio::task::spawn_local(tcp_loop(t, move |req| scrape(&registry, req)));
                    }
                    Err(e) => warn!("metrics: {e}"),
                }
            }
            let _ = shutdown.wait_for(|stop| *stop).await;
        })
        .await;
}

/// Control connections served at once; more are answered with an error and closed.
pub const MAX_CONNECTIONS: usize = 32;

async fn unix_loop(listener: UnixListener, owner: u32, ctx: Arc<RpcContext>) {
    let open = std::rc::Rc::new(std::cell::Cell::new(0usize));
    loop {
        match listener.accept().await {
            Ok((mut stream, _)) => {
                if !socket::peer_allowed(&stream, owner) {
                    warn!("rpc: refused a connection from another user");
                    continue;
                }
                if open.get() >= MAX_CONNECTIONS {
                    warn!("rpc: {MAX_CONNECTIONS} control connections open; refusing another");
                    let busy = jsonrpc::response(
                        serde_json::Value::Null,
                        Err(RpcError::new(
                            jsonrpc::INTERNAL_ERROR,
                            "too many control connections",
                        )),
                    );
                    tokio::task::spawn_local(async move {
                        let _ = stream.write_all(busy.as_bytes()).await;
                        let _ = stream.shutdown().await;
                    });
                    continue;
                }
                open.set(open.get() + 1);
                let open = std::rc::Rc::clone(&open);
                let ctx = Arc::clone(&ctx);
                tokio::task::spawn_local(async move {
                    unix_exchange(stream, ctx).await;
                    open.set(open.get() - 1);
                });
            }
            Err(e) => {
                debug!("rpc accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// How much of a control connection's input is one request.
#[derive(Debug, PartialEq, Eq)]
enum Framed {
    /// A complete JSON value ends at this offset.
    Complete(usize),
    /// Not JSON, whatever follows.
    Garbage,
    /// A JSON value has started and not ended yet (or nothing but blanks arrived).
    Incomplete,
}

/// Where the first JSON value of `buf` ends, if it does.
fn frame(buf: &[u8]) -> Framed {
    let mut values = serde_json::Deserializer::from_slice(buf).into_iter::<serde::de::IgnoredAny>();
    match values.next() {
        Some(Ok(_)) => Framed::Complete(values.byte_offset()),
        Some(Err(e)) if e.is_eof() => Framed::Incomplete,
        Some(Err(_)) => Framed::Garbage,
        None => Framed::Incomplete,
    }
}

/// One request per connection: read until a whole JSON value has arrived (bounded in size and
/// time), answer, close. Input that cannot become JSON is answered with a parse error (-32700)
/// at once and the connection closed.
async fn unix_exchange(mut s: UnixStream, ctx: Arc<RpcContext>) {
    let exchange = async {
        let mut body = Vec::with_capacity(1024);
        let mut chunk = [0u8; 4096];
        let parse_error = |why: &str| {
            Some(jsonrpc::response(
                serde_json::Value::Null,
                Err(RpcError::new(jsonrpc::PARSE_ERROR, why)),
            ))
        };
        let answer = loop {
            let n = s.read(&mut chunk).await?;
            body.extend_from_slice(&chunk[..n]);
            match frame(&body) {
                Framed::Complete(end) => {
                    break jsonrpc::handle(&body[..end], &|m, p| ctx.call(m, p))
                }
                Framed::Garbage => break parse_error("Parse error: not JSON"),
                Framed::Incomplete if body.len() > http::MAX_BODY => {
                    break Some(jsonrpc::response(
                        serde_json::Value::Null,
                        Err(RpcError::new(jsonrpc::INVALID_REQUEST, "request too large")),
                    ))
                }
                Framed::Incomplete if n == 0 && body.trim_ascii().is_empty() => break None,
                Framed::Incomplete if n == 0 => break parse_error("Parse error: truncated JSON"),
                Framed::Incomplete => {}
            }
        };
        if let Some(mut a) = answer {
            a.push('\n');
            s.write_all(a.as_bytes()).await?;
        }
        s.shutdown().await
    };
    match tokio::time::timeout(http::DEADLINE * 12, exchange).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => debug!("rpc exchange failed: {e}"),
        Err(_) => debug!("rpc exchange timed out"),
    }
}

async fn tcp_loop<F>(listener: TcpListener, handle: F)
where
    F: Fn(http::Request) -> http::Response + Clone + 'static,
{
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let h = handle.clone();
                tokio::task::spawn_local(http::serve(stream, h));
            }
            Err(e) => {
                debug!("accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

fn rpc_over_http(ctx: &RpcContext, req: http::Request) -> http::Response {
    if req.method != "POST" {
        return http::Response::text(405, "POST a JSON-RPC 2.0 request\n");
    }
    match jsonrpc::handle(&req.body, &|m, p| ctx.call(m, p)) {
        Some(body) => http::Response {
            status: 200,
            content_type: "application/json",
            body: body.into_bytes(),
        },
        None => http::Response::text(204, ""),
    }
}

fn scrape(registry: &prometheus_client::registry::Registry, req: http::Request) -> http::Response {
    if req.method != "GET" {
        return http::Response::text(405, "GET /metrics\n");
    }
    if req.path != "/metrics" && !req.path.starts_with("/metrics?") {
        return http::Response::text(404, "see /metrics\n");
    }
    match prom::render(registry) {
        Ok(text) => http::Response {
            status: 200,
            content_type: prom::CONTENT_TYPE,
            body: text.into_bytes(),
        },
        Err(_) => http::Response::text(500, "encoding failed\n"),
    }
}
