//! The `dialog` module (`KSR.dialog.*`, `$dlg(attr)`, `$dlg_var(name)`): calls tracked from
//! the INVITE to the BYE or the timeout, Kamailio's names and return codes.
//!
//! ```toml
//! [modparam.dialog]
//! default_timeout = 7200
//! send_bye = 1
//! profiles_with_value = "caller ; gateway"
//! profiles_no_value = "calls"
//! event_callback = "ksr_dialog_event"
//! ```
//!
//! `dlg_manage()` on an initial INVITE creates the dialog; it enters the shared table when the
//! INVITE starts a transaction (`t_relay`), and the transaction tells it of every reply it
//! sends upstream (a provisional with a To tag: early; a 2xx: confirmed; a negative final:
//! failed). In-dialog requests are matched by Call-ID and tags in either direction, by
//! `dlg_manage()` or `loose_route()` (as Kamailio's rr callback does): the ACK confirms, a BYE
//! ends, others restart the timeout. The table ([`state`]) is sharded by Call-ID; nothing is
//! added to the path of a message that no dialog export or `loose_route` touches. Timeouts
//! and the BYEs sipd sends are the [`agent`]'s. With `event_callback`, `dialog:start`,
//! `dialog:end` and `dialog:failed` run that script function (on a stand-in request carrying
//! the dialog, so `$dlg(...)` works there).
//!
//! With `db_mode = 1` confirmed dialogs are written to the store and loaded back at startup
//! ([`persist`]).
//!
//! Not done: the Record-Route `did` cookie (matching is by Call-ID and tags, Kamailio's
//! `seq_match_mode` 2), spiral detection, DMQ, `dlg_bridge`/`dlg_refer*`, BYEs over stream
//! transports.

pub mod agent;
pub mod persist;
pub mod state;

use std::sync::Arc;

use kemi_runtime::msg::{LogLevel, Watcher};
use kemi_runtime::services::EventQueue;
use kemi_runtime::{kemi, SipMsg, Xval};

use crate::modparam::ModParams;
use crate::setup::{SetupCtx, SetupError};
pub use state::{DialogState, DlgCell, DlgConfig, DlgState, Side};

/// The Via branch prefix of the BYEs sipd sends; replies carrying it are the dialog module's.
pub const BRANCH_PREFIX: &str = "z9hG4bKsd.dlg";

/// Modparams sipd reads (Kamailio's names); a few are accepted with their only sipd value.
const KNOWN: &[&str] = &[
    "default_timeout",
    "send_bye",
    "timeout_noreset",
    "event_callback",
    "profiles_with_value",
    "profiles_no_value",
    "enable_stats",
    "hash_size",
    "db_mode",
    "db_url",
    "table_name",
    "detect_spirals",
];

/// Set up dialog: read the modparams, declare the profiles, register the table (and the
/// event queue when `event_callback` is set).
pub fn setup(ctx: &mut SetupCtx<'_>) -> Result<(), SetupError> {
    let params = ctx.params("dialog");
    params.check_known(KNOWN)?;
    let (config, profiles) = read_params(&params)?;
    let events = config.event_callback.as_ref().map(|_| {
        let q = Arc::new(EventQueue::default());
        ctx.services.insert(Arc::clone(&q));
        q
    });
    let mut st = DialogState::new(config, &profiles, events);
    let mut rows = Vec::new();
    if params.int("db_mode", 0)? != 0 {
        let table = params.str("table_name")?.unwrap_or_else(|| "dialog".into());
        crate::store::check_table(&table).map_err(SetupCtx::store_error("dialog"))?;
        let writer = ctx.store(&params)?;
        rows = writer
            .store()
            .htable_rows(&table)
            .map_err(SetupCtx::store_error("dialog"))?;
        st = st.with_persist(persist::Persist { writer, table });
    }
    let st = Arc::new(st);
    let restored = st.restore(&rows);
    if restored > 0 {
        tracing::info!("dialog: {restored} confirmed dialog(s) restored from the store");
    }
    ctx.services.insert(st);
    Ok(())
}

