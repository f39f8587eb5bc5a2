//! One worker: an OS thread with its own script engine ([`Pipeline`]) and a current-thread
//! tokio runtime. It receives on its duplicates of the UDP listen sockets, accepts on its
//! duplicates of the TCP, TLS and WebSocket listeners, reads the connections it accepted or
//! opened, and sends what the pipeline produced. Nothing here is shared with other workers
//! except the connection tables ([`ConnTable`], one per stream transport) and the connection
//! limits ([`ConnLimits`]); the engine is not `Send` and never leaves the thread.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kemi_runtime::msg::{Proto, RecvInfo, RouteEnv};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use super::locals::Locals;
use super::pipeline::{Dest, Ops, Outgoing, Pipeline};
use super::ServerError;
use crate::config::OnLimit;
use crate::metrics::WorkerStats;
use crate::reload::{ScriptVersions, ScriptWatch};
use crate::router::Router;
use crate::transport::limits::{ConnLimits, ConnPermit};
use crate::transport::stream::{FrameError, StreamFramer};
use crate::transport::tcp::{self, ConnSender, ConnTable, SEND_QUEUE};
use crate::transport::tls::{OpenGuard, TlsContext};
use crate::transport::udp::UdpIo;
use crate::transport::ws::WsConfig;

mod refuse;
mod tls_io;
mod ws_io;

/// How long an outgoing TCP connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Everything a worker thread is started with.
pub(crate) struct WorkerSetup {
    pub tm: Arc<crate::tm::TmLayer>,
    pub versions: Arc<ScriptVersions>,
    pub stats: Arc<WorkerStats>,
    pub on_limit: OnLimit,
    pub env: Arc<RouteEnv>,
    pub locals: Arc<Locals>,
    pub conns: Arc<ConnTable>,
    pub udp: Vec<std::net::UdpSocket>,
    pub tcp: Vec<std::net::TcpListener>,
    pub tls: TlsSetup,
    pub ws: WsSetup,
    pub limits: Arc<ConnLimits>,
    pub max_message_size: usize,
    pub tcp_idle: Duration,
    pub shutdown: watch::Receiver<bool>,
    /// Wakes a worker to run module events raised off the workers (`dialog:end` on a
    /// timeout); shared by all workers of the server.
    pub events_wake: Arc<tokio::sync::Notify>,
}

/// A worker's TLS part: its duplicates of the `tls:` listeners (each with the address it was
/// configured as, which picks its settings), the shared configurations and the open TLS
/// connections (a table of their own: a TLS send never takes a plain TCP connection).
pub(crate) struct TlsSetup {
    pub listeners: Vec<(std::net::TcpListener, SocketAddr)>,
    pub ctx: Option<Arc<TlsContext>>,
    pub conns: Arc<ConnTable>,
}

/// A worker's WebSocket part: its duplicates of the `ws:`/`wss:` listeners (with the address
/// each was configured as and its transport), the `[websocket]` settings and the open
/// connections of each transport.
pub(crate) struct WsSetup {
    pub listeners: Vec<(std::net::TcpListener, SocketAddr, Proto)>,
    pub config: Arc<WsConfig>,
    pub ws_conns: Arc<ConnTable>,
    pub wss_conns: Arc<ConnTable>,
}

/// What a connection's reader holds while it runs: the TLS open count, the place in the
/// connection limits.
#[allow(
    dead_code,
    reason = "held for their Drop: the counts go down when the reader ends"
)]
pub(super) struct ConnGuards {
    pub tls: Option<OpenGuard>,
    pub permit: Option<ConnPermit>,
}

