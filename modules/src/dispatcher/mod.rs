//! The `dispatcher` module (`KSR.dispatcher.*`): load balancing and failover over sets of
//! destinations, with Kamailio's names, return codes and XAVPs.
//!
//! - Destinations come from a list file in Kamailio's format (modparam `list_file`, relative
//!   to the configuration's directory; [`list`]), or, when the `db_url` modparam is given (as
//!   Kamailio's database mode), from the store's `dispatcher` table (`table_name`; Kamailio's
//!   columns `setid`, `destination`, `flags`, `priority`, `attrs`). With neither, the module
//!   starts with `dispatcher.list` when that file exists, else with no sets.
//! - `ds_select_dst(set, alg)` picks a destination by algorithm 0 (hash of the Call-ID), 1 (the
//!   From URI), 2 (the To URI), 4 (round robin), 8 (priority order), 9 (the `weight`
//!   attribute) or 10 (call load: `duid`/`maxload` attributes, `ds_load_update`/
//!   `ds_load_unset`); other numbers are refused with an error line and -1. It sets `$du`
//!   (`ds_select_domain`: the R-URI's host part; `ds_select`: neither) and, with failover on
//!   (modparam `flags` bit 2), records the chosen destination and the other active ones, in
//!   order, as `$xavp(_dsdst_)` items (fields `uri`, `grp`, `attrs`, `dstid`), the chosen one
//!   first, plus `$xavp(_dsctx_=>cnt)`. Those XAVPs travel with the transaction, so
//!   `ds_next_dst()` in a failure callback drops the failed head and routes to the next.
//! - States (`A`ctive, `I`nactive, `T`rying, `D`isabled; `P`robing or not) change by
//!   `ds_mark_dst*`, by the OPTIONS prober ([`probe`]: `ds_ping_interval`,
//!   `ds_probing_threshold`, `ds_inactive_threshold`, `ds_probing_mode`, ...) and by RPC
//!   `dispatcher.set_state`; selections skip inactive and disabled destinations.
//!
//! Exports never do network I/O (`ds_reload` reads the list file or table, as Kamailio's);
//! the prober runs on its own thread, started by the host.
//!
//! Checked against Kamailio 5.6.3 side by side (`tests/kamailio/dispatcher.py`): the order of a
//! set (priority, then reverse list order), round robin, candidates, limits, modes, walks,
//! marks and source matching give the same answers.
//!
//! Differences from Kamailio:
//! - Algorithms 3, 5, 6, 7, 11, 12, 13 and 64 are refused (-1 and an error line); Kamailio
//!   falls back to the first entry with a warning.
//! - Hashes (0, 1, 2) are FNV-1a, not Kamailio's core hash: the same Call-ID may pick another
//!   destination than Kamailio would (but always the same one in sipd, on every node).
//! - Algorithm 9 interleaves the 100 weight slots (smooth weighted round robin) where Kamailio
//!   shuffles them randomly; the shares are the same.
//! - Probes go out over UDP only, from an ephemeral port on the UDP listener's IP, and count as
//!   unanswered after `ds_ping_timeout` (sipd's parameter, ms; Kamailio uses tm's `fr_timer`).
//! - No `event_route[dispatcher:dst-down/up]`/`event_callback`, no latency statistics, no
//!   `socket`/`sockname`/`obproxy` attributes, no DNS re-resolution timer (names resolve at
//!   load), `ds_is_from_list_uri` matches IP literals only (no resolving on a worker).

pub mod list;
pub mod probe;
pub mod state;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use kemi_runtime::msg::{Avp, LogLevel, VarValue, Xavp, XavpValue};
use kemi_runtime::sip::Uri;
use kemi_runtime::{kemi, SipMsg};

use crate::setup::{SetupCtx, SetupError};
use crate::uri_parts::UriParts;
use crate::view;
use list::{INACTIVE, PROBING};
pub use state::DispatcherState;
use state::{Alg, DsConfig, SelectError, Source};

/// Failover support (`flags` bit 2): keep the candidates in XAVPs.
const FAILOVER: i64 = 2;
/// Hash only the user part of From/To URIs (`flags` bit 1).
const HASH_USER_ONLY: i64 = 1;

