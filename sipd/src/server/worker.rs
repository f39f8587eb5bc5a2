//! One worker: an OS thread with its own script engine ([`Pipeline`]) and a current-thread
//! tokio runtime. It receives on its duplicates of the UDP listen sockets, accepts on its
//! duplicates of the TCP listeners, reads the connections it accepted or opened, and sends what
//! the pipeline produced. Nothing here is shared with other workers except the TCP
//! [`ConnTable`]; the engine is not `Send` and never leaves the thread.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kemi_runtime::msg::{Proto, RecvInfo, RouteEnv};
use tokio::io::AsyncReadExt;
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use super::locals::Locals;
use super::pipeline::{Dest, Ops, Outgoing, Pipeline};
use super::ServerError;
use crate::config::OnLimit;
use crate::metrics::WorkerStats;
use crate::reload::{ScriptVersions, ScriptWatch};
use crate::router::Router;
use crate::transport::stream::StreamFramer;
use crate::transport::tcp::{self, ConnSender, ConnTable, SEND_QUEUE};

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
    pub max_message_size: usize,
    pub tcp_idle: Duration,
    pub shutdown: watch::Receiver<bool>,
}

/// A running worker's state, shared by its tasks (all on its thread).
struct Worker {
    pipeline: RefCell<Pipeline>,
    udp: Vec<(SocketAddr, UdpSocket)>,
    conns: Arc<ConnTable>,
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
    pipeline.set_ops(Ops {
        stats: setup.stats,
        watch: Some(watch),
        on_limit: setup.on_limit,
    });
    pipeline.set_tm(setup.tm);
    local.block_on(
        &rt,
        serve(
            setup.udp,
            setup.tcp,
            pipeline,
            setup.conns,
            setup.max_message_size,
            setup.tcp_idle,
            setup.shutdown,
            ready,
        ),
    );
}

#[allow(clippy::too_many_arguments)]
async fn serve(
    udp: Vec<std::net::UdpSocket>,
    tcp: Vec<std::net::TcpListener>,
    pipeline: Pipeline,
    conns: Arc<ConnTable>,
    max: usize,
    idle: Duration,
    mut shutdown: watch::Receiver<bool>,
    ready: std::sync::mpsc::Sender<Result<(), ServerError>>,
) {
    let registered = (|| -> std::io::Result<_> {
        let udp = udp
            .into_iter()
            .map(|s| Ok((s.local_addr()?, UdpSocket::from_std(s)?)))
            .collect::<std::io::Result<Vec<_>>>()?;
        let tcp = tcp
            .into_iter()
            .map(TcpListener::from_std)
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok((udp, tcp))
    })();
    let (udp, tcp) = match registered {
        Ok(r) => r,
        Err(e) => {
            let _ = ready.send(Err(ServerError::Runtime(e)));
            return;
        }
    };
    let worker = Rc::new(Worker {
        pipeline: RefCell::new(pipeline),
        udp,
        conns,
        max,
        idle,
    });
    for i in 0..worker.udp.len() {
        tokio::task::spawn_local(udp_loop(Rc::clone(&worker), i));
    }
    for listener in tcp {
        tokio::task::spawn_local(accept_loop(Rc::clone(&worker), listener));
    }
    let _ = ready.send(Ok(()));
    let _ = shutdown.wait_for(|stop| *stop).await;
}

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
        let (n, src) = match sock.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                debug!(%local, "udp receive error: {e}");
                tokio::task::yield_now().await;
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
            worker.send(o, None).await;
        }
        worker.arm_tm_timers();
    }
}

