//! The `htable` module (`KSR.htable.*`, `$sht(table=>key)`): named hash tables shared by every
//! worker, declared with Kamailio's modparam syntax:
//!
//! ```toml
//! [modparam.htable]
//! htable = ["ipban=>size=8;autoexpire=300;", "a=>initval=0;dbtable=htable;dbmode=1;"]
//! ```
//!
//! Items hold a string or an integer, with an expiry in `autoexpire` tables ([`table`]). A table
//! with `dbtable` is loaded from the store at startup; with `dbmode=1` every change is also
//! written through to it (Kamailio writes the whole table back at shutdown instead; the result
//! after a clean stop is the same, and a crash loses nothing). Expired items are swept every
//! `timer_interval` seconds (20).
//!
//! Return codes are Kamailio's, quirks included: `sht_reset` gives 0 on success,
//! `sht_rm_name_re` gives 1 for an unknown table, `sht_inc`/`sht_dec` give the new value or
//! -255, `sht_is_null` gives 1 (null), -1 (set), -2 (table has `initval`) or 2 (no table).

pub mod spec;
pub mod table;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use kemi_runtime::msg::LogLevel;
use kemi_runtime::services::ScriptEvent;
use kemi_runtime::{kemi, SipMsg, Xval};

use crate::modparam::ModParams;
use crate::setup::{SetupCtx, SetupError};
use crate::store::{check_table, HtableValue, Writer};
use spec::TableSpec;
use table::{Htable, Matcher, On, WriteThrough};

/// What `sht_inc`/`sht_dec` return when the item cannot be incremented (Kamailio's
/// `KSR_HT_KEMI_NOINTVAL`).
pub const NO_INT_VAL: i32 = -255;

/// Every table of one server.
#[derive(Debug, Default)]
pub struct HtableState {
    tables: HashMap<String, Arc<Htable>>,
    writer: Option<Arc<Writer>>,
    db_expires: bool,
}

impl HtableState {
    /// Tables from definitions (no store): for tests and hosts without one.
    pub fn from_specs(specs: Vec<TableSpec>) -> HtableState {
        HtableState {
            tables: specs
                .into_iter()
                .map(|s| (s.name.clone(), Arc::new(Htable::new(s, None))))
                .collect(),
            writer: None,
            db_expires: false,
        }
    }

    /// The table `name`.
    pub fn table(&self, name: &str) -> Option<&Arc<Htable>> {
        self.tables.get(name)
    }

    /// Every table, by name.
    pub fn tables(&self) -> Vec<&Arc<Htable>> {
        let mut v: Vec<_> = self.tables.values().collect();
        v.sort_by(|a, b| a.name().cmp(b.name()));
        v
    }

    /// Reload table `name` from its `dbtable` (RPC `htable.reload`); the number of items.
    pub fn reload(&self, name: &str) -> Result<usize, String> {
        let t = self
            .table(name)
            .ok_or_else(|| format!("no such htable: {name}"))?;
        let db = &t.spec().dbtable;
        let Some(w) = self.writer.as_ref().filter(|_| !db.is_empty()) else {
            return Err(format!("htable {name} has no dbtable"));
        };
        // Pending write-through first, so the reload sees this table's own changes.
        w.flush(Duration::from_secs(5));
        let rows = w.store().htable_rows(db).map_err(|e| e.to_string())?;
        t.load(rows, self.db_expires);
        Ok(t.len())
    }

    /// Drop expired items of every table.
    pub fn sweep(&self) -> usize {
        self.tables.values().map(|t| t.sweep()).sum()
    }
}

/// Modparams of htable (Kamailio's names).
const KNOWN: &[&str] = &[
    "htable",
    "db_url",
    "key_name_column",
    "key_type_column",
    "value_type_column",
    "key_value_column",
    "expires_column",
    "array_size_suffix",
    "fetch_rows",
    "timer_interval",
    "db_expires",
    "enable_dmq",
    "dmq_init_sync",
    "dmq_peer_id",
    "timer_procs",
    "event_callback",
    "event_callback_mode",
];