/// Where a selection writes the destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// `$du`.
    Dst,
    /// The R-URI's host, port and parameters.
    Ruri,
    /// Only the XAVPs.
    Xavp,
}

/// `is_from_list` extras read at setup: the AVPs set on a match.
#[derive(Clone, Debug, Default)]
struct MatchAvps {
    setid: Option<String>,
    attrs: Option<String>,
}

/// Set up the dispatcher from its modparams.
pub fn setup(ctx: &mut SetupCtx<'_>) -> Result<(), SetupError> {
    let p = ctx.params("dispatcher");
    p.check_known(&[
        "list_file",
        "db_url",
        "table_name",
        "flags",
        "force_dst",
        "xavp_dst",
        "xavp_ctx",
        "ds_ping_interval",
        "ds_ping_method",
        "ds_ping_from",
        "ds_probing_mode",
        "ds_probing_threshold",
        "ds_inactive_threshold",
        "ds_ping_reply_codes",
        "ds_ping_timeout",
        "ds_hash_expire",
        "ds_hash_initexpire",
        "setid_pvname",
        "attrs_pvname",
    ])?;
    let non_negative = |name: &str, default: i64| -> Result<u64, SetupError> {
        let v = p.int(name, default)?;
        u64::try_from(v).map_err(|_| p.error(name, "must not be negative").into())
    };
    let positive = |name: &str, default: i64| -> Result<u32, SetupError> {
        let v = p.int(name, default)?;
        match u32::try_from(v) {
            Ok(v) if v > 0 => Ok(v),
            _ => Err(p.error(name, "must be a positive integer").into()),
        }
    };
    let probing_mode = p.int("ds_probing_mode", 0)?;
    if !(0..=3).contains(&probing_mode) {
        return Err(p.error("ds_probing_mode", "must be 0, 1, 2 or 3").into());
    }
    let (reply_classes, reply_codes) =
        state::parse_reply_codes(&p.str("ds_ping_reply_codes")?.unwrap_or_default())
            .map_err(|e| p.error("ds_ping_reply_codes", e))?;
    let method = p.str("ds_ping_method")?.unwrap_or_else(|| "OPTIONS".into());
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(p
            .error("ds_ping_method", "must be a SIP method name")
            .into());
    }
    let from = p
        .str("ds_ping_from")?
        .unwrap_or_else(|| "sip:dispatcher@localhost".into());
    if Uri::parse(&from).is_err() {
        return Err(p.error("ds_ping_from", "must be a SIP URI").into());
    }
    let avp_name = |name: &str| -> Result<Option<String>, SetupError> {
        match p.str(name)? {
            None => Ok(None),
            Some(v) => v
                .strip_prefix("$avp(")
                .and_then(|r| r.strip_suffix(')'))
                .filter(|n| !n.is_empty())
                .map(|n| Some(n.to_string()))
                .ok_or_else(|| p.error(name, "sipd takes an $avp(name) here").into()),
        }
    };
    let config = DsConfig {
        flags: p.int("flags", 0)?,
        force_dst: p.int("force_dst", 1)? != 0,
        xavp_dst: p.str("xavp_dst")?.unwrap_or_else(|| "_dsdst_".into()),
        xavp_ctx: p.str("xavp_ctx")?.unwrap_or_else(|| "_dsctx_".into()),
        ping_interval: Duration::from_secs(non_negative("ds_ping_interval", 10)?),
        ping_method: method,
        ping_from: from,
        probing_mode,
        probing_threshold: positive("ds_probing_threshold", 1)?,
        inactive_threshold: positive("ds_inactive_threshold", 1)?,
        reply_classes,
        reply_codes,
        ping_timeout: Duration::from_millis(u64::from(positive("ds_ping_timeout", 5000)?)),
        hash_expire: Duration::from_secs(u64::from(positive("ds_hash_expire", 7200)?)),
        hash_initexpire: Duration::from_secs(u64::from(positive("ds_hash_initexpire", 7200)?)),
    };
    let avps = MatchAvps {
        setid: avp_name("setid_pvname")?,
        attrs: avp_name("attrs_pvname")?,
    };
    let source = if p.str("db_url")?.is_some() {
        // Kamailio's database mode: `db_url` given, the destinations are a table.
        if p.str("list_file")?.is_some() {
            return Err(p
                .error("list_file", "give list_file or db_url, not both")
                .into());
        }
        let table = p.str("table_name")?.unwrap_or_else(|| "dispatcher".into());
        let writer = ctx.store(&p)?;
        Some(Source::Store(Arc::clone(writer.store()), table))
    } else {
        if p.str("table_name")?.is_some() {
            return Err(p
                .error("table_name", "the table is read only with db_url")
                .into());
        }
        match p.str("list_file")? {
            Some(f) => Some(Source::File(ctx.base_dir().join(f))),
            None => {
                let path = ctx.base_dir().join("dispatcher.list");
                // No list: no sets, nothing to reload, no prober.
                path.is_file().then_some(Source::File(path))
            }
        }
    };
    let entries = match &source {
        Some(s) => s.load().map_err(|e| {
            let param = if matches!(s, Source::File(_)) {
                "list_file"
            } else {
                "db_url"
            };
            p.error(param, e.to_string())
        })?,
        None => Vec::new(),
    };
    let state = Arc::new(DispatcherState::new(config, entries, source));
    let expiry = Arc::clone(&state);
    ctx.services.every(
        "dispatcher call-load expiry",
        Duration::from_secs(10),
        move || {
            expiry.expire_calls();
        },
    );
    ctx.services.insert(state);
    ctx.services.insert(Arc::new(avps));
    Ok(())
}

