//! [`Pipeline`]: what one worker does with one received message, without touching a socket.
//!
//! Bytes in, [`Outgoing`] messages out: parse (answering malformed requests when a reply can
//! be built), route through the script, then carry out the outbox: replies go back per
//! RFC 3261 18.2.2 / RFC 3581, forwards get Max-Forwards handled, the previous hop's Via
//! stamped, `ksr_onsend_route` run, our Via added, the script's edits applied. Replies
//! received are checked to be ours, run through `ksr_reply_route`, lose our Via and go back
//! along the next one. The transports ([`crate::transport`]) send what comes out.
//!
//! Stateful work (`KSR.tm`) goes to the transaction layer ([`crate::tm`]): the request is
//! looked up before its route runs, the route's tm requests are carried out after the outbox,
//! and replies naming one of our transaction branches go to their transaction.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use kemi_runtime::engine::limits::LimitKind;
use kemi_runtime::msg::{Action, Forward, Proto, RecvInfo, RouteEnv, SendFlags};
use kemi_runtime::sip::{Message, ParseError};
use kemi_runtime::SipMsg;
use tracing::{debug, info, warn};

use super::hop::{self, HopRefusal};
use super::locals::Locals;
use super::malformed;
use super::target::Target;
use super::via::{self, Branch, BRANCH_PREFIX};
use super::{drop_log, script_log};
use crate::config::OnLimit;
use crate::metrics::{Callback, WorkerStats};
use crate::reload::ScriptWatch;
use crate::router::{Routed, Router};
use crate::tm::{self, proxy::TmHost, TimerQueue, TmLayer};
use kemi_runtime::services::{EventQueue, PostedEvent, ScriptEvent};
use modules::siptrace::Tracer;

/// Where an [`Outgoing`] message goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dest {
    /// Back over the stream connection the message being handled arrived on.
    Connection,
    /// To this address (over an existing connection to it, for TCP, else a new one).
    Addr(SocketAddr),
}

/// A message ready to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// Transport.
    pub proto: Proto,
    /// The local socket to send from (for UDP; for TCP, the listener our Via names).
    pub local: SocketAddr,
    /// Destination.
    pub dest: Dest,
    /// The bytes (shared: a branch request is also kept by its transaction for
    /// retransmissions, without a copy).
    pub wire: crate::transport::Wire,
    /// Connection handling on stream transports (the script's `set_*_no_connect`/`_close`).
    pub flags: SendFlags,
}

/// The request event callbacks run on (Kamailio's faked message).
const EVENT_MESSAGE: &[u8] = b"OPTIONS sip:you@sipd.invalid SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKsipd.event\r\n\
From: <sip:you@sipd.invalid>;tag=event\r\n\
To: <sip:you@sipd.invalid>\r\n\
Call-ID: sipd-event\r\n\
CSeq: 1 OPTIONS\r\n\
Content-Length: 0\r\n\r\n";

/// One worker's message pipeline: its script engine and the host facts it needs.
pub struct Pipeline {
    router: Router,
    env: Arc<RouteEnv>,
    locals: Arc<Locals>,
    has_onsend: bool,
    via_line: String,
    ops: Ops,
    tm: Arc<TmLayer>,
    tm_timers: TimerQueue,
    /// `siptrace`, when set up: sees every message in and out.
    tracer: Option<Arc<Tracer>>,
    /// Script events modules raise while running (`dialog:start`), when a module does.
    events: Option<Arc<EventQueue>>,
    /// The dialog module, when set up: takes the replies to the BYEs it sent.
    dialog: Option<Arc<modules::dialog::DialogState>>,
}

/// What the live-operation layer adds to a pipeline: counters, reloads, the limit policy.
#[derive(Debug)]
pub struct Ops {
    /// This worker's counters.
    pub stats: Arc<WorkerStats>,
    /// The published script to follow, if reloads are possible.
    pub watch: Option<ScriptWatch>,
    /// What to do with a request whose script run hit a limit.
    pub on_limit: OnLimit,
}

