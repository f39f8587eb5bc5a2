//! The dialog table: every tracked call of one server, shared by all workers.
//!
//! Dialogs sit in [`SHARDS`] maps keyed by Call-ID (the shard is Kamailio's `h_entry`, a
//! per-server counter its `h_id`); a lookup hashes the Call-ID, holds that shard's lock for one
//! map read, and compares tags outside it, so workers contend only on the same shard at the
//! same instant. Each dialog ([`DlgCell`]) has its own mutex for its state, legs, profiles and
//! variables. Lock order: a dialog's mutex may be held while a shard or a profile shard is
//! locked, never the other way round (lookups copy the candidates out of the shard first).
//!
//! States are Kamailio's numbers: 1 unconfirmed (INVITE seen), 2 early (a provisional reply
//! with a To tag), 3 confirmed without ACK (2xx), 4 confirmed (ACK), 5 deleted (BYE, timeout,
//! a negative final reply: then the dialog "failed").

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Instant;

use kemi_runtime::msg::{Proto, RecvInfo, RouteEnv, TxnWatch, Watcher};
use kemi_runtime::services::{EventQueue, PostedEvent, ScriptEvent};
use kemi_runtime::sip::{HeaderKind, Message, NameAddr};

/// Shards of the dialog table (Kamailio's `hash_size` default is 4096; 64 keeps contention
/// low for the worker counts sipd runs with).
pub const SHARDS: usize = 64;
/// Shards of each profile's value map.
const PROFILE_SHARDS: usize = 16;

/// A dialog's state, with Kamailio's numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum DlgState {
    /// The INVITE was seen, no reply with a To tag yet.
    Unconfirmed = 1,
    /// A provisional reply with a To tag.
    Early = 2,
    /// A 2xx, no ACK yet.
    ConfirmedNa = 3,
    /// The ACK of the 2xx.
    Confirmed = 4,
    /// Ended (BYE, timeout) or failed.
    Deleted = 5,
}

impl DlgState {
    /// Confirmed, with or without the ACK.
    pub fn is_confirmed(self) -> bool {
        matches!(self, DlgState::ConfirmedNa | DlgState::Confirmed)
    }
}

/// Which side of the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The party that sent the INVITE.
    Caller,
    /// The party that answered it.
    Callee,
}

/// What the dialog knows of one side: enough to send it a BYE.
#[derive(Clone, Debug, Default)]
pub struct Leg {
    /// Its tag (From tag of the caller, To tag of the callee).
    pub tag: String,
    /// Its Contact URI.
    pub contact: String,
    /// The highest CSeq number it used in this dialog.
    pub cseq: u32,
    /// The route set of a request sent to it (name-addr values, first hop first).
    pub route_set: Vec<String>,
    /// Where its messages came from (the BYE goes there when the route set is empty).
    pub addr: Option<SocketAddr>,
    /// Our socket it talks to.
    pub local: Option<SocketAddr>,
    /// The transport.
    pub proto: Proto,
}

/// The mutable part of a dialog.
#[derive(Debug)]
pub struct DlgInner {
    /// Its state.
    pub state: DlgState,
    /// The caller's side.
    pub caller: Leg,
    /// The callee's side.
    pub callee: Leg,
    /// The INVITE's From value (with the caller's tag).
    pub from: String,
    /// The INVITE's To value (no tag).
    pub to: String,
    /// The From URI.
    pub from_uri: String,
    /// The To URI.
    pub to_uri: String,
    /// When the INVITE was seen (Unix seconds).
    pub init_ts: i64,
    /// When it was confirmed (0 before).
    pub start_ts: i64,
    /// When it ended (0 before).
    pub end_ts: i64,
    /// Its timeout in seconds, counted from the confirmation (and each in-dialog request).
    pub lifetime: u32,
    /// Profiles it belongs to (profile, value; the value is empty for profiles without one).
    pub profiles: Vec<(Arc<str>, String)>,
    /// Its variables (`$dlg_var(name)`).
    pub vars: Vec<(String, String)>,
    /// Its flags (`dlg_setflag`).
    pub dflags: u32,
    /// In the table (its transaction started).
    pub inserted: bool,
}