fn state_of(msg: &mut SipMsg) -> Option<Arc<DispatcherState>> {
    let s = msg.env.services.get_arc::<DispatcherState>();
    if s.is_none() {
        msg.log(LogLevel::Err, "dispatcher: module not set up");
    }
    s
}

/// The text algorithms 1 and 2 hash: `user@host[:port]` of the URI (the port only when not
/// the scheme's default), or the user alone with `flags` bit 1.
fn uri_key(uri: &str, user_only: bool) -> Option<String> {
    let u = Uri::parse(uri).ok()?;
    let user = u.user.unwrap_or("");
    if user_only {
        return Some(user.to_string());
    }
    let default = if u.scheme.eq_ignore_ascii_case("sips") {
        5061
    } else {
        5060
    };
    let host = u.host.to_ascii_lowercase();
    Some(match u.port {
        Some(p) if p != default => format!("{user}@{host}:{p}"),
        _ => format!("{user}@{host}"),
    })
}

/// Apply destination `uri` as `mode` says.
fn push_dst(msg: &mut SipMsg, uri: &str, mode: Mode) -> bool {
    match mode {
        Mode::Xavp => true,
        Mode::Dst => {
            msg.route.dst_uri = Some(uri.to_string());
            true
        }
        Mode::Ruri => {
            let rest = uri
                .strip_prefix("sip:")
                .or_else(|| uri.strip_prefix("sips:"))
                .unwrap_or(uri);
            let rewritten = view::current_ruri(msg).and_then(|cur| {
                let parts = UriParts::parse(cur)?;
                Some([cur.get(..parts.host.start)?, rest].concat())
            });
            match rewritten {
                Some(r) => {
                    msg.route.new_ruri = Some(r);
                    true
                }
                None => {
                    msg.log(
                        LogLevel::Err,
                        &format!("dispatcher: cannot set the r-uri domain to {uri}"),
                    );
                    false
                }
            }
        }
    }
}