impl Default for Ops {
    fn default() -> Self {
        Ops {
            stats: Arc::new(WorkerStats::new(0)),
            watch: None,
            on_limit: OnLimit::default(),
        }
    }
}

impl Pipeline {
    /// A pipeline routing through `router`.
    pub fn new(mut router: Router, env: Arc<RouteEnv>, locals: Arc<Locals>) -> Pipeline {
        let has_onsend = router
            .engine_mut()
            .has_callback(kemi_runtime::engine::ONSEND_ROUTE);
        let tracer = env.services.get_arc::<Tracer>();
        Pipeline {
            tracer,
            events: env.services.get_arc::<EventQueue>(),
            dialog: env.services.get_arc::<modules::dialog::DialogState>(),
            router,
            env,
            locals,
            has_onsend,
            via_line: String::with_capacity(128),
            ops: Ops::default(),
            tm: Arc::new(TmLayer::default()),
            tm_timers: TimerQueue::new(0),
        }
    }

    /// Run every event the modules asked to run once at startup, in their order.
    pub fn run_startup_events(&mut self) {
        let env = Arc::clone(&self.env);
        for event in env.services.startup_events() {
            self.run_event(event, None);
        }
    }

    /// Whether module events wait to run (one atomic load; false when no module raises any).
    #[inline]
    pub fn events_pending(&self) -> bool {
        self.events.as_ref().is_some_and(|q| q.is_pending())
    }

    /// Run the events modules raised (`dialog:start|end|failed`), each with its context.
    pub fn run_posted_events(&mut self) {
        let Some(q) = self.events.clone() else {
            return;
        };
        for PostedEvent { event, dialog } in q.take() {
            self.run_event(&event, dialog);
        }
    }

    /// Run a module's script event (`htable:mod-init` through `ksr_htable_event`...) on a
    /// stand-in request, as Kamailio runs its event routes on a faked message: what the
    /// callback does to that request (replies, forwards) goes nowhere. A script error is
    /// logged like any other; a callback the script does not define is logged once.
    /// `dialog` is the dialog the stand-in request belongs to (for `$dlg(...)`).
    pub fn run_event(&mut self, event: &ScriptEvent, dialog: Option<kemi_runtime::msg::Watcher>) {
        if !self.router.engine_mut().has_callback(&event.callback) {
            warn!(
                callback = %event.callback,
                event = %event.name,
                "event_callback names no function of the script: the event is not run"
            );
            return;
        }
        let message = match Message::parse(Bytes::from_static(EVENT_MESSAGE)) {
            Ok(m) => m,
            Err(e) => {
                warn!("the event stand-in request does not parse: {e}");
                return;
            }
        };
        let mut msg = SipMsg::new(message, RecvInfo::default(), Arc::clone(&self.env));
        msg.route.dialog = dialog;
        let routed = self
            .router
            .run(&event.callback, &mut msg, Some(&event.name));
        if let Routed::Failed(e) = &routed {
            script_log::script_failed(&event.callback, "", None, e);
        }
        if !msg.outbox.is_empty() {
            debug!(
                event = %event.name,
                "event callback asked to send {} message(s): an event has no message to answer or forward",
                msg.outbox.len()
            );
        }
    }

    /// Share `tm` (the server's transaction layer) instead of this pipeline's own, as its
    /// worker number `worker` (which names this pipeline's timer queue).
    pub fn set_tm(&mut self, tm: Arc<TmLayer>, worker: usize) {
        self.tm = tm;
        self.tm_timers = TimerQueue::new(worker);
    }

    /// After a message: whether the worker's timer driver must wake up (a timer earlier than
    /// the one it sleeps for was armed). Applies the timer cancellations other workers posted.
    pub fn tm_take_wake(&mut self) -> bool {
        self.tm_timers.drain(self.tm.inbox(self.tm_timers.worker()));
        self.tm_timers.take_wake()
    }

