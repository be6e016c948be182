//! What the daemon remembers: bounded, so memory stays flat under any load.

use std::{
    collections::{HashMap, VecDeque},
    net::IpAddr,
    sync::Arc,
};

use monitor_common::{class::CLASS_COUNT, icmp, Class};
use serde::Serialize;

use crate::{
    event::{Event, Origin},
    geo::GeoInfo,
    history::{History, SERIES},
};

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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub geo: Option<Arc<GeoInfo>>,
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
    /// Weighted packets per (IPv6?, type, code); at most 2 * 65536 keys.
    icmp_types: HashMap<(bool, u8, u8), u64>,
    pub history: History,
    /// Syslog-reported packets in the current (incomplete) second.
    syslog_this_second: u64,
}

#[derive(Debug, Serialize)]
pub struct CountryCount {
    pub country_code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    pub packets: u64,
    pub sources: u64,
}

#[derive(Debug, Serialize)]
pub struct AsnCount {
    pub asn: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_org: Option<Arc<str>>,
    pub packets: u64,
    pub sources: u64,
}

#[derive(Debug, Serialize)]
pub struct IcmpTypeCount {
    pub v6: bool,
    #[serde(rename = "type")]
    pub type_: u8,
    pub code: u8,
    pub name: &'static str,
    pub packets: u64,
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
            icmp_types: HashMap::new(),
            history: History::default(),
            syslog_this_second: 0,
        }
    }

    /// Records one event; returns it shared, numbered.
    pub fn record(&mut self, mut event: Event) -> Arc<Event> {
        self.next_id += 1;
        event.id = self.next_id;
        self.events_total += 1;
        if event.response.is_some() {
            // A timed HTTP response: its packets were counted when they
            // arrived; http_timing keeps its latency.
            let event = Arc::new(event);
            if self.recent.len() == self.limits.recent_events {
                self.recent.pop_front();
            }
            self.recent.push_back(event.clone());
            return event;
        }
        let class = event.class as usize;
        let weight = u64::from(event.weight);
        let syslog = matches!(event.origin, Origin::Syslog { .. });
        if let Some(icmp) = &event.icmp {
            *self.icmp_types.entry((event.class == Class::Icmpv6, icmp.type_, icmp.code)).or_default() += weight;
        }
        if syslog {
            self.syslog_packets[class] += weight;
            self.syslog_this_second += weight;
        } else {
            self.xdp_event_packets[class] += weight;
        }
        // The length first: the extra hash lookup only when the table is full.
        if self.sources.len() >= self.limits.sources && !self.sources.contains_key(&event.src) {
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
        if event.geo.is_some() {
            source.geo.clone_from(&event.geo);
        }
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
        event
    }

    /// Drops the least recently seen tenth of the sources at once, so the
    /// O(n) scan happens once per n/10 new sources, not per event.
    fn evict_oldest_sources(&mut self) {
        let drop = (self.limits.sources / 10).max(1);
        let mut by_age: Vec<(u64, IpAddr)> = self.sources.iter().map(|(ip, s)| (s.last_seen_ms, *ip)).collect();
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

    /// Closes one second of history: `kernel` holds the XDP packet deltas of
    /// the first four series (zeros without XDP); syslog comes from events.
    pub fn close_second(&mut self, kernel: [u64; 4], end_ms: u64) {
        let mut counts = [0u64; SERIES.len()];
        counts[..4].copy_from_slice(&kernel);
        counts[4] = std::mem::take(&mut self.syslog_this_second);
        self.history.push(counts, end_ms);
    }

    pub fn top_countries(&self, n: usize) -> Vec<CountryCount> {
        let mut by: HashMap<&str, CountryCount> = HashMap::new();
        for s in self.sources.values() {
            let Some(geo) = &s.geo else { continue };
            let Some(code) = &geo.country_code else { continue };
            let entry = by.entry(code).or_insert_with(|| CountryCount {
                country_code: code.clone(),
                country: geo.country.clone(),
                packets: 0,
                sources: 0,
            });
            entry.packets += s.xdp_packets + s.syslog_packets;
            entry.sources += 1;
        }
        top_n(by.into_values().collect(), n, |c| c.packets)
    }

    pub fn top_asns(&self, n: usize) -> Vec<AsnCount> {
        let mut by: HashMap<u32, AsnCount> = HashMap::new();
        for s in self.sources.values() {
            let Some(geo) = &s.geo else { continue };
            let Some(asn) = geo.asn else { continue };
            let entry =
                by.entry(asn).or_insert_with(|| AsnCount { asn, as_org: geo.as_org.clone(), packets: 0, sources: 0 });
            entry.packets += s.xdp_packets + s.syslog_packets;
            entry.sources += 1;
        }
        top_n(by.into_values().collect(), n, |c| c.packets)
    }

    pub fn icmp_types(&self) -> Vec<IcmpTypeCount> {
        let all = self
            .icmp_types
            .iter()
            .map(|(&(v6, type_, code), &packets)| IcmpTypeCount {
                v6,
                type_,
                code,
                name: if v6 { icmp::icmpv6_name(type_, code) } else { icmp::icmpv4_name(type_, code) },
                packets,
            })
            .collect();
        top_n(all, 50, |c| c.packets)
    }

    /// The `n` sources with the most packets (both paths).
    pub fn top_sources(&self, n: usize) -> Vec<(IpAddr, SourceSummary)> {
        let all = self.sources.iter().map(|(ip, s)| (*ip, s.clone())).collect();
        top_n(all, n, |(_, s)| s.xdp_packets + s.syslog_packets)
    }
}

/// The `n` largest by `key`, largest first.
fn top_n<T>(mut items: Vec<T>, n: usize, key: impl Fn(&T) -> u64) -> Vec<T> {
    items.sort_by_key(|item| std::cmp::Reverse(key(item)));
    items.truncate(n);
    items
}
