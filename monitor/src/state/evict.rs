//! Keeping bounded tables bounded.

use std::{
    collections::HashMap,
    hash::{BuildHasher, Hash},
};

/// Drops the least recently seen tenth (at least one) of `map` at once, so
/// the O(n) scan happens once per n/10 new keys, not per insert; returns
/// how many were dropped.
pub(super) fn evict_least_recent<K: Clone + Eq + Hash, V, S: BuildHasher>(
    map: &mut HashMap<K, V, S>,
    last_seen: impl Fn(&V) -> u64,
) -> usize {
    let drop = (map.len() / 10).max(1).min(map.len());
    if drop == 0 {
        return 0;
    }
    let mut by_age: Vec<(u64, &K)> = map.iter().map(|(k, v)| (last_seen(v), k)).collect();
    by_age.select_nth_unstable_by_key(drop - 1, |(seen, _)| *seen);
    let gone: Vec<K> = by_age.into_iter().take(drop).map(|(_, k)| k.clone()).collect();
    for k in &gone {
        map.remove(k);
    }
    drop
}
