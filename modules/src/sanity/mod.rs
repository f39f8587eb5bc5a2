//! The `sanity` sub-module (`KSR.sanity.*`): Kamailio's message sanity checks.
//!
//! `sanity_check(msg_checks, uri_checks)` runs the checks selected by two bit masks, in
//! Kamailio's order, and stops at the first failure. A failed check either answers the request
//! with the reply Kamailio's module sends (400 variants, 505, 416, 420 with `Unsupported`),
//! through the same stateless path as `sl`, or fails silently when no reply can be routed
//! (missing mandatory headers, an unparseable top Via). Requests that are ACKs and replies are
//! never answered. The check bits live in [`Check`], the checks in `checks`, the digest
//! credential parser in `digest`.
//!
//! Where sipd's parser or the RFC makes Kamailio's behaviour moot or wrong, sipd follows the
//! RFC: an R-URI with a well-formed but unknown scheme gets 416 (Kamailio: 400), trailing
//! datagram bytes after Content-Length are ignored as RFC 3261 §18.3 requires (Kamailio: 400),
//! option tags compare case-insensitively (RFC 3261 §7.3.1), every Proxy-Require header is
//! checked (Kamailio: the first one) and CSeq numbers must be below 2^31 (RFC 3261 §8.1.1.5).

mod checks;
mod digest;

use std::cell::RefCell;
use std::sync::{Arc, LazyLock};

use kemi_runtime::msg::LogLevel;
use kemi_runtime::{kemi, SipMsg};

pub use checks::{run, Check, Failure};

use crate::setup::{SetupCtx, SetupError};

/// Kamailio's `default_checks` modparam default: 1+2+4+32+64+128+256+512+2048.
pub const DEFAULT_CHECKS: i32 = 3047;
/// Kamailio's `uri_checks` modparam default: R-URI, From and To.
pub const DEFAULT_URI_CHECKS: i32 = 7;

/// URI mask bit: the Request-URI.
pub const URI_RURI: i32 = 1;
/// URI mask bit: the From URI.
pub const URI_FROM: i32 = 2;
/// URI mask bit: the To URI.
pub const URI_TO: i32 = 4;
/// URI mask bit: the first Contact URI (`*` allowed).
pub const URI_CONTACT: i32 = 8;

/// The module parameters (Kamailio's `modparam("sanity", ...)`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SanityConfig {
    /// Checks run by `sanity_check_defaults` (`default_checks`).
    pub default_checks: i32,
    /// URI checks run by `sanity_check_defaults` (`uri_checks`).
    pub default_uri_checks: i32,
    /// Option tags this proxy supports in Proxy-Require (`proxy_require`).
    pub proxy_require: Vec<String>,
    /// Record the reply instead of sending it; `sanity_reply` sends it later (`noreply`).
    pub noreply: bool,
}

impl Default for SanityConfig {
    fn default() -> Self {
        SanityConfig {
            default_checks: DEFAULT_CHECKS,
            default_uri_checks: DEFAULT_URI_CHECKS,
            proxy_require: Vec::new(),
            noreply: false,
        }
    }
}

/// Kamailio's defaults, for a server that did not set `sanity` up (`route-test` without it).
static DEFAULTS: LazyLock<SanityConfig> = LazyLock::new(SanityConfig::default);

/// Setup of `sanity`: `[modparam.sanity]` with Kamailio's names (`default_checks`,
/// `uri_checks`, `proxy_require` as a comma-separated list, `noreply` 0/1) into the server's
/// services. `autodrop` is refused: a failed check returns -1 and the script ends the route.
pub fn setup(ctx: &mut SetupCtx<'_>) -> Result<(), SetupError> {
    let p = ctx.params("sanity");
    if p.str("autodrop")?.is_some() {
        return Err(p
            .error(
                "autodrop",
                "not implemented in sipd: a failed check returns -1 and the script ends the route",
            )
            .into());
    }
    p.check_known(&["default_checks", "uri_checks", "proxy_require", "noreply"])?;
    let mask = |name: &str, default: i32| -> Result<i32, SetupError> {
        let v = p.int(name, i64::from(default))?;
        i32::try_from(v)
            .ok()
            .filter(|v| *v >= 0)
            .ok_or_else(|| p.error(name, format!("not a check mask: {v}")).into())
    };
    let noreply = match p.int("noreply", 0)? {
        0 => false,
        1 => true,
        v => {
            return Err(p
                .error("noreply", format!("expected 0 or 1, got {v}"))
                .into())
        }
    };
    let cfg = SanityConfig {
        default_checks: mask("default_checks", DEFAULT_CHECKS)?,
        default_uri_checks: mask("uri_checks", DEFAULT_URI_CHECKS)?,
        proxy_require: p
            .str("proxy_require")?
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect(),
        noreply,
    };
    ctx.services.insert(Arc::new(cfg));
    Ok(())
}

/// The environment of the server `msg` belongs to, whose services hold its
/// `[modparam.sanity]` (else Kamailio's defaults apply).
fn config_of(msg: &SipMsg) -> Arc<kemi_runtime::msg::RouteEnv> {
    Arc::clone(&msg.env)
}