    /// The timer driver goes to sleep: until when (`None`: until woken).
    pub fn tm_sleep(&mut self) -> Option<std::time::Instant> {
        self.tm_timers.drain(self.tm.inbox(self.tm_timers.worker()));
        self.tm_timers.sleep()
    }

    /// Carry out at most `max` transaction timers that are due, appending what is to be sent
    /// to `out`; true when more may be due.
    pub fn tm_expire(&mut self, out: &mut Vec<Outgoing>, max: usize) -> bool {
        self.tm_timers.awake();
        self.tm_timers.drain(self.tm.inbox(self.tm_timers.worker()));
        let first_out = out.len();
        let mut more = true;
        for _ in 0..max {
            let Some((handle, req)) = self.tm_timers.pop_due() else {
                more = false;
                break;
            };
            self.tm_host(out).on_timer(handle, req);
        }
        self.trace_sent(out.get(first_out..).unwrap_or_default(), None);
        if self.events_pending() {
            self.run_posted_events();
        }
        more
    }

    /// Take the transaction timers armed on this worker out of its queue, unrun (for callers
    /// that run no timer driver: offline tools, tests).
    pub fn take_tm_timers(&mut self) -> tm::timers::Taken {
        self.tm_timers.take_all()
    }

    /// Transaction timers armed on this worker.
    pub fn tm_timers_armed(&self) -> usize {
        self.tm_timers.len()
    }

    /// The transaction layer's view of this worker for one event.
    fn tm_host<'a>(&'a mut self, out: &'a mut Vec<Outgoing>) -> TmHost<'a> {
        self.tm_timers.begin_event();
        TmHost {
            tm: &self.tm,
            router: &mut self.router,
            env: &self.env,
            locals: &self.locals,
            has_onsend: self.has_onsend,
            out,
            timers: &mut self.tm_timers,
        }
    }

    /// Count into `ops.stats`, follow `ops.watch` and apply `ops.on_limit`.
    pub fn set_ops(&mut self, ops: Ops) {
        self.ops = ops;
    }

    /// Switch to a newly published script, if any: between two messages, so no message is
    /// routed partly by the old script and partly by the new one.
    #[inline]
    fn follow_reload(&mut self) {
        let Some(watch) = self.ops.watch.as_mut() else {
            return;
        };
        let Some(src) = watch.changed() else {
            return;
        };
        match watch.build(&src) {
            Ok(engine) => {
                self.router.replace_engine(engine);
                self.has_onsend = self
                    .router
                    .engine_mut()
                    .has_callback(kemi_runtime::engine::ONSEND_ROUTE);
                self.ops.stats.set_generation(src.generation);
                info!(
                    worker = self.ops.stats.index,
                    generation = src.generation,
                    "switched to the reloaded script {}",
                    src.path.display()
                );
            }
            Err(e) => {
                self.ops.stats.reload_failed();
                warn!(
                    worker = self.ops.stats.index,
                    generation = src.generation,
                    "keeping the old script, the reloaded one failed here: {e}"
                );
            }
        }
    }

    /// Handle one received message (a datagram, or one stream frame), appending what is to be
    /// sent to `out`. Returns whether it parsed as a SIP message (a WebSocket connection that
    /// sends something else is closed).
    pub fn handle(&mut self, bytes: Bytes, rcv: RecvInfo, out: &mut Vec<Outgoing>) -> bool {
        self.follow_reload();
        let first_out = out.len();
        if let Some(t) = &self.tracer {
            t.on_wire(rcv.proto, rcv.src, rcv.dst, &bytes);
        }
        let parsed = match Message::parse_or_return(bytes) {
            Ok(m) if m.is_request() => {
                self.request(m, rcv, out);
                true
            }
            Ok(m) => {
                self.response(m, rcv, out);
                true
            }
            Err((e, bytes)) => {
                malformed_input(&bytes, e, rcv, out);
                false
            }
        };
        self.trace_sent(out.get(first_out..).unwrap_or_default(), Some(rcv.src));
        if self.events_pending() {
            self.run_posted_events();
        }
        parsed
    }

