//! The destination sets of one server and their live state: selection by algorithm, state
//! changes (script marks, probe results, RPC), reload keeping the states of unchanged
//! destinations, and the call-load table of algorithm 10.
//!
//! The sets are an immutable snapshot behind a `RwLock<Arc<_>>`, replaced whole by a reload;
//! a selection takes the read lock for one `Arc` clone. Each destination's state is an atomic
//! read on the message path; changes take that destination's own mutex (state and counter
//! change together), so nothing on the message path waits for another destination.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use kemi_runtime::msg::Proto;

use super::list::{self, Entry, DISABLED, INACTIVE, PROBING, STATES, TRYING};

/// A destination of a set with its live state.
#[derive(Debug)]
pub struct Dest {
    /// The list entry.
    pub entry: Entry,
    /// Its address, when the host is an IP literal or resolved at load.
    pub addr: Option<SocketAddr>,
    flags: AtomicU32,
    /// The failed-probe (or, while inactive, successful-probe) counter, and the lock that
    /// serializes state changes.
    count: Mutex<u32>,
    /// Calls in progress (algorithm 10).
    load: AtomicU32,
}

impl Dest {
    fn new(entry: Entry) -> Dest {
        let addr = resolve(&entry.host, entry.port);
        Dest {
            flags: AtomicU32::new(entry.flags),
            count: Mutex::new(0),
            load: AtomicU32::new(0),
            addr,
            entry,
        }
    }

    /// The flag bits now (state and configuration).
    pub fn flags(&self) -> u32 {
        self.flags.load(Ordering::Relaxed)
    }

    /// Whether selections skip it (inactive or disabled).
    pub fn skipped(&self) -> bool {
        self.flags() & (INACTIVE | DISABLED) != 0
    }

    /// Kamailio's two-letter state: `A`/`I`/`D`/`T`, then `P` (probing) or `X`.
    pub fn state_letters(&self) -> String {
        letters(self.flags())
    }

    /// Calls in progress (algorithm 10).
    pub fn load(&self) -> u32 {
        self.load.load(Ordering::Relaxed)
    }
}

/// Kamailio's two-letter state of `flags`.
pub fn letters(flags: u32) -> String {
    let first = if flags & INACTIVE != 0 {
        'I'
    } else if flags & DISABLED != 0 {
        'D'
    } else if flags & TRYING != 0 {
        'T'
    } else {
        'A'
    };
    let second = if flags & PROBING != 0 { 'P' } else { 'X' };
    format!("{first}{second}")
}

/// Parse a state string of `ds_mark_dst_state`/`ds_mark_addr` (`a`, `i`, `t`, `d`, `p`,
/// combined: `ip`, `tp`); `None` for another letter or an empty string.
pub fn parse_state(s: &str) -> Option<u32> {
    let mut flags = 0;
    if s.is_empty() {
        return None;
    }
    for c in s.chars() {
        match c.to_ascii_lowercase() {
            'a' => flags &= !STATES,
            'i' => flags |= INACTIVE,
            't' => flags |= TRYING,
            'd' => flags |= DISABLED,
            'p' => flags |= PROBING,
            _ => return None,
        }
    }
    Some(flags)
}

/// The address of `host:port` when `host` is an IP literal, else the system resolver's first
/// answer (at load, off the message path).
fn resolve(host: &str, port: u16) -> Option<SocketAddr> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, port));
    }
    (host, port).to_socket_addrs().ok()?.next()
}

/// One destination set.
#[derive(Debug)]
pub struct Set {
    /// The set id.
    pub id: i32,
    /// Its destinations, highest priority first (reverse list order among equals, as
    /// Kamailio).
    pub dests: Vec<Arc<Dest>>,
    /// Round-robin position.
    last: AtomicUsize,
    /// Algorithm 9: 100 slots, each a destination index, spread by weight.
    wlist: Vec<usize>,
    wlast: AtomicUsize,
}

impl Set {
    fn new(id: i32, mut dests: Vec<Arc<Dest>>) -> Set {
        // Kamailio's order: highest priority first, equal priorities in reverse list order
        // (its list keeps ascending priority and file order; the index copies it backwards).
        dests.reverse();
        dests.sort_by_key(|d| std::cmp::Reverse(d.entry.priority));
        let wlist = weight_slots(
            &dests
                .iter()
                .map(|d| d.entry.attrs.weight)
                .collect::<Vec<_>>(),
        );
        Set {
            id,
            dests,
            last: AtomicUsize::new(0),
            wlist,
            wlast: AtomicUsize::new(0),
        }
    }
}