/// One selection for `rules` (set, algorithm), Kamailio's `ds_manage_routes`: the first set
/// that yields a destination writes it as `mode` says, every set adds its candidates.
fn select(msg: &mut SipMsg, rules: &[(i32, i32)], limit: i32, mode: Mode) -> i32 {
    let Some(state) = state_of(msg) else {
        return -1;
    };
    let cfg = &state.config;
    if mode == Mode::Dst && !cfg.force_dst && msg.route.dst_uri.is_some() {
        msg.log(LogLevel::Err, "dispatcher: destination already set");
        return -1;
    }
    let limit = usize::try_from(limit).unwrap_or(0);
    let mut records: Vec<(i32, usize, Alg)> = Vec::new();
    let mut chosen: Option<String> = None;
    let mut mode = mode;
    for &(set, alg_n) in rules {
        let Some(alg) = Alg::from_number(alg_n) else {
            msg.log(
                LogLevel::Err,
                &format!(
                    "dispatcher: algorithm {alg_n} is not implemented by sipd \
                     (0, 1, 2, 4, 8, 9, 10 are)"
                ),
            );
            return -1;
        };
        let user_only = cfg.flags & HASH_USER_ONLY != 0;
        let key = match alg {
            Alg::HashCallId | Alg::CallLoad => msg.message.call_id().map(str::to_string),
            Alg::HashFrom => view::from_hdr(&msg.message).and_then(|p| uri_key(p.uri, user_only)),
            Alg::HashTo => view::to_hdr(&msg.message).and_then(|p| uri_key(p.uri, user_only)),
            _ => Some(String::new()),
        };
        let Some(key) = key else {
            msg.log(
                LogLevel::Err,
                &format!("dispatcher: no header to hash for algorithm {alg_n}"),
            );
            return -1;
        };
        let invite = msg.message.method_str() == Some("INVITE");
        let left = if limit == 0 {
            0
        } else {
            match limit.checked_sub(records.len()) {
                Some(0) | None => break,
                Some(n) => n,
            }
        };
        let sel = match state.select(set, alg, &key, invite, left) {
            Ok(s) => s,
            Err(SelectError::NoSet(s)) => {
                msg.log(
                    LogLevel::Err,
                    &format!("dispatcher: destination set [{s}] not found"),
                );
                if rules.len() == 1 {
                    return -1;
                }
                continue;
            }
            Err(SelectError::NoneActive(_)) => {
                if rules.len() == 1 {
                    return -1;
                }
                continue;
            }
        };
        if chosen.is_none() {
            let lists = state.current();
            let uri = sel
                .order
                .first()
                .and_then(|&i| lists.sets.get(&set)?.dests.get(i))
                .map(|d| d.entry.uri.clone());
            let Some(uri) = uri else { return -1 };
            if !push_dst(msg, &uri, mode) {
                return -1;
            }
            chosen = Some(uri);
            mode = Mode::Xavp;
        }
        records.extend(sel.order.iter().map(|&i| (set, i, alg)));
    }
    if chosen.is_none() {
        return -1;
    }
    let failover = cfg.flags & FAILOVER != 0 && !cfg.xavp_dst.is_empty();
    let mut cnt = 0i64;
    if failover {
        let lists = state.current();
        let mut items = Vec::with_capacity(records.len());
        for (set, i, alg) in records {
            let Some(d) = lists.sets.get(&set).and_then(|s| s.dests.get(i)) else {
                continue;
            };
            let mut fields = vec![
                ("uri".to_string(), VarValue::Str(d.entry.uri.clone())),
                ("grp".to_string(), VarValue::Int(i64::from(set))),
            ];
            if !d.entry.attrs.body.is_empty() {
                fields.push(("attrs".into(), VarValue::Str(d.entry.attrs.body.clone())));
            }
            if alg == Alg::CallLoad && !d.entry.attrs.duid.is_empty() {
                fields.push(("dstid".into(), VarValue::Str(d.entry.attrs.duid.clone())));
            }
            items.push(Xavp {
                name: cfg.xavp_dst.clone(),
                value: XavpValue::Fields(fields),
            });
            cnt += 1;
        }
        // Index 0 of a root is its newest item, so the head goes in last.
        msg.route.xavps.extend(items.into_iter().rev());
    }
    if !cfg.xavp_ctx.is_empty() {
        msg.route.xavps.push(Xavp {
            name: cfg.xavp_ctx.clone(),
            value: XavpValue::Fields(vec![("cnt".into(), VarValue::Int(cnt))]),
        });
    }
    1
}

/// Position in the message's XAVPs of the head `_dsdst_` record.
fn head(msg: &SipMsg, root: &str) -> Option<usize> {
    msg.route
        .xavps
        .iter()
        .rposition(|x| x.name == root && matches!(x.value, XavpValue::Fields(_)))
}

fn field<'a>(x: &'a Xavp, name: &str) -> Option<&'a VarValue> {
    match &x.value {
        XavpValue::Fields(f) => f.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v),
        XavpValue::Value(_) => None,
    }
}

fn str_field(x: &Xavp, name: &str) -> Option<String> {
    match field(x, name) {
        Some(VarValue::Str(s)) => Some(s.clone()),
        _ => None,
    }
}

