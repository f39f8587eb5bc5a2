//! The location service (Kamailio's usrloc): in-memory tables ("domains", e.g. `location`) of
//! address-of-record to contacts, shared by every worker.
//!
//! A table is split into shards, each a `RwLock` over a hash table of (aor, contacts): a lookup
//! hashes the borrowed AoR once (foldhash, seeded per table), the hash picks the shard and the
//! bucket, one shard is read-locked for one probe, and the store is never touched. A record's
//! contact vector holds exactly its contacts (no spare capacity), and the socket and
//! User-Agent strings, which few bindings differ in, are shared per shard. Changes are
//! written through to the store by the [`Writer`] (write-behind), and the tables are loaded from
//! the store at setup, so a restart loses no binding. Expired contacts are ignored by every read
//! and removed (from memory and store) by a periodic [`Usrloc::sweep`].

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use crate::store::{Change, LocationRow, Store, StoreError, Writer};

/// Shards per table.
const SHARDS: usize = 128;

/// One registered contact (a binding). Strings are boxed slices to keep a binding small (an
/// empty one allocates nothing); `user_agent` and `socket` are shared by the bindings of a
/// shard that have the same value.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Contact {
    /// Unique id (Kamailio's `ruid`).
    pub ruid: Box<str>,
    /// The Contact URI.
    pub uri: Box<str>,
    /// Where the REGISTER came from (`sip:ip:port;transport=x`), if known.
    pub received: Box<str>,
    /// Path header value (RFC 3327), comma-joined.
    pub path: Box<str>,
    /// Absolute expiry, Unix seconds (0: never).
    pub expires: i64,
    /// q times 1000, -1 when unspecified.
    pub q: i32,
    /// Call-ID of the REGISTER.
    pub callid: Box<str>,
    /// CSeq of the REGISTER.
    pub cseq: i32,
    /// Unix seconds of the last change.
    pub last_modified: i64,
    /// usrloc flags.
    pub flags: i32,
    /// Branch flags saved with the contact.
    pub cflags: i32,
    /// User-Agent.
    pub user_agent: Arc<str>,
    /// Receiving socket (`udp:127.0.0.1:5060`).
    pub socket: Arc<str>,
    /// Methods bit mask (-1: all).
    pub methods: i32,
    /// `+sip.instance`.
    pub instance: Box<str>,
    /// `reg-id` (0: none).
    pub reg_id: i32,
}

impl Contact {
    /// Whether the contact is valid at `now` (Kamailio's `VALID_CONTACT`).
    pub fn valid(&self, now: i64) -> bool {
        self.expires == 0 || self.expires > now
    }

    fn to_row(&self, aor: &str, use_domain: bool) -> LocationRow {
        let (username, domain) = split_aor(aor, use_domain);
        LocationRow {
            ruid: self.ruid.to_string(),
            username: username.to_string(),
            domain: domain.to_string(),
            contact: self.uri.to_string(),
            received: self.received.to_string(),
            path: self.path.to_string(),
            expires: self.expires,
            q: self.q,
            callid: self.callid.to_string(),
            cseq: self.cseq,
            last_modified: self.last_modified,
            flags: self.flags,
            cflags: self.cflags,
            user_agent: self.user_agent.to_string(),
            socket: self.socket.to_string(),
            methods: self.methods,
            instance: self.instance.to_string(),
            reg_id: self.reg_id,
        }
    }

    fn from_row(r: LocationRow) -> Contact {
        Contact {
            ruid: r.ruid.into(),
            uri: r.contact.into(),
            received: r.received.into(),
            path: r.path.into(),
            expires: r.expires,
            q: r.q,
            callid: r.callid.into(),
            cseq: r.cseq,
            last_modified: r.last_modified,
            flags: r.flags,
            cflags: r.cflags,
            user_agent: r.user_agent.into(),
            socket: r.socket.into(),
            methods: r.methods,
            instance: r.instance.into(),
            reg_id: r.reg_id,
        }
    }
}

/// `user@domain` into (user, domain) when domains are used, else (aor, "").
fn split_aor(aor: &str, use_domain: bool) -> (&str, &str) {
    if use_domain {
        aor.rsplit_once('@').unwrap_or(("", aor))
    } else {
        (aor, "")
    }
}

