//! [`Sharded`]: a hash map split into shards, each behind its own `Mutex`. Workers touching
//! different transactions almost always lock different shards, and each lock is held for one
//! map operation, so the table never serializes the workers the way one global lock would.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::{Mutex, MutexGuard};

/// Number of shards: a power of two well above the worker count.
const SHARDS: usize = 64;

/// A sharded map from `K` to `V` (`V` is cloned out: use `Arc`s).
#[derive(Debug)]
pub struct Sharded<K, V> {
    shards: [Mutex<HashMap<K, V>>; SHARDS],
    hasher: RandomState,
}

impl<K: Hash + Eq, V: Clone> Default for Sharded<K, V> {
    fn default() -> Self {
        Sharded {
            shards: std::array::from_fn(|_| Mutex::new(HashMap::new())),
            hasher: RandomState::new(),
        }
    }
}

impl<K: Hash + Eq, V: Clone> Sharded<K, V> {
    fn shard(&self, k: &K) -> MutexGuard<'_, HashMap<K, V>> {
        let i = (self.hasher.hash_one(k) as usize) % SHARDS;
        // A poisoned shard only means a panic elsewhere; the map itself is consistent.
        self.shards[i]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The value for `k`.
    pub fn get(&self, k: &K) -> Option<V> {
        self.shard(k).get(k).cloned()
    }

    /// Insert `v` unless `k` is present; returns the value now in the map and whether it is `v`.
    pub fn insert_if_absent(&self, k: K, v: V) -> (V, bool) {
        let mut shard = self.shard(&k);
        match shard.get(&k) {
            Some(existing) => (existing.clone(), false),
            None => {
                shard.insert(k, v.clone());
                (v, true)
            }
        }
    }

    /// Remove `k`.
    pub fn remove(&self, k: &K) -> Option<V> {
        self.shard(k).remove(k)
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
        assert!(m.is_empty());
    }
}