/// `ds_next_*` (`next`) and `ds_set_*` (the current head).
fn update_dst(msg: &mut SipMsg, next: bool, mode: Mode) -> i32 {
    let Some(state) = state_of(msg) else {
        return -1;
    };
    let root = state.config.xavp_dst.clone();
    if state.config.flags & FAILOVER == 0 || root.is_empty() {
        msg.log(LogLevel::Warn, "dispatcher: failover support disabled");
        return -1;
    }
    let Some(mut pos) = head(msg, &root) else {
        return -1;
    };
    if next {
        msg.route.xavps.remove(pos);
        match head(msg, &root) {
            Some(p) => pos = p,
            None => return -1,
        }
    }
    let Some(x) = msg.route.xavps.get(pos) else {
        return -1;
    };
    let (Some(uri), dstid) = (str_field(x, "uri"), str_field(x, "dstid")) else {
        msg.log(
            LogLevel::Warn,
            "dispatcher: no uri field in the next destination record",
        );
        return -1;
    };
    if !push_dst(msg, &uri, mode) {
        return -1;
    }
    let cid = msg.message.call_id().map(str::to_string);
    if let (true, Some(duid), Some(cid)) = (next, dstid, cid) {
        if !state.load_replace(&cid, &duid) {
            msg.log(
                LogLevel::Err,
                "dispatcher: cannot update the call load distribution",
            );
        }
    }
    1
}

/// `ds_mark_dst*`: set the state of the head record's destination.
fn mark(msg: &mut SipMsg, state_bits: u32) -> i32 {
    let Some(state) = state_of(msg) else {
        return -1;
    };
    let root = &state.config.xavp_dst;
    if state.config.flags & FAILOVER == 0 || root.is_empty() {
        msg.log(LogLevel::Warn, "dispatcher: failover support disabled");
        return -1;
    }
    let Some(x) = head(msg, root).and_then(|p| msg.route.xavps.get(p)) else {
        return -1;
    };
    let (Some(VarValue::Int(grp)), Some(uri)) = (field(x, "grp"), str_field(x, "uri")) else {
        return -1;
    };
    let Ok(grp) = i32::try_from(*grp) else {
        return -1;
    };
    if state.update_state(grp, &uri, state_bits) {
        1
    } else {
        -1
    }
}

/// Select a destination of `set` by algorithm `alg` and set `$du` to it; with failover on, the
/// other active destinations become the `_dsdst_` candidates. 1, or -1 when nothing is
/// active, the set does not exist or the algorithm is not implemented.
#[kemi(module = "dispatcher", name = "ds_select_dst")]
pub fn ds_select_dst(msg: &mut SipMsg, set: i32, alg: i32) -> i32 {
    select(msg, &[(set, alg)], 0, Mode::Dst)
}

/// `ds_select_dst` keeping at most `limit` candidates.
#[kemi(module = "dispatcher", name = "ds_select_dst_limit")]
pub fn ds_select_dst_limit(msg: &mut SipMsg, set: i32, alg: i32, limit: i32) -> i32 {
    select(msg, &[(set, alg)], limit, Mode::Dst)
}

/// Like `ds_select_dst`, writing the destination into the R-URI's host part.
#[kemi(module = "dispatcher", name = "ds_select_domain")]
pub fn ds_select_domain(msg: &mut SipMsg, set: i32, alg: i32) -> i32 {
    select(msg, &[(set, alg)], 0, Mode::Ruri)
}

/// `ds_select_domain` keeping at most `limit` candidates.
#[kemi(module = "dispatcher", name = "ds_select_domain_limit")]
pub fn ds_select_domain_limit(msg: &mut SipMsg, set: i32, alg: i32, limit: i32) -> i32 {
    select(msg, &[(set, alg)], limit, Mode::Ruri)
}

/// Like `ds_select_dst` but only records the candidates (no `$du`, no R-URI change).
#[kemi(module = "dispatcher", name = "ds_select")]
pub fn ds_select(msg: &mut SipMsg, set: i32, alg: i32) -> i32 {
    select(msg, &[(set, alg)], 0, Mode::Xavp)
}

