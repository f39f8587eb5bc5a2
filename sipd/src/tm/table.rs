//! [`Sharded`]: a hash table split into shards, each behind its own `Mutex`. Workers touching
//! different transactions almost always lock different shards, and each lock is held for one
//! table operation, so the table never serializes the workers the way one global lock would.
//!
//! One foldhash hash per operation picks both the shard (bits 32..38) and the bucket
//! (hashbrown's low bits and top-7-bit tag): fast, and seeded at random per process, so keys a
//! peer chooses (its Via branch) cannot be made to collide on purpose.

use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash};
use std::sync::{Mutex, MutexGuard};

use hashbrown::{DefaultHashBuilder, HashTable};

/// Number of shards: a power of two well above the worker count.
const SHARDS: usize = 64;

/// A sharded map from `K` to `V` (`V` is cloned out: use `Arc`s).
#[derive(Debug)]
pub struct Sharded<K, V> {
    shards: [Mutex<HashTable<(K, V)>>; SHARDS],
    hasher: DefaultHashBuilder,
}

impl<K: Hash + Eq, V: Clone> Default for Sharded<K, V> {
    fn default() -> Self {
        Sharded {
            shards: std::array::from_fn(|_| Mutex::new(HashTable::new())),
            hasher: DefaultHashBuilder::default(),
        }
    }
}

impl<K: Hash + Eq, V: Clone> Sharded<K, V> {
    fn hash<Q: Hash + ?Sized>(&self, k: &Q) -> u64 {
        self.hasher.hash_one(k)
    }

    fn shard(&self, hash: u64) -> MutexGuard<'_, HashTable<(K, V)>> {
        // Bits hashbrown does not use for tables under 2^32 buckets: the tag is the top 7 bits
        // and the bucket the low ones, so shard and bucket stay independent.
        let i = ((hash >> 32) as usize) % SHARDS;
        // A poisoned shard only means a panic elsewhere; the table itself is consistent.
        self.shards[i]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The value for `k` (any borrowed form of the key that hashes and compares as it does).
    pub fn get<Q>(&self, k: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let h = self.hash(k);
        self.shard(h)
            .find(h, |(x, _)| x.borrow() == k)
            .map(|(_, v)| v.clone())
    }

    /// Insert `v` unless `k` is present; returns the value now in the map and whether it is `v`.
    pub fn insert_if_absent(&self, k: K, v: V) -> (V, bool) {
        let h = self.hash(&k);
        let hasher = &self.hasher;
        let mut shard = self.shard(h);
        if let Some((_, existing)) = shard.find(h, |(x, _)| *x == k) {
            return (existing.clone(), false);
        }
        shard.insert_unique(h, (k, v.clone()), |(x, _)| hasher.hash_one(x));
        (v, true)
    }

    /// Remove `k`.
    pub fn remove<Q>(&self, k: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let h = self.hash(k);
        let mut shard = self.shard(h);
        let entry = shard.find_entry(h, |(x, _)| x.borrow() == k).ok()?;
        let ((_, v), _) = entry.remove();
        Some(v)
    }

    /// Give back the room of shards that emptied (a table that held a burst keeps its
    /// capacity otherwise): each shard with less than a quarter of its room used shrinks to
    /// twice its entries. Locks every shard in turn; for the housekeeping thread.
    pub fn shrink(&self) {
        let hasher = &self.hasher;
        for s in &self.shards {
            let mut shard = s.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if shard.capacity() > 4 * shard.len() + 64 {
                let keep = 2 * shard.len();
                shard.shrink_to(keep, |(x, _)| hasher.hash_one(x));
            }
        }
    }

    /// Number of entries (locks every shard in turn; for tests and stats).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .len()
            })
            .sum()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_get_remove() {
        let m: Sharded<u64, u32> = Sharded::default();
        assert_eq!(m.insert_if_absent(1, 10), (10, true));
        assert_eq!(m.insert_if_absent(1, 11), (10, false));
        assert_eq!(m.get(&1), Some(10));
        assert_eq!(m.len(), 1);
        assert_eq!(m.remove(&1), Some(10));
        assert_eq!(m.remove(&1), None);
        assert!(m.is_empty());
    }

    #[test]
    fn shrink_gives_back_the_room_of_a_burst() {
        let m: Sharded<u64, u64> = Sharded::default();
        let room = |m: &Sharded<u64, u64>| -> usize {
            m.shards
                .iter()
                .map(|s| s.lock().map(|t| t.capacity()).unwrap_or(0))
                .sum()
        };
        for i in 0..20_000 {
            m.insert_if_absent(i, i);
        }
        for i in 0..19_990 {
            m.remove(&i);
        }
        let before = room(&m);
        m.shrink();
        assert!(room(&m) * 8 < before, "{} -> {}", before, room(&m));
        for i in 19_990..20_000 {
            assert_eq!(m.get(&i), Some(i), "entries survive the shrink");
        }
    }

    #[test]
    fn many_keys_spread_and_come_back() {
        let m: Sharded<u64, u64> = Sharded::default();
        for i in 0..10_000u64 {
            assert!(m.insert_if_absent(i, i * 2).1);
        }
        assert_eq!(m.len(), 10_000);
        let used = m
            .shards
            .iter()
            .filter(|s| {
                !s.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .is_empty()
            })
            .count();
        assert_eq!(used, SHARDS, "sequential ids must use every shard");
        for i in 0..10_000u64 {
            assert_eq!(m.get(&i), Some(i * 2));
            assert_eq!(m.remove(&i), Some(i * 2));
        }
        assert!(m.is_empty());
    }

    #[test]
    fn borrowed_probe_finds_owned_key() {
        let m: Sharded<Box<[u8]>, u8> = Sharded::default();
        m.insert_if_absent(b"abc".to_vec().into_boxed_slice(), 1);
        assert_eq!(m.get(&b"abc"[..]), Some(1));
        assert_eq!(m.get(&b"abd"[..]), None);
        assert_eq!(m.remove(&b"abc"[..]), Some(1));
    }
}
