//! [`SipMsg`]: the per-message routing context that every export receives (Kamailio's
//! `sip_msg_t`): the received message, what the script changed (R-URI, destination, flags, header
//! edits), and what it asked the host to do (replies, forwards).
//!
//! Exports never touch the network. They record [`Action`]s in [`SipMsg::outbox`]; the host (the
//! `sipd` server, or `sipd route-test`) carries them out once the callback returns. That keeps every
//! export testable without sockets and keeps engines free of I/O.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use crate::sip::{HeaderEdit, Message};

/// Transport protocol a message arrived on or leaves by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Proto {
    /// UDP.
    #[default]
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
    /// SCTP.
    Sctp,
    /// WebSocket.
    Ws,
    /// Secure WebSocket.
    Wss,
}

impl Proto {
    /// Lower-case name as in `$pr` and `sipd route-test --src`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Proto::Udp => "udp",
            Proto::Tcp => "tcp",
            Proto::Tls => "tls",
            Proto::Sctp => "sctp",
            Proto::Ws => "ws",
            Proto::Wss => "wss",
        }
    }

    /// Parse a protocol name, ignoring case.
    pub fn parse(s: &str) -> Option<Proto> {
        [
            Proto::Udp,
            Proto::Tcp,
            Proto::Tls,
            Proto::Sctp,
            Proto::Ws,
            Proto::Wss,
        ]
        .into_iter()
        .find(|p| p.as_str().eq_ignore_ascii_case(s))
    }

    /// Kamailio's protocol number (`PROTO_UDP` = 1 ... `PROTO_WSS` = 6), as in `$proto` ids
    /// and nathelper's `alias=ip~port~proto`.
    pub const fn number(self) -> u8 {
        match self {
            Proto::Udp => 1,
            Proto::Tcp => 2,
            Proto::Tls => 3,
            Proto::Sctp => 4,
            Proto::Ws => 5,
            Proto::Wss => 6,
        }
    }

    /// Upper-case name as written in a Via header (`SIP/2.0/UDP`).
    pub const fn via_name(self) -> &'static str {
        match self {
            Proto::Udp => "UDP",
            Proto::Tcp => "TCP",
            Proto::Tls => "TLS",
            Proto::Sctp => "SCTP",
            Proto::Ws => "WS",
            Proto::Wss => "WSS",
        }
    }
}

/// Where a message came from and which local socket received it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecvInfo {
    /// Transport.
    pub proto: Proto,
    /// The peer's address (`$si`, `$sp`).
    pub src: SocketAddr,
    /// The local socket that received it (`$Ri`, `$Rp`).
    pub dst: SocketAddr,
}

impl Default for RecvInfo {
    fn default() -> Self {
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        RecvInfo {
            proto: Proto::Udp,
            src: SocketAddr::new(lo, 5060),
            dst: SocketAddr::new(lo, 5060),
        }
    }
}

/// Host facts that exports need and cannot derive from the message: who "myself" is.
#[derive(Clone, Debug, Default)]
pub struct RouteEnv {
    /// Local listen sockets.
    pub listen: Vec<(Proto, SocketAddr)>,
    /// Extra host names and addresses that count as this proxy (`alias` in Kamailio).
    pub aliases: Vec<String>,
    /// Value of the `Server` header in locally generated replies (none when `None`).
    pub server_header: Option<String>,
    /// State the stateful modules share across workers (usrloc, htable, auth...).
    pub services: crate::services::Services,
}

/// A reply the script asked for (`sl.send_reply` and friends), ready to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// Status code.
    pub code: u16,
    /// Reason phrase.
    pub reason: String,
    /// The whole reply as it goes on the wire.
    pub wire: Vec<u8>,
}

/// A stateless forward the script asked for (`KSR.forward`, `KSR.forward_uri`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Forward {
    /// The Request-URI the forwarded request carries.
    pub ruri: String,
    /// Where it goes, when that differs from the R-URI (`$du`, or `forward_uri`'s argument).
    pub dst: Option<String>,
}