/// `ds_select` keeping at most `limit` candidates.
#[kemi(module = "dispatcher", name = "ds_select_limit")]
pub fn ds_select_limit(msg: &mut SipMsg, set: i32, alg: i32, limit: i32) -> i32 {
    select(msg, &[(set, alg)], limit, Mode::Xavp)
}

/// Parse `ds_select_routes` arguments: rules `set=alg;set=alg`, mode `0`/`d` (`$du`),
/// `1`/`r` (R-URI), `2`/`x` (XAVPs only).
fn routes(msg: &mut SipMsg, rules: &str, mode: &str, limit: i32) -> i32 {
    let m = match mode.trim().chars().next().map(|c| c.to_ascii_lowercase()) {
        Some('0' | 'd') => Mode::Dst,
        Some('1' | 'r') => Mode::Ruri,
        Some('2' | 'x') => Mode::Xavp,
        _ => {
            msg.log(
                LogLevel::Err,
                &format!("dispatcher: invalid routing mode [{mode}]"),
            );
            return -1;
        }
    };
    let mut parsed = Vec::new();
    for r in rules
        .split([';', ','])
        .map(str::trim)
        .filter(|r| !r.is_empty())
    {
        let pair = r
            .split_once('=')
            .and_then(|(s, a)| Some((s.trim().parse().ok()?, a.trim().parse().ok()?)));
        match pair {
            Some(p) => parsed.push(p),
            None => {
                msg.log(
                    LogLevel::Err,
                    &format!("dispatcher: invalid routing rule [{r}]"),
                );
                return -1;
            }
        }
    }
    if parsed.is_empty() {
        msg.log(LogLevel::Err, "dispatcher: no routing rules");
        return -1;
    }
    select(msg, &parsed, limit, m)
}

/// Select over several sets: `rules` is `set=alg;set=alg`, `mode` where the first
/// destination goes (`0`/`d` `$du`, `1`/`r` R-URI, `2`/`x` XAVPs only).
#[kemi(module = "dispatcher", name = "ds_select_routes")]
pub fn ds_select_routes(msg: &mut SipMsg, rules: &str, mode: &str) -> i32 {
    routes(msg, rules, mode, 0)
}

/// `ds_select_routes` keeping at most `limit` candidates.
#[kemi(module = "dispatcher", name = "ds_select_routes_limit")]
pub fn ds_select_routes_limit(msg: &mut SipMsg, rules: &str, mode: &str, limit: i32) -> i32 {
    routes(msg, rules, mode, limit)
}

/// Drop the current candidate and set `$du` to the next one (failure callbacks). -1 when
/// none is left or failover is off.
#[kemi(module = "dispatcher", name = "ds_next_dst")]
pub fn ds_next_dst(msg: &mut SipMsg) -> i32 {
    update_dst(msg, true, Mode::Dst)
}

/// Like `ds_next_dst`, into the R-URI's host part.
#[kemi(module = "dispatcher", name = "ds_next_domain")]
pub fn ds_next_domain(msg: &mut SipMsg) -> i32 {
    update_dst(msg, true, Mode::Ruri)
}

/// Set `$du` to the current candidate again.
#[kemi(module = "dispatcher", name = "ds_set_dst")]
pub fn ds_set_dst(msg: &mut SipMsg) -> i32 {
    update_dst(msg, false, Mode::Dst)
}

/// Set the R-URI's host part to the current candidate.
#[kemi(module = "dispatcher", name = "ds_set_domain")]
pub fn ds_set_domain(msg: &mut SipMsg) -> i32 {
    update_dst(msg, false, Mode::Ruri)
}

/// Mark the current candidate inactive (and probing with `ds_probing_mode` 1).
#[kemi(module = "dispatcher", name = "ds_mark_dst")]
pub fn ds_mark_dst(msg: &mut SipMsg) -> i32 {
    let probing_all = msg
        .env
        .services
        .get::<DispatcherState>()
        .is_some_and(|s| s.config.probing_mode == 1);
    mark(msg, INACTIVE | if probing_all { PROBING } else { 0 })
}

