//! `ping_sweep`: one source reaching many distinct destination addresses
//! within a window.
//!
//! Counted in userspace from events: each second the snapshot carries, per
//! source, the distinct destinations its events reached (ICMP echo
//! requests, or any packet); this rule keeps, per source, when it last
//! reached each, up to the threshold. The count is exact for what the
//! events show, but sampling (`--events-per-source`, `--events-per-sec`)
//! can hide a destination reached only by suppressed packets: a fast sweep
//! is undercounted, never overcounted.

use serde::Deserialize;

use super::{
    condition::{Condition, Context, Hit},
    duration::Duration,
};
use crate::{
    model::AddressMap,
    state::{activity::ACTIVITY_DESTINATIONS_PER_SOURCE, Snapshot},
};

/// Sources followed at most; each holds at most `destinations` addresses.
const SOURCES_MAX: usize = 4_096;

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Packets {
    /// ICMP and ICMPv6 echo requests: a ping sweep.
    Echo,
    /// Any packet the events show (ICMP, HTTP, HTTPS): a scan.
    Any,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepParams {
    /// Distinct destinations within the window that make a sweep (2 to 1024).
    pub destinations: u32,
    #[serde(default = "one_minute")]
    pub window: Duration,
    #[serde(default = "echo")]
    pub packets: Packets,
}

fn one_minute() -> Duration {
    Duration::secs(60)
}

fn echo() -> Packets {
    Packets::Echo
}

impl SweepParams {
    pub(super) fn validated(self) -> Result<Self, String> {
        if !(2..=ACTIVITY_DESTINATIONS_PER_SOURCE as u32).contains(&self.destinations) {
            return Err(format!("params: destinations must be 2 to {ACTIVITY_DESTINATIONS_PER_SOURCE}"));
        }
        if !(Duration::secs(1)..=Duration::secs(3_600)).contains(&self.window) {
            return Err("params: window must be 1s to 1h".into());
        }
        Ok(self)
    }
}

pub struct PingSweep {
    params: SweepParams,
    /// Per source: each destination and when it was last reached (ms).
    sources: AddressMap<AddressMap<u64>>,
    last_second: u64,
}

impl PingSweep {
    pub fn new(params: SweepParams) -> Self {
        PingSweep { params, sources: AddressMap::default(), last_second: 0 }
    }
}

impl Condition for PingSweep {
    fn evaluate(&mut self, snapshot: &Snapshot, _cx: &mut Context<'_>) -> Vec<Hit> {
        let activity = &snapshot.activity;
        if activity.end_ms == self.last_second {
            return Vec::new();
        }
        self.last_second = activity.end_ms;
        let now = activity.end_ms;
        let cap = self.params.destinations as usize;
        // Forget what left the window first, so the room it frees is used.
        let since = now.saturating_sub(self.params.window.ms());
        self.sources.retain(|_, seen| {
            seen.retain(|_, at| *at > since);
            !seen.is_empty()
        });
        let mut hits = Vec::new();
        for (ip, second) in &activity.sources {
            let list =
                if self.params.packets == Packets::Echo { &second.echo_destinations } else { &second.destinations };
            if list.is_empty() || (self.sources.len() >= SOURCES_MAX && !self.sources.contains_key(ip)) {
                continue;
            }
            let seen = self.sources.entry(*ip).or_default();
            for dst in list {
                // At the threshold, known destinations are refreshed, new ones not kept.
                if seen.len() < cap || seen.contains_key(dst) {
                    seen.insert(*dst, now);
                }
            }
        }
        for (ip, seen) in &self.sources {
            if seen.len() >= cap {
                hits.push(Hit::new("source", ip.to_string(), seen.len() as f64));
            }
        }
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::testing::{activity, context_parts, snapshot_with};

    #[test]
    fn distinct_destinations_within_the_window() {
        let mut rule =
            PingSweep::new(SweepParams { destinations: 3, window: Duration::secs(2), packets: Packets::Echo });
        let (mut origins, now) = context_parts();
        let mut cx = Context { now_ms: now, started_ms: 0, origins: &mut origins };
        let src = "192.0.2.5";
        let at = |end, dsts: &[&str]| snapshot_with(activity(end, &[(src, 1, dsts)]));
        assert!(rule.evaluate(&at(1_000, &["10.0.0.1", "10.0.0.2"]), &mut cx).is_empty());
        assert!(rule.evaluate(&at(2_000, &["10.0.0.2"]), &mut cx).is_empty(), "the same two");
        let hits = rule.evaluate(&at(3_000, &["10.0.0.3", "10.0.0.4"]), &mut cx);
        assert_eq!(hits, vec![Hit::new("source", src, 3.0)], "bounded at the threshold");
        assert!(rule.evaluate(&at(6_000, &[]), &mut cx).is_empty(), "out of the window");
        assert!(rule.sources.is_empty());
    }
}
