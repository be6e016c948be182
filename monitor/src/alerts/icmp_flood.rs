//! `icmp_flood`: a source (or all sources together) over N ICMP packets per
//! second, averaged over a short window, from the snapshot's per-source
//! second (event weights: close to the kernel's exact counts).

use std::collections::VecDeque;

use serde::Deserialize;

use super::{
    condition::{Condition, Context, Hit},
    duration::Duration,
};
use crate::{model::AddressMap, state::Snapshot};

/// Sources tracked at most (the snapshot's per-second bound).
const SOURCES_MAX: usize = crate::state::activity::ACTIVITY_SOURCES_MAX;

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// One alert per source over the rate.
    PerSource,
    /// One alert when all sources together are over it.
    All,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FloodParams {
    pub packets_per_s: f64,
    #[serde(default = "per_source")]
    pub scope: Scope,
    /// The rate is the average over this window (1s to 60s).
    #[serde(default = "ten_seconds")]
    pub window: Duration,
}

fn per_source() -> Scope {
    Scope::PerSource
}

fn ten_seconds() -> Duration {
    Duration::secs(10)
}

impl FloodParams {
    pub(super) fn validated(self) -> Result<Self, String> {
        if !(self.packets_per_s.is_finite() && self.packets_per_s > 0.0) {
            return Err("params: packets_per_s must be a positive number".into());
        }
        if !(Duration::secs(1)..=Duration::secs(60)).contains(&self.window) {
            return Err("params: window must be 1s to 60s".into());
        }
        Ok(self)
    }

    fn seconds(&self) -> usize {
        (self.window.ms() / 1_000).max(1) as usize
    }
}

pub struct IcmpFlood {
    params: FloodParams,
    /// Packets of each of the last `window` seconds, newest last.
    sources: AddressMap<VecDeque<u64>>,
    total: VecDeque<u64>,
    last_second: u64,
}

impl IcmpFlood {
    pub fn new(params: FloodParams) -> Self {
        IcmpFlood { params, sources: AddressMap::default(), total: VecDeque::new(), last_second: 0 }
    }
}

fn push(window: &mut VecDeque<u64>, n: u64, len: usize) -> f64 {
    window.push_back(n);
    while window.len() > len {
        window.pop_front();
    }
    window.iter().sum::<u64>() as f64 / len as f64
}

impl Condition for IcmpFlood {
    fn evaluate(&mut self, snapshot: &Snapshot, _cx: &mut Context<'_>) -> Vec<Hit> {
        let activity = &snapshot.activity;
        // Each second once: a snapshot without a new second adds nothing.
        if activity.end_ms == self.last_second {
            return Vec::new();
        }
        self.last_second = activity.end_ms;
        let len = self.params.seconds();
        let limit = self.params.packets_per_s;
        if self.params.scope == Scope::All {
            let n = activity.sources.values().map(|s| s.icmp_packets).sum();
            let rate = push(&mut self.total, n, len);
            return if rate > limit { vec![Hit::new("source", "all", rate)] } else { Vec::new() };
        }
        let mut hits = Vec::new();
        for (ip, second) in &activity.sources {
            if second.icmp_packets == 0 || (self.sources.len() >= SOURCES_MAX && !self.sources.contains_key(ip)) {
                continue;
            }
            let rate = push(self.sources.entry(*ip).or_default(), second.icmp_packets, len);
            if rate > limit {
                hits.push(Hit::new("source", ip.to_string(), rate));
            }
        }
        // Sources quiet this second: a zero second for each, forgotten when all are.
        self.sources.retain(|ip, window| {
            if activity.sources.get(ip).is_none_or(|s| s.icmp_packets == 0) {
                push(window, 0, len);
            }
            window.iter().any(|&n| n > 0)
        });
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::testing::{activity, context_parts, snapshot_with};

    #[test]
    fn a_source_over_the_average_rate_is_hit_until_it_stops() {
        let mut rule =
            IcmpFlood::new(FloodParams { packets_per_s: 10.0, scope: Scope::PerSource, window: Duration::secs(2) });
        let (mut origins, now) = context_parts();
        let mut cx = Context { now_ms: now, started_ms: 0, origins: &mut origins };
        let second = |end: u64, n: u64| snapshot_with(activity(end, &[("192.0.2.9", n, &[])]));
        assert!(rule.evaluate(&second(1_000, 15), &mut cx).is_empty(), "(15 + 0) / 2 is not over 10");
        let hits = rule.evaluate(&second(2_000, 30), &mut cx);
        assert_eq!(hits, vec![Hit::new("source", "192.0.2.9", 22.5)]);
        assert!(rule.evaluate(&second(2_000, 30), &mut cx).is_empty(), "the same second counts once");
        assert!(rule.evaluate(&snapshot_with(activity(3_000, &[])), &mut cx).is_empty());
        assert!(rule.evaluate(&snapshot_with(activity(4_000, &[])), &mut cx).is_empty());
        assert!(rule.sources.is_empty(), "a quiet source is forgotten");
    }

    #[test]
    fn all_sources_together() {
        let mut rule =
            IcmpFlood::new(FloodParams { packets_per_s: 10.0, scope: Scope::All, window: Duration::secs(1) });
        let (mut origins, now) = context_parts();
        let mut cx = Context { now_ms: now, started_ms: 0, origins: &mut origins };
        let snap = snapshot_with(activity(1_000, &[("192.0.2.1", 6, &[]), ("192.0.2.2", 6, &[])]));
        assert_eq!(rule.evaluate(&snap, &mut cx), vec![Hit::new("source", "all", 12.0)]);
    }
}