/// Mark the current candidate with `state` (`a`, `i`, `t`, `d`, `p`, or combined: `ip`); an
/// empty `state` is `ds_mark_dst()`.
#[kemi(module = "dispatcher", name = "ds_mark_dst_state")]
pub fn ds_mark_dst_state(msg: &mut SipMsg, state: &str) -> i32 {
    if state.is_empty() {
        return ds_mark_dst(msg);
    }
    match state::parse_state(state) {
        Some(bits) => mark(msg, bits),
        None => {
            msg.log(
                LogLevel::Err,
                &format!("dispatcher: invalid state [{state}]"),
            );
            -1
        }
    }
}

/// Set the state of destination `address` of set `group`.
#[kemi(module = "dispatcher", name = "ds_mark_addr")]
pub fn ds_mark_addr(msg: &mut SipMsg, state: &str, group: i32, address: &str) -> i32 {
    let Some(bits) = state::parse_state(state) else {
        msg.log(
            LogLevel::Err,
            &format!("dispatcher: invalid state [{state}]"),
        );
        return -1;
    };
    let Some(ds) = state_of(msg) else {
        return -1;
    };
    if ds.update_state(group, address, bits) {
        1
    } else {
        -1
    }
}

/// Match bits of `ds_is_from_list_mode`.
const MATCH_NOPORT: i32 = 1;
const MATCH_NOPROTO: i32 = 2;
const MATCH_ACTIVE: i32 = 4;

/// Whether `ip:port` over `proto` is a destination of `group` (-1: any set); sets the
/// `setid_pvname`/`attrs_pvname` AVPs on a match.
fn is_from(
    msg: &mut SipMsg,
    group: i32,
    target: (IpAddr, u16, Option<kemi_runtime::msg::Proto>),
    mode: i32,
) -> i32 {
    let Some(state) = state_of(msg) else {
        return -1;
    };
    let (ip, port, proto) = target;
    let lists = state.current();
    let found = lists.all().find(|(set, d)| {
        (group == -1 || *set == group)
            && d.addr.is_some_and(|a: SocketAddr| {
                a.ip() == ip
                    && (mode & MATCH_NOPORT != 0 || a.port() == port)
                    && (mode & MATCH_NOPROTO != 0 || d.entry.transport == proto)
            })
            && (mode & MATCH_ACTIVE == 0 || !d.skipped())
    });
    let Some((set, d)) = found else {
        return -1;
    };
    let avps = msg.env.services.get_arc::<MatchAvps>().unwrap_or_default();
    if let Some(name) = &avps.setid {
        msg.route.avps.push(Avp {
            name: name.clone(),
            value: VarValue::Int(i64::from(set)),
        });
    }
    if let Some(name) = &avps.attrs {
        msg.route.avps.push(Avp {
            name: name.clone(),
            value: VarValue::Str(d.entry.attrs.body.clone()),
        });
    }
    1
}