/// Set up htable: parse every `htable` definition, load `dbtable`s, register the sweep.
pub fn setup(ctx: &mut SetupCtx<'_>) -> Result<(), SetupError> {
    let params = ctx.params("htable");
    params.check_known(KNOWN)?;
    for (param, default) in [
        ("key_name_column", "key_name"),
        ("key_type_column", "key_type"),
        ("value_type_column", "value_type"),
        ("key_value_column", "key_value"),
        ("expires_column", "expires"),
    ] {
        if let Some(v) = params.str(param)? {
            if v != default {
                return Err(params
                    .error(
                        param,
                        format!("only the default column `{default}` is supported"),
                    )
                    .into());
            }
        }
    }
    if params.int("enable_dmq", 0)? != 0 {
        return Err(params
            .error("enable_dmq", "DMQ replication is not supported")
            .into());
    }
    // `event_callback`: the script function Kamailio's KEMI runs for the htable event routes.
    // `htable:mod-init` runs once at startup, before the first message (with either
    // `event_callback_mode`: sipd has no separate main process to run it in first).
    let mode = params.int("event_callback_mode", 0)?;
    if !(0..=1).contains(&mode) {
        return Err(params.error("event_callback_mode", "must be 0 or 1").into());
    }
    if let Some(cb) = params.str("event_callback")? {
        if !cb.is_empty() {
            ctx.services.on_startup(ScriptEvent {
                callback: cb,
                name: "htable:mod-init".into(),
            });
        }
    }
    let interval = params.int("timer_interval", 20)?;
    if interval <= 0 {
        return Err(params
            .error("timer_interval", "must be a positive number of seconds")
            .into());
    }
    let db_expires = params.int("db_expires", 0)? != 0;
    let specs = parse_specs(&params)?;

    let writer = if specs.iter().any(|s| !s.dbtable.is_empty()) {
        Some(ctx.store(&params)?)
    } else {
        None
    };
    let mut tables = HashMap::new();
    for spec in specs {
        let mut rows = Vec::new();
        let mut write = None;
        if let (Some(w), false) = (&writer, spec.dbtable.is_empty()) {
            check_table(&spec.dbtable).map_err(SetupCtx::store_error("htable"))?;
            rows = w
                .store()
                .htable_rows(&spec.dbtable)
                .map_err(SetupCtx::store_error("htable"))?;
            if spec.dbmode != 0 {
                write = Some(WriteThrough {
                    writer: Arc::clone(w),
                    table: spec.dbtable.clone(),
                    expires: db_expires,
                });
            }
        }
        let name = spec.name.clone();
        let t = Htable::new(spec, write);
        t.load(rows, db_expires);
        tables.insert(name, Arc::new(t));
    }
    let state = Arc::new(HtableState {
        tables,
        writer,
        db_expires,
    });
    let sweeper = Arc::clone(&state);
    ctx.services.every(
        "htable expiry",
        Duration::from_secs(interval as u64),
        move || {
            sweeper.sweep();
        },
    );
    ctx.services.insert(state);
    Ok(())
}

/// Parse the `htable` modparam (one definition or a list); duplicate names are refused.
pub fn parse_specs(params: &ModParams) -> Result<Vec<TableSpec>, crate::modparam::ModparamError> {
    let mut specs: Vec<TableSpec> = Vec::new();
    for def in params.strs("htable")? {
        let spec = TableSpec::parse(&def).map_err(|e| params.error("htable", e.to_string()))?;
        if specs.iter().any(|s| s.name == spec.name) {
            return Err(params.error("htable", format!("htable `{}` is defined twice", spec.name)));
        }
        specs.push(spec);
    }
    Ok(specs)
}

/// The table `name` of the message's server; logs when there is none.
fn table_of(msg: &mut SipMsg, name: &str) -> Option<Arc<Htable>> {
    let t = msg
        .env
        .services
        .get::<HtableState>()
        .and_then(|s| s.table(name))
        .cloned();
    if t.is_none() {
        msg.log(LogLevel::Err, &format!("htable: no such htable: {name}"));
    }
    t
}

/// An integer as a script value (a 64-bit one when it does not fit 32 bits).
fn int_xval(n: i64) -> Xval {
    i32::try_from(n).map_or(Xval::Long(n), Xval::Int)
}

/// The value `$sht(table=>key)` reads: the item, else the table's `initval`, else null (`None`
/// also when there is no such table).
pub fn read(msg: &SipMsg, table: &str, key: &str) -> Option<HtableValue> {
    let Some(t) = msg
        .env
        .services
        .get::<HtableState>()
        .and_then(|s| s.table(table))
    else {
        tracing::error!(target: "script", "htable: no such htable: {table}");
        return None;
    };
    t.get(key)
        .or_else(|| t.spec().initval.map(HtableValue::Int))
}

/// Assign `$sht(table=>key)` (`None` deletes it); false when there is no such table.
pub fn write(msg: &mut SipMsg, table: &str, key: &str, value: Option<HtableValue>) -> bool {
    let Some(t) = table_of(msg, table) else {
        return false;
    };
    match value {
        Some(v) => t.set(key, v, 0),
        None => {
            t.delete(key);
        }
    }
    true
}