/// A running worker's state, shared by its tasks (all on its thread).
struct Worker {
    pipeline: RefCell<Pipeline>,
    /// Wakes [`tm_timers`] when a timer earlier than the one it sleeps for was armed.
    tm_wake: tokio::sync::Notify,
    udp: Vec<(SocketAddr, UdpIo)>,
    conns: Arc<ConnTable>,
    tls: Option<Arc<TlsContext>>,
    tls_conns: Arc<ConnTable>,
    ws: Arc<WsConfig>,
    ws_conns: Arc<ConnTable>,
    wss_conns: Arc<ConnTable>,
    limits: Arc<ConnLimits>,
    /// Refused TCP connections being answered 503 now (at most [`refuse::MAX_ANSWERING`]).
    refusing: std::cell::Cell<usize>,
    max: usize,
    idle: Duration,
}

/// The thread body: load the script, report readiness on `ready`, serve until shutdown.
pub(crate) fn run(setup: WorkerSetup, ready: std::sync::mpsc::Sender<Result<(), ServerError>>) {
    // The worker builds its engine itself (engines are not `Send`), from the published text.
    let mut watch = ScriptWatch::new(Arc::clone(&setup.versions), 0);
    let script = setup.versions.current();
    let router = match watch.build(&script) {
        Ok(engine) => Router::with_engine(engine),
        Err(e) => {
            let _ = ready.send(Err(ServerError::Script(e)));
            return;
        }
    };
    setup.stats.set_generation(script.generation);
    // This thread's export calls count into the worker's counters.
    let _counting = kemi_runtime::calls::install(Arc::clone(&setup.stats.calls));
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(ServerError::Runtime(e)));
            return;
        }
    };
    let local = tokio::task::LocalSet::new();
    let mut pipeline = Pipeline::new(router, setup.env, setup.locals);
    let index = setup.stats.index;
    pipeline.set_ops(Ops {
        stats: setup.stats,
        watch: Some(watch),
        on_limit: setup.on_limit,
    });
    pipeline.set_tm(setup.tm, index);
    // Module events that run once at startup (`htable:mod-init`) run in the first worker,
    // before it reports ready: no message is routed before they are done.
    if index == 0 {
        pipeline.run_startup_events();
    }
    local.block_on(
        &rt,
        serve(
            setup.udp,
            setup.tcp,
            setup.tls,
            setup.ws,
            setup.limits,
            pipeline,
            setup.conns,
            setup.max_message_size,
            setup.tcp_idle,
            setup.shutdown,
            setup.events_wake,
            ready,
        ),
    );
}

#[allow(clippy::too_many_arguments)]
async fn serve(
    udp: Vec<std::net::UdpSocket>,
    tcp: Vec<std::net::TcpListener>,
    tls: TlsSetup,
    ws: WsSetup,
    limits: Arc<ConnLimits>,
    pipeline: Pipeline,
    conns: Arc<ConnTable>,
    max: usize,
    idle: Duration,
    mut shutdown: watch::Receiver<bool>,
    events_wake: Arc<tokio::sync::Notify>,
    ready: std::sync::mpsc::Sender<Result<(), ServerError>>,
) {
    let registered = (|| -> std::io::Result<_> {
        let udp = udp
            .into_iter()
            .map(|s| Ok((s.local_addr()?, UdpIo::new(s)?)))
            .collect::<std::io::Result<Vec<_>>>()?;
        let tcp = tcp
            .into_iter()
            .map(TcpListener::from_std)
            .collect::<std::io::Result<Vec<_>>>()?;
        let tls_listeners = tls
            .listeners
            .into_iter()
            .map(|(l, key)| Ok((TcpListener::from_std(l)?, key)))
            .collect::<std::io::Result<Vec<_>>>()?;
        let ws_listeners = ws
            .listeners
            .into_iter()
            .map(|(l, key, proto)| Ok((TcpListener::from_std(l)?, key, proto)))
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok((udp, tcp, tls_listeners, ws_listeners))
    })();
    let (udp, tcp, tls_listeners, ws_listeners) = match registered {
        Ok(r) => r,
        Err(e) => {
            let _ = ready.send(Err(ServerError::Runtime(e)));
            return;
        }
    };
    let worker = Rc::new(Worker {
        pipeline: RefCell::new(pipeline),
        tm_wake: tokio::sync::Notify::new(),
        udp,
        conns,
        tls: tls.ctx,
        tls_conns: tls.conns,
        ws: ws.config,
        ws_conns: ws.ws_conns,
        wss_conns: ws.wss_conns,
        limits,
        refusing: std::cell::Cell::new(0),
        max,
        idle,
    });
    tokio::task::spawn_local(tm_timers(Rc::clone(&worker)));
    tokio::task::spawn_local(module_events(Rc::clone(&worker), events_wake));
    for i in 0..worker.udp.len() {
        tokio::task::spawn_local(udp_loop(Rc::clone(&worker), i));
    }
    for listener in tcp {
        tokio::task::spawn_local(accept_loop(Rc::clone(&worker), listener));
    }
    for (listener, key) in tls_listeners {
        tokio::task::spawn_local(tls_io::accept_loop(Rc::clone(&worker), listener, key));
    }
    for (listener, key, proto) in ws_listeners {
        tokio::task::spawn_local(ws_io::accept_loop(Rc::clone(&worker), listener, key, proto));
    }
    let _ = ready.send(Ok(()));
    // `LocalSet::block_on` polls this future each time the thread wakes (every message): keep
    // that poll to a flag check. The watch is awaited by a task of its own, polled only when
    // it changes.
    let stopped = Rc::new(StopFlag::default());
    let flag = Rc::clone(&stopped);
    tokio::task::spawn_local(async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
        flag.set();
    });
    std::future::poll_fn(|cx| stopped.poll(cx)).await;
}