/// One dialog.
pub struct DlgCell {
    /// Its shard (Kamailio's `h_entry`).
    pub h_entry: u32,
    /// Its number (Kamailio's `h_id`).
    pub h_id: u32,
    /// The Call-ID.
    pub call_id: Box<str>,
    inner: Mutex<DlgInner>,
    /// When it times out, in ms since the table's epoch; 0 for never (not confirmed).
    deadline: AtomicU64,
    me: Weak<DlgCell>,
    owner: Weak<DialogState>,
    /// The host facts of the INVITE (to tell our Record-Route entries from others).
    env: Arc<RouteEnv>,
}

impl std::fmt::Debug for DlgCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DlgCell")
            .field("h_entry", &self.h_entry)
            .field("h_id", &self.h_id)
            .field("call_id", &self.call_id)
            .finish()
    }
}

/// A poisoned lock still guards consistent data here (every update is a few field writes).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl DlgCell {
    /// Lock its mutable part.
    pub fn lock(&self) -> MutexGuard<'_, DlgInner> {
        lock(&self.inner)
    }

    /// The shared handle of this dialog (for message contexts and events).
    pub fn watcher(&self) -> Option<Watcher> {
        self.me.upgrade().map(|a| Watcher(a as Arc<dyn TxnWatch>))
    }

    /// Its deadline (ms since the table's epoch), 0 for none.
    pub fn deadline_ms(&self) -> u64 {
        self.deadline.load(Ordering::Relaxed)
    }

    fn owner(&self) -> Option<Arc<DialogState>> {
        self.owner.upgrade()
    }
}

impl TxnWatch for DlgCell {
    fn bound(&self) {
        if let (Some(st), Some(me)) = (self.owner(), self.me.upgrade()) {
            st.insert(&me);
        }
    }

    fn reply_out(&self, code: u16, reply: Option<(&Message, &RecvInfo)>) {
        let (Some(st), Some(me)) = (self.owner(), self.me.upgrade()) else {
            return;
        };
        st.on_reply(&me, code, reply);
    }
}

/// One profile: how many dialogs are in it, per value for profiles with values.
#[derive(Debug)]
pub struct Profile {
    /// Its name.
    pub name: Arc<str>,
    /// Declared in `profiles_with_value`.
    pub with_value: bool,
    total: AtomicI64,
    values: Vec<Mutex<HashMap<String, i64>>>,
}

impl Profile {
    fn new(name: &str, with_value: bool) -> Profile {
        Profile {
            name: Arc::from(name),
            with_value,
            total: AtomicI64::new(0),
            values: if with_value {
                (0..PROFILE_SHARDS).map(|_| Mutex::default()).collect()
            } else {
                Vec::new()
            },
        }
    }

    fn shard(&self, value: &str) -> Option<&Mutex<HashMap<String, i64>>> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        value.hash(&mut h);
        self.values.get((h.finish() as usize) % PROFILE_SHARDS)
    }

    fn add(&self, value: &str, n: i64) {
        self.total.fetch_add(n, Ordering::Relaxed);
        if let Some(s) = self.shard(value) {
            let mut m = lock(s);
            let e = m.entry(value.to_string()).or_insert(0);
            *e += n;
            if *e <= 0 {
                m.remove(value);
            }
        }
    }

    /// Dialogs in the profile (with `value`: those with that value).
    pub fn size(&self, value: Option<&str>) -> i64 {
        match value.filter(|v| self.with_value && !v.is_empty()) {
            Some(v) => self
                .shard(v)
                .map_or(0, |s| lock(s).get(v).copied().unwrap_or(0)),
            None => self.total.load(Ordering::Relaxed).max(0),
        }
    }
}

/// The module's settings (Kamailio's modparam names).
#[derive(Clone, Debug)]
pub struct DlgConfig {
    /// `default_timeout` (s): a confirmed dialog's lifetime (43200).
    pub default_timeout: u32,
    /// `send_bye`: a BYE goes to both sides of a dialog that times out (0 in Kamailio).
    pub send_bye: bool,
    /// `timeout_noreset`: in-dialog requests do not restart the timeout.
    pub timeout_noreset: bool,
    /// `event_callback`: the script function run for `dialog:start|end|failed`.
    pub event_callback: Option<String>,
}

