//! A bounded lookup cache: two generations, so memory is capped at twice
//! the capacity and eviction is O(1) amortised, with no per-entry bookkeeping.
//! Each generation's table is sized for the capacity up front: a table that
//! grew by doubling would leave a trail of freed smaller tables behind it,
//! and the daemon's memory would keep creeping up to the allocator's
//! high-water mark.

use std::{collections::HashMap, hash::Hash};

pub struct GenerationalCache<K, V> {
    capacity: usize,
    hot: HashMap<K, V>,
    cold: HashMap<K, V>,
}

impl<K: Hash + Eq + Clone, V: Clone> GenerationalCache<K, V> {
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        GenerationalCache { capacity, hot: HashMap::with_capacity(capacity), cold: HashMap::new() }
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
            self.cold = std::mem::replace(&mut self.hot, HashMap::with_capacity(self.capacity));
        }
        self.hot.insert(key, value);
    }

    pub fn clear(&mut self) {
        self.hot.clear();
        self.cold = HashMap::new();
    }

    pub fn len(&self) -> usize {
        self.hot.len() + self.cold.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
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