/// Algorithm 9's 100 slots for `weights` (percent): each destination gets as many slots as its
/// weight, the slots left over go to the last one (Kamailio's rule), and the slots are
/// interleaved (smooth weighted round robin) so that consecutive calls spread rather than
/// come in runs. All zero weights: every slot is the first destination, as in Kamailio.
pub fn weight_slots(weights: &[u32]) -> Vec<usize> {
    const SLOTS: usize = 100;
    if weights.is_empty() || weights.first() == Some(&0) {
        return vec![0; SLOTS];
    }
    let mut counts: Vec<i64> = Vec::with_capacity(weights.len());
    let mut left = SLOTS as i64;
    for &w in weights {
        let c = i64::from(w).min(left);
        counts.push(c);
        left -= c;
    }
    if let Some(last) = counts.last_mut() {
        *last += left;
    }
    let total: i64 = counts.iter().sum();
    let mut current = vec![0i64; counts.len()];
    let mut out = Vec::with_capacity(SLOTS);
    for _ in 0..SLOTS {
        for (c, w) in current.iter_mut().zip(&counts) {
            *c += w;
        }
        let best = current
            .iter()
            .enumerate()
            .max_by_key(|(i, c)| (**c, std::cmp::Reverse(*i)))
            .map_or(0, |(i, _)| i);
        if let Some(c) = current.get_mut(best) {
            *c -= total;
        }
        out.push(best);
    }
    out
}

/// Every set, by id.
#[derive(Debug, Default)]
pub struct Lists {
    /// The sets.
    pub sets: BTreeMap<i32, Set>,
}

impl Lists {
    /// Build the sets from list entries.
    pub fn build(entries: Vec<Entry>) -> Lists {
        let mut by_set: BTreeMap<i32, Vec<Arc<Dest>>> = BTreeMap::new();
        for e in entries {
            by_set
                .entry(e.set)
                .or_default()
                .push(Arc::new(Dest::new(e)));
        }
        Lists {
            sets: by_set
                .into_iter()
                .map(|(id, dests)| (id, Set::new(id, dests)))
                .collect(),
        }
    }

    /// Every destination, with its set id.
    pub fn all(&self) -> impl Iterator<Item = (i32, &Arc<Dest>)> + '_ {
        self.sets
            .values()
            .flat_map(|s| s.dests.iter().map(move |d| (s.id, d)))
    }

    /// The destination `uri` of set `set`.
    pub fn find(&self, set: i32, uri: &str) -> Option<&Arc<Dest>> {
        self.sets
            .get(&set)?
            .dests
            .iter()
            .find(|d| d.entry.uri.eq_ignore_ascii_case(uri))
    }
}

/// The selection algorithms sipd implements (Kamailio's numbers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alg {
    /// 0: hash of the Call-ID.
    HashCallId,
    /// 1: hash of the From URI.
    HashFrom,
    /// 2: hash of the To URI.
    HashTo,
    /// 4: round robin.
    RoundRobin,
    /// 8: the first active destination in priority order.
    Serial,
    /// 9: by the `weight` attribute.
    Weight,
    /// 10: the least loaded (calls in progress), under `maxload`.
    CallLoad,
}

impl Alg {
    /// The algorithm numbered `n`; `None` for one sipd does not implement.
    pub fn from_number(n: i32) -> Option<Alg> {
        Some(match n {
            0 => Alg::HashCallId,
            1 => Alg::HashFrom,
            2 => Alg::HashTo,
            4 => Alg::RoundRobin,
            8 => Alg::Serial,
            9 => Alg::Weight,
            10 => Alg::CallLoad,
            _ => return None,
        })
    }
}

/// Why no destination was selected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SelectError {
    /// No such set.
    NoSet(i32),
    /// Every destination of the set is inactive or disabled (or at its `maxload`).
    NoneActive(i32),
}

/// What a selection picked: the chosen destination first, then the failover candidates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    /// The set.
    pub set: i32,
    /// Indexes into the set's destinations, the chosen one first.
    pub order: Vec<usize>,
}

/// Module settings read at setup.
#[derive(Clone, Debug)]
pub struct DsConfig {
    /// Kamailio's `flags`: 1 hash the user part only, 2 failover (keep the candidates).
    pub flags: i64,
    /// `force_dst`: a selection may replace a `$du` already set.
    pub force_dst: bool,
    /// XAVP root of the candidates (`xavp_dst`).
    pub xavp_dst: String,
    /// XAVP root of the selection context (`xavp_ctx`), empty for none.
    pub xavp_ctx: String,
    /// `ds_ping_interval`, zero: no probing.
    pub ping_interval: Duration,
    /// `ds_ping_method`.
    pub ping_method: String,
    /// `ds_ping_from`.
    pub ping_from: String,
    /// `ds_probing_mode`: 0 flagged, 1 all, 2 inactive and flagged, 3 only flagged.
    pub probing_mode: i64,
    /// `ds_probing_threshold`: failed probes before inactive.
    pub probing_threshold: u32,
    /// `ds_inactive_threshold`: answered probes before active again.
    pub inactive_threshold: u32,
    /// `ds_ping_reply_codes`: classes (`class=N`) and codes (`code=N`) that count as answers
    /// besides 2xx.
    pub reply_classes: Vec<u16>,
    /// See [`Self::reply_classes`].
    pub reply_codes: Vec<u16>,
    /// sipd's stand-in for tm's `fr_timer` of a probe (`ds_ping_timeout`, ms).
    pub ping_timeout: Duration,
    /// `ds_hash_initexpire`: a call-load entry not confirmed by a 2xx goes after this.
    pub hash_initexpire: Duration,
    /// `ds_hash_expire`: a confirmed call-load entry goes after this.
    pub hash_expire: Duration,
}