/// A store write to do once the shard lock is released.
#[derive(Debug)]
pub enum Persist {
    /// Insert or replace this binding of this AoR (made a store row on the writer thread,
    /// not on the worker).
    Put(Box<(Box<str>, Contact)>),
    /// Delete the binding with this ruid.
    Delete(String),
}

/// How usrloc behaves (its modparams).
#[derive(Clone, Debug)]
pub struct UlConfig {
    /// `use_domain`: the AoR is `user@domain` (else the user alone).
    pub use_domain: bool,
    /// `db_mode`: 0 memory only; otherwise written through to the store.
    pub db_mode: i64,
    /// `desc_time_order`: newest contact first instead of by q.
    pub desc_time_order: bool,
    /// `nat_bflag`: the branch flag marking contacts behind NAT (-1: none).
    pub nat_bflag: i64,
    /// `cseq_delay`: seconds during which a REGISTER with the same Call-ID and CSeq counts as
    /// a retransmission.
    pub cseq_delay: i64,
    /// Slots of a table (`2^hash_size`, Kamailio's `hash_size` 10 gives 1024): reserved when
    /// the table is created, so a table of up to that many AoRs never rehashes.
    pub slots: usize,
    /// `max_bindings` (a sipd extension; 0: no limit): the most contacts one table holds. A
    /// REGISTER that would add contacts beyond it is answered 503 with `Retry-After`.
    pub max_bindings: usize,
}

/// One record: an AoR and its contacts.
type Record = (Box<str>, Vec<Contact>);

/// One shard of a table: its records, and the shared `user_agent`/`socket` strings.
#[derive(Debug, Default)]
struct ShardData {
    records: hashbrown::HashTable<Record>,
    strings: hashbrown::HashTable<Arc<str>>,
}

/// Point the `user_agent` and `socket` of `rec` at the shard's copies of their values (adding
/// the new ones).
fn share_strings(
    strings: &mut hashbrown::HashTable<Arc<str>>,
    hasher: &hashbrown::DefaultHashBuilder,
    rec: &mut [Contact],
) {
    for c in rec.iter_mut() {
        for s in [&mut c.user_agent, &mut c.socket] {
            if s.is_empty() {
                continue;
            }
            let h = hasher.hash_one(&**s);
            match strings.find(h, |x| **x == **s) {
                Some(x) if Arc::ptr_eq(x, s) => {}
                Some(x) => *s = Arc::clone(x),
                None => {
                    strings.insert_unique(h, Arc::clone(s), |x| hasher.hash_one(&**x));
                }
            }
        }
    }
}

impl ShardData {
    /// Forget shared strings no binding uses any more.
    fn prune_strings(&mut self) {
        self.strings.retain(|x| Arc::strong_count(x) > 1);
    }
}

type Shard = RwLock<ShardData>;

/// One location table.
#[derive(Debug)]
pub struct Table {
    name: Arc<str>,
    hasher: hashbrown::DefaultHashBuilder,
    shards: Box<[Shard]>,
    /// Contacts held (expired ones until swept), kept by every change so that a bound can be
    /// checked without visiting the shards.
    contacts: AtomicUsize,
}

impl Table {
    /// A table with room for `slots` AoRs (spread over the shards).
    fn new(name: &str, slots: usize) -> Table {
        let per_shard = slots.div_ceil(SHARDS);
        Table {
            name: name.into(),
            hasher: hashbrown::DefaultHashBuilder::default(),
            shards: (0..SHARDS)
                .map(|_| {
                    RwLock::new(ShardData {
                        records: hashbrown::HashTable::with_capacity(per_shard),
                        strings: hashbrown::HashTable::new(),
                    })
                })
                .collect(),
            contacts: AtomicUsize::new(0),
        }
    }

    /// Contacts held now (expired ones until the next sweep).
    pub fn contact_count(&self) -> usize {
        self.contacts.load(Ordering::Relaxed)
    }

