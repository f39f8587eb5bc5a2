//! `sipd route-test`: run the routing script on one message with no network and print what the
//! server would have done, as one JSON object. Operators unit-test their routing scripts with it.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use kemi_runtime::engine::EngineKind;
use kemi_runtime::msg::{Action, RecvInfo, RouteEnv};
use kemi_runtime::sip::Message;
use kemi_runtime::{ExportTable, SipMsg};
use serde::Serialize;

use crate::endpoint::Endpoint;
use crate::router::{Routed, Router};

/// The JSON document `route-test` prints.
#[derive(Debug, Serialize)]
pub struct Report {
    /// `"return"`, `"exit"`, `"drop"` or `"error"`.
    pub outcome: &'static str,
    /// The script error, with its position, when `outcome` is `"error"`.
    pub error: Option<String>,
    /// Replies the script sent (stateless `sl` ones, then stateful `t_reply` ones).
    pub replies: Vec<ReplyReport>,
    /// Where the request goes: stateless forwards, then the `t_relay` target and its appended
    /// branches.
    pub forwards: Vec<ForwardReport>,
    /// The Request-URI after routing.
    pub ruri: String,
    /// The destination URI (`$du`) after routing.
    pub dst_uri: Option<String>,
    /// Message flags set after routing.
    pub flags: Vec<u32>,
    /// What the script logged.
    pub logs: Vec<LogReport>,
    /// The message as it would leave, with every change applied.
    pub message: String,
}

/// One reply in a [`Report`].
#[derive(Debug, Serialize)]
pub struct ReplyReport {
    /// Status code.
    pub code: u16,
    /// Reason phrase.
    pub reason: String,
}

/// One forward in a [`Report`].
#[derive(Debug, Serialize)]
pub struct ForwardReport {
    /// Request-URI of the forwarded request.
    pub ruri: String,
    /// Destination, when it is not the R-URI.
    pub dst: Option<String>,
}

/// One log line in a [`Report`].
#[derive(Debug, Serialize)]
pub struct LogReport {
    /// Level name (`dbg`, `info`, `notice`, `warn`, `err`, `crit`).
    pub level: &'static str,
    /// Text.
    pub text: String,
}

/// Why `route-test` could not run at all (exit status 1).
#[derive(Debug, thiserror::Error)]
pub enum RouteTestError {
    /// The message file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The message file is not a SIP message.
    #[error("{path}: not a valid SIP message")]
    Parse {
        /// The file.
        path: String,
        /// The parser's error.
        source: kemi_runtime::sip::ParseError,
    },
    /// The script did not load.
    #[error(transparent)]
    Load(#[from] kemi_runtime::engine::LoadError),
}

/// Route the message in `msg_path` through `script` and report what happened.
pub fn run(
    table: Arc<ExportTable>,
    engine: EngineKind,
    script: &Path,
    msg_path: &Path,
    src: Option<Endpoint>,
) -> Result<Report, RouteTestError> {
    let raw = std::fs::read(msg_path).map_err(|source| RouteTestError::Read {
        path: msg_path.display().to_string(),
        source,
    })?;
    let message = Message::parse(Bytes::from(raw)).map_err(|source| RouteTestError::Parse {
        path: msg_path.display().to_string(),
        source,
    })?;
    let mut router = Router::load(engine, script, table)?;
    Ok(route_one(&mut router, message, src))
}

/// Route one parsed message through `router` and build the report.
pub fn route_one(router: &mut Router, message: Message, src: Option<Endpoint>) -> Report {
    let default = RecvInfo::default();
    let rcv = match src {
        Some(e) => RecvInfo {
            proto: e.proto,
            src: e.addr,
            dst: local_for(e.addr, default.dst),
        },
        None => default,
    };
    let env = RouteEnv {
        listen: vec![(rcv.proto, rcv.dst)],
        services: crate::modsetup::offline_services().unwrap_or_default(),
        ..RouteEnv::default()
    };
    let mut msg = SipMsg::new(message, rcv, Arc::new(env));
    msg.captured_logs = Some(Vec::new());
    let routed = router.route(&mut msg);
    report(&routed, &msg)
}

/// The local address a message from `src` would arrive on: the default one, in `src`'s family.
fn local_for(src: SocketAddr, default: SocketAddr) -> SocketAddr {
    if src.is_ipv6() {
        SocketAddr::new(std::net::Ipv6Addr::LOCALHOST.into(), default.port())
    } else {
        default
    }
}

fn report(routed: &Routed, msg: &SipMsg) -> Report {
    let outcome = match routed {
        Routed::Failed(_) => "error",
        _ if msg.route.drop => "drop",
        other => other.as_str(),
    };
    let mut replies = Vec::new();
    let mut forwards = Vec::new();
    for action in &msg.outbox {
        match action {
            Action::Reply(r) => replies.push(ReplyReport {
                code: r.code,
                reason: r.reason.clone(),
            }),
            Action::Forward(f) => forwards.push(ForwardReport {
                ruri: f.ruri.clone(),
                dst: f.dst.clone(),
            }),
        }
    }
    // Stateful work the script asked of tm counts the same way: `t_reply` is a reply, `t_relay`
    // and appended branches are forwards.
    replies.extend(msg.tm.replies.iter().map(|r| ReplyReport {
        code: r.code,
        reason: r.reason.clone(),
    }));
    if let Some(f) = &msg.tm.relay {
        forwards.push(ForwardReport {
            ruri: f.ruri.clone(),
            dst: f.dst.clone(),
        });
        forwards.extend(msg.tm.branches.iter().map(|b| ForwardReport {
            ruri: b.uri.clone(),
            dst: b.dst.clone(),
        }));
    }
    let flags = (0..64)
        .filter(|bit| msg.route.flags & (1u64 << bit) != 0)
        .collect();
    let logs = msg
        .captured_logs
        .iter()
        .flatten()
        .map(|l| LogReport {
            level: l.level.as_str(),
            text: l.text.clone(),
        })
        .collect();
    Report {
        outcome,
        error: match routed {
            Routed::Failed(e) => Some(e.to_string()),
            _ => None,
        },
        replies,
        forwards,
        ruri: msg.ruri().unwrap_or_default().to_string(),
        dst_uri: msg.route.dst_uri.clone(),
        flags,
        logs,
        message: String::from_utf8_lossy(&outgoing(msg)).into_owned(),
    }
}

/// The message as it would leave: R-URI rewrite (requests) and header edits applied.
fn outgoing(msg: &SipMsg) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.message.as_bytes().len() + 128);
    if msg.message.is_request() {
        msg.message.write_request(
            &mut out,
            msg.route.new_ruri.as_deref(),
            &msg.route.edits,
            None,
        );
    } else {
        msg.message
            .write_response(&mut out, &msg.route.edits, false);
    }
    out
}