impl Default for DsConfig {
    fn default() -> Self {
        DsConfig {
            flags: 0,
            force_dst: true,
            xavp_dst: "_dsdst_".into(),
            xavp_ctx: "_dsctx_".into(),
            ping_interval: Duration::ZERO,
            ping_method: "OPTIONS".into(),
            ping_from: "sip:dispatcher@localhost".into(),
            probing_mode: 0,
            probing_threshold: 1,
            inactive_threshold: 1,
            reply_classes: Vec::new(),
            reply_codes: Vec::new(),
            ping_timeout: Duration::from_secs(5),
            hash_initexpire: Duration::from_secs(7200),
            hash_expire: Duration::from_secs(7200),
        }
    }
}

impl DsConfig {
    /// Whether a probe answered with `code` counts as an answer.
    pub fn reply_ok(&self, code: u16) -> bool {
        (200..300).contains(&code)
            || self.reply_codes.contains(&code)
            || self.reply_classes.contains(&(code / 100))
    }

    /// Whether the prober sends keepalives to a destination with `flags`.
    pub fn should_probe(&self, flags: u32) -> bool {
        if flags & (DISABLED | list::NOPING) != 0 {
            return false;
        }
        match self.probing_mode {
            1 => true,
            2 => flags & PROBING != 0 && flags & INACTIVE != 0,
            _ => flags & PROBING != 0,
        }
    }
}

/// Parse `ds_ping_reply_codes` (`class=2;code=403;code=488`).
pub fn parse_reply_codes(s: &str) -> Result<(Vec<u16>, Vec<u16>), String> {
    let (mut classes, mut codes) = (Vec::new(), Vec::new());
    for item in s.split(';').map(str::trim).filter(|i| !i.is_empty()) {
        let (name, value) = item
            .split_once('=')
            .ok_or_else(|| format!("`{item}` is not class=N or code=N"))?;
        let n: u16 = value
            .trim()
            .parse()
            .map_err(|_| format!("`{value}` is not a number"))?;
        match name.trim() {
            "class" if (1..=6).contains(&n) => classes.push(n),
            "code" if (100..700).contains(&n) => codes.push(n),
            _ => return Err(format!("`{item}` is not class=1..6 or code=100..699")),
        }
    }
    Ok((classes, codes))
}

/// One call of algorithm 10: where it went and whether a 2xx confirmed it.
#[derive(Clone, Debug)]
struct CallLoad {
    set: i32,
    duid: String,
    confirmed: bool,
    since: Instant,
}

/// Why the list could not be (re)loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A line is not a destination.
    #[error("{path}: {source}")]
    Parse {
        /// The file.
        path: String,
        /// The line.
        source: list::ListError,
    },
    /// No list file is configured.
    #[error("no list_file is configured")]
    NoFile,
    /// The store could not be read.
    #[error("table {table}: {source}")]
    Store {
        /// The table.
        table: String,
        /// Why.
        source: crate::store::StoreError,
    },
    /// A row of the table is not a destination.
    #[error("table {table}, row {row}: {message}")]
    Row {
        /// The table.
        table: String,
        /// 1-based row in id order.
        row: usize,
        /// What is wrong.
        message: String,
    },
}

/// Where the destinations come from.
#[derive(Debug)]
pub enum Source {
    /// A list file.
    File(PathBuf),
    /// Kamailio's `dispatcher` table in the store.
    Store(crate::store::StoreRef, String),
}

impl Source {
    /// Read every destination.
    pub fn load(&self) -> Result<Vec<Entry>, LoadError> {
        match self {
            Source::File(path) => DispatcherState::read_file(path),
            Source::Store(store, table) => {
                let rows = store
                    .dispatcher_rows(table)
                    .map_err(|source| LoadError::Store {
                        table: table.clone(),
                        source,
                    })?;
                rows.iter()
                    .enumerate()
                    .map(|(i, r)| {
                        let bad = |message: String| LoadError::Row {
                            table: table.clone(),
                            row: i + 1,
                            message,
                        };
                        let flags = u32::try_from(r.flags)
                            .map_err(|_| bad(format!("flags {} out of range", r.flags)))?;
                        let priority = i32::try_from(r.priority)
                            .map_err(|_| bad(format!("priority {} out of range", r.priority)))?;
                        Entry::new(r.setid, &r.destination, flags, priority, &r.attrs).map_err(bad)
                    })
                    .collect()
            }
        }
    }
}