/// The settings and the profiles (name, with value) `params` declare.
pub fn read_params(
    params: &ModParams,
) -> Result<(DlgConfig, Vec<(String, bool)>), crate::modparam::ModparamError> {
    let timeout = params.int("default_timeout", 43_200)?;
    let default_timeout = u32::try_from(timeout)
        .ok()
        .filter(|t| *t > 0)
        .ok_or_else(|| params.error("default_timeout", "must be a positive number of seconds"))?;
    if !(0..=2).contains(&params.int("db_mode", 0)?) {
        return Err(params.error(
            "db_mode",
            "0 (memory only) or 1/2 (confirmed dialogs written to the store, behind the message path)",
        ));
    }
    let mut profiles: Vec<(String, bool)> = Vec::new();
    for (param, with_value) in [("profiles_with_value", true), ("profiles_no_value", false)] {
        for def in params.strs(param)? {
            for name in def.split(';').map(str::trim).filter(|n| !n.is_empty()) {
                if name.ends_with("/s") || name.ends_with("/S") {
                    return Err(params.error(
                        param,
                        format!("shared profiles (`{name}`) need DMQ, which sipd does not have"),
                    ));
                }
                if profiles.iter().any(|(n, _)| n == name) {
                    return Err(params.error(param, format!("profile `{name}` is declared twice")));
                }
                profiles.push((name.to_string(), with_value));
            }
        }
    }
    let event_callback = params.str("event_callback")?.filter(|c| !c.is_empty());
    Ok((
        DlgConfig {
            default_timeout,
            send_bye: params.int("send_bye", 0)? != 0,
            timeout_noreset: params.int("timeout_noreset", 0)? != 0,
            event_callback,
        },
        profiles,
    ))
}

fn state_of(msg: &SipMsg) -> Option<Arc<DialogState>> {
    msg.env.services.get_arc::<DialogState>()
}

/// The dialog the message is in, if it was found or created.
pub fn current(msg: &SipMsg) -> Option<Arc<DlgCell>> {
    msg.route
        .dialog
        .as_ref()
        .and_then(Watcher::downcast::<DlgCell>)
}

/// `loose_route`'s hook (Kamailio's rr callback): an in-dialog request of a known dialog
/// updates it and becomes its message. Nothing happens unless dialog is set up.
pub fn on_loose_route(msg: &mut SipMsg) {
    if msg.route.dialog.is_some() {
        return;
    }
    let Some(st) = msg.env.services.get::<DialogState>() else {
        return;
    };
    if st.live() == 0 {
        // No dialog tracked: nothing to match (the usual cost when no script calls dlg_manage).
        return;
    }
    if let Some(st) = state_of(msg) {
        match_in_dialog(&st, msg);
    }
}

/// Match an in-dialog request (Call-ID and tags) and apply it to its dialog.
fn match_in_dialog(st: &DialogState, msg: &mut SipMsg) -> Option<Arc<DlgCell>> {
    let m = &msg.message;
    let to_tag = m.to_tag().filter(|t| !t.is_empty())?;
    let (cell, down) = st.lookup(m.call_id()?, m.from_tag()?, to_tag)?;
    let cseq = m.cseq().and_then(Result::ok).map_or(0, |c| c.number);
    if let Some(method) = m.method_str() {
        st.on_request(&cell, down, method, cseq);
    }
    msg.route.dialog = cell.watcher();
    Some(cell)
}

/// The message's dialog, else the one its Call-ID and tags name (without applying the
/// request to it).
fn lookup(msg: &SipMsg) -> Option<Arc<DlgCell>> {
    if let Some(c) = current(msg) {
        return Some(c);
    }
    let st = state_of(msg)?;
    let m = &msg.message;
    let to_tag = m.to_tag().filter(|t| !t.is_empty())?;
    st.lookup(m.call_id()?, m.from_tag()?, to_tag)
        .map(|(c, _)| c)
}