/// The sanity configuration in `env`'s services, or Kamailio's defaults.
fn env_config(env: &kemi_runtime::msg::RouteEnv) -> &SanityConfig {
    match env.services.get::<SanityConfig>() {
        Some(c) => c,
        None => &DEFAULTS,
    }
}

/// A reply recorded in `noreply` mode, and the message it belongs to (the address and length of
/// its buffer, which identify it while it is being routed on this worker).
#[derive(Clone, Copy)]
struct Pending {
    msg_key: (usize, usize),
    code: u16,
    reason: &'static str,
}

thread_local! {
    static PENDING: RefCell<Option<Pending>> = const { RefCell::new(None) };
}

fn msg_key(msg: &SipMsg) -> (usize, usize) {
    let buf = msg.message.as_bytes();
    (buf.as_ptr() as usize, buf.len())
}

/// Whether the message may be answered at all: requests other than ACK.
fn answerable(msg: &SipMsg) -> bool {
    msg.message.is_request() && msg.message.method_str() != Some("ACK")
}

/// Run the checks with the module configuration and act on a failure: send (or record) the reply
/// and log why. Returns 1 or -1 as the KEMI wrapper does.
fn check_and_reply(msg: &mut SipMsg, msg_checks: i32, uri_checks: i32) -> i32 {
    let env = config_of(msg);
    let cfg = env_config(&env);
    if cfg.noreply {
        PENDING.with(|p| p.borrow_mut().take());
    }
    let Err(failure) = run(&msg.message, msg_checks, uri_checks, cfg) else {
        return 1;
    };
    msg.log(LogLevel::Warn, &format!("sanity check failed: {failure}"));
    let Some((code, reason)) = failure.reply else {
        return -1;
    };
    if !answerable(msg) {
        return -1;
    }
    if cfg.noreply {
        let pending = Pending {
            msg_key: msg_key(msg),
            code,
            reason,
        };
        PENDING.with(|p| *p.borrow_mut() = Some(pending));
        return -1;
    }
    send(msg, code, reason, failure.unsupported.as_deref());
    -1
}

/// Send a stateless reply the way `sl` does, with an `Unsupported` header when given. The header
/// is added for this reply only.
fn send(msg: &mut SipMsg, code: u16, reason: &str, unsupported: Option<&str>) -> i32 {
    let added = unsupported.map(|tag| {
        msg.route
            .reply_headers
            .push(format!("Unsupported: {tag}\r\n"));
    });
    let ret = crate::sl::sl_send_reply(msg, i32::from(code), reason);
    if added.is_some() {
        msg.route.reply_headers.pop();
    }
    ret
}

/// Run the sanity checks selected by `msg_checks` (1 R-URI SIP version, 2 R-URI scheme,
/// 4 required headers, 8 and 16 no-ops, 32 CSeq method, 64 CSeq number, 128 Content-Length,
/// 256 Expires, 512 Proxy-Require, 1024 parse the URIs picked by `uri_checks`, 2048 digest
/// credentials, 4096 duplicate To/From tags, 8192 authorization headers, 16384 first Via,
/// 32768 RFC 3261 branch and `;lr`, 65536 sizes) and `uri_checks` (1 R-URI, 2 From, 4 To,
/// 8 Contact). Stops at the first failure and answers the request with Kamailio's reply
/// (400/416/420/505) unless no reply can be routed. Returns 1 when all pass, -1 on failure:
/// the script must stop itself.
#[kemi(module = "sanity")]
pub fn sanity_check(msg: &mut SipMsg, msg_checks: i32, uri_checks: i32) -> i32 {
    check_and_reply(msg, msg_checks, uri_checks)
}

/// Run the default checks (3047: every check but 8, 16, 1024, 4096, 8192 and above; URI checks 7).
/// Returns 1 when all pass, -1 on failure (the reply has been sent).
#[kemi(module = "sanity")]
pub fn sanity_check_defaults(msg: &mut SipMsg) -> i32 {
    let env = config_of(msg);
    let cfg = env_config(&env);
    check_and_reply(msg, cfg.default_checks, cfg.default_uri_checks)
}

/// Send the reply a failed `sanity_check` recorded when the module runs with `noreply` set
/// (`500 Server Sanity Failure` when nothing was recorded for this message). Does nothing for
/// replies, ACKs, or when `noreply` is off. Returns 1, or -1 when the reply cannot be sent.
#[kemi(module = "sanity")]
pub fn sanity_reply(msg: &mut SipMsg) -> i32 {
    if !answerable(msg) || !env_config(&msg.env).noreply {
        return 1;
    }
    let key = msg_key(msg);
    let pending = PENDING
        .with(|p| p.borrow_mut().take())
        .filter(|p| p.msg_key == key);
    let (code, reason) = pending.map_or((500, "Server Sanity Failure"), |p| (p.code, p.reason));
    if send(msg, code, reason, None) < 0 {
        -1
    } else {
        1
    }
}