/// Probe counters (for `/metrics`).
#[derive(Debug, Default)]
pub struct ProbeStats {
    /// Probes sent (retransmissions not counted).
    pub sent: std::sync::atomic::AtomicU64,
    /// Probes that got no answer in time or an answer that does not count.
    pub failed: std::sync::atomic::AtomicU64,
}

/// The largest list file read (16 MiB: far more than any dispatcher list).
const MAX_LIST_BYTES: u64 = 16 << 20;

/// The dispatcher of one server.
#[derive(Debug)]
pub struct DispatcherState {
    /// Settings.
    pub config: DsConfig,
    source: Option<Source>,
    lists: RwLock<Arc<Lists>>,
    calls: Mutex<HashMap<String, CallLoad>>,
    /// Probe counters.
    pub probes: ProbeStats,
}

impl DispatcherState {
    /// A dispatcher over `entries`, re-reading `source` on reload.
    pub fn new(config: DsConfig, entries: Vec<Entry>, source: Option<Source>) -> Self {
        DispatcherState {
            config,
            source,
            lists: RwLock::new(Arc::new(Lists::build(entries))),
            calls: Mutex::new(HashMap::new()),
            probes: ProbeStats::default(),
        }
    }

    /// Read and parse `path`.
    pub fn read_file(path: &std::path::Path) -> Result<Vec<Entry>, LoadError> {
        use std::io::Read;
        let name = path.display().to_string();
        let read_err = |source| LoadError::Read {
            path: name.clone(),
            source,
        };
        let file = std::fs::File::open(path).map_err(read_err)?;
        // A regular file of sane size: never a device or a FIFO that reads forever.
        let meta = file.metadata().map_err(read_err)?;
        if !meta.is_file() || meta.len() > MAX_LIST_BYTES {
            return Err(read_err(std::io::Error::other(format!(
                "not a regular file of at most {MAX_LIST_BYTES} bytes"
            ))));
        }
        let mut text = String::new();
        file.take(MAX_LIST_BYTES)
            .read_to_string(&mut text)
            .map_err(read_err)?;
        list::parse(&text).map_err(|source| LoadError::Parse { path: name, source })
    }