async fn accept_loop(worker: Rc<Worker>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                debug!(%peer, "tcp connection accepted");
                worker.start_connection(stream, peer);
            }
            Err(e) => {
                warn!("tcp accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// One transaction timer: sleep, then let the pipeline carry it out on this worker (which has
/// an engine for failure callbacks) and send what it produced.
async fn tm_timer(worker: Rc<Worker>, timer: crate::tm::TimerReq) {
    tokio::time::sleep(timer.after).await;
    let mut out = Vec::new();
    worker.pipeline.borrow_mut().tm_timer(timer, &mut out);
    for o in out {
        worker.send(o, None).await;
    }
    worker.arm_tm_timers();
}

impl Worker {
    /// Start the transaction timers the pipeline armed, each a task on this worker's runtime.
    fn arm_tm_timers(self: &Rc<Self>) {
        let timers = self.pipeline.borrow_mut().take_tm_timers();
        for t in timers {
            tokio::task::spawn_local(tm_timer(Rc::clone(self), t));
        }
    }

    /// Register a connection, start its writer and reader; returns its sender.
    fn start_connection(self: &Rc<Self>, stream: TcpStream, peer: SocketAddr) -> ConnSender {
        let local = stream.local_addr().unwrap_or(peer);
        let (rd, wr) = stream.into_split();
        let (tx, rx) = mpsc::channel(SEND_QUEUE);
        let id = self.conns.insert(peer, tx.clone());
        tokio::task::spawn_local(tcp::write_loop(wr, rx, peer));
        tokio::task::spawn_local(read_loop(Rc::clone(self), rd, peer, local, tx.clone(), id));
        tx
    }

    /// Send one message.
    async fn send(self: &Rc<Self>, o: Outgoing, conn: Option<(&ConnSender, SocketAddr)>) {
        match (o.proto, o.dest) {
            (Proto::Udp, Dest::Addr(dst)) => {
                let sock = self
                    .udp
                    .iter()
                    .find(|(l, _)| *l == o.local)
                    .or_else(|| self.udp.iter().find(|(l, _)| l.is_ipv6() == dst.is_ipv6()));
                match sock {
                    Some((_, s)) => {
                        if let Err(e) = s.send_to(&o.wire, dst).await {
                            info!(%dst, "udp send failed: {e}");
                        }
                    }
                    None => info!(%dst, "no udp socket to send from"),
                }
            }
            (Proto::Tcp, Dest::Connection) => match conn {
                Some((tx, peer)) => send_on(tx, peer, o.wire, o.flags.close),
                None => info!("no connection to answer on"),
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
fn send_on(tx: &ConnSender, peer: SocketAddr, wire: Vec<u8>, close: bool) {
    let queued = if close {
        tcp::queue_and_close(tx, peer, wire)
    } else {
        tcp::queue(tx, peer, wire)
    };
    if let Err(e) = queued {
        info!("tcp send failed: {e}");
    }
}

async fn connect_and_send(worker: Rc<Worker>, dst: SocketAddr, wire: Vec<u8>, close: bool) {
    match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(dst)).await {
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            let tx = worker.start_connection(stream, dst);
            send_on(&tx, dst, wire, close);
        }
        Ok(Err(e)) => info!(%dst, "tcp connect failed: {e}"),
        Err(_) => info!(%dst, "tcp connect timed out"),
    }
}

async fn read_loop(
    worker: Rc<Worker>,
    mut rd: OwnedReadHalf,
    peer: SocketAddr,
    local: SocketAddr,
    tx: ConnSender,
    id: u64,
) {
    let mut framer = StreamFramer::new(worker.max);
    let mut out = Vec::with_capacity(4);
    let rcv = RecvInfo {
        proto: Proto::Tcp,
        src: peer,
        dst: local,
    };
    'conn: loop {
        let Some(buf) = framer.read_buf() else {
            info!(%peer, "closing tcp connection: message larger than {} octets", worker.max);
            break;
        };
        let read = tokio::select! {
            r = tokio::time::timeout(worker.idle, rd.read_buf(buf)) => r,
            () = tx.closed() => {
                debug!(%peer, "tcp connection closed by its writer");
                break;
            }
        };
        match read {
            Err(_) => {
                debug!(%peer, "closing idle tcp connection");
                break;
            }
            Ok(Ok(0)) => break,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                debug!(%peer, "tcp read failed: {e}");
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
                    info!(%peer, "closing tcp connection: {e}");
                    break 'conn;
                }
            }
        }
    }
    worker.conns.remove(peer, id);
    debug!(%peer, "tcp connection closed");
}