fn source(msg: &SipMsg) -> (IpAddr, u16, Option<kemi_runtime::msg::Proto>) {
    let ip = match msg.rcv.src.ip() {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    (ip, msg.rcv.src.port(), Some(msg.rcv.proto))
}

/// 1 when the request's source address and port are a destination of any set.
#[kemi(module = "dispatcher", name = "ds_is_from_lists")]
pub fn ds_is_from_lists(msg: &mut SipMsg) -> i32 {
    let src = source(msg);
    is_from(msg, -1, src, MATCH_NOPROTO)
}

/// 1 when the request's source address and port are a destination of set `group` (-1: any).
#[kemi(module = "dispatcher", name = "ds_is_from_list")]
pub fn ds_is_from_list(msg: &mut SipMsg, group: i32) -> i32 {
    let src = source(msg);
    is_from(msg, group, src, MATCH_NOPROTO)
}

/// `ds_is_from_list` with match bits: 1 ignore the port, 2 ignore the transport, 4 active
/// destinations only. As in Kamailio, the transport compared is the destination URI's
/// `transport` parameter: one without it matches only when bit 2 is set.
#[kemi(module = "dispatcher", name = "ds_is_from_list_mode")]
pub fn ds_is_from_list_mode(msg: &mut SipMsg, group: i32, mode: i32) -> i32 {
    let src = source(msg);
    is_from(msg, group, src, mode)
}

/// `ds_is_from_list_mode` for the address of `uri` instead of the source.
#[kemi(module = "dispatcher", name = "ds_is_from_list_uri")]
pub fn ds_is_from_list_uri(msg: &mut SipMsg, group: i32, mode: i32, uri: &str) -> i32 {
    let Some((host, port, _)) = list::uri_target(uri) else {
        msg.log(LogLevel::Err, &format!("dispatcher: bad uri [{uri}]"));
        return -1;
    };
    let Ok(ip) = host.parse::<IpAddr>() else {
        // Resolving a name here would block the worker; Kamailio resolves, sipd does not.
        msg.log(
            LogLevel::Err,
            &format!("dispatcher: {uri} is not an IP address (sipd does not resolve here)"),
        );
        return -1;
    };
    is_from(msg, group, (ip, port, list::transport_param(uri)), mode)
}

/// Algorithm 10: a BYE or CANCEL ends the call's load; a 2xx to its INVITE confirms it.
#[kemi(module = "dispatcher", name = "ds_load_update")]
pub fn ds_load_update(msg: &mut SipMsg) -> i32 {
    let Some(state) = state_of(msg) else {
        return -1;
    };
    let Some(cid) = msg.message.call_id() else {
        msg.log(LogLevel::Err, "dispatcher: cannot parse the call-id");
        return -1;
    };
    if msg.message.is_request() {
        if matches!(msg.message.method_str(), Some("BYE" | "CANCEL")) {
            state.load_remove(cid);
        }
        return 1;
    }
    if view::method(&msg.message) == Some("INVITE")
        && msg
            .message
            .status()
            .is_some_and(|c| (200..300).contains(&c))
    {
        state.load_confirm(cid);
    }
    1
}

/// Algorithm 10: the call's load ends (a failed INVITE, a BYE). -1 when it was not counted.
#[kemi(module = "dispatcher", name = "ds_load_unset")]
pub fn ds_load_unset(msg: &mut SipMsg) -> i32 {
    let Some(state) = state_of(msg) else {
        return -1;
    };
    if msg.message.method_str() == Some("INVITE") {
        let has_dstid = head(msg, &state.config.xavp_dst)
            .and_then(|p| msg.route.xavps.get(p))
            .is_some_and(|x| field(x, "dstid").is_some());
        if !has_dstid {
            return 1;
        }
    }
    match msg.message.call_id() {
        Some(cid) if state.load_remove(cid) => 1,
        _ => -1,
    }
}

/// Re-read the list file (as RPC `dispatcher.reload`). 1, or -1 (logged) when it cannot be
/// read; the sets in use stay then.
#[kemi(module = "dispatcher", name = "ds_reload")]
pub fn ds_reload(msg: &mut SipMsg) -> i32 {
    let Some(state) = state_of(msg) else {
        return -1;
    };
    match state.reload() {
        Ok(_) => 1,
        Err(e) => {
            msg.log(LogLevel::Err, &format!("dispatcher: reload failed: {e}"));
            -1
        }
    }
}

/// 1 when set `set` exists, else -1.
#[kemi(module = "dispatcher", name = "ds_list_exists")]
pub fn ds_list_exists(msg: &mut SipMsg, set: i32) -> i32 {
    match state_of(msg) {
        Some(s) if s.current().sets.contains_key(&set) => 1,
        _ => -1,
    }
}

/// 1 when set `set` has an active destination, else -1.
#[kemi(module = "dispatcher", name = "ds_is_active")]
pub fn ds_is_active(msg: &mut SipMsg, set: i32) -> i32 {
    let Some(state) = state_of(msg) else {
        return -1;
    };
    let lists = state.current();
    match lists.sets.get(&set) {
        Some(s) if s.dests.iter().any(|d| !d.skipped()) => 1,
        _ => -1,
    }
}

/// 1 when destination `uri` of set `set` is active (an empty `uri`: any), else -1.
#[kemi(module = "dispatcher", name = "ds_is_active_uri")]
pub fn ds_is_active_uri(msg: &mut SipMsg, set: i32, uri: &str) -> i32 {
    let Some(state) = state_of(msg) else {
        return -1;
    };
    let lists = state.current();
    match lists.sets.get(&set) {
        Some(s)
            if s.dests
                .iter()
                .any(|d| !d.skipped() && (uri.is_empty() || d.entry.uri == uri)) =>
        {
            1
        }
        _ => -1,
    }
}