    /// The sets now.
    pub fn current(&self) -> Arc<Lists> {
        Arc::clone(&self.lists.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Whether there is anything to probe or reload: a list file or table was loaded.
    pub fn has_list(&self) -> bool {
        self.source.is_some()
    }

    /// Re-read the list file (or table); destinations present before (same set, same URI) keep their
    /// state, counters and load. Returns how many destinations are loaded.
    pub fn reload(&self) -> Result<usize, LoadError> {
        let entries = self.source.as_ref().ok_or(LoadError::NoFile)?.load()?;
        Ok(self.replace(entries))
    }

    /// Replace the sets with `entries`, keeping the state of unchanged destinations.
    pub fn replace(&self, entries: Vec<Entry>) -> usize {
        let old = self.current();
        let new = Lists::build(entries);
        for (set, d) in new.all() {
            if let Some(prev) = old.find(set, &d.entry.uri) {
                d.flags.store(prev.flags(), Ordering::Relaxed);
                let n = *prev.count.lock().unwrap_or_else(PoisonError::into_inner);
                *d.count.lock().unwrap_or_else(PoisonError::into_inner) = n;
                d.load.store(prev.load(), Ordering::Relaxed);
            }
        }
        let n = new.all().count();
        *self.lists.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(new);
        n
    }

    /// Pick a destination of `set` by `alg` (`key` is the hashed text for 0..2, the Call-ID for
    /// 10; `invite` whether the request starts a call) and list the failover candidates, at
    /// most `limit` in all (0: no limit).
    pub fn select(
        &self,
        set: i32,
        alg: Alg,
        key: &str,
        invite: bool,
        limit: usize,
    ) -> Result<Selection, SelectError> {
        let lists = self.current();
        let s = lists.sets.get(&set).ok_or(SelectError::NoSet(set))?;
        let n = s.dests.len();
        if n == 0 {
            return Err(SelectError::NoSet(set));
        }
        let mut alg = alg;
        let over_load = |d: &Dest| d.entry.attrs.maxload != 0 && d.load() >= d.entry.attrs.maxload;
        let start = match alg {
            Alg::HashCallId | Alg::HashFrom | Alg::HashTo => hash(key) as usize % n,
            Alg::RoundRobin => {
                s.last
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| Some((v + 1) % n))
                    .unwrap_or(0)
                    % n
            }
            Alg::Serial => 0,
            Alg::Weight => {
                let slot = s.wlast.fetch_add(1, Ordering::Relaxed) % s.wlist.len().max(1);
                s.wlist.get(slot).copied().unwrap_or(0) % n
            }
            Alg::CallLoad if !invite => {
                // Only an INVITE starts a call: others take the first entry (Kamailio).
                alg = Alg::HashCallId;
                0
            }
            Alg::CallLoad => s
                .dests
                .iter()
                .enumerate()
                .filter(|(_, d)| !d.skipped() && !over_load(d))
                .min_by_key(|(_, d)| d.load())
                .map(|(i, _)| i)
                .ok_or(SelectError::NoneActive(set))?,
        };
        // The chosen one is the first active from `start` on.
        let chosen = (0..n)
            .map(|k| (start + k) % n)
            .find(|&i| s.dests.get(i).is_some_and(|d| !d.skipped()))
            .ok_or(SelectError::NoneActive(set))?;
        if alg == Alg::RoundRobin {
            // The next round-robin pick starts after the one used (Kamailio's `last`).
            let _ = s.last.compare_exchange(
                (start + 1) % n,
                (chosen + 1) % n,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
        if alg == Alg::CallLoad {
            let Some(d) = s.dests.get(chosen) else {
                return Err(SelectError::NoneActive(set));
            };
            if d.entry.attrs.duid.is_empty() {
                // Kamailio falls back to classic dispatching without a duid.
                tracing::warn!(set, uri = %d.entry.uri, "dispatcher: no duid attribute for call load");
            } else {
                self.load_add(key, set, d);
            }
        }
        let limit = if limit == 0 { usize::MAX } else { limit };
        let mut order = vec![chosen];
        for i in (chosen + 1..n).chain(0..chosen) {
            if order.len() >= limit {
                break;
            }
            let Some(d) = s.dests.get(i) else { continue };
            if d.skipped() || (alg == Alg::CallLoad && over_load(d)) {
                continue;
            }
            order.push(i);
        }
        Ok(Selection { set, order })
    }

    /// Set the state of destination `uri` of `set` as the script or a probe result says
    /// (Kamailio's `ds_update_state`: `TRYING` counts towards `ds_probing_threshold`, an
    /// answer while inactive towards `ds_inactive_threshold`). False when there is no such
    /// destination.
    pub fn update_state(&self, set: i32, uri: &str, state: u32) -> bool {
        let lists = self.current();
        let Some(d) = lists.find(set, uri) else {
            return false;
        };
        let mut count = d.count.lock().unwrap_or_else(PoisonError::into_inner);
        let old = d.flags();
        let mut state = state;
        if state & TRYING != 0 && old & INACTIVE != 0 {
            // Inactive stays inactive: it must become active before it can be trying.
            state = (state & !TRYING) | INACTIVE;
        }
        let mut flags = old & !STATES;
        if state & DISABLED != 0 {
            flags |= DISABLED;
        } else {
            flags |= state;
        }
        if state & TRYING != 0 {
            *count += 1;
            if *count >= self.config.probing_threshold {
                flags = (flags & !TRYING) | INACTIVE;
                *count = 0;
            }
        } else if state & TRYING == 0 && old & INACTIVE != 0 && state & INACTIVE == 0 {
            *count += 1;
            if *count < self.config.inactive_threshold {
                flags |= INACTIVE | (old & PROBING);
            } else {
                *count = 0;
            }
        } else {
            *count = 0;
        }
        d.flags.store(flags, Ordering::Relaxed);
        log_change(set, uri, old, flags);
        true
    }

    /// Set the state of `uri` in `set` (or of every destination of `set` when `uri` is `all`)
    /// directly, without thresholds (RPC `dispatcher.set_state`). How many changed.
    pub fn set_state(&self, set: i32, uri: &str, state: u32) -> usize {
        let lists = self.current();
        let Some(s) = lists.sets.get(&set) else {
            return 0;
        };
        let mut n = 0;
        for d in &s.dests {
            if uri == "all" || d.entry.uri.eq_ignore_ascii_case(uri) {
                let mut count = d.count.lock().unwrap_or_else(PoisonError::into_inner);
                let old = d.flags();
                let flags = (old & !STATES) | (state & STATES);
                d.flags.store(flags, Ordering::Relaxed);
                *count = 0;
                log_change(set, &d.entry.uri, old, flags);
                n += 1;
            }
        }
        n
    }

    /// A probe of `uri` in `set` ended: answered with `code` (`None`: no answer in time).
    pub fn probe_result(&self, set: i32, uri: &str, code: Option<u16>) {
        let lists = self.current();
        let Some(d) = lists.find(set, uri) else {
            return;
        };
        let flags = d.flags();
        if flags & DISABLED != 0 {
            return;
        }
        if self.config.probing_mode == 3 && flags & PROBING == 0 {
            return;
        }
        let answered = code.is_some_and(|c| self.config.reply_ok(c));
        if !answered {
            self.probes.failed.fetch_add(1, Ordering::Relaxed);
        }
        let state = if answered {
            if self.config.probing_mode == 1
                || (self.config.probing_mode == 3 && flags & PROBING != 0)
            {
                PROBING
            } else {
                0
            }
        } else if self.config.probing_mode != 0 {
            TRYING | PROBING
        } else {
            TRYING
        };
        drop(lists);
        self.update_state(set, uri, state);
    }

    /// Algorithm 10: count a call `call_id` on `d`.
    fn load_add(&self, call_id: &str, set: i32, d: &Dest) {
        let mut calls = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(prev) = calls.insert(
            call_id.to_string(),
            CallLoad {
                set,
                duid: d.entry.attrs.duid.clone(),
                confirmed: false,
                since: Instant::now(),
            },
        ) {
            // A re-selection for the same call (a new INVITE with its Call-ID) moves it.
            drop(calls);
            self.load_dec(prev.set, &prev.duid);
        }
        d.load.fetch_add(1, Ordering::Relaxed);
    }

    fn load_dec(&self, set: i32, duid: &str) {
        let lists = self.current();
        if let Some(d) = lists
            .sets
            .get(&set)
            .and_then(|s| s.dests.iter().find(|d| d.entry.attrs.duid == duid))
        {
            let _ = d
                .load
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1));
        }
    }

    /// Algorithm 10: the call `call_id` moved to the destination with id `duid`
    /// (`ds_next_dst`). False when the call or the destination is unknown.
    pub fn load_replace(&self, call_id: &str, duid: &str) -> bool {
        let mut calls = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(c) = calls.get_mut(call_id) else {
            return false;
        };
        let (set, old) = (c.set, std::mem::replace(&mut c.duid, duid.to_string()));
        drop(calls);
        let lists = self.current();
        let Some(new) = lists
            .sets
            .get(&set)
            .and_then(|s| s.dests.iter().find(|d| d.entry.attrs.duid == duid))
        else {
            return false;
        };
        new.load.fetch_add(1, Ordering::Relaxed);
        drop(lists);
        self.load_dec(set, &old);
        true
    }

    /// Algorithm 10: the call ended or failed (`ds_load_unset`, a BYE or CANCEL through
    /// `ds_load_update`). False when it was not counted.
    pub fn load_remove(&self, call_id: &str) -> bool {
        let removed = self
            .calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(call_id);
        match removed {
            Some(c) => {
                self.load_dec(c.set, &c.duid);
                true
            }
            None => false,
        }
    }

    /// Algorithm 10: a 2xx answered the call's INVITE.
    pub fn load_confirm(&self, call_id: &str) -> bool {
        let mut calls = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
        match calls.get_mut(call_id) {
            Some(c) => {
                c.confirmed = true;
                c.since = Instant::now();
                true
            }
            None => false,
        }
    }

    /// Forget call-load entries past `ds_hash_initexpire` (unconfirmed) or `ds_hash_expire`.
    pub fn expire_calls(&self) -> usize {
        let now = Instant::now();
        let mut gone = Vec::new();
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, c| {
                let ttl = if c.confirmed {
                    self.config.hash_expire
                } else {
                    self.config.hash_initexpire
                };
                let keep = now.duration_since(c.since) < ttl;
                if !keep {
                    gone.push((c.set, c.duid.clone()));
                }
                keep
            });
        for (set, duid) in &gone {
            self.load_dec(*set, duid);
        }
        gone.len()
    }

