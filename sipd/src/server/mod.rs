//! The stateless proxy server as a library: [`Server::start`] binds the listen sockets, starts
//! the workers and returns a [`ServerHandle`] with the bound addresses and a
//! [`ServerHandle::shutdown`]. `sipd run` and the tests start it the same way.
//!
//! - [`pipeline`]: what happens to one message (parse, route, replies, forwards), socket-free.
//! - [`worker`]: one worker thread: its engine, its runtime, its receive and accept loops.
//! - [`via`], [`target`], [`locals`], [`malformed`]: Via branches and stamps, destinations,
//!   the local sockets, replies to unparsable requests.
//!
//! ```no_run
//! # fn f(config: sipd::config::Config) -> Result<(), sipd::server::ServerError> {
//! let server = sipd::server::Server::start(config)?;
//! for endpoint in server.local_addrs() {
//!     println!("listening on {endpoint}");
//! }
//! server.shutdown();
//! # Ok(()) }
//! ```

pub mod drop_log;
pub mod hop;
pub mod locals;
pub mod malformed;
pub mod pipeline;
pub mod rate_limit;
pub mod script_log;
pub mod target;
pub mod via;
mod worker;

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use kemi_runtime::engine::LoadError;
use kemi_runtime::msg::{Proto, RouteEnv};
use kemi_runtime::TableError;
use tokio::sync::watch;
use tracing::info;

use crate::config::Config;
use crate::endpoint::Endpoint;
use crate::exports;
use crate::metrics::Metrics;
use crate::reload::{Reloaded, ScriptVersions};
use crate::rpc::{OpsThread, RpcContext};
use crate::transport::limits::ConnLimits;
use crate::transport::tls::TlsContext;
use crate::transport::{tcp::ConnTable, udp};
use locals::Locals;
use worker::WorkerSetup;