#[derive(Clone, Copy)]
enum NullAs {
    Null,
    Empty,
    Printed,
}

fn get_mode(msg: &mut SipMsg, table: &str, key: &str, null: NullAs) -> Xval {
    let value = table_of(msg, table).and_then(|t| {
        t.get(key)
            .or_else(|| t.spec().initval.map(HtableValue::Int))
    });
    match value {
        Some(HtableValue::Int(n)) => int_xval(n),
        Some(HtableValue::Str(s)) => Xval::Str(s),
        None => match null {
            NullAs::Null => Xval::Null,
            NullAs::Empty => Xval::str(""),
            NullAs::Printed => Xval::str("<null>"),
        },
    }
}

/// The value of `$sht(htname=>itname)`: an integer or a string; the table's `initval` when the
/// item is not set; null when it is not set and there is no `initval` (or no such table).
#[kemi(module = "htable", name = "sht_get")]
pub fn sht_get(msg: &mut SipMsg, htname: &str, itname: &str) -> Xval {
    get_mode(msg, htname, itname, NullAs::Null)
}

/// Like `sht_get`, with `""` instead of null.
#[kemi(module = "htable", name = "sht_gete")]
pub fn sht_gete(msg: &mut SipMsg, htname: &str, itname: &str) -> Xval {
    get_mode(msg, htname, itname, NullAs::Empty)
}

/// Like `sht_get`, with `"<null>"` instead of null.
#[kemi(module = "htable", name = "sht_getw")]
pub fn sht_getw(msg: &mut SipMsg, htname: &str, itname: &str) -> Xval {
    get_mode(msg, htname, itname, NullAs::Printed)
}

fn set(msg: &mut SipMsg, htname: &str, itname: &str, v: HtableValue, exv: i64) -> i32 {
    match table_of(msg, htname) {
        Some(t) => {
            t.set(itname, v, exv);
            1
        }
        None => -1,
    }
}

/// Set item `itname` of `htname` to the string `itval`. 1, or -1 for an unknown table.
#[kemi(module = "htable", name = "sht_sets")]
pub fn sht_sets(msg: &mut SipMsg, htname: &str, itname: &str, itval: &str) -> i32 {
    set(msg, htname, itname, HtableValue::Str(itval.into()), 0)
}

/// Set item `itname` of `htname` to the integer `itval`. 1, or -1 for an unknown table.
#[kemi(module = "htable", name = "sht_seti")]
pub fn sht_seti(msg: &mut SipMsg, htname: &str, itname: &str, itval: i32) -> i32 {
    set(msg, htname, itname, HtableValue::Int(itval.into()), 0)
}

/// Let item `itname` live `exval` more seconds (0: forever). Only tables with `autoexpire`
/// expire items, as in Kamailio; elsewhere this does nothing. 1, or -1 for an unknown table.
#[kemi(module = "htable", name = "sht_setex")]
pub fn sht_setex(msg: &mut SipMsg, htname: &str, itname: &str, exval: i32) -> i32 {
    match table_of(msg, htname) {
        Some(t) => {
            t.set_expire(itname, exval.into());
            1
        }
        None => -1,
    }
}

/// Set item `itname` to the integer `itval`, expiring in `exval` seconds (autoexpire tables).
#[kemi(module = "htable", name = "sht_setxi")]
pub fn sht_setxi(msg: &mut SipMsg, htname: &str, itname: &str, itval: i32, exval: i32) -> i32 {
    set(
        msg,
        htname,
        itname,
        HtableValue::Int(itval.into()),
        exval.into(),
    )
}

/// Set item `itname` to the string `itval`, expiring in `exval` seconds (autoexpire tables).
#[kemi(module = "htable", name = "sht_setxs")]
pub fn sht_setxs(msg: &mut SipMsg, htname: &str, itname: &str, itval: &str, exval: i32) -> i32 {
    set(
        msg,
        htname,
        itname,
        HtableValue::Str(itval.into()),
        exval.into(),
    )
}

/// 1 when item `itname` is not set, -1 when it is, -2 when the table has an `initval` (never
/// null), 2 when there is no such table.
#[kemi(module = "htable", name = "sht_is_null")]
pub fn sht_is_null(msg: &mut SipMsg, htname: &str, itname: &str) -> i32 {
    let Some(t) = msg
        .env
        .services
        .get::<HtableState>()
        .and_then(|s| s.table(htname))
    else {
        return 2;
    };
    if t.spec().initval.is_some() {
        -2
    } else if t.get(itname).is_some() {
        -1
    } else {
        1
    }
}