    /// Destinations now usable (neither inactive nor disabled) and not.
    pub fn up_down(&self) -> (usize, usize) {
        let lists = self.current();
        let up = lists.all().filter(|(_, d)| !d.skipped()).count();
        (up, lists.all().count() - up)
    }

    /// Calls counted by algorithm 10.
    pub fn calls(&self) -> usize {
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// The destinations to probe now: set, URI, address, transport, From URI.
    pub fn probe_targets(&self) -> Vec<ProbeTarget> {
        let lists = self.current();
        lists
            .all()
            .filter(|(_, d)| self.config.should_probe(d.flags()))
            .map(|(set, d)| ProbeTarget {
                set,
                uri: d.entry.uri.clone(),
                addr: d.addr,
                proto: d.entry.proto,
                from: if d.entry.attrs.ping_from.is_empty() {
                    self.config.ping_from.clone()
                } else {
                    d.entry.attrs.ping_from.clone()
                },
            })
            .collect()
    }
}

/// A destination the prober should send a keepalive to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeTarget {
    /// Its set.
    pub set: i32,
    /// Its URI (the probe's R-URI and To).
    pub uri: String,
    /// Where to send, when known.
    pub addr: Option<SocketAddr>,
    /// Its transport.
    pub proto: Proto,
    /// The From URI.
    pub from: String,
}