/// [`lookup`], kept as the message's dialog.
fn find(msg: &mut SipMsg) -> Option<Arc<DlgCell>> {
    let cell = lookup(msg)?;
    if msg.route.dialog.is_none() {
        msg.route.dialog = cell.watcher();
    }
    Some(cell)
}

/// The message's dialog, or, on an initial INVITE, a new one not yet managed (so profiles
/// set before `dlg_manage` count once it is).
fn find_or_new(msg: &mut SipMsg) -> Option<Arc<DlgCell>> {
    if let Some(c) = find(msg) {
        return Some(c);
    }
    let initial = msg.message.method_str() == Some("INVITE")
        && msg.message.to_tag().is_none_or(str::is_empty);
    if !initial {
        return None;
    }
    let st = state_of(msg)?;
    let cell = st.create(&msg.message, &msg.rcv, &msg.env)?;
    msg.route.dialog = cell.watcher();
    Some(cell)
}

/// Track the call of this INVITE (initial: create the dialog, followed through its
/// transaction once `t_relay` starts one), or apply an in-dialog request to its dialog.
/// 1, or -1 (not an INVITE, no dialog, dialog not set up).
#[kemi(module = "dialog")]
pub fn dlg_manage(msg: &mut SipMsg) -> i32 {
    let Some(st) = state_of(msg) else {
        return -1;
    };
    if msg.message.to_tag().is_some_and(|t| !t.is_empty()) {
        if msg.route.dialog.is_some() {
            return 1;
        }
        return if match_in_dialog(&st, msg).is_some() {
            1
        } else {
            -1
        };
    }
    if msg.message.method_str() != Some("INVITE") {
        return -1;
    }
    let Some(cell) = find_or_new(msg) else {
        msg.log(
            LogLevel::Err,
            "dlg_manage: the INVITE has no Call-ID or From tag",
        );
        return -1;
    };
    msg.tm.watch = cell.watcher();
    1
}

/// 1 when the message belongs to a dialog the module knows, else -1.
#[kemi(module = "dialog")]
pub fn is_known_dlg(msg: &mut SipMsg) -> i32 {
    if find(msg).is_some() {
        1
    } else {
        -1
    }
}

/// Send a BYE to `side` of the message's dialog (`caller`, `callee`, else both) and end it.
#[kemi(module = "dialog")]
pub fn dlg_bye(msg: &mut SipMsg, side: &str) -> i32 {
    let (Some(st), Some(cell)) = (state_of(msg), find(msg)) else {
        return -1;
    };
    let sides = if side.eq_ignore_ascii_case("caller") {
        vec![Side::Caller]
    } else if side.eq_ignore_ascii_case("callee") {
        vec![Side::Callee]
    } else {
        vec![Side::Caller, Side::Callee]
    };
    if st.bye(&cell, sides) {
        1
    } else {
        -1
    }
}

/// Set the timeout (s) of the message's dialog. 1, or -1 without a dialog.
#[kemi(module = "dialog")]
pub fn dlg_set_timeout(msg: &mut SipMsg, to: i32) -> i32 {
    let (Some(st), Some(cell)) = (state_of(msg), find_or_new(msg)) else {
        return -1;
    };
    match u32::try_from(to) {
        Ok(secs) if secs > 0 => {
            st.set_timeout(&cell, secs);
            1
        }
        _ => -1,
    }
}

/// Set the timeout (s) of dialog `he:hi`. 1, or -1 when there is no such dialog.
#[kemi(module = "dialog")]
pub fn dlg_set_timeout_id(msg: &mut SipMsg, to: i32, he: i32, hi: i32) -> i32 {
    let Some(st) = state_of(msg) else {
        return -1;
    };
    let (Ok(secs), Ok(he), Ok(hi)) = (u32::try_from(to), u32::try_from(he), u32::try_from(hi))
    else {
        return -1;
    };
    match st.by_id(he, hi) {
        Some(cell) if secs > 0 => {
            st.set_timeout(&cell, secs);
            1
        }
        _ => -1,
    }
}

