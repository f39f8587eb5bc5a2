//! One hash table: 2^size shards (Kamailio's slots), each a `HashMap` behind its own `Mutex`.
//!
//! An operation on one key hashes it to one shard and holds that shard's lock for one map
//! operation; whole-table operations (`sht_rm_name_re`, `sht_match_name`, dumps, the expiry
//! sweep) lock one shard at a time. No lock covers the table, so workers touching different
//! keys rarely meet.
//!
//! Expiry follows Kamailio: it applies only to tables with `autoexpire > 0`; an item expires
//! `autoexpire` seconds after it was set (after every update unless `updateexpire=0`), or at
//! the time `sht_setex`/`sht_setx*` gave it. An expired item is invisible at once to every read
//! (Kamailio lets `sht_match_name` and dumps see it until its timer sweeps it) and is removed by
//! the periodic sweep ([`Htable::sweep`]).

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::ThreadId;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use regex::Regex;

use super::spec::TableSpec;
use crate::store::{HtableRow, HtableValue, Writer};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// One item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// Its value.
    pub value: HtableValue,
    /// When it expires, Unix milliseconds; 0 never.
    pub expires_ms: u64,
}

impl Item {
    fn expired(&self, now: u64) -> bool {
        self.expires_ms != 0 && self.expires_ms <= now
    }
}

/// How `sht_rm_name`/`sht_match_name`/... compare.
#[derive(Clone, Debug)]
pub enum Matcher {
    /// `eq`: equal.
    Eq(String),
    /// `ne`: not equal.
    Ne(String),
    /// `sw`: starts with.
    Sw(String),
    /// `ew`: ends with.
    Ew(String),
    /// `in`: contains.
    In(String),
    /// `re`: POSIX-style extended regex, case-insensitive as Kamailio compiles it.
    Re(Regex),
}

impl Matcher {
    /// A case-insensitive regex (Kamailio compiles with `REG_ICASE`).
    pub fn regex(pattern: &str) -> Result<Matcher, regex::Error> {
        regex::RegexBuilder::new(pattern)
            .case_insensitive(true)
            .build()
            .map(Matcher::Re)
    }

    /// Whether `s` matches.
    pub fn matches(&self, s: &str) -> bool {
        match self {
            Matcher::Eq(v) => s == v,
            Matcher::Ne(v) => s != v,
            Matcher::Sw(v) => s.starts_with(v.as_str()),
            Matcher::Ew(v) => s.ends_with(v.as_str()),
            Matcher::In(v) => s.contains(v.as_str()),
            Matcher::Re(r) => r.is_match(s),
        }
    }
}

/// Whether a matcher looks at item names or at string values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum On {
    /// Item names.
    Name,
    /// String values (integer values never match).
    Value,
}

fn subject<'a>(key: &'a str, item: &'a Item, on: On) -> Option<&'a str> {
    match (on, &item.value) {
        (On::Name, _) => Some(key),
        (On::Value, HtableValue::Str(s)) => Some(s),
        (On::Value, HtableValue::Int(_)) => None,
    }
}

/// The re-entrant per-shard lock behind `sht_lock`/`sht_unlock`.
#[derive(Debug, Default)]
struct ScriptLock {
    owner: Mutex<(Option<ThreadId>, u32)>,
    cv: Condvar,
}

/// How long `sht_lock` waits for another worker before giving up.
const SCRIPT_LOCK_WAIT: Duration = Duration::from_secs(2);

/// Where a table writes through (dbmode=1).
#[derive(Debug)]
pub struct WriteThrough {
    /// The store writer.
    pub writer: Arc<Writer>,
    /// The store table.
    pub table: String,
    /// Whether item expiries are stored (`db_expires`).
    pub expires: bool,
}

/// One hash table.
#[derive(Debug)]
pub struct Htable {
    spec: TableSpec,
    shards: Box<[Mutex<HashMap<String, Item>>]>,
    locks: Box<[ScriptLock]>,
    hasher: RandomState,
    write: Option<WriteThrough>,
}