impl Default for DlgConfig {
    fn default() -> Self {
        DlgConfig {
            default_timeout: 43_200,
            send_bye: false,
            timeout_noreset: false,
            event_callback: None,
        }
    }
}

/// Counters (Kamailio's `dialog` statistics).
#[derive(Debug, Default)]
pub struct DlgStats {
    /// Confirmed dialogs now.
    pub active: AtomicI64,
    /// Early dialogs now.
    pub early: AtomicI64,
    /// Dialogs that reached the table.
    pub processed: AtomicU64,
    /// Dialogs that timed out.
    pub expired: AtomicU64,
    /// Dialogs that failed (negative final reply).
    pub failed: AtomicU64,
}

/// A BYE job for the agent thread.
#[derive(Debug)]
pub struct ByeJob {
    /// The dialog.
    pub cell: Arc<DlgCell>,
    /// The sides to send to.
    pub sides: Vec<Side>,
}

/// One shard of the table: dialogs by Call-ID (several for forked or repeated Call-IDs).
type Shard = HashMap<Box<str>, Vec<Arc<DlgCell>>>;

/// Every dialog of one server.
pub struct DialogState {
    /// Settings.
    pub config: DlgConfig,
    /// Counters.
    pub stats: DlgStats,
    shards: Vec<Mutex<Shard>>,
    next_id: AtomicU32,
    /// Dialogs in the table (lets `loose_route` skip the lookup while there are none).
    live: std::sync::atomic::AtomicUsize,
    profiles: HashMap<String, Profile>,
    epoch: Instant,
    events: Option<Arc<EventQueue>>,
    /// The agent's job queue, once it runs.
    pub(crate) agent: OnceLock<std::sync::mpsc::Sender<ByeJob>>,
    /// BYEs sent and not answered yet, by Via branch (retransmitted by the agent).
    pub(crate) pending: Mutex<HashMap<String, crate::dialog::agent::PendingBye>>,
    /// Where confirmed dialogs are written (`db_mode = 1`).
    persist: Option<crate::dialog::persist::Persist>,
}

impl std::fmt::Debug for DialogState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DialogState")
            .field("config", &self.config)
            .field("stats", &self.stats)
            .finish()
    }
}

fn shard_of(call_id: &str) -> usize {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    call_id.hash(&mut h);
    (h.finish() as usize) % SHARDS
}

impl DialogState {
    /// An empty table with `config`, the profiles (name, with value) and, when events are
    /// configured, the queue they go to.
    pub fn new(
        config: DlgConfig,
        profiles: &[(String, bool)],
        events: Option<Arc<EventQueue>>,
    ) -> DialogState {
        DialogState {
            config,
            stats: DlgStats::default(),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            next_id: AtomicU32::new(1),
            live: std::sync::atomic::AtomicUsize::new(0),
            profiles: profiles
                .iter()
                .map(|(n, v)| (n.clone(), Profile::new(n, *v)))
                .collect(),
            epoch: Instant::now(),
            events,
            agent: OnceLock::new(),
            pending: Mutex::default(),
            persist: None,
        }
    }

    /// Write confirmed dialogs through `persist`.
    pub fn with_persist(mut self, persist: crate::dialog::persist::Persist) -> DialogState {
        self.persist = Some(persist);
        self
    }

    /// Put the dialogs of `rows` (read from the store at startup) back in the table with the
    /// rest of their timeout; rows past their deadline are deleted. The number restored.
    pub fn restore(self: &Arc<Self>, rows: &[crate::store::HtableRow]) -> usize {
        let now = crate::store::now_unix();
        let env = Arc::new(RouteEnv::default());
        let mut n = 0;
        for r in rows {
            let Some((call_id, inner)) = crate::dialog::persist::from_row(r) else {
                continue;
            };
            let left = r.expires - now;
            if left <= 0 {
                if let Some(p) = &self.persist {
                    let (table, key) = (p.table.clone(), r.key_name.clone());
                    p.writer
                        .submit("dialog", move |s| s.delete_htable(&table, &key));
                }
                continue;
            }
            let h_entry = shard_of(&call_id) as u32;
            let h_id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let owner = Arc::downgrade(self);
            let cell = Arc::new_cyclic(|me| DlgCell {
                h_entry,
                h_id,
                call_id: call_id.as_str().into(),
                inner: Mutex::new(inner),
                deadline: AtomicU64::new(0),
                me: me.clone(),
                owner,
                env: Arc::clone(&env),
            });
            let ms = u64::try_from(left).unwrap_or(0).saturating_mul(1000);
            cell.deadline
                .store(self.now_ms().saturating_add(ms).max(1), Ordering::Relaxed);
            self.stats.active.fetch_add(1, Ordering::Relaxed);
            self.insert(&cell);
            n += 1;
        }
        n
    }