    /// Account for a record that went from `before` to `after` contacts.
    fn counted(&self, before: usize, after: usize) {
        if after > before {
            self.contacts.fetch_add(after - before, Ordering::Relaxed);
        } else if before > after {
            self.contacts.fetch_sub(before - after, Ordering::Relaxed);
        }
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The hash of `aor` and its shard: the shard comes from bits 32..39, the bucket inside
    /// the shard from the low bits and the control byte from the top 7, so they do not
    /// correlate.
    fn locate(&self, aor: &str) -> (u64, &Shard) {
        let h = self.hasher.hash_one(aor);
        (h, &self.shards[((h >> 32) as usize) % SHARDS])
    }

    /// Run `f` on the contacts of `aor` (None when there is no record), under a read lock.
    pub fn read<R>(&self, aor: &str, f: impl FnOnce(Option<&[Contact]>) -> R) -> R {
        let (h, shard) = self.locate(aor);
        let shard = shard.read().unwrap_or_else(PoisonError::into_inner);
        f(shard
            .records
            .find(h, |r| &*r.0 == aor)
            .map(|r| r.1.as_slice()))
    }

    /// The contacts of `aor` valid at `now`, in table order.
    pub fn valid(&self, aor: &str, now: i64) -> Vec<Contact> {
        self.read(aor, |c| {
            c.map(|c| c.iter().filter(|c| c.valid(now)).cloned().collect())
                .unwrap_or_default()
        })
    }

    /// Run `f` on the record of `aor` under the shard's write lock; an empty record is then
    /// removed, a non-empty one trimmed to its length and its strings shared.
    pub fn write<R>(&self, aor: &str, f: impl FnOnce(&mut Vec<Contact>) -> R) -> R {
        let (h, shard) = self.locate(aor);
        let mut shard = shard.write().unwrap_or_else(PoisonError::into_inner);
        let shard = &mut *shard;
        let hasher = &self.hasher;
        match shard.records.find_entry(h, |r| &*r.0 == aor) {
            Ok(mut e) => {
                let rec = &mut e.get_mut().1;
                let before = rec.len();
                let r = f(rec);
                self.counted(before, rec.len());
                if rec.is_empty() {
                    e.remove();
                } else {
                    rec.shrink_to_fit();
                    share_strings(&mut shard.strings, hasher, rec);
                }
                r
            }
            Err(_) => {
                let mut rec = Vec::new();
                let r = f(&mut rec);
                self.counted(0, rec.len());
                if !rec.is_empty() {
                    rec.shrink_to_fit();
                    share_strings(&mut shard.strings, hasher, &mut rec);
                    shard
                        .records
                        .insert_unique(h, (aor.into(), rec), |r| hasher.hash_one(&*r.0));
                }
                r
            }
        }
    }

    /// Whether `aor` has a record (expired contacts included).
    pub fn contains(&self, aor: &str) -> bool {
        self.read(aor, |r| r.is_some())
    }

    /// Every record (AoR and all its contacts, expired ones included).
    pub fn dump(&self) -> Vec<(String, Vec<Contact>)> {
        let mut out = Vec::new();
        for s in self.shards.iter() {
            let s = s.read().unwrap_or_else(PoisonError::into_inner);
            out.extend(s.records.iter().map(|(k, v)| (k.to_string(), v.clone())));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Number of records (AoRs) and contacts.
    pub fn counts(&self) -> (usize, usize) {
        let mut r = (0, 0);
        for s in self.shards.iter() {
            let s = s.read().unwrap_or_else(PoisonError::into_inner);
            r.0 += s.records.len();
            r.1 += s.records.iter().map(|r| r.1.len()).sum::<usize>();
        }
        r
    }

    /// Remove contacts expired at `now`; returns their (aor, ruid).
    fn sweep(&self, now: i64) -> Vec<String> {
        let mut gone = Vec::new();
        for s in self.shards.iter() {
            let mut s = s.write().unwrap_or_else(PoisonError::into_inner);
            s.records.retain(|(_, rec)| {
                rec.retain(|c| {
                    let keep = c.valid(now);
                    if !keep {
                        gone.push(c.ruid.to_string());
                    }
                    keep
                });
                !rec.is_empty()
            });
            s.prune_strings();
        }
        self.counted(gone.len(), 0);
        gone
    }

    fn clear(&self) -> Vec<String> {
        let mut gone = Vec::new();
        for s in self.shards.iter() {
            let mut s = s.write().unwrap_or_else(PoisonError::into_inner);
            for (_, rec) in s.records.iter() {
                gone.extend(rec.iter().map(|c| c.ruid.to_string()));
            }
            s.records.clear();
            s.strings.clear();
        }
        self.counted(gone.len(), 0);
        gone
    }
}

/// Insert `c` where Kamailio's usrloc would: after the contacts of higher or equal q (or first
/// with `desc_time_order`).
pub fn insert_ordered(rec: &mut Vec<Contact>, c: Contact, desc_time_order: bool) -> usize {
    let at = if desc_time_order {
        0
    } else {
        rec.iter().position(|p| p.q < c.q).unwrap_or(rec.len())
    };
    // Records are kept at their exact length: most hold one contact.
    rec.reserve_exact(1);
    rec.insert(at, c);
    at
}

/// The location service: every table, the store writer and the configuration.
#[derive(Debug)]
pub struct Usrloc {
    /// Configuration.
    pub cfg: UlConfig,
    writer: Option<Arc<Writer>>,
    tables: RwLock<Vec<Arc<Table>>>,
    ruid_seq: AtomicU64,
    refused_full: AtomicU64,
    ruid_prefix: String,
}

impl Usrloc {
    /// A service with no tables; `writer` is None for memory-only (`db_mode` 0).
    pub fn new(cfg: UlConfig, writer: Option<Arc<Writer>>) -> Usrloc {
        let start = crate::store::now_unix();
        Usrloc {
            cfg,
            writer,
            tables: RwLock::default(),
            ruid_seq: AtomicU64::new(1),
            refused_full: AtomicU64::new(0),
            // A random part too: nodes sharing a store (or servers of one process) that
            // started in the same second with the same pid must not make the same ruids.
            ruid_prefix: format!("uloc-{start:x}-{:x}-{:08x}", std::process::id(), {
                let mut r = [0u8; 4];
                let _ = getrandom::getrandom(&mut r);
                u32::from_le_bytes(r)
            }),
        }
    }

    /// A fresh unique record id (`uloc-<start>-<pid>-<random>-<n>`).
    pub fn next_ruid(&self) -> Box<str> {
        let n = self.ruid_seq.fetch_add(1, Ordering::Relaxed);
        let n = kemi_runtime::sip::text::Decimal::new(n);
        let mut s = String::with_capacity(self.ruid_prefix.len() + 1 + n.as_str().len());
        s.push_str(&self.ruid_prefix);
        s.push('-');
        s.push_str(n.as_str());
        s.into_boxed_str()
    }

    /// REGISTERs refused since start because a table held `max_bindings` contacts.
    pub fn refused_full(&self) -> u64 {
        self.refused_full.load(Ordering::Relaxed)
    }

    /// Count one REGISTER refused by `max_bindings`.
    pub fn count_refused_full(&self) {
        self.refused_full.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether changes are written to the store (`db_mode` other than 0): when not, callers
    /// need not build [`Persist`] operations at all.
    pub fn persists(&self) -> bool {
        self.writer.is_some()
    }

    /// The table `name`, if it exists.
    pub fn get(&self, name: &str) -> Option<Arc<Table>> {
        let t = self.tables.read().unwrap_or_else(PoisonError::into_inner);
        t.iter().find(|t| &*t.name == name).cloned()
    }

    /// The table `name`, created (and loaded from the store) when it first appears. Names
    /// that are not plain identifiers are refused.
    pub fn table(&self, name: &str) -> Result<Arc<Table>, StoreError> {
        if let Some(t) = self.get(name) {
            return Ok(t);
        }
        crate::store::check_table(name)?;
        let mut tables = self.tables.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(t) = tables.iter().find(|t| &*t.name == name) {
            return Ok(Arc::clone(t));
        }
        let t = Arc::new(Table::new(name, self.cfg.slots));
        if let Some(w) = &self.writer {
            self.load(&t, w)?;
        }
        tables.push(Arc::clone(&t));
        Ok(t)
    }

    /// Every table.
    pub fn tables(&self) -> Vec<Arc<Table>> {
        self.tables
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn load(&self, t: &Table, w: &Writer) -> Result<(), StoreError> {
        let now = crate::store::now_unix();
        let mut rows = w.store().locations(&t.name)?;
        rows.sort_by_key(|r| r.last_modified);
        for r in rows {
            if r.expires != 0 && r.expires <= now {
                let ruid = r.ruid.clone();
                let name = Arc::clone(&t.name);
                w.submit("usrloc delete expired", move |s| {
                    s.delete_location(&name, &ruid)
                });
                continue;
            }
            let aor = if self.cfg.use_domain && !r.domain.is_empty() {
                format!("{}@{}", r.username, r.domain)
            } else {
                r.username.clone()
            };
            let c = Contact::from_row(r);
            t.write(&aor, |rec| {
                insert_ordered(rec, c, self.cfg.desc_time_order);
            });
        }
        Ok(())
    }

    /// Whether other nodes share the store (Redis): then a lookup that misses may read it, and
    /// changes the others make arrive through [`Usrloc::apply_change`].
    pub fn shared(&self) -> bool {
        self.writer.as_ref().is_some_and(|w| w.store().shared())
    }

    /// Whether the shared store is unreachable now (never for a store that is not shared).
    pub fn store_down(&self) -> bool {
        self.writer.as_ref().is_some_and(|w| {
            let s = w.store();
            s.shared() && !s.available()
        })
    }

    /// The record made of the store's `rows` (expired ones left out), in load order.
    fn record_of(&self, mut rows: Vec<LocationRow>, now: i64) -> Vec<Contact> {
        rows.sort_by_key(|r| r.last_modified);
        let mut rec = Vec::with_capacity(rows.len());
        for r in rows {
            if r.expires == 0 || r.expires > now {
                insert_ordered(&mut rec, Contact::from_row(r), self.cfg.desc_time_order);
            }
        }
        rec
    }

    /// Replace the record of `aor` with the store's `rows` (none: remove it).
    pub fn replace(&self, t: &Table, aor: &str, rows: Vec<LocationRow>) {
        let new = self.record_of(rows, crate::store::now_unix());
        t.write(aor, |rec| *rec = new);
    }

    /// For a lookup of an AoR that is not in memory: read it from a shared store (each call
    /// bounded by the store's timeout). True when it was found (and is now in memory); an
    /// error when the store cannot answer. Always false for a store that is not shared.
    pub fn fetch(&self, t: &Table, aor: &str) -> Result<bool, StoreError> {
        let Some(w) = self.writer.as_ref().filter(|w| w.store().shared()) else {
            return Ok(false);
        };
        let rows = w.store().location_aor(&t.name, aor)?;
        if rows.is_empty() {
            return Ok(false);
        }
        let new = self.record_of(rows, crate::store::now_unix());
        // A change that arrived meanwhile wins.
        t.write(aor, |rec| {
            if rec.is_empty() {
                *rec = new;
            }
        });
        Ok(true)
    }

    /// Apply what a shared store says another node changed. Runs on the writer thread, so
    /// every write this node queued before is in the store first.
    pub fn apply_change(&self, s: &dyn Store, change: Change) -> Result<(), StoreError> {
        match change {
            Change::Location { table, aor } => {
                if let Some(t) = self.get(&table) {
                    let rows = s.location_aor(&table, &aor)?;
                    self.replace(&t, &aor, rows);
                }
            }
            Change::Resync { lost } => {
                for t in self.tables() {
                    let now = crate::store::now_unix();
                    if lost {
                        // The store came back empty: write back what this node holds.
                        for (aor, rec) in t.dump() {
                            for c in rec.iter().filter(|c| c.valid(now)) {
                                s.put_location(&t.name, &c.to_row(&aor, self.cfg.use_domain))?;
                            }
                        }
                    }
                    let mut by_aor: std::collections::HashMap<String, Vec<LocationRow>> =
                        std::collections::HashMap::new();
                    for r in s.locations(&t.name)? {
                        let aor = if self.cfg.use_domain && !r.domain.is_empty() {
                            format!("{}@{}", r.username, r.domain)
                        } else {
                            r.username.clone()
                        };
                        by_aor.entry(aor).or_default().push(r);
                    }
                    for (aor, _) in t.dump() {
                        if !by_aor.contains_key(&aor) {
                            t.write(&aor, Vec::clear);
                        }
                    }
                    for (aor, rows) in by_aor {
                        self.replace(&t, &aor, rows);
                    }
                }
            }
        }
        Ok(())
    }

    /// The store writer (None with `db_mode` 0).
    pub fn writer(&self) -> Option<&Arc<Writer>> {
        self.writer.as_ref()
    }

    /// The store write for contact `c` of `aor` being added or updated.
    pub fn put(&self, aor: &str, c: &Contact) -> Persist {
        Persist::Put(Box::new((aor.into(), c.clone())))
    }

    /// Hand store writes to the writer (nothing with `db_mode` 0); the rows are built there.
    pub fn persist(&self, table: &Table, ops: Vec<Persist>) {
        let Some(w) = &self.writer else { return };
        if ops.is_empty() {
            return;
        }
        let name = Arc::clone(&table.name);
        let use_domain = self.cfg.use_domain;
        w.submit("usrloc", move |s| {
            for op in ops {
                match op {
                    Persist::Put(put) => {
                        s.put_location(&name, &put.1.to_row(&put.0, use_domain))?
                    }
                    Persist::Delete(ruid) => s.delete_location(&name, &ruid)?,
                }
            }
            Ok(())
        });
    }

    /// Remove expired contacts of every table, in memory and in the store. Returns how many.
    pub fn sweep(&self, now: i64) -> usize {
        let mut n = 0;
        for t in self.tables() {
            let gone = t.sweep(now);
            n += gone.len();
            // A shared store (Redis) expires bindings by itself.
            if !self.shared() {
                self.persist(&t, gone.into_iter().map(Persist::Delete).collect());
            }
        }
        n
    }

    /// Remove every contact of every table (RPC `ul.flush`... and tests).
    pub fn clear(&self, table: &Table) -> usize {
        let gone = table.clear();
        let n = gone.len();
        self.persist(table, gone.into_iter().map(Persist::Delete).collect());
        n
    }

    /// Remove every contact of `aor`; how many went.
    pub fn remove_aor(&self, table: &Table, aor: &str) -> usize {
        let gone: Vec<Persist> = table.write(aor, |rec| {
            rec.drain(..)
                .map(|c| Persist::Delete(c.ruid.into()))
                .collect()
        });
        let n = gone.len();
        self.persist(table, gone);
        n
    }

    /// Remove the contact of `aor` whose ruid (`by_ruid`) or URI is `key`; whether it existed.
    pub fn remove_contact(&self, table: &Table, aor: &str, key: &str, by_ruid: bool) -> bool {
        let gone: Vec<Persist> = table.write(aor, |rec| {
            let mut out = Vec::new();
            rec.retain(|c| {
                let hit = if by_ruid {
                    &*c.ruid == key
                } else {
                    &*c.uri == key
                };
                if hit {
                    out.push(Persist::Delete(c.ruid.to_string()));
                }
                !hit
            });
            out
        });
        let found = !gone.is_empty();
        self.persist(table, gone);
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(uri: &str, q: i32, expires: i64) -> Contact {
        Contact {
            ruid: uri.into(),
            uri: uri.into(),
            q,
            expires,
            ..Contact::default()
        }
    }

    #[test]
    fn orders_by_q_then_insertion() {
        let mut rec = Vec::new();
        insert_ordered(&mut rec, c("a", 500, 0), false);
        insert_ordered(&mut rec, c("b", 1000, 0), false);
        insert_ordered(&mut rec, c("c", 500, 0), false);
        insert_ordered(&mut rec, c("d", -1, 0), false);
        let uris: Vec<&str> = rec.iter().map(|c| &*c.uri).collect();
        assert_eq!(uris, ["b", "a", "c", "d"]);
        insert_ordered(&mut rec, c("e", -1, 0), true);
        assert_eq!(&*rec[0].uri, "e");
    }

    /// A usrloc with no store and Kamailio's defaults.
    fn memory_only() -> Usrloc {
        Usrloc::new(
            UlConfig {
                use_domain: false,
                db_mode: 0,
                desc_time_order: false,
                nat_bflag: -1,
                cseq_delay: 20,
                slots: 1024,
                max_bindings: 0,
            },
            None,
        )
    }

    /// Two nodes sharing a store, started in one process in the same second, used to make the
    /// same ruids: one node's unregister deleted another user's binding (redis_cluster test).
    #[test]
    fn ruids_differ_between_services_of_one_process() {
        let (a, b) = (memory_only(), memory_only());
        assert_ne!(a.next_ruid(), b.next_ruid());
    }

    #[test]
    fn tables_shard_and_sweep() {
        let ul = memory_only();
        assert!(ul.table("bad name").is_err());
        let t = ul.table("location").unwrap();
        for i in 0..100 {
            t.write(&format!("u{i}"), |rec| rec.push(c("sip:x", 0, i)));
        }
        assert_eq!(t.counts(), (100, 100));
        assert_eq!(t.valid("u50", 49).len(), 1);
        assert!(t.valid("u50", 50).is_empty());
        assert_eq!(ul.sweep(50), 50);
        assert_eq!(t.counts(), (50, 50));
        assert_eq!(ul.remove_aor(&t, "u99"), 1);
        assert!(!ul.remove_contact(&t, "u98", "nope", false));
        assert!(ul.remove_contact(&t, "u98", "sip:x", false));
        assert_eq!(t.counts(), (48, 48));
        assert_eq!(t.contact_count(), 48, "the kept count follows every change");
        t.write("u0", |rec| rec.push(c("sip:y", 0, 0)));
        assert_eq!((t.counts().1, t.contact_count()), (49, 49));
        assert_eq!(ul.clear(&t), 49);
        assert_eq!(t.contact_count(), 0);
        assert_eq!(split_aor("a@b@c", true), ("a@b", "c"));
    }

    /// A record used to keep room for 4 contacts (672 B for one 168 B binding) and a copy of
    /// the socket and User-Agent per binding.
    #[test]
    fn records_are_exact_and_share_strings() {
        let ul = memory_only();
        let t = ul.table("location").unwrap();
        let with = |uri: &str| Contact {
            socket: "udp:127.0.0.1:5060".into(),
            user_agent: String::from("phone 1.0").into(),
            ..c(uri, -1, 0)
        };
        // 3,000 AoRs: some other one shares u0's shard (with 300 there was a 10% chance
        // that none did, and the test failed).
        for i in 0..3000 {
            t.write(&format!("u{i}"), |rec| {
                insert_ordered(rec, with("sip:x"), false)
            });
        }
        t.write("u1", |rec| insert_ordered(rec, with("sip:y"), false));
        t.read("u1", |rec| {
            let rec = rec.unwrap();
            assert_eq!(rec.len(), 2);
            assert!(Arc::ptr_eq(&rec[0].socket, &rec[1].socket));
            assert!(Arc::ptr_eq(&rec[0].user_agent, &rec[1].user_agent));
        });
        for s in t.shards.iter() {
            let s = s.read().unwrap();
            for (_, rec) in s.records.iter() {
                assert_eq!(rec.capacity(), rec.len());
            }
            assert!(s.strings.len() <= 2);
        }
        // Two AoRs of one shard share the one copy.
        let same = (1..3000)
            .map(|j| format!("u{j}"))
            .find(|k| std::ptr::eq(t.locate("u0").1, t.locate(k).1))
            .unwrap();
        let (a, b) = (t.valid("u0", 1), t.valid(&same, 1));
        assert!(Arc::ptr_eq(&a[0].socket, &b[0].socket));
        assert!(Arc::ptr_eq(&a[0].user_agent, &b[0].user_agent));
        // Once no binding uses them, the shared strings go at the next sweep.
        assert_eq!(ul.clear(&t), 3001);
        t.write("u1", |rec| insert_ordered(rec, c("sip:z", -1, 5), false));
        ul.sweep(10);
        assert!(t
            .shards
            .iter()
            .all(|s| s.read().unwrap().strings.is_empty()));
    }
}