/// Make dialog `callid`/`ftag`/`ttag` the message's dialog. 1, or -1 when unknown.
#[kemi(module = "dialog")]
pub fn dlg_get(msg: &mut SipMsg, callid: &str, ftag: &str, ttag: &str) -> i32 {
    let Some(st) = state_of(msg) else {
        return -1;
    };
    match st.lookup(callid, ftag, ttag) {
        Some((cell, _)) => {
            msg.route.dialog = cell.watcher();
            1
        }
        None => -1,
    }
}

fn profile_call(
    msg: &mut SipMsg,
    name: &str,
    f: impl FnOnce(&DialogState, &DlgCell) -> bool,
    create: bool,
) -> i32 {
    let Some(st) = state_of(msg) else {
        return -1;
    };
    if st.profile(name).is_none() {
        msg.log(LogLevel::Crit, &format!("profile <{name}> not defined"));
        return -1;
    }
    let cell = if create { find_or_new(msg) } else { find(msg) };
    match cell {
        Some(c) if f(&st, &c) => 1,
        _ => -1,
    }
}

/// Put the message's dialog in profile `profile` (no value).
#[kemi(module = "dialog")]
pub fn set_dlg_profile_static(msg: &mut SipMsg, profile: &str) -> i32 {
    profile_call(msg, profile, |st, c| st.set_profile(c, profile, ""), true)
}

/// Put the message's dialog in profile `profile` with `value`.
#[kemi(module = "dialog")]
pub fn set_dlg_profile(msg: &mut SipMsg, profile: &str, value: &str) -> i32 {
    profile_call(
        msg,
        profile,
        |st, c| st.set_profile(c, profile, value),
        true,
    )
}

/// Take the message's dialog out of profile `profile`.
#[kemi(module = "dialog")]
pub fn unset_dlg_profile_static(msg: &mut SipMsg, profile: &str) -> i32 {
    profile_call(
        msg,
        profile,
        |st, c| st.unset_profile(c, profile, ""),
        false,
    )
}

/// Take the message's dialog out of profile `profile` for `value`.
#[kemi(module = "dialog")]
pub fn unset_dlg_profile(msg: &mut SipMsg, profile: &str, value: &str) -> i32 {
    profile_call(
        msg,
        profile,
        |st, c| st.unset_profile(c, profile, value),
        false,
    )
}

fn in_profile(c: &DlgCell, profile: &str, value: &str) -> bool {
    c.lock()
        .profiles
        .iter()
        .any(|(n, v)| **n == *profile && (value.is_empty() || v == value))
}

/// 1 when the message's dialog is in profile `profile`.
#[kemi(module = "dialog")]
pub fn is_in_profile_static(msg: &mut SipMsg, profile: &str) -> i32 {
    profile_call(msg, profile, |_, c| in_profile(c, profile, ""), false)
}

/// 1 when the message's dialog is in profile `profile` with `value` (any value when empty).
#[kemi(module = "dialog")]
pub fn is_in_profile(msg: &mut SipMsg, profile: &str, value: &str) -> i32 {
    profile_call(msg, profile, |_, c| in_profile(c, profile, value), false)
}

fn profile_size(msg: &mut SipMsg, profile: &str, value: Option<&str>, pv: &str) -> i32 {
    let Some(st) = state_of(msg) else {
        return -1;
    };
    let Some(p) = st.profile(profile) else {
        msg.log(LogLevel::Crit, &format!("profile <{profile}> not defined"));
        return -1;
    };
    let size = p.size(value);
    let Some(spec) = crate::pv::spec::PvSpec::parse(pv) else {
        msg.log(LogLevel::Err, &format!("cannot get pv spec for [{pv}]"));
        return -1;
    };
    if !matches!(
        spec,
        crate::pv::spec::PvSpec::Var(_) | crate::pv::spec::PvSpec::Avp(_)
    ) {
        msg.log(LogLevel::Err, "return must be an AVP or SCRIPT VAR!");
        return -1;
    }
    if crate::pv::write::write(msg, &spec, pv, crate::pv::write::Assign::Int(size)) {
        1
    } else {
        -1
    }
}