fn add(msg: &mut SipMsg, htname: &str, itname: &str, delta: i64) -> i32 {
    let Some(t) = msg
        .env
        .services
        .get::<HtableState>()
        .and_then(|s| s.table(htname))
    else {
        return NO_INT_VAL;
    };
    t.add(itname, delta).map_or(NO_INT_VAL, |n| n as i32)
}

/// Add 1 to the integer item `itname` and return the new value. A missing item starts from the
/// table's `initval`; without one, for a string item or an unknown table: -255.
#[kemi(module = "htable", name = "sht_inc")]
pub fn sht_inc(msg: &mut SipMsg, htname: &str, itname: &str) -> i32 {
    add(msg, htname, itname, 1)
}

/// Subtract 1 from the integer item `itname` and return the new value (-255 as `sht_inc`).
#[kemi(module = "htable", name = "sht_dec")]
pub fn sht_dec(msg: &mut SipMsg, htname: &str, itname: &str) -> i32 {
    add(msg, htname, itname, -1)
}

/// Delete item `itname` of `htname`. 1 (also when it was not set), -1 for an unknown table.
#[kemi(module = "htable", name = "sht_rm")]
pub fn sht_rm(msg: &mut SipMsg, htname: &str, itname: &str) -> i32 {
    match table_of(msg, htname) {
        Some(t) => {
            t.delete(itname);
            1
        }
        None => -1,
    }
}

fn rm_re(msg: &mut SipMsg, htname: &str, rexp: &str, on: On) -> i32 {
    // Kamailio answers 1 for an unknown table here.
    let Some(t) = msg
        .env
        .services
        .get::<HtableState>()
        .and_then(|s| s.table(htname))
        .cloned()
    else {
        return 1;
    };
    if rexp.is_empty() {
        return -1;
    }
    match Matcher::regex(rexp) {
        Ok(m) => {
            t.remove_matching(&m, on);
            1
        }
        Err(e) => {
            msg.log(LogLevel::Err, &format!("htable: bad re {rexp}: {e}"));
            -1
        }
    }
}

/// Delete every item of `htname` whose name matches the regular expression `rexp`
/// (case-insensitive). 1; -1 for a bad expression; 1 for an unknown table, as Kamailio.
#[kemi(module = "htable", name = "sht_rm_name_re")]
pub fn sht_rm_name_re(msg: &mut SipMsg, htname: &str, rexp: &str) -> i32 {
    rm_re(msg, htname, rexp, On::Name)
}

/// Delete every item of `htname` whose string value matches `rexp` (case-insensitive).
#[kemi(module = "htable", name = "sht_rm_value_re")]
pub fn sht_rm_value_re(msg: &mut SipMsg, htname: &str, rexp: &str) -> i32 {
    rm_re(msg, htname, rexp, On::Value)
}

fn rm_items(msg: &mut SipMsg, htname: &str, op: &str, val: &str, on: On) -> i32 {
    let Some(t) = table_of(msg, htname) else {
        return -1;
    };
    if val.is_empty() {
        return -1;
    }
    let m = match op {
        "re" => match Matcher::regex(val) {
            Ok(m) => m,
            Err(e) => {
                msg.log(LogLevel::Err, &format!("htable: bad re {val}: {e}"));
                return -1;
            }
        },
        "sw" => Matcher::Sw(val.into()),
        "ew" => Matcher::Ew(val.into()),
        "in" => Matcher::In(val.into()),
        _ => {
            msg.log(
                LogLevel::Warn,
                &format!("htable: unsupported match operator: {op}"),
            );
            return -1;
        }
    };
    t.remove_matching(&m, on);
    1
}

/// Delete every item of `htname` whose name matches `val` by `op`: `re` (regex), `sw` (starts
/// with), `ew` (ends with), `in` (contains). 1, or -1 (unknown table or operator).
#[kemi(module = "htable", name = "sht_rm_name")]
pub fn sht_rm_name(msg: &mut SipMsg, htname: &str, op: &str, val: &str) -> i32 {
    rm_items(msg, htname, op, val, On::Name)
}

/// Delete every item of `htname` whose string value matches `val` by `op` (as `sht_rm_name`).
#[kemi(module = "htable", name = "sht_rm_value")]
pub fn sht_rm_value(msg: &mut SipMsg, htname: &str, op: &str, val: &str) -> i32 {
    rm_items(msg, htname, op, val, On::Value)
}