/// Something the host must do once the callback returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send a locally generated reply back to the source.
    Reply(Reply),
    /// Forward the (edited) request statelessly.
    Forward(Forward),
}

/// Severity of a script log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// `dbg`.
    Debug,
    /// `info`.
    Info,
    /// `notice`.
    Notice,
    /// `warn`.
    Warn,
    /// `err`.
    Err,
    /// `crit`.
    Crit,
}

impl LogLevel {
    /// Kamailio's level name (`dbg`, `info`, `notice`, `warn`, `err`, `crit`).
    pub const fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "dbg",
            LogLevel::Info => "info",
            LogLevel::Notice => "notice",
            LogLevel::Warn => "warn",
            LogLevel::Err => "err",
            LogLevel::Crit => "crit",
        }
    }

    /// Parse a level name; anything unknown is `err`, as `KSR.log` does.
    pub fn parse_or_err(s: &str) -> LogLevel {
        match s {
            "dbg" => LogLevel::Debug,
            "info" => LogLevel::Info,
            "notice" => LogLevel::Notice,
            "warn" => LogLevel::Warn,
            "crit" => LogLevel::Crit,
            _ => LogLevel::Err,
        }
    }
}

/// One line a script logged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecord {
    /// Severity.
    pub level: LogLevel,
    /// Text as given.
    pub text: String,
}

/// A per-worker variable value (`$var(name)`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VarValue {
    /// An integer.
    Int(i64),
    /// A string.
    Str(String),
}

/// Worker-local `$var(...)` storage. Kamailio keeps `$var` per process, across messages; the
/// runner moves the worker's store into the context for a message and back afterwards.
pub type VarStore = std::collections::HashMap<String, VarValue>;

/// What the script changed on the message so far. Header edits are recorded, not applied:
/// reads in the same route see the message as received (Kamailio's lumps).
#[derive(Clone, Debug, Default)]
pub struct RouteState {
    /// The rewritten Request-URI (`$ru` writes, `seturi`, ...), if any.
    pub new_ruri: Option<String>,
    /// The destination URI (`$du`), if set.
    pub dst_uri: Option<String>,
    /// Message flags (`setflag`), bits 0..63.
    pub flags: u64,
    /// Branch flags of branch 0 (`setbflag`).
    pub bflags: u64,
    /// Script flags (`setsflag`): reset to 0 for every callback.
    pub sflags: u64,
    /// `force_rport()` was called.
    pub force_rport: bool,
    /// How replies to this request are sent (`set_reply_no_connect`, `set_reply_close`).
    pub reply_send: SendFlags,
    /// How this message is forwarded (`set_forward_no_connect`, `set_forward_close`).
    pub forward_send: SendFlags,
    /// The message is to be dropped (`set_drop`, `KSR.x.drop`).
    pub drop: bool,
    /// The stream connection the message came on is to be closed once what the message
    /// produced is sent (`websocket.close*`).
    pub close_connection: bool,
    /// Index of the credentials header (Authorization or Proxy-Authorization) that passed
    /// digest authentication in this message, which `auth.consume_credentials` removes
    /// (Kamailio marks it `authorized`).
    pub auth_cred: Option<usize>,
    /// An authentication of this message found an expired nonce with a right digest: the next
    /// challenge says `stale=true` (RFC 7616 3.3).
    pub auth_stale: bool,
    /// Header edits, in the order the script made them.
    pub edits: Vec<HeaderEdit>,
    /// Header lines to add to locally generated replies (`hdr.append_to_reply`).
    pub reply_headers: Vec<String>,
    /// `rr.record_route*` was called: the host adds the Record-Route header(s) at send time,
    /// when it knows the outgoing socket.
    pub record_route: Option<RecordRoute>,
    /// `$avp(name)` values of this message, oldest first: a set pushes, a read takes the
    /// newest of that name (Kamailio's AVP stack).
    pub avps: Vec<Avp>,
    /// `$xavp(root)` items of this message, oldest first: index 0 in a PV name is the newest
    /// item of that root name (Kamailio prepends).
    pub xavps: Vec<Xavp>,
    /// The message time in Unix seconds, taken at the first `$Ts`/`$Tf` read and kept for
    /// the rest of the message (Kamailio's `msg->tval`).
    pub msg_time: std::sync::OnceLock<i64>,
    /// The media relay sets chosen for this message (`set_rtpengine_set`,
    /// `set_rtpproxy_set`): the set of the next relay command, then the set of the one after
    /// it (Kamailio's second set of `set_rtpengine_set2`); `None` for the default set.
    pub media_set: [Option<u32>; 2],
    /// The dialog this message belongs to (`dialog.dlg_manage`, a matched in-dialog request,
    /// a tm callback of a tracked INVITE, a dialog event), for `$dlg(...)` and the dialog
    /// exports; `None` unless the dialog module found or created one.
    pub dialog: Option<Watcher>,
}