/// Store the number of dialogs in `profile` into `pv` (`$var(n)` or `$avp(n)`). 1 or -1.
#[kemi(module = "dialog")]
pub fn get_profile_size_static(msg: &mut SipMsg, profile: &str, pv: &str) -> i32 {
    profile_size(msg, profile, None, pv)
}

/// Store the number of dialogs in `profile` with `value` (all when empty) into `pv`.
#[kemi(module = "dialog")]
pub fn get_profile_size(msg: &mut SipMsg, profile: &str, value: &str, pv: &str) -> i32 {
    profile_size(msg, profile, Some(value), pv)
}

fn flag_bit(flag: i32) -> Option<u32> {
    u32::try_from(flag).ok().filter(|f| *f < 32).map(|f| 1 << f)
}

/// Set flag `flag` (0..31) of the message's dialog.
#[kemi(module = "dialog")]
pub fn dlg_setflag(msg: &mut SipMsg, flag: i32) -> i32 {
    match (flag_bit(flag), find_or_new(msg)) {
        (Some(b), Some(c)) => {
            c.lock().dflags |= b;
            touch(msg, &c);
            1
        }
        _ => -1,
    }
}

/// Reset flag `flag` of the message's dialog.
#[kemi(module = "dialog")]
pub fn dlg_resetflag(msg: &mut SipMsg, flag: i32) -> i32 {
    match (flag_bit(flag), find(msg)) {
        (Some(b), Some(c)) => {
            c.lock().dflags &= !b;
            touch(msg, &c);
            1
        }
        _ => -1,
    }
}

/// 1 when flag `flag` of the message's dialog is set, else -1.
#[kemi(module = "dialog")]
pub fn dlg_isflagset(msg: &mut SipMsg, flag: i32) -> i32 {
    match (flag_bit(flag), find(msg)) {
        (Some(b), Some(c)) if c.lock().dflags & b != 0 => 1,
        _ => -1,
    }
}

/// Write `cell` to the store again (when it is kept there) after a change.
fn touch(msg: &SipMsg, cell: &DlgCell) {
    if let Some(st) = msg.env.services.get::<DialogState>() {
        st.touch(cell);
    }
}

/// Set (or, with `None`, remove) variable `name` of `cell`.
pub fn set_var(cell: &DlgCell, name: &str, value: Option<&str>) {
    let mut inner = cell.lock();
    inner.vars.retain(|(k, _)| k != name);
    if let Some(v) = value {
        inner.vars.push((name.to_string(), v.to_string()));
    }
}

/// Variable `name` of `cell`.
pub fn get_var(cell: &DlgCell, name: &str) -> Option<String> {
    cell.lock()
        .vars
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

/// `$dlg_var(name)` of the message's dialog (null without one).
pub fn pv_var(msg: &SipMsg, name: &str) -> Option<String> {
    lookup(msg).and_then(|c| get_var(&c, name))
}

/// Assign `$dlg_var(name)`; false without a dialog.
pub fn pv_set_var(msg: &mut SipMsg, name: &str, value: Option<&str>) -> bool {
    match find_or_new(msg) {
        Some(c) => {
            set_var(&c, name, value);
            touch(msg, &c);
            true
        }
        None => false,
    }
}

/// A `$dlg(attr)` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DlgPv {
    /// A number.
    Int(i64),
    /// Text.
    Str(String),
}

