//! A bounded lookup cache: two generations, so memory is capped at twice
//! the capacity and eviction is O(1) amortised, with no per-entry bookkeeping.
//! Each generation's table is sized for the capacity up front: a table that
//! grew by doubling would leave a trail of freed smaller tables behind it,
//! and the daemon's memory would keep creeping up to the allocator's
//! high-water mark.

use std::{collections::HashMap, hash::Hash};

use crate::model::AddressHasher;

/// Keyed by address: the fast seeded hasher (see `model::address_map`).
type Table<K, V> = HashMap<K, V, AddressHasher>;

pub struct GenerationalCache<K, V> {
    capacity: usize,
    hot: Table<K, V>,
    cold: Table<K, V>,
}

impl<K: Hash + Eq + Clone, V: Clone> GenerationalCache<K, V> {
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        GenerationalCache { capacity, hot: table(capacity), cold: Table::default() }
    }

    pub fn get(&mut self, key: &K) -> Option<V> {
        if let Some(v) = self.hot.get(key) {
            return Some(v.clone());
        }
        let v = self.cold.remove(key)?;
        self.insert(key.clone(), v.clone());
        Some(v)
    }

    pub fn insert(&mut self, key: K, value: V) {
        if self.hot.len() >= self.capacity {
            // The old cold table is dropped; the new hot one is allocated at
            // full size once.
            self.cold = std::mem::replace(&mut self.hot, table(self.capacity));
        }
        self.hot.insert(key, value);
    }

    pub fn clear(&mut self) {
        self.hot.clear();
        self.cold = Table::default();
    }

    pub fn len(&self) -> usize {
        self.hot.len() + self.cold.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn table<K, V>(capacity: usize) -> Table<K, V> {
    HashMap::with_capacity_and_hasher(capacity, AddressHasher::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_keeps_recent() {
        let mut c = GenerationalCache::new(2);
        for i in 0..100 {
            c.insert(i, i);
            assert!(c.len() <= 4);
        }
        assert_eq!(c.get(&99), Some(99));
        assert_eq!(c.get(&0), None);
    }
}