    /// Show `sent` (what one step produced) to `siptrace`; `peer` is where a reply on the
    /// connection the step came from goes.
    fn trace_sent(&self, sent: &[Outgoing], peer: Option<SocketAddr>) {
        let Some(t) = &self.tracer else {
            return;
        };
        for o in sent.iter().filter(|o| !o.wire.is_empty()) {
            let dst = match (o.dest, peer) {
                (Dest::Addr(a), _) => a,
                (Dest::Connection, Some(p)) => p,
                (Dest::Connection, None) => continue,
            };
            t.on_wire(o.proto, o.local, dst, &o.wire);
        }
    }

    fn request(&mut self, message: Message, rcv: RecvInfo, out: &mut Vec<Outgoing>) {
        if let Err(e) = message.check_required() {
            drop_log::input(rcv.src, rcv.proto, format_args!("dropping request: {e}"));
            return;
        }
        if !message.top_via_ok() {
            drop_log::input(
                rcv.src,
                rcv.proto,
                "dropping request: top Via does not parse",
            );
            return;
        }
        self.ops
            .stats
            .request_in(message.method_str().unwrap_or(""));
        let (lookup, found) = self.tm.lookup(&message);
        let mut msg = SipMsg::new(message, rcv, Arc::clone(&self.env));
        msg.tm.lookup = lookup;
        let started = Instant::now();
        let routed = self.router.route(&mut msg);
        self.ops
            .stats
            .route_latency(Callback::Request, started.elapsed());
        let outbox = std::mem::take(&mut msg.outbox);
        if let Routed::Failed(e) = &routed {
            let limit = LimitKind::of(e);
            self.ops.stats.script_error(Callback::Request, limit);
            script_log::script_failed(
                "ksr_request_route",
                msg.message.call_id().unwrap_or(""),
                Some(rcv.src),
                e,
            );
            if limit.is_some() && self.ops.on_limit == OnLimit::Drop {
                return;
            }
            if outbox.is_empty() {
                self.local_reply(&msg, 500, "Server Internal Error", out);
                return;
            }
        }
        for (index, action) in outbox.into_iter().enumerate() {
            match action {
                Action::Reply(r) => {
                    self.ops
                        .stats
                        .reply_local(msg.message.method_str().unwrap_or(""), r.code);
                    push_reply(&msg, r.wire, out)
                }
                Action::Forward(f) => self.forward(&mut msg, &f, index, out),
            }
        }
        if msg.tm.absorb || msg.tm.relay.is_some() || msg.tm.new_tran || !msg.tm.replies.is_empty()
        {
            self.tm_host(out).after_request(&mut msg, found);
        }
        if msg.route.close_connection && rcv.proto != Proto::Udp {
            // `websocket.close`: after what the message produced, the connection closes (an
            // empty buffer is the writer's close request).
            out.push(Outgoing {
                proto: rcv.proto,
                local: rcv.dst,
                dest: Dest::Connection,
                wire: Vec::new().into(),
                flags: SendFlags {
                    close: true,
                    ..SendFlags::default()
                },
            });
        }
    }

    /// A reply built here (483, 500): never to an ACK.
    fn local_reply(&self, msg: &SipMsg, code: u16, reason: &str, out: &mut Vec<Outgoing>) {
        if msg.message.method_str() == Some("ACK") {
            return;
        }
        self.ops
            .stats
            .reply_local(msg.message.method_str().unwrap_or(""), code);
        push_reply(msg, msg.local_reply_wire(code, reason), out);
    }