/// Connection handling for one send over a stream transport (Kamailio's `SND_F_*` flags).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SendFlags {
    /// Send only over an open connection; never open a new one (`SND_F_FORCE_CON_REUSE`).
    pub no_connect: bool,
    /// Close the connection once the message is written (`SND_F_CON_CLOSE`).
    pub close: bool,
}

/// One `$avp(name)` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Avp {
    /// The AVP name (case-sensitive).
    pub name: String,
    /// Its value.
    pub value: VarValue,
}

/// One `$xavp(root)` item: a named value that is either plain or a list of fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Xavp {
    /// The root name (case-sensitive).
    pub name: String,
    /// Its value.
    pub value: XavpValue,
}

/// The value of an [`Xavp`] item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum XavpValue {
    /// A plain value (`$xavp(root) = v`).
    Value(VarValue),
    /// Fields (`$xavp(root=>field) = v`), oldest first; several may share a name, the newest
    /// is read.
    Fields(Vec<(String, VarValue)>),
}

/// A Record-Route the script asked for (`KSR.rr.record_route*`); written by the host, which
/// knows the socket the request leaves by (two headers when it differs from the receiving one).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordRoute {
    /// URI parameters to append (`;a=b;c`), from `record_route_params`/`add_rr_param`.
    pub params: String,
    /// A preset URI (`record_route_preset`): written as given instead of our socket; with the
    /// second one, two headers.
    pub preset: Option<(String, Option<String>)>,
    /// Host (and port) to advertise instead of the socket address
    /// (`record_route_advertised_address`).
    pub advertised: Option<String>,
}

/// Which kind of callback a message is being routed in (`tmx.t_is_*_route`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TmRoute {
    /// `ksr_request_route` (or the core reply/onsend routes).
    #[default]
    Request,
    /// A branch callback (`t_on_branch`): the message is one outgoing branch.
    Branch,
    /// An onreply callback (`t_on_reply`): the message is the reply.
    Reply,
    /// A failure callback (`t_on_failure`): the message is the request, the reply is in
    /// [`TmCtx::reply`].
    Failure,
    /// A branch-failure callback (`t_on_branch_failure`).
    BranchFailure,
}

/// What the transaction layer knew about a request before its route ran.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TxnMatch {
    /// No transaction (or the message is not a request the layer matches).
    #[default]
    None,
    /// A retransmission of a request whose server transaction exists.
    Retransmission,
    /// A CANCEL whose INVITE transaction exists.
    CancelOfInvite,
    /// A CANCEL with no INVITE transaction to cancel.
    CancelUnmatched,
    /// An ACK to a non-2xx final reply of an existing INVITE transaction (hop by hop).
    AckToNegative,
}