/// Why the server did not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A listen socket could not be bound.
    #[error("cannot listen on {endpoint}")]
    Bind {
        /// The endpoint.
        endpoint: Endpoint,
        /// The OS error.
        source: std::io::Error,
    },
    /// The export table could not be built.
    #[error("building the export table")]
    Table(#[from] TableError),
    /// The script did not load in a worker.
    #[error(transparent)]
    Script(#[from] LoadError),
    /// A runtime, thread or socket registration failed.
    #[error("starting a worker: {0}")]
    Runtime(#[from] std::io::Error),
    /// A worker ended before it was ready.
    #[error("a worker stopped during startup")]
    WorkerLost,
    /// A stateful module (registrar, auth, htable...) could not start.
    #[error("module setup: {0}")]
    Modules(#[from] modules::setup::SetupError),
    /// The RPC or metrics listeners did not start.
    #[error("{0}")]
    Ops(#[from] crate::rpc::OpsError),
    /// The `[tls]` certificates or keys could not be loaded.
    #[error("tls: {0}")]
    Tls(#[from] crate::transport::tls::TlsError),
    /// A `tls:` listener without a `[tls]` section.
    #[error("cannot listen on {0}: no [tls] section (certificate and private_key)")]
    NoTls(Endpoint),
}

/// The server, as a namespace for [`Server::start`].
#[derive(Debug)]
pub struct Server;

/// A running server: its bound addresses; dropping it (or [`Self::shutdown`]) stops it.
#[derive(Debug)]
pub struct ServerHandle {
    local: Vec<Endpoint>,
    stop: watch::Sender<bool>,
    threads: Vec<JoinHandle<()>>,
    versions: Arc<ScriptVersions>,
    metrics: Arc<Metrics>,
    ops: Option<OpsThread>,
    services: kemi_runtime::services::Services,
    housekeeping: Option<JoinHandle<()>>,
    /// The dispatcher's OPTIONS prober, when probing is on.
    prober: Option<JoinHandle<()>>,
    /// The dialog module's timer and BYE sender, when dialog is set up.
    dialog_agent: Option<JoinHandle<()>>,
    tls: Option<Arc<TlsContext>>,
}

impl Server {
    /// Bind every listen socket of `config`, start `config.workers` workers (each loads the
    /// script) and return once all are serving.
    pub fn start(config: Config) -> Result<ServerHandle, ServerError> {
        let table = Arc::new(exports::build_table(&config.modules)?);
        let versions = Arc::new(
            ScriptVersions::new(
                config.engine,
                &config.script,
                Arc::clone(&table),
                config.limits.script,
            )?
            .with_lua_options(config.lua),
        );
        let metrics = Arc::new(Metrics::new(Arc::clone(&table)).with_node(&config.node.name));
        let mut services = crate::modsetup::services(&config)?;
        let tm = Arc::new(crate::tm::TmLayer::with_workers(config.tm, config.workers));
        // Memory freed after a burst goes back to the system (tm/trim.rs).
        let trimmer = crate::tm::trim::Trimmer::default();
        let tm_room = Arc::clone(&tm);
        services.every("malloc_trim", crate::tm::trim::TRIM_EVERY, move || {
            tm_room.shrink();
            trimmer.tick();
        });
        let mut udp_socks = Vec::new();
        let mut tcp_socks = Vec::new();
        let mut tls_socks = Vec::new();
        let mut ws_socks = Vec::new();
        let tls = match &config.tls {
            Some(t) => Some(Arc::new(TlsContext::new(t.clone())?)),
            None => None,
        };
        let mut bound = Vec::new();
        for endpoint in &config.listen {
            let bind_err = |source| ServerError::Bind {
                endpoint: *endpoint,
                source,
            };
            let addr = match endpoint.proto {
                Proto::Tcp => {
                    let l = std::net::TcpListener::bind(endpoint.addr).map_err(bind_err)?;
                    l.set_nonblocking(true).map_err(bind_err)?;
                    let addr = l.local_addr().map_err(bind_err)?;
                    tcp_socks.push(l);
                    addr
                }
                Proto::Tls => {
                    if tls.is_none() {
                        return Err(ServerError::NoTls(*endpoint));
                    }
                    let l = std::net::TcpListener::bind(endpoint.addr).map_err(bind_err)?;
                    l.set_nonblocking(true).map_err(bind_err)?;
                    let addr = l.local_addr().map_err(bind_err)?;
                    tls_socks.push((l, endpoint.addr));
                    addr
                }
                Proto::Ws | Proto::Wss => {
                    if endpoint.proto == Proto::Wss && tls.is_none() {
                        return Err(ServerError::NoTls(*endpoint));
                    }
                    let l = std::net::TcpListener::bind(endpoint.addr).map_err(bind_err)?;
                    l.set_nonblocking(true).map_err(bind_err)?;
                    let addr = l.local_addr().map_err(bind_err)?;
                    ws_socks.push((l, endpoint.addr, endpoint.proto));
                    addr
                }
                _ => {
                    let s = udp::bind(endpoint.addr, config.udp_buffers).map_err(bind_err)?;
                    let addr = s.local_addr().map_err(bind_err)?;
                    udp_socks.push(s);
                    addr
                }
            };
            bound.push((endpoint.proto, addr));
        }
        let conns = Arc::new(ConnTable::new());
        let tls_conns = Arc::new(ConnTable::new());
        let ws_conns = Arc::new(ConnTable::new());
        let wss_conns = Arc::new(ConnTable::new());
        let limits = Arc::new(ConnLimits::new(
            config.max_conns_per_listener,
            config.max_conns_per_ip,
        ));
        {
            // registrar's lookup skips WebSocket contacts whose connection closed.
            let (ws, wss) = (Arc::clone(&ws_conns), Arc::clone(&wss_conns));
            services.insert(Arc::new(kemi_runtime::services::OpenConnections::new(
                move |proto, peer| match proto {
                    Proto::Ws => ws.contains(peer),
                    Proto::Wss => wss.contains(peer),
                    _ => true,
                },
            )));
        }
        let ws_config = Arc::new(config.websocket.clone());
        let env = Arc::new(RouteEnv {
            listen: bound.clone(),
            aliases: config.aliases.clone(),
            server_header: config.server_header.clone(),
            services: services.clone(),
        });
        let locals = Arc::new(Locals::new(&bound, &config.aliases));
        let (stop, stop_rx) = watch::channel(false);
        let events_wake = Arc::new(tokio::sync::Notify::new());
        if let Some(q) = services.get::<kemi_runtime::services::EventQueue>() {
            let wake = Arc::clone(&events_wake);
            q.set_wake(move || wake.notify_one());
        }
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let mut handle = ServerHandle {
            local: bound
                .iter()
                .map(|&(proto, addr)| Endpoint { proto, addr })
                .collect(),
            stop,
            threads: Vec::with_capacity(config.workers),
            versions: Arc::clone(&versions),
            metrics: Arc::clone(&metrics),
            ops: None,
            housekeeping: crate::modsetup::housekeeping(&services, stop_rx.clone())?,
            prober: dispatcher_prober(&services, &bound, stop_rx.clone())?,
            dialog_agent: dialog_agent(&services, &udp_socks, stop_rx.clone())?,
            services: services.clone(),
            tls: None,
        };
        for n in 0..config.workers {
            let setup = WorkerSetup {
                tm: Arc::clone(&tm),
                versions: Arc::clone(&versions),
                stats: metrics.add_worker(n),
                on_limit: config.limits.on_limit,
                env: Arc::clone(&env),
                locals: Arc::clone(&locals),
                conns: Arc::clone(&conns),
                udp: udp_socks
                    .iter()
                    .map(|s| s.try_clone())
                    .collect::<std::io::Result<_>>()?,
                tcp: tcp_socks
                    .iter()
                    .map(|s| s.try_clone())
                    .collect::<std::io::Result<_>>()?,
                tls: worker::TlsSetup {
                    listeners: tls_socks
                        .iter()
                        .map(|(s, key)| Ok((s.try_clone()?, *key)))
                        .collect::<std::io::Result<_>>()?,
                    ctx: tls.clone(),
                    conns: Arc::clone(&tls_conns),
                },
                ws: worker::WsSetup {
                    listeners: ws_socks
                        .iter()
                        .map(|(s, key, proto)| Ok((s.try_clone()?, *key, *proto)))
                        .collect::<std::io::Result<_>>()?,
                    config: Arc::clone(&ws_config),
                    ws_conns: Arc::clone(&ws_conns),
                    wss_conns: Arc::clone(&wss_conns),
                },
                limits: Arc::clone(&limits),
                max_message_size: config.max_message_size,
                tcp_idle: config.tcp_idle_timeout,
                shutdown: stop_rx.clone(),
                events_wake: Arc::clone(&events_wake),
            };
            let ready = ready_tx.clone();
            let node = config.node.span();
            let thread = std::thread::Builder::new()
                .name(format!("sipd-worker-{n}"))
                .spawn(move || {
                    let _node = node.enter();
                    worker::run(setup, ready)
                })?;
            handle.threads.push(thread);
        }
        drop(ready_tx);
        for _ in 0..config.workers {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(ServerError::WorkerLost),
            }
        }
        for e in &handle.local {
            info!(workers = config.workers, "listening on {e}");
        }
        let mut gauges: Vec<Arc<dyn crate::metrics::prom::GaugeSource>> = vec![
            tm.clone(),
            Arc::new(crate::metrics::modules::ModuleMetrics::new(
                services.clone(),
            )),
        ];
        if let Some(t) = &tls {
            gauges.push(t.clone());
        }
        gauges.push(limits.clone());
        let tm_gauges: Arc<dyn crate::metrics::prom::GaugeSource> =
            Arc::new(crate::metrics::prom::Sources(gauges));
        handle.tls = tls;
        let ctx = RpcContext {
            versions,
            metrics,
            table,
            tm,
            services,
            tls: handle.tls.clone(),
        };
        handle.ops = OpsThread::start(
            ctx,
            config.rpc.as_ref(),
            config.metrics.as_ref(),
            Some(tm_gauges),
            stop_rx,
        )?;
        Ok(handle)
    }
}

impl ServerHandle {
    /// The bound listen sockets (real ports when 0 was asked), in configuration order.
    pub fn local_addrs(&self) -> &[Endpoint] {
        &self.local
    }

    /// The first bound socket of `proto` in the address family of `v6`.
    pub fn local_addr(&self, proto: Proto, v6: bool) -> Option<SocketAddr> {
        self.local
            .iter()
            .find(|e| e.proto == proto && e.addr.is_ipv6() == v6)
            .map(|e| e.addr)
    }

    /// Reload the script as `app_lua.reload` does: validate it in a staging interpreter, then
    /// publish it to the workers; on error the running script stays (SIGHUP calls this).
    pub fn reload(&self) -> Result<Reloaded, kemi_runtime::engine::LoadError> {
        let r = self.versions.reload();
        self.metrics.reload(r.is_ok());
        r
    }

    /// The TLS configurations and counters, when `[tls]` is configured.
    pub fn tls(&self) -> Option<&Arc<TlsContext>> {
        self.tls.as_ref()
    }

    /// Re-read the `[tls]` certificates and keys (RPC `tls.reload`): new handshakes use them,
    /// established connections go on; on error the old ones stay.
    pub fn reload_tls(&self) -> Result<(), crate::transport::tls::TlsError> {
        match &self.tls {
            Some(t) => t.reload(),
            None => Ok(()),
        }
    }

    /// The live counters.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The RPC Unix socket, when `[rpc]` is configured.
    pub fn rpc_socket(&self) -> Option<&std::path::Path> {
        self.ops.as_ref().and_then(|o| o.socket.as_deref())
    }

    /// The bound RPC-over-HTTP address, when configured.
    pub fn rpc_http_addr(&self) -> Option<SocketAddr> {
        self.ops.as_ref().and_then(|o| o.http)
    }

    /// The bound metrics address, when `[metrics]` is configured.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.ops.as_ref().and_then(|o| o.metrics)
    }

    /// The stateful modules' shared state (for tests and the RPC methods).
    pub fn services(&self) -> &kemi_runtime::services::Services {
        &self.services
    }

    /// Stop the server: workers, RPC, housekeeping; flush the store; return when done, or after
    /// [`SHUTDOWN_GRACE`] with the workers still busy left behind (see [`Self::stop_within`]).
    pub fn shutdown(self) {
        drop(self);
    }

    /// Stop the server, waiting at most `grace` for the workers. A worker stuck in a script
    /// (an endless loop in an engine without a budget) cannot be stopped from outside; it is
    /// left running, named in the result, and the caller decides (`sipd run` exits the
    /// process). Everything else stops and the store is flushed either way.
    pub fn stop_within(&mut self, grace: std::time::Duration) -> Vec<String> {
        let _ = self.stop.send(true);
        let deadline = std::time::Instant::now() + grace;
        while self.threads.iter().any(|t| !t.is_finished()) && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let mut stuck = Vec::new();
        for t in self.threads.drain(..) {
            if t.is_finished() {
                let _ = t.join();
            } else {
                stuck.push(t.thread().name().unwrap_or("worker").to_string());
            }
        }
        if let Some(ops) = self.ops.take() {
            ops.join();
        }
        if let Some(t) = self.housekeeping.take() {
            let _ = t.join();
        }
        if let Some(t) = self.prober.take() {
            let _ = t.join();
        }
        if let Some(t) = self.dialog_agent.take() {
            let _ = t.join();
        }
        crate::modsetup::flush(&self.services);
        stuck
    }
}

/// Start the dispatcher's OPTIONS prober (its own thread, off the message path) when the
/// dispatcher is set up with `ds_ping_interval`; its sockets take the IPs of the UDP listeners.
fn dispatcher_prober(
    services: &kemi_runtime::services::Services,
    bound: &[(Proto, SocketAddr)],
    stop: watch::Receiver<bool>,
) -> std::io::Result<Option<JoinHandle<()>>> {
    let Some(ds) = services.get_arc::<modules::dispatcher::DispatcherState>() else {
        return Ok(None);
    };
    let udp: Vec<SocketAddr> = bound
        .iter()
        .filter(|(p, _)| *p == Proto::Udp)
        .map(|(_, a)| *a)
        .collect();
    modules::dispatcher::probe::spawn(&ds, &udp, move || {
        *stop.borrow() || stop.has_changed().is_err()
    })
}

/// Start the dialog module's agent (its own thread: dialog timeouts, the BYEs sipd sends)
/// when dialog is set up; it sends from duplicates of the UDP listen sockets, so a BYE leaves
/// from the address the phones know, and its replies come back through the workers.
fn dialog_agent(
    services: &kemi_runtime::services::Services,
    udp: &[std::net::UdpSocket],
    stop: watch::Receiver<bool>,
) -> std::io::Result<Option<JoinHandle<()>>> {
    let Some(d) = services.get_arc::<modules::dialog::DialogState>() else {
        return Ok(None);
    };
    let socks = udp
        .iter()
        .map(std::net::UdpSocket::try_clone)
        .collect::<std::io::Result<Vec<_>>>()?;
    modules::dialog::agent::spawn(&d, socks, move || {
        *stop.borrow() || stop.has_changed().is_err()
    })
    .map(Some)
}

/// How long [`ServerHandle::shutdown`] waits for busy workers.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

impl Drop for ServerHandle {
    fn drop(&mut self) {
        let stuck = self.stop_within(SHUTDOWN_GRACE);
        if !stuck.is_empty() {
            tracing::error!(workers = ?stuck, "workers still running a script at shutdown; left behind");
        }
    }
}