    fn forward(&mut self, msg: &mut SipMsg, f: &Forward, index: usize, out: &mut Vec<Outgoing>) {
        let target_uri = f.dst.as_deref().unwrap_or(&f.ruri);
        let locals = &self.locals;
        let services = &msg.env.services;
        let resolved = Target::resolve_uri_in(target_uri, locals, services);
        let (proto, addr) = match resolved {
            Ok(r) => r,
            Err(e) => {
                warn!(
                    call_id = msg.message.call_id().unwrap_or(""),
                    "forward failed: {e}"
                );
                return;
            }
        };
        let Some(local) = locals.pick(proto, &addr, Some(msg.rcv.dst)) else {
            return;
        };
        let (local_addr, sent_by) = (local.addr, local.sent_by.clone());

        let base = msg.route.edits.len();
        match hop::add_hop_edits(msg, proto) {
            Ok(()) => {}
            Err(HopRefusal::TooManyHops) => {
                return self.local_reply(msg, 483, "Too Many Hops", out)
            }
            Err(HopRefusal::BadMaxForwards) => {
                return self.local_reply(msg, 400, "Bad Max-Forwards", out)
            }
        }

        if self.has_onsend {
            let dropped_before = std::mem::replace(&mut msg.route.drop, false);
            if let Routed::Failed(e) = self.router.onsend(msg) {
                self.ops
                    .stats
                    .script_error(Callback::Onsend, LimitKind::of(&e));
                script_log::script_failed(
                    "ksr_onsend_route",
                    msg.message.call_id().unwrap_or(""),
                    None,
                    &e,
                );
            }
            let dropped = std::mem::replace(&mut msg.route.drop, dropped_before);
            msg.outbox.clear();
            if dropped {
                debug!(
                    call_id = msg.message.call_id().unwrap_or(""),
                    "send dropped by ksr_onsend_route"
                );
                msg.route.edits.truncate(base);
                return;
            }
        }

        let branch = Branch::for_request(&msg.message, index);
        self.via_line.clear();
        via::write_line(&mut self.via_line, proto.via_name(), &sent_by, &branch);
        let new_ruri = (msg.message.ruri() != Some(f.ruri.as_str())).then_some(f.ruri.as_str());
        let mut wire = Vec::with_capacity(msg.message.as_bytes().len() + 256);
        msg.message
            .write_request(&mut wire, new_ruri, &msg.route.edits, Some(&self.via_line));
        msg.route.edits.truncate(base);
        self.ops
            .stats
            .request_out(msg.message.method_str().unwrap_or(""));
        out.push(Outgoing {
            proto,
            local: local_addr,
            dest: Dest::Addr(addr),
            wire: wire.into(),
            flags: msg.route.forward_send,
        });
    }

    fn response(&mut self, message: Message, rcv: RecvInfo, out: &mut Vec<Outgoing>) {
        let status = message.status().unwrap_or(0);
        self.ops.stats.reply_in(cseq_method(&message), status);
        if let Some(d) = &self.dialog {
            if let Some(b) = message
                .top_via_branch()
                .filter(|b| b.starts_with(modules::dialog::BRANCH_PREFIX))
            {
                // A reply to a BYE the dialog module sent (timeout, dlg_bye): its own.
                d.bye_reply(b, status);
                return;
            }
        }
        let txn_branch = message.top_via_branch().and_then(tm::key::parse_branch);
        let message = match txn_branch {
            Some((id, index)) => match self.tm_host(out).on_reply(id, index, message, rcv) {
                tm::proxy::ReplyHandling::Done => return,
                tm::proxy::ReplyHandling::Stateless(m) => m,
            },
            None => message,
        };
        let next = {
            let mut vias = message.vias();
            let ours = match vias.next() {
                Some(Ok(top)) => {
                    message
                        .top_via_branch()
                        .is_some_and(|b| b.starts_with(BRANCH_PREFIX))
                        && self.locals.is_sent_by_us(top.host_unbracketed(), top.port)
                }
                _ => false,
            };
            if !ours {
                drop_log::input(rcv.src, rcv.proto, "dropping reply: top Via is not ours");
                return;
            }
            match vias.next() {
                Some(Ok(v)) => Target::from_via(&v),
                Some(Err(e)) => {
                    drop_log::input(rcv.src, rcv.proto, format_args!("dropping reply: {e}"));
                    return;
                }
                None => {
                    drop_log::input(rcv.src, rcv.proto, "dropping reply: no Via below ours");
                    return;
                }
            }
        };
        let mut msg = SipMsg::new(message, rcv, Arc::clone(&self.env));
        let started = Instant::now();
        let routed = self.router.route(&mut msg);
        self.ops
            .stats
            .route_latency(Callback::Reply, started.elapsed());
        if let Routed::Failed(e) = routed {
            self.ops
                .stats
                .script_error(Callback::Reply, LimitKind::of(&e));
            script_log::script_failed(
                "ksr_reply_route (reply dropped)",
                msg.message.call_id().unwrap_or(""),
                Some(rcv.src),
                &e,
            );
            return;
        }
        if msg.route.drop {
            debug!(
                call_id = msg.message.call_id().unwrap_or(""),
                "reply dropped by ksr_reply_route"
            );
            return;
        }
        let locals = &self.locals;
        let services = &msg.env.services;
        let resolved = next.and_then(|t| t.resolve_in(locals, services));
        let (proto, addr) = match resolved {
            Ok(r) => r,
            Err(e) => {
                info!(
                    call_id = msg.message.call_id().unwrap_or(""),
                    "dropping reply: {e}"
                );
                return;
            }
        };
        let Some(local) = locals.pick(proto, &addr, Some(rcv.dst)) else {
            return;
        };
        let mut wire = Vec::with_capacity(msg.message.as_bytes().len());
        msg.message
            .write_response(&mut wire, &msg.route.edits, true);
        self.ops
            .stats
            .reply_relayed(cseq_method(&msg.message), status);
        out.push(Outgoing {
            proto,
            local: local.addr,
            dest: Dest::Addr(addr),
            wire: wire.into(),
            flags: msg.route.forward_send,
        });
    }
}

