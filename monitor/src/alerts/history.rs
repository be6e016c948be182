//! Where traffic came from before: the countries and ASNs seen, for
//! `new_origin`. A trait, so the daemon's history store can answer from
//! days of data; without one, [`MemoryOriginHistory`] remembers since start
//! (hence the rule's warm-up).

use std::collections::{HashMap, HashSet};

/// Countries (ISO codes) and ASNs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Origins {
    pub countries: HashSet<String>,
    pub asns: HashSet<u32>,
}

pub trait OriginHistory: Send {
    /// The origins seen at or after `since_ms` (ms since the epoch).
    fn seen_since(&self, since_ms: u64) -> Origins;
    /// Origins seen in the second ending at `at_ms`; a store that records
    /// traffic itself may ignore this.
    fn record(&mut self, at_ms: u64, origins: &Origins);
}

/// Origins kept at most, each kind: ASNs announced are about 120,000.
const ORIGINS_MAX: usize = 200_000;

/// Origins since the daemon started, with when each was last seen.
#[derive(Debug, Default)]
pub struct MemoryOriginHistory {
    countries: HashMap<String, u64>,
    asns: HashMap<u32, u64>,
}

fn note<K: std::hash::Hash + Eq + Clone>(map: &mut HashMap<K, u64>, key: &K, at_ms: u64) {
    if map.len() >= ORIGINS_MAX && !map.contains_key(key) {
        // Full: the older half goes (rare; bounded memory over a clean record).
        let mut times: Vec<u64> = map.values().copied().collect();
        times.sort_unstable();
        let median = times[times.len() / 2];
        map.retain(|_, at| *at > median);
    }
    map.insert(key.clone(), at_ms);
}

impl OriginHistory for MemoryOriginHistory {
    fn seen_since(&self, since_ms: u64) -> Origins {
        Origins {
            countries: self.countries.iter().filter(|(_, at)| **at >= since_ms).map(|(c, _)| c.clone()).collect(),
            asns: self.asns.iter().filter(|(_, at)| **at >= since_ms).map(|(a, _)| *a).collect(),
        }
    }

    fn record(&mut self, at_ms: u64, origins: &Origins) {
        for c in &origins.countries {
            note(&mut self.countries, c, at_ms);
        }
        for a in &origins.asns {
            note(&mut self.asns, a, at_ms);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_by_time() {
        let mut h = MemoryOriginHistory::default();
        let o = |c: &str, a: u32| Origins { countries: [c.to_owned()].into(), asns: [a].into() };
        h.record(1_000, &o("DE", 3320));
        h.record(5_000, &o("FR", 3215));
        let seen = h.seen_since(2_000);
        assert_eq!(seen, o("FR", 3215));
        assert_eq!(h.seen_since(0).asns.len(), 2);
    }
}