/// One extra target of the transaction (`corex.append_branch*`): parallel forking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BranchTarget {
    /// The Request-URI of the branch.
    pub uri: String,
    /// Where it goes, when that differs from `uri` (`$du` when the branch was appended).
    pub dst: Option<String>,
}

/// A module's observer of one INVITE transaction (the dialog module's dialog): told whether
/// the request started a transaction and of every reply the transaction sends upstream, so
/// the module follows the call without the transaction layer knowing what it tracks.
pub trait TxnWatch: std::any::Any + Send + Sync {
    /// The request started a transaction (tm took it): the observer is now live.
    fn bound(&self);
    /// A reply the transaction sends upstream: the relayed reply and where it came from, or
    /// `None` for one generated here (408 on timeout, 487 after a CANCEL, 500...).
    fn reply_out(&self, code: u16, reply: Option<(&Message, &RecvInfo)>);
}

/// A shared [`TxnWatch`] carried by a message context and its transaction.
#[derive(Clone)]
pub struct Watcher(pub Arc<dyn TxnWatch>);

impl Watcher {
    /// The observer as its concrete type `T`, if it is one.
    pub fn downcast<T: TxnWatch>(&self) -> Option<Arc<T>> {
        let any: Arc<dyn std::any::Any + Send + Sync> = self.0.clone();
        any.downcast::<T>().ok()
    }
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Watcher")
    }
}

/// The tm side of one callback run: what the transaction layer told the script (the route
/// kind, the lookup result, branch and reply facts) and what the script asked of it (relay,
/// stateful replies, callback names, timers). The host fills the first part before the run and
/// carries out the second after it; the `tm`, `tmx` and `corex` branch exports only read and
/// write these fields.
#[derive(Clone, Debug, Default)]
pub struct TmCtx {
    /// The callback kind.
    pub route: TmRoute,
    /// The lookup done before the route ran.
    pub lookup: TxnMatch,
    /// The script called `t_check_trans`/`t_newtran`/`t_relay` on a retransmission or an ACK
    /// to a negative reply: the host absorbs it (retransmits the last reply).
    pub absorb: bool,
    /// A transaction exists for this message (created, looked up, or the one a tm callback runs
    /// for).
    pub exists: bool,
    /// `t_newtran` asked for a transaction without relaying.
    pub new_tran: bool,
    /// `t_relay*` asked for a stateful relay to this target (the R-URI in effect and `$du`,
    /// or a forced destination).
    pub relay: Option<Forward>,
    /// Extra branches (`corex.append_branch*`), relayed in parallel with the first.
    pub branches: Vec<BranchTarget>,
    /// Stateful replies asked for (`t_reply`, `t_send_reply`), sent through the transaction.
    pub replies: Vec<Reply>,
    /// `t_on_branch` callback name (empty resets).
    pub on_branch: Option<String>,
    /// `t_on_reply` callback name.
    pub on_reply: Option<String>,
    /// `t_on_failure` callback name.
    pub on_failure: Option<String>,
    /// `t_on_branch_failure` callback name.
    pub on_branch_failure: Option<String>,
    /// Final-response timeouts in ms set by `t_set_fr` / `t_set_fr_inv` (INVITE, non-INVITE);
    /// 0 keeps the default.
    pub fr_ms: Option<(u32, u32)>,
    /// `t_reset_fr` was called: back to the configured timeouts.
    pub fr_reset: bool,
    /// The index of the branch a branch/onreply/branch-failure callback runs for
    /// (`$T_branch_idx`).
    pub branch_index: Option<u32>,
    /// In a failure/onreply callback: the reply (the winning one in failure routes).
    pub reply: Option<Message>,
    /// The status code of that reply, or 408 for a timeout (`$T_reply_code`).
    pub reply_code: Option<u16>,
    /// The transaction was canceled (`t_is_canceled`).
    pub canceled: bool,
    /// The failed branch timed out / got a reply (`t_branch_timeout`, `t_branch_replied`).
    pub branch_timeout: bool,
    /// See [`Self::branch_timeout`].
    pub branch_replied: bool,
    /// Some branch timed out / got a reply (`t_any_timeout`, `t_any_replied`).
    pub any_timeout: bool,
    /// See [`Self::any_timeout`].
    pub any_replied: bool,
    /// The status the transaction replied upstream so far (`t_get_status_code`), 0 for none.
    pub status: u16,
    /// `t_drop_replies` in a failure callback: the replies collected so far are discarded.
    pub drop_replies: bool,
    /// An observer the transaction this request starts is to tell of its replies
    /// (`dialog.dlg_manage` on an initial INVITE).
    pub watch: Option<Watcher>,
}