impl Htable {
    /// An empty table for `spec`, writing through to `write` when given.
    pub fn new(spec: TableSpec, write: Option<WriteThrough>) -> Htable {
        let n = spec.slots();
        Htable {
            spec,
            shards: (0..n).map(|_| Mutex::new(HashMap::new())).collect(),
            locks: (0..n).map(|_| ScriptLock::default()).collect(),
            hasher: RandomState::new(),
            write,
        }
    }

    /// Its definition.
    pub fn spec(&self) -> &TableSpec {
        &self.spec
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The number of slots.
    pub fn slots(&self) -> usize {
        self.shards.len()
    }

    fn index(&self, key: &str) -> usize {
        (self.hasher.hash_one(key) as usize) & (self.shards.len() - 1)
    }

    fn shard(&self, i: usize) -> MutexGuard<'_, HashMap<String, Item>> {
        self.shards[i]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The expiry of an item set now (autoexpire tables only).
    fn expiry(&self, now: u64, secs: u64) -> u64 {
        if self.spec.autoexpire == 0 || secs == 0 {
            0
        } else {
            now + secs * 1000
        }
    }

    fn persist_set(&self, key: &str, item: &Item) {
        if let Some(w) = &self.write {
            let row = HtableRow {
                key_name: key.to_string(),
                value: item.value.clone(),
                expires: if w.expires && item.expires_ms != 0 {
                    (item.expires_ms / 1000) as i64
                } else {
                    0
                },
            };
            let table = w.table.clone();
            w.writer
                .submit("htable", move |s| s.put_htable(&table, &row));
        }
    }

    fn persist_delete(&self, keys: Vec<String>) {
        if let (Some(w), false) = (&self.write, keys.is_empty()) {
            let table = w.table.clone();
            w.writer.submit("htable", move |s| {
                keys.iter().try_for_each(|k| s.delete_htable(&table, k))
            });
        }
    }

    /// The value of `key`, if set and not expired (initval is the caller's business).
    pub fn get(&self, key: &str) -> Option<HtableValue> {
        self.item(key).map(|i| i.value)
    }

    /// The item `key`, if set and not expired.
    pub fn item(&self, key: &str) -> Option<Item> {
        let now = now_ms();
        let shard = self.shard(self.index(key));
        shard.get(key).filter(|i| !i.expired(now)).cloned()
    }

    /// Set `key` to `value`; `exv > 0` gives it that many seconds to live (autoexpire tables),
    /// otherwise it gets the table's autoexpire (kept on update when `updateexpire=0`).
    pub fn set(&self, key: &str, value: HtableValue, exv: i64) {
        let now = now_ms();
        let mut shard = self.shard(self.index(key));
        let expires_ms = match shard.get(key) {
            _ if exv > 0 => self.expiry(now, exv as u64),
            Some(old) if !self.spec.updateexpire && !old.expired(now) => old.expires_ms,
            _ => self.expiry(now, self.spec.autoexpire),
        };
        let item = Item { value, expires_ms };
        self.persist_set(key, &item);
        shard.insert(key.to_string(), item);
    }

    /// Give `key` `secs` more seconds to live (0 or less: never expires). Kamailio ignores this
    /// for tables without autoexpire; so does this.
    pub fn set_expire(&self, key: &str, secs: i64) {
        if self.spec.autoexpire == 0 {
            return;
        }
        let now = now_ms();
        let mut shard = self.shard(self.index(key));
        if let Some(item) = shard.get_mut(key) {
            item.expires_ms = if secs > 0 {
                now + secs as u64 * 1000
            } else {
                0
            };
            let item = item.clone();
            self.persist_set(key, &item);
        }
    }

    /// Remove `key`; whether it was there (expired or not).
    pub fn delete(&self, key: &str) -> bool {
        let mut shard = self.shard(self.index(key));
        let found = shard.remove(key).is_some();
        if found {
            self.persist_delete(vec![key.to_string()]);
        }
        found
    }

    /// Add `delta` to the integer `key` and give the new value. A missing (or expired) item
    /// starts from `initval`; without `initval`, or for a string value, nothing changes and
    /// `None` comes back, as in Kamailio.
    pub fn add(&self, key: &str, delta: i64) -> Option<i64> {
        let now = now_ms();
        let mut shard = self.shard(self.index(key));
        let current = match shard.get(key) {
            Some(i) if !i.expired(now) => Some(i),
            _ => None,
        };
        let (base, expires_ms) = match current {
            Some(Item {
                value: HtableValue::Str(_),
                ..
            }) => return None,
            Some(Item {
                value: HtableValue::Int(n),
                expires_ms,
            }) => {
                let exp = if self.spec.updateexpire {
                    self.expiry(now, self.spec.autoexpire)
                } else {
                    *expires_ms
                };
                (*n, exp)
            }
            None => (self.spec.initval?, self.expiry(now, self.spec.autoexpire)),
        };
        let n = base.wrapping_add(delta);
        let item = Item {
            value: HtableValue::Int(n),
            expires_ms,
        };
        self.persist_set(key, &item);
        shard.insert(key.to_string(), item);
        Some(n)
    }

    /// Remove every item `m` matches (on names or string values); how many went.
    pub fn remove_matching(&self, m: &Matcher, on: On) -> usize {
        let mut gone = Vec::new();
        for i in 0..self.shards.len() {
            let mut shard = self.shard(i);
            shard.retain(|k, item| {
                let hit = subject(k, item, on).is_some_and(|s| m.matches(s));
                if hit {
                    gone.push(k.clone());
                }
                !hit
            });
        }
        let n = gone.len();
        self.persist_delete(gone);
        n
    }

    /// Whether a live item matches `m`.
    pub fn any_matching(&self, m: &Matcher, on: On) -> bool {
        let now = now_ms();
        (0..self.shards.len()).any(|i| {
            self.shard(i).iter().any(|(k, item)| {
                !item.expired(now) && subject(k, item, on).is_some_and(|s| m.matches(s))
            })
        })
    }

    /// How many live items `pred` accepts.
    pub fn count(&self, pred: impl Fn(&str, &Item) -> bool) -> usize {
        let now = now_ms();
        (0..self.shards.len())
            .map(|i| {
                self.shard(i)
                    .iter()
                    .filter(|(k, item)| !item.expired(now) && pred(k, item))
                    .count()
            })
            .sum()
    }

    /// Remove every item.
    pub fn reset(&self) {
        let mut gone = Vec::new();
        for i in 0..self.shards.len() {
            gone.extend(self.shard(i).drain().map(|(k, _)| k));
        }
        self.persist_delete(gone);
    }

    /// Replace the content with `rows` (startup load, `htable.reload`); rows already expired are
    /// skipped. Nothing is written back.
    pub fn load(&self, rows: Vec<HtableRow>, with_expires: bool) {
        for i in 0..self.shards.len() {
            self.shard(i).clear();
        }
        let now = now_ms();
        for row in rows {
            let expires_ms = if with_expires && row.expires > 0 && self.spec.autoexpire > 0 {
                row.expires as u64 * 1000
            } else {
                self.expiry(now, self.spec.autoexpire)
            };
            let item = Item {
                value: row.value,
                expires_ms,
            };
            if !item.expired(now) {
                self.shard(self.index(&row.key_name))
                    .insert(row.key_name, item);
            }
        }
    }

    /// Every live item, per slot: `(slot, [(key, item)])` for the slots that hold any.
    pub fn dump(&self) -> Vec<(usize, Vec<(String, Item)>)> {
        let now = now_ms();
        let mut out = Vec::new();
        for i in 0..self.shards.len() {
            let mut items: Vec<(String, Item)> = self
                .shard(i)
                .iter()
                .filter(|(_, it)| !it.expired(now))
                .map(|(k, it)| (k.clone(), it.clone()))
                .collect();
            if !items.is_empty() {
                items.sort_by(|a, b| a.0.cmp(&b.0));
                out.push((i, items));
            }
        }
        out
    }

    /// Live items in the table.
    pub fn len(&self) -> usize {
        self.count(|_, _| true)
    }

    /// Whether the table has no live item.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drop expired items (the periodic sweep); how many went.
    pub fn sweep(&self) -> usize {
        if self.spec.autoexpire == 0 {
            return 0;
        }
        let now = now_ms();
        let mut gone = Vec::new();
        for i in 0..self.shards.len() {
            self.shard(i).retain(|k, item| {
                let keep = !item.expired(now);
                if !keep {
                    gone.push(k.clone());
                }
                keep
            });
        }
        let n = gone.len();
        self.persist_delete(gone);
        n
    }

    /// `sht_lock`: take the script lock of `key`'s slot (re-entrant for this thread). False
    /// when another worker held it for 2 s.
    pub fn script_lock(&self, key: &str) -> bool {
        let lock = &self.locks[self.index(key)];
        let me = std::thread::current().id();
        let mut st = lock.owner.lock().unwrap_or_else(PoisonError::into_inner);
        let deadline = std::time::Instant::now() + SCRIPT_LOCK_WAIT;
        loop {
            match st.0 {
                None => {
                    *st = (Some(me), 1);
                    return true;
                }
                Some(t) if t == me => {
                    st.1 += 1;
                    return true;
                }
                Some(_) => {
                    let left = deadline.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        return false;
                    }
                    st = lock
                        .cv
                        .wait_timeout(st, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
            }
        }
    }

    /// `sht_unlock`: release one level of this thread's script lock of `key`'s slot. False when
    /// this thread does not hold it.
    pub fn script_unlock(&self, key: &str) -> bool {
        let lock = &self.locks[self.index(key)];
        let me = std::thread::current().id();
        let mut st = lock.owner.lock().unwrap_or_else(PoisonError::into_inner);
        if st.0 != Some(me) {
            return false;
        }
        st.1 -= 1;
        if st.1 == 0 {
            st.0 = None;
            lock.cv.notify_one();
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(def: &str) -> Htable {
        Htable::new(TableSpec::parse(def).unwrap(), None)
    }

    #[test]
    fn set_get_add_delete() {
        let t = table("t=>size=2");
        assert_eq!(t.get("a"), None);
        t.set("a", HtableValue::Int(5), 0);
        assert_eq!(t.add("a", 2), Some(7));
        assert_eq!(t.add("b", 1), None);
        t.set("s", HtableValue::Str("x".into()), 0);
        assert_eq!(t.add("s", 1), None);
        assert!(t.delete("a"));
        assert!(!t.delete("a"));
        let t = table("t=>initval=10");
        assert_eq!(t.add("n", -1), Some(9));
    }

    #[test]
    fn expiry_is_immediate() {
        let t = table("t=>autoexpire=100");
        t.set("a", HtableValue::Int(1), 0);
        t.set("b", HtableValue::Int(1), 0);
        t.shard(t.index("a")).get_mut("a").unwrap().expires_ms = now_ms() - 1;
        assert_eq!(t.get("a"), None);
        assert!(!t.any_matching(&Matcher::Eq("a".into()), On::Name));
        assert_eq!(t.len(), 1);
        assert_eq!(t.sweep(), 1);
        // no autoexpire: setex is ignored, as in Kamailio
        let t = table("t=>");
        t.set("a", HtableValue::Int(1), 1);
        assert_eq!(t.item("a").unwrap().expires_ms, 0);
    }

    #[test]
    fn script_lock_is_reentrant() {
        let t = table("t=>");
        assert!(t.script_lock("k"));
        assert!(t.script_lock("k"));
        assert!(t.script_unlock("k"));
        assert!(t.script_unlock("k"));
        assert!(!t.script_unlock("k"));
    }
}