/// `$dlg(attr)` of the message's dialog: `h_id`, `h_entry`, `state`, `callid`, `from_uri`,
/// `from_tag`, `to_uri`, `to_tag`, `from_contact`, `to_contact`, `from_cseq`, `to_cseq`,
/// `dflags`, `lifetime`, `timeout`, `start_ts`, `init_ts`, `end_ts`, `ref`; null without a
/// dialog or for another name.
pub fn pv_get(msg: &SipMsg, attr: &str) -> Option<DlgPv> {
    let c = lookup(msg)?;
    let i = c.lock();
    let int = |n: i64| Some(DlgPv::Int(n));
    let s = |v: &str| Some(DlgPv::Str(v.to_string()));
    match attr {
        "h_id" => int(c.h_id.into()),
        "h_entry" => int(c.h_entry.into()),
        "ref" => int(1),
        "state" => int(i.state as i64),
        "callid" => s(&c.call_id),
        "from_uri" => s(&i.from_uri),
        "from_tag" => s(&i.caller.tag),
        "to_uri" => s(&i.to_uri),
        "to_tag" => s(&i.callee.tag),
        "from_contact" => s(&i.caller.contact),
        "to_contact" => s(&i.callee.contact),
        "from_cseq" => s(&i.caller.cseq.to_string()),
        "to_cseq" => s(&i.callee.cseq.to_string()),
        "dflags" => int(i.dflags.into()),
        "lifetime" | "timeout" => int(i.lifetime.into()),
        "start_ts" => int(i.start_ts),
        "init_ts" => int(i.init_ts),
        "end_ts" => int(i.end_ts),
        _ => None,
    }
}

/// Set variable `name` of the message's dialog.
#[kemi(module = "dialog")]
pub fn var_sets(msg: &mut SipMsg, name: &str, val: &str) -> i32 {
    if pv_set_var(msg, name, Some(val)) {
        1
    } else {
        -1
    }
}

fn var_mode(msg: &mut SipMsg, name: &str, null: Xval) -> Xval {
    pv_var(msg, name).map_or(null, Xval::Str)
}

/// Variable `name` of the message's dialog, null when unset.
#[kemi(module = "dialog")]
pub fn var_get(msg: &mut SipMsg, name: &str) -> Xval {
    var_mode(msg, name, Xval::Null)
}

/// Like `var_get`, `""` when unset.
#[kemi(module = "dialog")]
pub fn var_gete(msg: &mut SipMsg, name: &str) -> Xval {
    var_mode(msg, name, Xval::str(""))
}

/// Like `var_get`, `"<null>"` when unset.
#[kemi(module = "dialog")]
pub fn var_getw(msg: &mut SipMsg, name: &str) -> Xval {
    var_mode(msg, name, Xval::str("<null>"))
}

/// Remove variable `name` of the message's dialog. 1.
#[kemi(module = "dialog")]
pub fn var_rm(msg: &mut SipMsg, name: &str) -> i32 {
    if let Some(c) = find(msg) {
        set_var(&c, name, None);
        touch(msg, &c);
    }
    1
}

/// 1 when variable `name` is unset (or there is no dialog), -1 when set.
#[kemi(module = "dialog")]
pub fn var_is_null(msg: &mut SipMsg, name: &str) -> i32 {
    if pv_var(msg, name).is_some() {
        -1
    } else {
        1
    }
}

/// Variable `key` of dialog `callid`/`ftag`/`ttag`, null when unknown or unset.
#[kemi(module = "dialog")]
pub fn dlg_get_var(msg: &mut SipMsg, callid: &str, ftag: &str, ttag: &str, key: &str) -> Xval {
    state_of(msg)
        .and_then(|st| st.lookup(callid, ftag, ttag))
        .and_then(|(c, _)| get_var(&c, key))
        .map_or(Xval::Null, Xval::Str)
}

/// Set variable `key` of dialog `callid`/`ftag`/`ttag` to `val`. 1, or -1 when unknown.
#[kemi(module = "dialog")]
pub fn dlg_set_var(
    msg: &mut SipMsg,
    callid: &str,
    ftag: &str,
    ttag: &str,
    key: &str,
    val: &str,
) -> i32 {
    match state_of(msg).and_then(|st| st.lookup(callid, ftag, ttag)) {
        Some((c, _)) => {
            set_var(&c, key, Some(val));
            touch(msg, &c);
            1
        }
        None => -1,
    }
}

#[cfg(test)]
mod tests;