/// The per-message routing context every export receives.
#[derive(Debug)]
pub struct SipMsg {
    /// The message as received.
    pub message: Message,
    /// Where it came from.
    pub rcv: RecvInfo,
    /// What the script changed.
    pub route: RouteState,
    /// What the host must do after the callback.
    pub outbox: Vec<Action>,
    /// The worker's `$var` store, lent for this message.
    pub vars: VarStore,
    /// Log lines of this message, kept when the host asks (`sipd route-test`).
    pub captured_logs: Option<Vec<LogRecord>>,
    /// Host facts.
    pub env: Arc<RouteEnv>,
    /// The transaction layer's side of this run (`KSR.tm`, `KSR.tmx`).
    pub tm: TmCtx,
}

impl SipMsg {
    /// A fresh context for a received message.
    pub fn new(message: Message, rcv: RecvInfo, env: Arc<RouteEnv>) -> Self {
        SipMsg {
            message,
            rcv,
            route: RouteState::default(),
            outbox: Vec::new(),
            vars: VarStore::new(),
            captured_logs: None,
            env,
            tm: TmCtx::default(),
        }
    }

    /// The Request-URI in effect: the rewritten one, else the received one (`$ru`).
    pub fn ruri(&self) -> Option<&str> {
        self.route
            .new_ruri
            .as_deref()
            .or_else(|| self.message.ruri())
    }

    /// The wire form of a reply generated here to this request (RFC 3261 §8.2.6): the script's
    /// `hdr.append_to_reply` lines and the host's `Server` header are added. Callers check
    /// that the message is a request other than ACK and that `code` is valid. After
    /// `force_rport()` the top Via gets `rport=<source port>` (RFC 3581).
    pub fn local_reply_wire(&self, code: u16, reason: &str) -> Vec<u8> {
        let server;
        let extra: std::borrow::Cow<'_, [String]> = match &self.env.server_header {
            Some(name) => {
                server = format!("Server: {name}\r\n");
                let mut lines = self.route.reply_headers.clone();
                lines.push(server);
                std::borrow::Cow::Owned(lines)
            }
            None => std::borrow::Cow::Borrowed(&self.route.reply_headers),
        };
        let mut wire = Vec::with_capacity(512);
        crate::sip::reply::build(
            &self.message,
            code,
            reason,
            None,
            &extra,
            crate::sip::reply::ReplySource {
                addr: self.rcv.src,
                force_rport: self.route.force_rport,
            },
            &mut wire,
        );
        wire
    }

    /// Log a script line through `tracing`, and keep it when capture is on.
    pub fn log(&mut self, level: LogLevel, text: &str) {
        let text = text.trim_end_matches(['\r', '\n']);
        match level {
            LogLevel::Debug => tracing::debug!(target: "script", "{text}"),
            LogLevel::Info | LogLevel::Notice => tracing::info!(target: "script", "{text}"),
            LogLevel::Warn => tracing::warn!(target: "script", "{text}"),
            LogLevel::Err | LogLevel::Crit => tracing::error!(target: "script", "{text}"),
        }
        if let Some(logs) = self.captured_logs.as_mut() {
            logs.push(LogRecord {
                level,
                text: text.to_string(),
            });
        }
    }
}