/// Set once by the shutdown task; the worker's main future waits for it.
#[derive(Default)]
struct StopFlag {
    stopped: std::cell::Cell<bool>,
    waker: RefCell<Option<std::task::Waker>>,
}

impl StopFlag {
    fn set(&self) {
        self.stopped.set(true);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    fn poll(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        if self.stopped.get() {
            return std::task::Poll::Ready(());
        }
        let mut w = self.waker.borrow_mut();
        if !w.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            *w = Some(cx.waker().clone());
        }
        std::task::Poll::Pending
    }
}

/// Datagrams one turn of [`udp_loop`] handles before it lets the worker's other tasks (timers,
/// streams, other sockets) run. Draining the socket without going back to the runtime saves
/// its readiness bookkeeping per datagram; the batch keeps a flood from starving the rest
/// (tokio's own per-task budget does not count a held readiness guard).
const UDP_BATCH: usize = 64;

async fn udp_loop(worker: Rc<Worker>, index: usize) {
    let Some((local, _)) = worker.udp.get(index) else {
        return;
    };
    let local = *local;
    let mut buf = vec![0u8; worker.max + 1];
    let mut out = Vec::with_capacity(4);
    loop {
        let Some((_, sock)) = worker.udp.get(index) else {
            return;
        };
        let mut ready = match sock.readable().await {
            Ok(r) => r,
            Err(e) => {
                debug!(%local, "udp receive error: {e}");
                tokio::task::yield_now().await;
                continue;
            }
        };
        let mut handled = 0;
        // Until the socket is drained (`None`: its readiness is cleared) or the batch is done.
        while let Some(received) = ready.recv_from(&mut buf) {
            let (n, src) = match received {
                Ok(r) => r,
                Err(e) => {
                    debug!(%local, "udp receive error: {e}");
                    continue;
                }
            };
            if n > worker.max {
                super::drop_log::input(
                    src,
                    Proto::Udp,
                    format_args!("dropping datagram larger than {} octets", worker.max),
                );
                continue;
            }
            let bytes = Bytes::copy_from_slice(buf.get(..n).unwrap_or_default());
            let rcv = RecvInfo {
                proto: Proto::Udp,
                src,
                dst: local,
            };
            worker.pipeline.borrow_mut().handle(bytes, rcv, &mut out);
            for o in out.drain(..) {
                // UDP sends are synchronous; anything else (a TCP or TLS next hop) goes
                // through the async path.
                if let Some(o) = worker.send_udp(o) {
                    worker.send(o, None).await;
                }
            }
            worker.arm_tm_timers();
            handled += 1;
            if handled == UDP_BATCH {
                break;
            }
        }
        if handled == UDP_BATCH {
            // The readiness is left set: the next turn receives at once.
            tokio::task::yield_now().await;
        }
    }
}

