//! What the daemon remembers: bounded, so memory stays flat under any load.

use std::{
    collections::{HashMap, VecDeque},
    net::IpAddr,
    sync::Arc,
};

use monitor_common::{class::CLASS_COUNT, Class};
use serde::Serialize;

use crate::event::{Event, Origin};

/// Limits on what the aggregate keeps.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub recent_events: usize,
    pub sources: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { recent_events: 2_000, sources: 10_000 }
    }
}

/// Per-source view built from events of both paths.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SourceSummary {
    /// Packets the kernel path saw (sum of event weights).
    pub xdp_packets: u64,
    /// Packets iptables LOG lines reported.
    pub syslog_packets: u64,
    pub events: u64,
    pub bytes: u64,
    pub first_seen_ms: u64,
    pub last_seen_ms: u64,
    #[serde(serialize_with = "serialize_classes")]
    pub by_class: [u64; CLASS_COUNT],
}

fn serialize_classes<S: serde::Serializer>(v: &[u64; CLASS_COUNT], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(None)?;
    for (class, n) in Class::ALL.iter().zip(v) {
        if *n != 0 {
            map.serialize_entry(class.name(), n)?;
        }
    }
    map.end()
}

#[derive(Debug)]
pub struct Aggregate {
    limits: Limits,
    next_id: u64,
    recent: VecDeque<Arc<Event>>,
    sources: HashMap<IpAddr, SourceSummary>,
    /// Weighted packets per class by path, from events.
    pub xdp_event_packets: [u64; CLASS_COUNT],
    pub syslog_packets: [u64; CLASS_COUNT],
    pub events_total: u64,
    /// Sources forgotten to stay within `limits.sources`.
    pub sources_evicted: u64,
}

impl Aggregate {
    pub fn new(limits: Limits) -> Self {
        Aggregate {
            limits,
            next_id: 0,
            recent: VecDeque::with_capacity(limits.recent_events),
            sources: HashMap::new(),
            xdp_event_packets: [0; CLASS_COUNT],
            syslog_packets: [0; CLASS_COUNT],
            events_total: 0,
            sources_evicted: 0,
        }
    }

    /// Records one event; returns it shared, with its sequence number.
    pub fn record(&mut self, event: Event) -> (u64, Arc<Event>) {
        self.next_id += 1;
        self.events_total += 1;
        let class = event.class as usize;
        let weight = u64::from(event.weight);
        let syslog = matches!(event.origin, Origin::Syslog { .. });
        if syslog {
            self.syslog_packets[class] += weight;
        } else {
            self.xdp_event_packets[class] += weight;
        }
        if !self.sources.contains_key(&event.src) && self.sources.len() >= self.limits.sources {
            self.evict_oldest_sources();
        }
        let source = self.sources.entry(event.src).or_default();
        if source.first_seen_ms == 0 {
            source.first_seen_ms = event.ts_ms;
        }
        source.last_seen_ms = source.last_seen_ms.max(event.ts_ms);
        source.events += 1;
        source.bytes += u64::from(event.len) * weight;
        source.by_class[class] += weight;
        if syslog {
            source.syslog_packets += weight;
        } else {
            source.xdp_packets += weight;
        }
        let event = Arc::new(event);
        if self.recent.len() == self.limits.recent_events {
            self.recent.pop_front();
        }
        self.recent.push_back(event.clone());
        (self.next_id, event)
    }

    /// Drops the least recently seen tenth of the sources at once, so the
    /// O(n) scan happens once per n/10 new sources, not per event.
    fn evict_oldest_sources(&mut self) {
        let drop = (self.limits.sources / 10).max(1);
        let mut by_age: Vec<(u64, IpAddr)> =
            self.sources.iter().map(|(ip, s)| (s.last_seen_ms, *ip)).collect();
        by_age.select_nth_unstable(drop - 1);
        for (_, ip) in by_age.into_iter().take(drop) {
            self.sources.remove(&ip);
        }
        self.sources_evicted += drop as u64;
    }

    /// The newest `limit` events, oldest first.
    pub fn recent(&self, limit: usize) -> Vec<Arc<Event>> {
        let skip = self.recent.len().saturating_sub(limit);
        self.recent.iter().skip(skip).cloned().collect()
    }

    pub fn source(&self, ip: &IpAddr) -> Option<&SourceSummary> {
        self.sources.get(ip)
    }

    pub fn source_count(&self) -> usize {
        self.sources.len()
    }

    /// The `n` sources with the most packets (both paths).
    pub fn top_sources(&self, n: usize) -> Vec<(IpAddr, SourceSummary)> {
        let mut all: Vec<_> = self.sources.iter().map(|(ip, s)| (*ip, s.clone())).collect();
        all.sort_by(|a, b| {
            (b.1.xdp_packets + b.1.syslog_packets).cmp(&(a.1.xdp_packets + a.1.syslog_packets))
        });
        all.truncate(n);
        all
    }
}