    /// Write `cell` to the store when it is confirmed (with its mutex held by the caller).
    fn save(&self, cell: &DlgCell, inner: &DlgInner) {
        let Some(p) = &self.persist else {
            return;
        };
        if !inner.state.is_confirmed() || !inner.inserted {
            return;
        }
        let left_ms = cell.deadline_ms().saturating_sub(self.now_ms());
        let deadline = crate::store::now_unix() + i64::try_from(left_ms / 1000 + 1).unwrap_or(0);
        let row = crate::dialog::persist::row(&cell.call_id, inner, deadline);
        let table = p.table.clone();
        p.writer
            .submit("dialog", move |s| s.put_htable(&table, &row));
    }

    /// Write `cell` again after a change of its profiles, variables or flags.
    pub fn touch(&self, cell: &DlgCell) {
        if self.persist.is_some() {
            let inner = cell.lock();
            self.save(cell, &inner);
        }
    }

    /// Milliseconds since the table's epoch.
    pub fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Dialogs in the table now (one atomic load).
    pub fn live(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// The profile `name`.
    pub fn profile(&self, name: &str) -> Option<&Profile> {
        self.profiles.get(name)
    }

    /// Every profile, by name.
    pub fn profiles(&self) -> Vec<&Profile> {
        let mut v: Vec<_> = self.profiles.values().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// A new dialog for the initial INVITE `m` received as `rcv` (not in the table until its
    /// transaction starts: [`TxnWatch::bound`]). `None` when the INVITE lacks a Call-ID or a
    /// From tag.
    pub fn create(
        self: &Arc<Self>,
        m: &Message,
        rcv: &RecvInfo,
        env: &Arc<RouteEnv>,
    ) -> Option<Arc<DlgCell>> {
        let call_id = m.call_id().filter(|c| !c.is_empty())?;
        let tag = m.from_tag().filter(|t| !t.is_empty())?;
        let from = m.first_kind(HeaderKind::From)?.value.trim().to_string();
        let to = m.first_kind(HeaderKind::To)?.value.trim().to_string();
        let uri_of = |v: &str, h| {
            NameAddr::parse(v, h)
                .map(|n| n.uri.to_string())
                .unwrap_or_default()
        };
        let cseq = m.cseq().and_then(Result::ok).map_or(0, |c| c.number);
        let contact = m
            .contacts()
            .next()
            .and_then(Result::ok)
            .map(|c| c.uri.to_string())
            .unwrap_or_default();
        let route_set: Vec<String> = m
            .list(HeaderKind::RecordRoute)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect();
        let inner = DlgInner {
            state: DlgState::Unconfirmed,
            caller: Leg {
                tag: tag.to_string(),
                contact,
                cseq,
                route_set,
                addr: Some(rcv.src),
                local: Some(rcv.dst),
                proto: rcv.proto,
            },
            callee: Leg {
                cseq,
                ..Leg::default()
            },
            from_uri: uri_of(&from, "From"),
            to_uri: uri_of(&to, "To"),
            from,
            to,
            init_ts: crate::store::now_unix(),
            start_ts: 0,
            end_ts: 0,
            lifetime: self.config.default_timeout,
            profiles: Vec::new(),
            vars: Vec::new(),
            dflags: 0,
            inserted: false,
        };
        let h_entry = shard_of(call_id) as u32;
        let h_id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let owner = Arc::downgrade(self);
        Some(Arc::new_cyclic(|me| DlgCell {
            h_entry,
            h_id,
            call_id: call_id.into(),
            inner: Mutex::new(inner),
            deadline: AtomicU64::new(0),
            me: me.clone(),
            owner,
            env: Arc::clone(env),
        }))
    }

    /// Put `cell` in the table (its INVITE started a transaction) and count it in its profiles.
    fn insert(&self, cell: &Arc<DlgCell>) {
        let mut inner = cell.lock();
        if inner.inserted || inner.state == DlgState::Deleted {
            return;
        }
        inner.inserted = true;
        for (p, v) in &inner.profiles {
            if let Some(p) = self.profiles.get(&**p) {
                p.add(v, 1);
            }
        }
        self.stats.processed.fetch_add(1, Ordering::Relaxed);
        self.live.fetch_add(1, Ordering::Relaxed);
        if let Some(s) = self.shards.get(cell.h_entry as usize) {
            lock(s)
                .entry(cell.call_id.clone())
                .or_default()
                .push(Arc::clone(cell));
        }
    }

    /// Take `cell` out of the table (with its mutex held by the caller).
    fn remove(&self, cell: &DlgCell, inner: &mut DlgInner) {
        if !inner.inserted {
            return;
        }
        inner.inserted = false;
        self.live.fetch_sub(1, Ordering::Relaxed);
        for (p, v) in &inner.profiles {
            if let Some(p) = self.profiles.get(&**p) {
                p.add(v, -1);
            }
        }
        if let Some(s) = self.shards.get(cell.h_entry as usize) {
            let mut m = lock(s);
            if let Some(list) = m.get_mut(&cell.call_id) {
                list.retain(|c| c.h_id != cell.h_id);
                if list.is_empty() {
                    m.remove(&cell.call_id);
                }
            }
        }
    }

    /// Move `cell` to `new`, keeping the counters, the table and the timeout right; the event
    /// to raise, if any (raised by the caller once the dialog's mutex is released).
    fn transition(
        &self,
        cell: &DlgCell,
        inner: &mut DlgInner,
        new: DlgState,
    ) -> Option<&'static str> {
        let old = inner.state;
        if old == new || old == DlgState::Deleted {
            return None;
        }
        inner.state = new;
        if old == DlgState::Early {
            self.stats.early.fetch_sub(1, Ordering::Relaxed);
        }
        if new == DlgState::Early {
            self.stats.early.fetch_add(1, Ordering::Relaxed);
        }
        if new.is_confirmed() && !old.is_confirmed() {
            self.stats.active.fetch_add(1, Ordering::Relaxed);
            inner.start_ts = crate::store::now_unix();
            self.arm(cell, inner.lifetime);
        }
        if new == DlgState::Deleted {
            cell.deadline.store(0, Ordering::Relaxed);
            inner.end_ts = crate::store::now_unix();
            let was_inserted = inner.inserted;
            if let (Some(p), true) = (&self.persist, was_inserted && old.is_confirmed()) {
                let table = p.table.clone();
                let key = crate::dialog::persist::key(&cell.call_id, &inner.caller.tag);
                p.writer
                    .submit("dialog", move |s| s.delete_htable(&table, &key));
            }
            self.remove(cell, inner);
            if old.is_confirmed() {
                self.stats.active.fetch_sub(1, Ordering::Relaxed);
                return was_inserted.then_some("dialog:end");
            }
            self.stats.failed.fetch_add(1, Ordering::Relaxed);
            return was_inserted.then_some("dialog:failed");
        }
        self.save(cell, inner);
        (new == DlgState::ConfirmedNa && !old.is_confirmed()).then_some("dialog:start")
    }

    fn arm(&self, cell: &DlgCell, secs: u32) {
        let at = self.now_ms().saturating_add(u64::from(secs) * 1000).max(1);
        cell.deadline.store(at, Ordering::Relaxed);
    }

    /// Raise `name` for `cell` when an `event_callback` is configured.
    fn raise(&self, cell: &DlgCell, name: Option<&'static str>) {
        let (Some(name), Some(q), Some(cb)) = (name, &self.events, &self.config.event_callback)
        else {
            return;
        };
        q.post(PostedEvent {
            event: ScriptEvent {
                callback: cb.clone(),
                name: name.to_string(),
            },
            dialog: cell.watcher(),
        });
    }

    /// A reply the INVITE's transaction sent upstream.
    fn on_reply(&self, cell: &Arc<DlgCell>, code: u16, reply: Option<(&Message, &RecvInfo)>) {
        let event = {
            let mut inner = cell.lock();
            match (code, reply) {
                (101..=199, Some((m, _))) => match m.to_tag().filter(|t| !t.is_empty()) {
                    Some(tag) if inner.state == DlgState::Unconfirmed => {
                        inner.callee.tag = tag.to_string();
                        self.transition(cell, &mut inner, DlgState::Early)
                    }
                    _ => None,
                },
                (200..=299, Some((m, rcv))) if !inner.state.is_confirmed() => {
                    self.learn_callee(cell, &mut inner, m, rcv);
                    self.transition(cell, &mut inner, DlgState::ConfirmedNa)
                }
                (300.., _) if !inner.state.is_confirmed() => {
                    self.transition(cell, &mut inner, DlgState::Deleted)
                }
                _ => None,
            }
        };
        self.raise(cell, event);
    }

    /// What the 2xx tells of the callee: its tag, Contact, route set, address.
    fn learn_callee(&self, cell: &DlgCell, inner: &mut DlgInner, m: &Message, rcv: &RecvInfo) {
        if let Some(tag) = m.to_tag().filter(|t| !t.is_empty()) {
            inner.callee.tag = tag.to_string();
        }
        inner.callee.contact = m
            .contacts()
            .next()
            .and_then(Result::ok)
            .map(|c| c.uri.to_string())
            .unwrap_or_default();
        // The 2xx's Record-Route: the callee's side is above our own entries; a request to
        // the callee visits them nearest first.
        let mut above = Vec::new();
        for v in m.list(HeaderKind::RecordRoute).map(str::trim) {
            let ours = NameAddr::parse(v, "Record-Route")
                .is_ok_and(|n| crate::core::myself::names_us(&cell.env, n.uri));
            if ours {
                break;
            }
            above.push(v.to_string());
        }
        let any_ours = m.list(HeaderKind::RecordRoute).any(|v| {
            NameAddr::parse(v.trim(), "Record-Route")
                .is_ok_and(|n| crate::core::myself::names_us(&cell.env, n.uri))
        });
        above.reverse();
        inner.callee.route_set = if any_ours { above } else { Vec::new() };
        inner.callee.addr = Some(rcv.src);
        inner.callee.local = Some(rcv.dst);
        inner.callee.proto = rcv.proto;
    }

    /// The dialog of an in-dialog request (Call-ID, From and To tags, either direction) and
    /// whether it goes from the caller to the callee.
    pub fn lookup(
        &self,
        call_id: &str,
        from_tag: &str,
        to_tag: &str,
    ) -> Option<(Arc<DlgCell>, bool)> {
        let shard = self.shards.get(shard_of(call_id))?;
        let candidates: Vec<Arc<DlgCell>> = lock(shard).get(call_id)?.clone();
        candidates.into_iter().find_map(|c| {
            let inner = c.lock();
            let (a, b) = (&inner.caller.tag, &inner.callee.tag);
            let down = a == from_tag && b == to_tag;
            let up = a == to_tag && b == from_tag;
            drop(inner);
            (down || up).then_some((c, down))
        })
    }

    /// The dialog `h_entry:h_id`.
    pub fn by_id(&self, h_entry: u32, h_id: u32) -> Option<Arc<DlgCell>> {
        let shard = self.shards.get(h_entry as usize)?;
        let m = lock(shard);
        m.values()
            .flat_map(|v| v.iter())
            .find(|c| c.h_id == h_id)
            .cloned()
    }

    /// Every dialog in the table.
    pub fn all(&self) -> Vec<Arc<DlgCell>> {
        let mut out = Vec::new();
        for s in &self.shards {
            out.extend(lock(s).values().flat_map(|v| v.iter().cloned()));
        }
        out.sort_by_key(|c| (c.h_entry, c.h_id));
        out
    }

    /// An in-dialog request of `cell` (`down`: from the caller): an ACK confirms, a BYE ends,
    /// others restart the timeout (unless `timeout_noreset`).
    pub fn on_request(&self, cell: &DlgCell, down: bool, method: &str, cseq: u32) {
        let event = {
            let mut inner = cell.lock();
            if method != "ACK" {
                let leg = if down {
                    &mut inner.caller
                } else {
                    &mut inner.callee
                };
                leg.cseq = leg.cseq.max(cseq);
            }
            match method {
                "ACK" if inner.state == DlgState::ConfirmedNa => {
                    self.transition(cell, &mut inner, DlgState::Confirmed)
                }
                "BYE" => self.transition(cell, &mut inner, DlgState::Deleted),
                _ => {
                    if inner.state.is_confirmed() && !self.config.timeout_noreset {
                        self.arm(cell, inner.lifetime);
                        self.save(cell, &inner);
                    }
                    None
                }
            }
        };
        self.raise(cell, event);
    }

    /// Set the timeout of `cell` to `secs` (from now when it is confirmed, else from its
    /// confirmation).
    pub fn set_timeout(&self, cell: &DlgCell, secs: u32) {
        let mut inner = cell.lock();
        inner.lifetime = secs;
        if inner.state.is_confirmed() {
            self.arm(cell, secs);
            self.save(cell, &inner);
        }
    }

    /// End `cell` now (timeout, `dlg_bye`, `dlg.end_dlg`): deleted, `dialog:end` raised.
    /// `expired` counts it as timed out. False when it had ended already.
    pub fn end(&self, cell: &DlgCell, expired: bool) -> bool {
        let event = {
            let mut inner = cell.lock();
            if inner.state == DlgState::Deleted {
                return false;
            }
            if expired {
                self.stats.expired.fetch_add(1, Ordering::Relaxed);
            }
            self.transition(cell, &mut inner, DlgState::Deleted)
        };
        self.raise(cell, event);
        true
    }

    /// Dialogs whose deadline passed at `now_ms`.
    pub fn expired(&self, now_ms: u64) -> Vec<Arc<DlgCell>> {
        let mut out = Vec::new();
        for s in &self.shards {
            let m = lock(s);
            for c in m.values().flat_map(|v| v.iter()) {
                let d = c.deadline_ms();
                if d != 0 && d <= now_ms {
                    out.push(Arc::clone(c));
                }
            }
        }
        out
    }

    /// Add `cell` to `profile` with `value` (counted at once when it is in the table, else
    /// when it gets there). False for an unknown profile.
    pub fn set_profile(&self, cell: &DlgCell, profile: &str, value: &str) -> bool {
        let Some(p) = self.profiles.get(profile) else {
            return false;
        };
        let value = if p.with_value { value } else { "" };
        let mut inner = cell.lock();
        if inner.state == DlgState::Deleted {
            return false;
        }
        inner
            .profiles
            .push((Arc::clone(&p.name), value.to_string()));
        if inner.inserted {
            p.add(value, 1);
        }
        true
    }

    /// Take `cell` out of `profile` (the entry with `value`, or any when empty). 1 when it
    /// was in, -1 otherwise.
    pub fn unset_profile(&self, cell: &DlgCell, profile: &str, value: &str) -> bool {
        let Some(p) = self.profiles.get(profile) else {
            return false;
        };
        let mut inner = cell.lock();
        let pos = inner.profiles.iter().position(|(n, v)| {
            **n == *profile && (value.is_empty() || !p.with_value || v == value)
        });
        let Some(i) = pos else {
            return false;
        };
        let (_, v) = inner.profiles.remove(i);
        if inner.inserted {
            p.add(&v, -1);
        }
        self.save(cell, &inner);
        true
    }

    /// Send BYEs for `cell` to `sides` through the agent and end it. False when the agent
    /// does not run (no UDP listener) or the dialog is not confirmed.
    pub fn bye(&self, cell: &Arc<DlgCell>, sides: Vec<Side>) -> bool {
        if !cell.lock().state.is_confirmed() {
            return false;
        }
        let sent = match self.agent.get() {
            Some(tx) => tx
                .send(ByeJob {
                    cell: Arc::clone(cell),
                    sides,
                })
                .is_ok(),
            None => {
                tracing::warn!("dialog: no BYE sent: sipd has no UDP listener to send it from");
                false
            }
        };
        self.end(cell, false);
        sent
    }

    /// A reply to a BYE the agent sent (`branch` is its Via branch).
    pub fn bye_reply(&self, branch: &str, code: u16) {
        if code >= 200 {
            lock(&self.pending).remove(branch);
        }
    }

    /// BYEs waiting for a final reply.
    pub fn pending_byes(&self) -> usize {
        lock(&self.pending).len()
    }
}