/// The CSeq method of a reply, for counters (`""` when it does not parse).
fn cseq_method(m: &Message) -> &str {
    m.cseq()
        .and_then(Result::ok)
        .map_or("", |c| c.method.as_str())
}

/// Queue a reply to the request in `msg`: over its connection for streams; for UDP to the
/// source address when the top Via asks for `rport` or the script called `force_rport()`,
/// else to the source IP at the sent-by port (RFC 3261 18.2.2, RFC 3581 4).
fn push_reply(msg: &SipMsg, wire: Vec<u8>, out: &mut Vec<Outgoing>) {
    let rcv = &msg.rcv;
    let dest = match rcv.proto {
        Proto::Udp => Dest::Addr(via::udp_reply_addr(
            &msg.message,
            rcv.src,
            msg.route.force_rport,
        )),
        _ => Dest::Connection,
    };
    out.push(Outgoing {
        proto: rcv.proto,
        local: rcv.dst,
        dest,
        wire: wire.into(),
        flags: msg.route.reply_send,
    });
}

/// A message that did not parse: answer it when it is a request and a reply can be built,
/// else drop it; one log line either way.
fn malformed_input(raw: &Bytes, e: ParseError, rcv: RecvInfo, out: &mut Vec<Outgoing>) {
    let reason = match e.status() {
        Some(400) => "Bad Request",
        Some(505) => "Version Not Supported",
        Some(513) => "Message Too Large",
        _ => {
            drop_log::input(
                rcv.src,
                rcv.proto,
                format_args!("dropping unparsable message: {e}"),
            );
            return;
        }
    };
    let code = e.status().unwrap_or(400);
    let mut wire = Vec::with_capacity(512);
    if malformed::build_reply(raw, code, reason, &mut wire) {
        drop_log::input(
            rcv.src,
            rcv.proto,
            format_args!("answering {code} to a malformed request: {e}"),
        );
        let dest = if rcv.proto == Proto::Udp {
            Dest::Addr(rcv.src)
        } else {
            Dest::Connection
        };
        out.push(Outgoing {
            proto: rcv.proto,
            local: rcv.dst,
            dest,
            wire: wire.into(),
            flags: SendFlags::default(),
        });
    } else {
        drop_log::input(
            rcv.src,
            rcv.proto,
            format_args!("dropping malformed message: {e}"),
        );
    }
}