async fn accept_loop(worker: Rc<Worker>, listener: TcpListener) {
    let key = listener.local_addr().ok();
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let local = stream.local_addr().unwrap_or(peer);
                let permit = match worker.limits.admit(Proto::Tcp, key.unwrap_or(local), peer) {
                    Ok(p) => p,
                    Err(e) => {
                        super::drop_log::input(
                            peer,
                            Proto::Tcp,
                            format_args!("connection refused: {e}"),
                        );
                        refuse_with_503(&worker, stream);
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                debug!(%peer, "tcp connection accepted");
                let (rd, wr) = stream.into_split();
                let guards = ConnGuards {
                    tls: None,
                    permit: Some(permit),
                };
                worker.start_connection(rd, wr, peer, local, Proto::Tcp, guards);
            }
            Err(e) => {
                warn!("tcp accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Answer a connection refused by a limit 503 on its first request, unless
/// [`refuse::MAX_ANSWERING`] refused connections are being answered already (then it just
/// closes).
fn refuse_with_503(worker: &Rc<Worker>, stream: TcpStream) {
    let busy = worker.refusing.get();
    if busy >= refuse::MAX_ANSWERING {
        return;
    }
    worker.refusing.set(busy + 1);
    let worker = Rc::clone(worker);
    tokio::task::spawn_local(async move {
        if refuse::answer_503(stream).await {
            worker.limits.stats().slot(Proto::Tcp).answered_503();
        }
        worker.refusing.set(worker.refusing.get().saturating_sub(1));
    });
}

/// Timers carried out per turn of [`tm_timers`] before it lets the sockets run.
const TIMER_BATCH: usize = 256;

/// The worker's transaction timer driver: one task, one tokio sleep, reset to the earliest
/// deadline of the pipeline's timer queue; woken early when a message arms an earlier timer.
/// Due timers run on this worker (which has an engine for failure callbacks).
async fn tm_timers(worker: Rc<Worker>) {
    let sleep = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(sleep);
    let mut out = Vec::new();
    loop {
        let next = worker.pipeline.borrow_mut().tm_sleep();
        match next {
            Some(at) => {
                sleep.as_mut().reset(tokio::time::Instant::from_std(at));
                tokio::select! {
                    () = &mut sleep => {}
                    () = worker.tm_wake.notified() => continue,
                }
            }
            None => {
                worker.tm_wake.notified().await;
                continue;
            }
        }
        loop {
            let more = worker
                .pipeline
                .borrow_mut()
                .tm_expire(&mut out, TIMER_BATCH);
            for o in out.drain(..) {
                worker.send(o, None).await;
            }
            if !more {
                break;
            }
            tokio::task::yield_now().await;
        }
    }
}

/// Run module events raised off the workers (a dialog timeout's `dialog:end`) when woken.
async fn module_events(worker: Rc<Worker>, wake: Arc<tokio::sync::Notify>) {
    loop {
        wake.notified().await;
        let mut p = worker.pipeline.borrow_mut();
        if p.events_pending() {
            p.run_posted_events();
        }
    }
}

impl Worker {
    /// After a message: wake the timer driver if the message armed a timer earlier than the
    /// one it sleeps for.
    fn arm_tm_timers(self: &Rc<Self>) {
        if self.pipeline.borrow_mut().tm_take_wake() {
            self.tm_wake.notify_one();
        }
    }

    /// The open connections of a stream transport.
    fn table(&self, proto: Proto) -> &Arc<ConnTable> {
        match proto {
            Proto::Tls => &self.tls_conns,
            Proto::Ws => &self.ws_conns,
            Proto::Wss => &self.wss_conns,
            _ => &self.conns,
        }
    }

    /// Register a connection (its read and write halves), start its writer and reader;
    /// returns its sender. `guards` live as long as the reader (a TLS connection's count, its
    /// place in the connection limits).
    fn start_connection<R, W>(
        self: &Rc<Self>,
        rd: R,
        wr: W,
        peer: SocketAddr,
        local: SocketAddr,
        proto: Proto,
        guards: ConnGuards,
    ) -> ConnSender
    where
        R: AsyncRead + Unpin + 'static,
        W: AsyncWrite + Unpin + 'static,
    {
        let (tx, rx) = mpsc::channel(SEND_QUEUE);
        let id = self.table(proto).insert(peer, tx.clone());
        tokio::task::spawn_local(tcp::write_loop(wr, rx, peer));
        let rcv = RecvInfo {
            proto,
            src: peer,
            dst: local,
        };
        tokio::task::spawn_local(read_loop(Rc::clone(self), rd, rcv, tx.clone(), id, guards));
        tx
    }

    /// Send `o` at once if it is a UDP datagram to an address; otherwise hand it back (for
    /// [`Worker::send`]).
    fn send_udp(&self, o: Outgoing) -> Option<Outgoing> {
        let (Proto::Udp, Dest::Addr(dst)) = (o.proto, o.dest) else {
            return Some(o);
        };
        let sock = self
            .udp
            .iter()
            .find(|(l, _)| *l == o.local)
            .or_else(|| self.udp.iter().find(|(l, _)| l.is_ipv6() == dst.is_ipv6()));
        match sock {
            Some((_, s)) => {
                if let Err(e) = s.send_to(&o.wire, dst) {
                    super::drop_log::unanswerable(dst, Proto::Udp, e);
                }
            }
            None => info!(%dst, "no udp socket to send from"),
        }
        None
    }

    /// Send one message.
    async fn send(self: &Rc<Self>, o: Outgoing, conn: Option<(&ConnSender, SocketAddr)>) {
        let Some(o) = self.send_udp(o) else {
            return;
        };
        match (o.proto, o.dest) {
            (Proto::Tcp | Proto::Tls | Proto::Ws | Proto::Wss, Dest::Connection) => match conn {
                Some((tx, peer)) => send_on(tx, peer, o.wire, o.flags.close),
                None => info!("no connection to answer on"),
            },
            (Proto::Tls, Dest::Addr(dst)) => match self.tls_conns.get(dst) {
                Some(tx) => send_on(&tx, dst, o.wire, o.flags.close),
                None if o.flags.no_connect => {
                    info!(%dst, "dropping tls send: no open connection and the script forbade a new one (no_connect)");
                }
                None => {
                    tokio::task::spawn_local(tls_io::connect_and_send(
                        Rc::clone(self),
                        dst,
                        o.wire,
                        o.flags.close,
                    ));
                }
            },
            // A WebSocket client is reached only over the connection it opened (RFC 7118 5):
            // sipd does not open WebSocket connections.
            (Proto::Ws | Proto::Wss, Dest::Addr(dst)) => match self.table(o.proto).get(dst) {
                Some(tx) => send_on(&tx, dst, o.wire, o.flags.close),
                None => {
                    super::drop_log::unanswerable(
                        dst,
                        o.proto,
                        "no open connection (sipd does not open WebSocket connections)",
                    );
                }
            },
            (Proto::Tcp, Dest::Addr(dst)) => match self.conns.get(dst) {
                Some(tx) => send_on(&tx, dst, o.wire, o.flags.close),
                None if o.flags.no_connect => {
                    info!(%dst, "dropping tcp send: no open connection and the script forbade a new one (no_connect)");
                }
                None => {
                    tokio::task::spawn_local(connect_and_send(
                        Rc::clone(self),
                        dst,
                        o.wire,
                        o.flags.close,
                    ));
                }
            },
            (proto, dest) => info!(?dest, "cannot send over {}", proto.as_str()),
        }
    }
}

/// Queue `wire` on the connection `tx` to `peer`, closing it afterwards when `close`.
fn send_on(tx: &ConnSender, peer: SocketAddr, wire: crate::transport::Wire, close: bool) {
    let queued = if close {
        tcp::queue_and_close(tx, peer, wire)
    } else {
        tcp::queue(tx, peer, wire)
    };
    if let Err(e) = queued {
        info!("tcp send failed: {e}");
    }
}

async fn connect_and_send(
    worker: Rc<Worker>,
    dst: SocketAddr,
    wire: crate::transport::Wire,
    close: bool,
) {
    match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(dst)).await {
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            let local = stream.local_addr().unwrap_or(dst);
            let (rd, wr) = stream.into_split();
            let guards = ConnGuards {
                tls: None,
                permit: Some(worker.limits.opened(Proto::Tcp)),
            };
            let tx = worker.start_connection(rd, wr, dst, local, Proto::Tcp, guards);
            send_on(&tx, dst, wire, close);
        }
        Ok(Err(e)) => info!(%dst, "tcp connect failed: {e}"),
        Err(_) => info!(%dst, "tcp connect timed out"),
    }
}

/// A request over a stream that is larger than `max_message_size` while its head was read:
/// answer `513 Message Too Large` (RFC 3261 21.5.14) from the head in `buffered`, then close.
/// Nothing is sent when no reply can be built (a response, or a head without the headers a
/// reply needs).
async fn answer_too_large(worker: &Rc<Worker>, buffered: &[u8], rcv: RecvInfo, tx: &ConnSender) {
    let mut wire = Vec::with_capacity(512);
    if !super::malformed::build_reply(buffered, 513, "Message Too Large", &mut wire) {
        return;
    }
    let close = kemi_runtime::msg::SendFlags {
        close: true,
        ..Default::default()
    };
    let reply = Outgoing {
        proto: rcv.proto,
        local: rcv.dst,
        dest: Dest::Connection,
        wire: wire.into(),
        flags: close,
    };
    worker.send(reply, Some((tx, rcv.src))).await;
}

/// Read one stream connection (TCP, or TLS after its handshake) as `rcv` describes it, frame
/// its messages and route them, until it closes, idles out or breaks framing.
async fn read_loop<R: AsyncRead + Unpin>(
    worker: Rc<Worker>,
    mut rd: R,
    rcv: RecvInfo,
    tx: ConnSender,
    id: u64,
    _guards: ConnGuards,
) {
    let mut framer = StreamFramer::new(worker.max);
    let mut out = Vec::with_capacity(4);
    let (peer, proto) = (rcv.src, rcv.proto.as_str());
    'conn: loop {
        let Some(buf) = framer.read_buf() else {
            info!(%peer, "closing {proto} connection: message larger than {} octets", worker.max);
            break;
        };
        let read = tokio::select! {
            r = tokio::time::timeout(worker.idle, rd.read_buf(buf)) => r,
            () = tx.closed() => {
                debug!(%peer, "{proto} connection closed by its writer");
                break;
            }
        };
        match read {
            Err(_) => {
                debug!(%peer, "closing idle {proto} connection");
                break;
            }
            Ok(Ok(0)) => break,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                debug!(%peer, "{proto} read failed: {e}");
                break;
            }
        }
        loop {
            match framer.next_frame() {
                Ok(Some(frame)) => {
                    worker.pipeline.borrow_mut().handle(frame, rcv, &mut out);
                    for o in out.drain(..) {
                        worker.send(o, Some((&tx, peer))).await;
                    }
                    worker.arm_tm_timers();
                }
                Ok(None) => break,
                Err(e) => {
                    if matches!(e, FrameError::TooLarge(_)) {
                        answer_too_large(&worker, framer.buffered(), rcv, &tx).await;
                    }
                    info!(%peer, "closing {proto} connection: {e}");
                    break 'conn;
                }
            }
        }
    }
    worker.table(rcv.proto).remove(peer, id);
    debug!(%peer, "{proto} connection closed");
}