fn match_items(msg: &mut SipMsg, htname: &str, op: &str, val: &str, on: On) -> i32 {
    let Some(t) = table_of(msg, htname) else {
        return -1;
    };
    if val.is_empty() {
        return -1;
    }
    let m = match op {
        "eq" => Matcher::Eq(val.into()),
        "ne" => Matcher::Ne(val.into()),
        "sw" => Matcher::Sw(val.into()),
        "re" => match Matcher::regex(val) {
            Ok(m) => m,
            Err(e) => {
                msg.log(LogLevel::Err, &format!("htable: bad re {val}: {e}"));
                return -1;
            }
        },
        _ => {
            msg.log(
                LogLevel::Warn,
                &format!("htable: unsupported match operator: {op}"),
            );
            return -1;
        }
    };
    if t.any_matching(&m, on) {
        1
    } else {
        -1
    }
}

/// 1 when `htname` has an item whose name matches `mval` by `op` (`eq`, `ne`, `re`, `sw`), else
/// -1 (also for an unknown table or operator).
#[kemi(module = "htable", name = "sht_match_name")]
pub fn sht_match_name(msg: &mut SipMsg, htname: &str, op: &str, mval: &str) -> i32 {
    match_items(msg, htname, op, mval, On::Name)
}

/// 1 when `htname` has an item whose string value matches `mval` by `op` (as
/// `sht_match_name`), else -1.
#[kemi(module = "htable", name = "sht_match_str_value")]
pub fn sht_match_str_value(msg: &mut SipMsg, htname: &str, op: &str, mval: &str) -> i32 {
    match_items(msg, htname, op, mval, On::Value)
}

/// Delete every item of `htname`. 0 on success (Kamailio's value), -1 for an unknown table.
#[kemi(module = "htable", name = "sht_reset")]
pub fn sht_reset(msg: &mut SipMsg, htname: &str) -> i32 {
    match table_of(msg, htname) {
        Some(t) => {
            t.reset();
            0
        }
        None => -1,
    }
}

/// The number of items of `table` whose name matches `pattern` by `op`: `~~` (or "") regex,
/// `%~` starts with, `~%` ends with, `==` equal, `**` every item (`eq`, integer equality, never
/// matches names). -1 for an unknown table or an operator that is not 0 or 2 characters.
#[kemi(module = "htable", name = "sht_cn")]
pub fn sht_cn(msg: &mut SipMsg, table: &str, op: &str, pattern: &str) -> i32 {
    let Some(t) = table_of(msg, table) else {
        return -1;
    };
    if !op.is_empty() && op.len() != 2 {
        msg.log(LogLevel::Err, &format!("htable: invalid operator [{op}]"));
        return -1;
    }
    let m = match op {
        "**" => return t.len().try_into().unwrap_or(i32::MAX),
        "eq" => return 0,
        "%~" => Matcher::Sw(pattern.into()),
        "~%" => Matcher::Ew(pattern.into()),
        "==" => Matcher::Eq(pattern.into()),
        "~~" | "" => match Matcher::regex(pattern) {
            Ok(m) => m,
            Err(e) => {
                msg.log(LogLevel::Err, &format!("htable: bad re {pattern}: {e}"));
                return 0;
            }
        },
        // Kamailio takes an unknown two-letter operator as part of a regex.
        _ => match Matcher::regex(&format!("{op}{pattern}")) {
            Ok(m) => m,
            Err(_) => return 0,
        },
    };
    if pattern.is_empty() {
        return 0;
    }
    t.count(|k, _| m.matches(k)).try_into().unwrap_or(i32::MAX)
}

/// Lock the slot of `skey` in `htname` for this worker (re-entrant), so that a read-modify-write
/// between `sht_lock` and `sht_unlock` is not interleaved with another worker's. 1; -1 for an
/// unknown table, or when another worker held the slot for 2 s.
#[kemi(module = "htable", name = "sht_lock")]
pub fn sht_lock(msg: &mut SipMsg, htname: &str, skey: &str) -> i32 {
    match table_of(msg, htname) {
        Some(t) if t.script_lock(skey) => 1,
        Some(_) => {
            msg.log(
                LogLevel::Err,
                &format!("htable: slot of {htname}=>{skey} still locked by another worker"),
            );
            -1
        }
        None => -1,
    }
}

/// Unlock the slot of `skey` in `htname` locked by `sht_lock`. 1; -1 for an unknown table or a
/// slot this worker does not hold.
#[kemi(module = "htable", name = "sht_unlock")]
pub fn sht_unlock(msg: &mut SipMsg, htname: &str, skey: &str) -> i32 {
    match table_of(msg, htname) {
        Some(t) if t.script_unlock(skey) => 1,
        Some(_) => -1,
        None => -1,
    }
}