fn log_change(set: i32, uri: &str, old: u32, new: u32) {
    let skipped = |f: u32| f & (INACTIVE | DISABLED) != 0;
    if skipped(old) != skipped(new) {
        tracing::info!(
            set,
            uri,
            from = %letters(old),
            to = %letters(new),
            "dispatcher: destination {}",
            if skipped(new) { "down" } else { "up" }
        );
    }
}

/// The hash of algorithms 0..2 (FNV-1a: stable across runs and nodes).
pub fn hash(text: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in text.trim().bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ds(text: &str, config: DsConfig) -> DispatcherState {
        DispatcherState::new(config, list::parse(text).unwrap(), None)
    }

    const THREE: &str = "1 sip:127.0.0.1:5081\n1 sip:127.0.0.1:5082\n1 sip:127.0.0.1:5083\n";

    fn uris(d: &DispatcherState, s: &Selection) -> Vec<String> {
        let lists = d.current();
        let set = &lists.sets[&s.set];
        s.order
            .iter()
            .map(|&i| set.dests[i].entry.uri.clone())
            .collect()
    }

    #[test]
    fn round_robin_cycles_and_skips_inactive() {
        let d = ds(THREE, DsConfig::default());
        let picks: Vec<usize> = (0..6)
            .map(|_| d.select(1, Alg::RoundRobin, "", true, 0).unwrap().order[0])
            .collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
        let all = d.select(1, Alg::RoundRobin, "", true, 0).unwrap();
        // Kamailio's order: equal priorities in reverse list order.
        assert_eq!(
            uris(&d, &all),
            [
                "sip:127.0.0.1:5083",
                "sip:127.0.0.1:5082",
                "sip:127.0.0.1:5081"
            ]
        );
        assert!(d.update_state(1, "sip:127.0.0.1:5082", INACTIVE | PROBING));
        let picks: Vec<usize> = (0..4)
            .map(|_| d.select(1, Alg::RoundRobin, "", true, 0).unwrap().order[0])
            .collect();
        // As Kamailio: the pick after a skipped one starts after the one used.
        assert_eq!(picks, [2, 0, 2, 0]);
        let s = d.select(1, Alg::RoundRobin, "", true, 0).unwrap();
        assert_eq!(s.order.len(), 2, "inactive ones are no candidates either");
        assert_eq!(
            d.select(1, Alg::RoundRobin, "", true, 1)
                .unwrap()
                .order
                .len(),
            1
        );
        d.set_state(1, "all", INACTIVE);
        assert_eq!(
            d.select(1, Alg::RoundRobin, "", true, 0),
            Err(SelectError::NoneActive(1))
        );
        assert_eq!(
            d.select(7, Alg::RoundRobin, "", true, 0),
            Err(SelectError::NoSet(7))
        );
    }

    #[test]
    fn hashes_are_stable_and_spread() {
        let d = ds(THREE, DsConfig::default());
        let a = d.select(1, Alg::HashCallId, "abc@host", true, 0).unwrap();
        let b = d.select(1, Alg::HashCallId, "abc@host", true, 0).unwrap();
        assert_eq!(a, b);
        let mut seen = [0u32; 3];
        for i in 0..300 {
            let s = d
                .select(
                    1,
                    Alg::HashFrom,
                    &format!("sip:user{i}@example.com"),
                    true,
                    0,
                )
                .unwrap();
            seen[s.order[0]] += 1;
        }
        assert!(seen.iter().all(|&c| c > 60), "{seen:?}");
        // An inactive hash target moves to the next active one, for the same key.
        let first = a.order[0];
        let uri = d.current().sets[&1].dests[first].entry.uri.clone();
        d.update_state(1, &uri, INACTIVE);
        let c = d.select(1, Alg::HashTo, "abc@host", true, 0).unwrap();
        assert_ne!(c.order[0], first);
    }

    #[test]
    fn serial_follows_priority() {
        let d = ds(
            "1 sip:127.0.0.1:5081 0 1\n1 sip:127.0.0.1:5082 0 9\n1 sip:127.0.0.1:5083 0 5\n",
            DsConfig::default(),
        );
        let s = d.select(1, Alg::Serial, "", true, 0).unwrap();
        assert_eq!(
            uris(&d, &s),
            [
                "sip:127.0.0.1:5082",
                "sip:127.0.0.1:5083",
                "sip:127.0.0.1:5081"
            ]
        );
        d.update_state(1, "sip:127.0.0.1:5082", DISABLED);
        let s = d.select(1, Alg::Serial, "", true, 0).unwrap();
        assert_eq!(uris(&d, &s)[0], "sip:127.0.0.1:5083");
    }

    #[test]
    fn weights_split_one_hundred_calls() {
        let d = ds(
            "1 sip:127.0.0.1:5081 0 0 weight=50\n1 sip:127.0.0.1:5082 0 0 weight=30\n\
             1 sip:127.0.0.1:5083 0 0 weight=20\n",
            DsConfig::default(),
        );
        let mut seen = [0u32; 3];
        for _ in 0..200 {
            seen[d.select(1, Alg::Weight, "", true, 0).unwrap().order[0]] += 1;
        }
        // Index 0 is the last line (weight 20).
        assert_eq!(seen, [40, 60, 100]);
        // Interleaved, not in runs.
        let slots = weight_slots(&[50, 50]);
        assert!(slots.windows(2).all(|w| w[0] != w[1]));
        // Weights under 100: the rest goes to the last.
        let slots = weight_slots(&[10, 10]);
        assert_eq!(slots.iter().filter(|&&s| s == 1).count(), 90);
        assert_eq!(weight_slots(&[0, 50]), vec![0; 100]);
    }

    #[test]
    fn call_load_picks_least_loaded_under_maxload() {
        let d = ds(
            // Written b, a: loaded a, b (reverse order among equal priorities).
            "1 sip:127.0.0.1:5082 0 0 duid=b;maxload=1\n1 sip:127.0.0.1:5081 0 0 duid=a;maxload=2\n",
            DsConfig::default(),
        );
        let pick = |cid: &str| d.select(1, Alg::CallLoad, cid, true, 0).map(|s| s.order[0]);
        assert_eq!(pick("c1"), Ok(0));
        assert_eq!(pick("c2"), Ok(1));
        assert_eq!(pick("c3"), Ok(0));
        assert_eq!(pick("c4"), Err(SelectError::NoneActive(1)));
        assert!(d.load_remove("c2"));
        assert!(!d.load_remove("c2"));
        assert_eq!(pick("c5"), Ok(1));
        assert_eq!(d.calls(), 3);
        // A non-INVITE takes the first entry and counts nothing.
        assert_eq!(
            d.select(1, Alg::CallLoad, "x", false, 0)
                .map(|s| s.order[0]),
            Ok(0)
        );
        assert_eq!(d.calls(), 3);
        assert!(d.load_replace("c1", "b"));
        let lists = d.current();
        let loads: Vec<u32> = lists.sets[&1].dests.iter().map(|d| d.load()).collect();
        assert_eq!(loads, [1, 2]);
    }

    #[test]
    fn probe_thresholds() {
        let config = DsConfig {
            probing_mode: 1,
            probing_threshold: 2,
            inactive_threshold: 2,
            ..DsConfig::default()
        };
        let d = ds("1 sip:127.0.0.1:5081\n", config);
        let uri = "sip:127.0.0.1:5081";
        let state = || d.current().sets[&1].dests[0].state_letters();
        assert_eq!(state(), "AX");
        d.probe_result(1, uri, None);
        assert_eq!(state(), "TP");
        d.probe_result(1, uri, Some(408));
        assert_eq!(state(), "IP");
        d.probe_result(1, uri, Some(200));
        assert_eq!(state(), "IP", "one answer is below ds_inactive_threshold");
        d.probe_result(1, uri, Some(200));
        assert_eq!(state(), "AP");
        d.set_state(1, uri, DISABLED);
        d.probe_result(1, uri, Some(200));
        assert_eq!(state(), "DX");
    }

    #[test]
    fn reload_keeps_states_of_unchanged_destinations() {
        let d = ds(THREE, DsConfig::default());
        d.update_state(1, "sip:127.0.0.1:5082", INACTIVE | PROBING);
        d.replace(
            list::parse("1 sip:127.0.0.1:5082\n1 sip:127.0.0.1:5084\n2 sip:127.0.0.1:5081\n")
                .unwrap(),
        );
        let lists = d.current();
        assert_eq!(
            lists.find(1, "sip:127.0.0.1:5082").unwrap().state_letters(),
            "IP"
        );
        assert_eq!(
            lists.find(1, "sip:127.0.0.1:5084").unwrap().state_letters(),
            "AX"
        );
        assert!(lists.find(1, "sip:127.0.0.1:5081").is_none());
        assert_eq!(
            lists.find(2, "sip:127.0.0.1:5081").unwrap().state_letters(),
            "AX"
        );
    }

    #[test]
    fn state_strings() {
        assert_eq!(parse_state("ip"), Some(INACTIVE | PROBING));
        assert_eq!(parse_state("A"), Some(0));
        assert_eq!(parse_state("tp"), Some(TRYING | PROBING));
        assert_eq!(parse_state("x"), None);
        assert_eq!(parse_state(""), None);
        assert_eq!(letters(DISABLED), "DX");
        let (classes, codes) = parse_reply_codes("class=2;code=403;code=488").unwrap();
        assert_eq!((classes, codes), (vec![2], vec![403, 488]));
        assert!(parse_reply_codes("code=99").is_err());
    }
}
