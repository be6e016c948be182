//! What the daemon remembers: bounded, so memory stays flat under any load.

use std::{
    cmp::{Ordering, Reverse},
    collections::{HashMap, HashSet, VecDeque},
    net::IpAddr,
    sync::Arc,
};

use monitor_common::{class::CLASS_COUNT, icmp, Class};
use serde::Serialize;

use super::evict::evict_least_recent;
use super::{
    documents::{RecentDoc, TopSource},
    headline::{Headline, ACTIVE_WINDOW_S},
    history::{History, SERIES},
    minute::MinuteSummary,
};
use crate::model::{AddressMap, Event, EventFilter, GeoInfo, Origin};

/// Limits on what the aggregate keeps.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Recent events kept at most...
    pub recent_events: usize,
    /// ...and for at most this long (by their timestamps).
    pub recent_max_age_ms: u64,
    pub sources: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { recent_events: 100_000, recent_max_age_ms: 15 * 60_000, sources: 10_000 }
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
    /// Packets decayed with `RATE_TAU_MS` up to `decayed_at_ms`: see `packets_per_s`.
    /// The geo databases' generation `geo` came from (see `known_geo`).
    #[serde(skip)]
    geo_generation: u64,
    #[serde(skip)]
    decayed: f64,
    #[serde(skip)]
    decayed_at_ms: u64,
    /// Packets per wall-clock minute (minute number, packets), oldest
    /// first, the last `WINDOW_MINUTES_MAX` minutes at most: the windows.
    #[serde(skip)]
    minutes: VecDeque<(u64, u64)>,
}

/// The longest top-list window, in minutes.
pub(super) const WINDOW_MINUTES_MAX: u64 = 60;

/// Time constant of a source's packet rate: it reflects about the last minute.
pub(super) const RATE_TAU_MS: f64 = 20_000.0;

impl SourceSummary {
    fn count_minute(&mut self, ts_ms: u64, packets: u64) {
        let minute = ts_ms / 60_000;
        match self.minutes.back_mut() {
            Some((m, n)) if *m == minute => *n += packets,
            // An event older than the newest minute (clock step, late
            // syslog line) counts in the newest: the minutes stay in order.
            Some((m, n)) if *m > minute => *n += packets,
            _ => {
                if self.minutes.len() as u64 == WINDOW_MINUTES_MAX + 1 {
                    self.minutes.pop_front();
                }
                self.minutes.push_back((minute, packets));
            }
        }
    }

    /// Packets (both paths) in the current minute and the `minutes` before it.
    pub fn packets_within(&self, minutes: u64, now_ms: u64) -> u64 {
        let since = (now_ms / 60_000).saturating_sub(minutes);
        self.minutes.iter().rev().take_while(|(m, _)| *m >= since).map(|(_, n)| n).sum()
    }

    /// Packets per second (both paths) at `now_ms`, exponentially weighted;
    /// divided by the weight a steady rate would have had since `first_seen_ms`,
    /// so a new source shows its rate at once instead of ramping up from zero.
    pub fn packets_per_s(&self, now_ms: u64) -> f64 {
        let decay = |ms: u64| (-(ms as f64) / RATE_TAU_MS).exp();
        let age_ms = now_ms.saturating_sub(self.first_seen_ms).max(1_000);
        let s = self.decayed * decay(now_ms.saturating_sub(self.decayed_at_ms));
        s / (RATE_TAU_MS / 1_000.0 * (1.0 - decay(age_ms)))
    }
}

impl SourceSummary {
    /// A source as the history store remembers it over a range: its packets
    /// (both paths, shown as XDP's), bytes and where it is.
    pub fn from_history(
        packets: u64,
        bytes: u64,
        first_seen_ms: u64,
        last_seen_ms: u64,
        geo: Option<Arc<GeoInfo>>,
    ) -> Self {
        SourceSummary { xdp_packets: packets, bytes, first_seen_ms, last_seen_ms, geo, ..Default::default() }
    }
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
pub(super) struct Aggregate {
    limits: Limits,
    next_id: u64,
    recent: VecDeque<Arc<Event>>,
    sources: AddressMap<SourceSummary>,
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
    /// The figures of the last complete second (see `close_headline`).
    pub headline: Headline,
    events_before_this_second: u64,
    /// The geo databases' generation of the events being recorded.
    geo_generation: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct CountryCount {
    pub country_code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    pub packets: u64,
    pub sources: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct AsnCount {
    pub asn: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_org: Option<Arc<str>>,
    pub packets: u64,
    pub sources: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct IcmpTypeCount {
    pub v6: bool,
    #[serde(rename = "type")]
    pub type_: u8,
    pub code: u8,
    pub name: &'static str,
    pub packets: u64,
}

impl Aggregate {
    pub(super) fn new(limits: Limits) -> Self {
        Aggregate {
            limits,
            next_id: 0,
            recent: VecDeque::new(),
            sources: AddressMap::default(),
            xdp_event_packets: [0; CLASS_COUNT],
            syslog_packets: [0; CLASS_COUNT],
            events_total: 0,
            sources_evicted: 0,
            icmp_types: HashMap::new(),
            history: History::default(),
            syslog_this_second: 0,
            headline: Headline::default(),
            events_before_this_second: 0,
            geo_generation: 0,
        }
    }

    /// The events recorded from now on were located with the geo
    /// databases' generation `generation`.
    pub(super) fn set_geo_generation(&mut self, generation: u64) {
        self.geo_generation = generation;
    }

    /// Where `ip` is, if this table knows it from the current geo
    /// generation: an event from a known source needs no geo lookup (the
    /// source's entry is the one `record` is about to update anyway).
    pub(super) fn known_geo(&self, ip: &IpAddr) -> Option<Arc<GeoInfo>> {
        let source = self.sources.get(ip)?;
        (source.geo_generation == self.geo_generation).then(|| source.geo.clone()).flatten()
    }

    /// Records one event; returns it shared, numbered.
    pub(super) fn record(&mut self, mut event: Event) -> Arc<Event> {
        self.next_id += 1;
        event.id = self.next_id;
        self.events_total += 1;
        if event.response.is_some() {
            // A timed HTTP response: its packets were counted when they
            // arrived; http_timing keeps its latency.
            return self.keep(event);
        }
        let class = event.class as usize;
        let weight = u64::from(event.weight);
        // Agents forward over syslog too: their sampled events are not this host's XDP.
        let syslog = matches!(event.origin, Origin::Syslog { .. } | Origin::Agent { .. });
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
        let since = event.ts_ms.saturating_sub(source.decayed_at_ms) as f64;
        source.decayed = source.decayed * (-since / RATE_TAU_MS).exp() + weight as f64;
        source.decayed_at_ms = source.decayed_at_ms.max(event.ts_ms);
        source.events += 1;
        source.bytes += u64::from(event.len) * weight;
        source.by_class[class] += weight;
        source.count_minute(event.ts_ms, weight);
        if event.geo.is_some() {
            source.geo.clone_from(&event.geo);
            source.geo_generation = self.geo_generation;
        }
        if syslog {
            source.syslog_packets += weight;
        } else {
            source.xdp_packets += weight;
        }
        self.keep(event)
    }

    /// Counts the top sources of a minute restored from the history store
    /// into the since-start and windowed lists (as XDP packets: the store
    /// keeps both paths together).
    pub(super) fn restore_minute(&mut self, minute: &MinuteSummary) {
        let (first, last) = (minute.start_ms, minute.start_ms + 59_999);
        for s in &minute.sources {
            if self.sources.len() >= self.limits.sources && !self.sources.contains_key(&s.ip) {
                break;
            }
            let source = self.sources.entry(s.ip).or_default();
            if source.first_seen_ms == 0 {
                source.first_seen_ms = first;
            }
            source.last_seen_ms = source.last_seen_ms.max(last);
            source.xdp_packets += s.count.packets;
            source.bytes += s.count.bytes;
            source.count_minute(first, s.count.packets);
            if source.geo.is_none() {
                source.geo = Some(Arc::new(s.geo()));
                // What the store kept (country, network), not a lookup: the
                // next event from it is looked up.
                source.geo_generation = u64::MAX;
            }
        }
    }

    /// Keeps `event` among the recent ones, within the count bound.
    fn keep(&mut self, event: Event) -> Arc<Event> {
        let event = Arc::new(event);
        if self.recent.len() >= self.limits.recent_events {
            self.recent.pop_front();
        }
        self.recent.push_back(Arc::clone(&event));
        event
    }

    /// Drops recent events older than the age bound at `now_ms`.
    fn forget_old_events(&mut self, now_ms: u64) {
        let since = now_ms.saturating_sub(self.limits.recent_max_age_ms);
        while self.recent.front().is_some_and(|e| e.ts_ms < since) {
            self.recent.pop_front();
        }
    }

    pub(super) fn recent_doc(&self) -> RecentDoc {
        RecentDoc {
            events: self.recent.len(),
            capacity: self.limits.recent_events,
            max_age_s: self.limits.recent_max_age_ms / 1000,
            oldest_ms: self.recent.front().map(|e| e.ts_ms),
        }
    }

    fn evict_oldest_sources(&mut self) {
        self.sources_evicted += evict_least_recent(&mut self.sources, |s| s.last_seen_ms) as u64;
    }

    /// The newest `limit` events that match `filter`, oldest first.
    pub(super) fn recent_matching(&self, filter: &EventFilter, limit: usize) -> Vec<Arc<Event>> {
        let mut kept: Vec<_> = self.recent.iter().rev().filter(|e| filter.matches(e)).take(limit).cloned().collect();
        kept.reverse();
        kept
    }

    pub(super) fn source(&self, ip: &IpAddr) -> Option<&SourceSummary> {
        self.sources.get(ip)
    }

    pub(super) fn source_count(&self) -> usize {
        self.sources.len()
    }

    /// Closes one second of history: `kernel` holds the XDP packet deltas of
    /// the first four series (zeros without XDP); syslog comes from events.
    pub(super) fn close_second(&mut self, kernel: [u64; 4], end_ms: u64) {
        self.forget_old_events(end_ms);
        let mut counts = [0u64; SERIES.len()];
        counts[..4].copy_from_slice(&kernel);
        counts[4] = std::mem::take(&mut self.syslog_this_second);
        self.history.push(counts, end_ms);
    }

    /// Sets the headline figures of the second that `close_second` just
    /// closed: `xdp_packets` and `xdp_bytes` are the kernel's deltas over
    /// every class (zeros without XDP).
    pub(super) fn close_headline(&mut self, xdp_packets: u64, xdp_bytes: u64, end_ms: u64) {
        let since = end_ms.saturating_sub(ACTIVE_WINDOW_S * 1000);
        let mut countries = HashSet::new();
        let mut sources = 0u64;
        for s in self.sources.values().filter(|s| s.last_seen_ms > since) {
            sources += 1;
            if let Some(code) = s.geo.as_ref().and_then(|g| g.country_code.as_deref()) {
                countries.insert(code);
            }
        }
        let active_countries = countries.len() as u64;
        self.headline = Headline {
            end_ms,
            rate_window_s: 1,
            xdp_packets_per_s: xdp_packets,
            xdp_bits_per_s: xdp_bytes.saturating_mul(8),
            syslog_packets_per_s: self.history.latest()[SERIES.len() - 1],
            events_per_s: self.events_total - self.events_before_this_second,
            active_window_s: ACTIVE_WINDOW_S,
            active_sources: sources,
            active_countries,
        };
        self.events_before_this_second = self.events_total;
    }

    /// Packets of a source since start, or within a window at `now_ms`.
    fn packets_of(s: &SourceSummary, window: Option<(u64, u64)>) -> u64 {
        match window {
            None => s.xdp_packets + s.syslog_packets,
            Some((minutes, now_ms)) => s.packets_within(minutes, now_ms),
        }
    }

    /// Countries by packets since start, or within `window` = (minutes, now_ms).
    pub(super) fn top_countries(&self, n: usize, window: Option<(u64, u64)>) -> Vec<CountryCount> {
        let mut by: foldhash::HashMap<&str, CountryCount> = foldhash::HashMap::default();
        for s in self.sources.values() {
            let packets = Self::packets_of(s, window);
            if packets == 0 {
                continue;
            }
            let Some(geo) = &s.geo else { continue };
            let Some(code) = &geo.country_code else { continue };
            let entry = by.entry(code).or_insert_with(|| CountryCount {
                country_code: code.clone(),
                country: geo.country.clone(),
                packets: 0,
                sources: 0,
            });
            entry.packets += packets;
            entry.sources += 1;
        }
        top_n(by.into_values().collect(), n, |a, b| {
            (Reverse(a.packets), &a.country_code).cmp(&(Reverse(b.packets), &b.country_code))
        })
    }

    /// Networks by packets since start, or within `window` = (minutes, now_ms).
    pub(super) fn top_asns(&self, n: usize, window: Option<(u64, u64)>) -> Vec<AsnCount> {
        let mut by: foldhash::HashMap<u32, AsnCount> = foldhash::HashMap::default();
        for s in self.sources.values() {
            let packets = Self::packets_of(s, window);
            if packets == 0 {
                continue;
            }
            let Some(geo) = &s.geo else { continue };
            let Some(asn) = geo.asn else { continue };
            let entry =
                by.entry(asn).or_insert_with(|| AsnCount { asn, as_org: geo.as_org.clone(), packets: 0, sources: 0 });
            entry.packets += packets;
            entry.sources += 1;
        }
        top_n(by.into_values().collect(), n, |a, b| (Reverse(a.packets), a.asn).cmp(&(Reverse(b.packets), b.asn)))
    }

    pub(super) fn icmp_types(&self) -> Vec<IcmpTypeCount> {
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
        let key = |c: &IcmpTypeCount| (Reverse(c.packets), c.v6, c.type_, c.code);
        top_n(all, 50, |a, b| key(a).cmp(&key(b)))
    }

    /// The `n` sources with the most packets (both paths) since start, or
    /// within `window` = (minutes, now_ms), with their rates at `now_ms`;
    /// only those `n` are copied.
    pub(super) fn top_sources(&self, n: usize, now_ms: u64, window: Option<(u64, u64)>) -> Vec<TopSource> {
        let all = self
            .sources
            .iter()
            .map(|(ip, s)| (ip, s, Self::packets_of(s, window)))
            .filter(|(_, _, packets)| *packets > 0)
            .collect();
        top_n(all, n, |(a, _, a_packets), (b, _, b_packets)| (Reverse(a_packets), a).cmp(&(Reverse(b_packets), b)))
            .into_iter()
            .map(|(ip, s, packets)| TopSource {
                ip: *ip,
                summary: s.clone(),
                packets_per_s: (s.packets_per_s(now_ms) * 100.0).round() / 100.0,
                window_packets: window.map(|_| packets),
            })
            .collect()
    }
}

/// The first `n` in the order `by` (callers compare `Reverse(packets)`
/// first and a unique tie-break after, so equal counts always list the
/// same way): a partial selection first, so only those `n` are sorted.
/// A comparison, not a key: a key that owns a copy (a country's code)
/// would be copied at every comparison.
fn top_n<T>(mut items: Vec<T>, n: usize, by: impl Fn(&T, &T) -> Ordering) -> Vec<T> {
    if n == 0 {
        return Vec::new();
    }
    if items.len() > n {
        items.select_nth_unstable_by(n - 1, &by);
        items.truncate(n);
    }
    items.sort_by(by);
    items
}

#[cfg(test)]
mod tests {
    use monitor_common::Class;

    use super::*;
    use crate::{
        model::{AddressLabel, ResponseInfo},
        sources::kernel::testing::{event, raw},
    };

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("literal address")
    }

    /// An XDP event of `class` from `src` at `ts_ms`: `weight` packets of 100 bytes.
    fn xdp(class: Class, src: &str, weight: u32, ts_ms: u64) -> Event {
        let mut e = event(&raw(class, ip(src), weight, 100));
        e.ts_ms = ts_ms;
        e
    }

    /// The same, reported by an iptables LOG line.
    fn syslog(class: Class, src: &str, ts_ms: u64) -> Event {
        let mut e = xdp(class, src, 1, ts_ms);
        e.origin = Origin::Syslog { sender: ip("127.0.0.1"), hostname: None, prefix: "IPT_ICMP".into() };
        e
    }

    fn located(mut e: Event, country: &str, asn: u32) -> Event {
        let mut geo = GeoInfo::only(AddressLabel::Public);
        geo.country_code = Some(country.into());
        geo.country = Some(format!("Country {country}"));
        geo.asn = Some(asn);
        geo.as_org = Some(Arc::from(format!("AS org {asn}")));
        e.geo = Some(Arc::new(geo));
        e
    }

    fn icmp_event(v6: bool, src: &str, type_: u8, weight: u32) -> Event {
        let mut r = raw(if v6 { Class::Icmpv6 } else { Class::Icmp }, ip(src), weight, 100);
        r.icmp_type = type_;
        event(&r)
    }

    #[test]
    fn weights_sum_by_source_class_and_path() {
        let mut agg = Aggregate::new(Limits::default());
        let a = "203.0.113.7";
        let first = agg.record(xdp(Class::Icmp, a, 3, 1_000));
        agg.record(xdp(Class::Icmp, a, 2, 3_000));
        agg.record(syslog(Class::Http, a, 2_000));
        agg.record(xdp(Class::Https, "198.51.100.1", 4, 2_500));
        assert_eq!(first.id, 1);
        assert_eq!(agg.events_total, 4);
        assert_eq!(agg.source_count(), 2);

        let s = agg.source(&ip(a)).expect("source recorded");
        assert_eq!((s.xdp_packets, s.syslog_packets, s.events), (5, 1, 3));
        assert_eq!(s.bytes, 100 * 6, "bytes are weighted like packets");
        assert_eq!(s.by_class[Class::Icmp as usize], 5);
        assert_eq!(s.by_class[Class::Http as usize], 1);
        assert_eq!((s.first_seen_ms, s.last_seen_ms), (1_000, 3_000), "an older event does not move last_seen back");

        assert_eq!(agg.xdp_event_packets[Class::Icmp as usize], 5);
        assert_eq!(agg.xdp_event_packets[Class::Https as usize], 4);
        assert_eq!(agg.syslog_packets[Class::Http as usize], 1);
        assert_eq!(agg.xdp_event_packets[Class::Http as usize], 0);
    }

    #[test]
    fn response_events_are_kept_but_not_counted_again() {
        let mut agg = Aggregate::new(Limits::default());
        let mut e = xdp(Class::Http, "203.0.113.7", 1, 1_000);
        e.response =
            Some(ResponseInfo { status: Some(200), status_class: "2xx", reason: "OK".into(), latency_ms: 1.0 });
        let recorded = agg.record(e);
        assert_eq!(recorded.id, 1);
        assert_eq!(agg.events_total, 1);
        assert_eq!(agg.recent_matching(&EventFilter::default(), 10).len(), 1);
        assert_eq!(agg.source_count(), 0);
        assert_eq!(agg.xdp_event_packets[Class::Http as usize], 0);
    }

    #[test]
    fn a_known_source_keeps_its_geo_until_the_databases_change() {
        let mut agg = Aggregate::new(Limits::default());
        let src = ip("81.2.69.142");
        assert!(agg.known_geo(&src).is_none());
        agg.set_geo_generation(1);
        agg.record(located(xdp(Class::Icmp, "81.2.69.142", 1, 1_000), "GB", 20712));
        let geo = agg.known_geo(&src).expect("known from generation 1");
        assert_eq!(geo.country_code.as_deref(), Some("GB"));
        agg.set_geo_generation(2);
        assert!(agg.known_geo(&src).is_none(), "a reload makes it look up again");
    }

    #[test]
    fn recent_keeps_the_newest_oldest_first() {
        let mut agg = Aggregate::new(Limits { recent_events: 3, sources: 100, ..Limits::default() });
        for ts in 1..=5 {
            agg.record(xdp(Class::Icmp, "203.0.113.7", 1, ts));
        }
        let ids = |limit| agg.recent_matching(&EventFilter::default(), limit).iter().map(|e| e.id).collect::<Vec<_>>();
        assert_eq!(ids(10), [3, 4, 5]);
        assert_eq!(ids(2), [4, 5]);
        assert!(ids(0).is_empty());
    }

    #[test]
    fn full_source_table_evicts_the_least_recently_seen_tenth() {
        let mut agg = Aggregate::new(Limits { recent_events: 10, sources: 20, ..Limits::default() });
        for n in 1..=20u64 {
            // Source n was last seen at n, except source 1, seen again late.
            agg.record(xdp(Class::Icmp, &format!("10.0.0.{n}"), 1, n));
        }
        agg.record(xdp(Class::Icmp, "10.0.0.1", 1, 50));
        assert_eq!((agg.source_count(), agg.sources_evicted), (20, 0), "a known source needs no room");

        agg.record(xdp(Class::Icmp, "10.0.0.200", 1, 60));
        assert_eq!(agg.sources_evicted, 2);
        assert_eq!(agg.source_count(), 19);
        for (gone, kept) in [("10.0.0.2", "10.0.0.1"), ("10.0.0.3", "10.0.0.4")] {
            assert!(agg.source(&ip(gone)).is_none(), "{gone} was the least recently seen");
            assert!(agg.source(&ip(kept)).is_some(), "{kept} stays");
        }
        assert!(agg.source(&ip("10.0.0.200")).is_some());
        // Eviction forgets sources, not the per-class totals.
        assert_eq!(agg.xdp_event_packets[Class::Icmp as usize], 22);
    }

    #[test]
    fn smallest_table_evicts_one() {
        let mut agg = Aggregate::new(Limits { recent_events: 1, sources: 1, ..Limits::default() });
        agg.record(xdp(Class::Icmp, "10.0.0.1", 1, 1));
        agg.record(xdp(Class::Icmp, "10.0.0.2", 1, 2));
        assert_eq!((agg.source_count(), agg.sources_evicted), (1, 1));
        assert!(agg.source(&ip("10.0.0.2")).is_some());
    }

    #[test]
    fn top_countries_and_asns_by_packets_of_both_paths() {
        let mut agg = Aggregate::new(Limits::default());
        agg.record(located(xdp(Class::Icmp, "203.0.113.1", 10, 1), "DE", 64500));
        agg.record(located(syslog(Class::Icmp, "203.0.113.2", 2), "DE", 64501));
        agg.record(located(xdp(Class::Icmp, "203.0.113.2", 4, 3), "DE", 64501));
        agg.record(located(xdp(Class::Https, "198.51.100.1", 20, 4), "FR", 64500));
        agg.record(xdp(Class::Icmp, "192.0.2.9", 100, 5)); // no geo: in no country

        let countries = agg.top_countries(10, None);
        let got: Vec<_> = countries.iter().map(|c| (c.country_code.as_str(), c.packets, c.sources)).collect();
        assert_eq!(got, [("FR", 20, 1), ("DE", 15, 2)]);
        assert_eq!(countries[0].country.as_deref(), Some("Country FR"));
        assert_eq!(agg.top_countries(1, None).len(), 1);

        let asns = agg.top_asns(10, None);
        let got: Vec<_> = asns.iter().map(|a| (a.asn, a.packets, a.sources)).collect();
        assert_eq!(got, [(64500, 30, 2), (64501, 5, 1)]);
        assert_eq!(asns[1].as_org.as_deref(), Some("AS org 64501"));

        let sources: Vec<_> = agg
            .top_sources(2, 10_000, None)
            .into_iter()
            .map(|t| (t.ip, t.summary.xdp_packets + t.summary.syslog_packets))
            .collect();
        assert_eq!(sources, [(ip("192.0.2.9"), 100), (ip("198.51.100.1"), 20)]);
    }

    #[test]
    fn icmp_types_weighted_and_split_by_family() {
        let mut agg = Aggregate::new(Limits::default());
        agg.record(icmp_event(false, "203.0.113.1", 8, 2));
        agg.record(icmp_event(false, "203.0.113.2", 8, 3));
        agg.record(icmp_event(false, "203.0.113.2", 0, 1));
        agg.record(icmp_event(true, "2001:db8::1", 128, 4));
        agg.record(xdp(Class::Http, "203.0.113.1", 9, 1)); // not ICMP

        let got: Vec<_> = agg.icmp_types().iter().map(|t| (t.v6, t.type_, t.code, t.name, t.packets)).collect();
        assert_eq!(
            got,
            [(false, 8, 0, "echo request", 5), (true, 128, 0, "echo request", 4), (false, 0, 0, "echo reply", 1)]
        );
    }

    #[test]
    fn a_closed_second_carries_the_syslog_packets_of_that_second() {
        let mut agg = Aggregate::new(Limits::default());
        agg.record(syslog(Class::Icmp, "203.0.113.1", 1));
        agg.record(syslog(Class::Icmp, "203.0.113.2", 1));
        agg.record(xdp(Class::Icmp, "203.0.113.3", 7, 1)); // XDP seconds come from kernel counters
        agg.close_second([1, 2, 3, 4], 1_000);
        assert_eq!(agg.history.latest(), [1, 2, 3, 4, 2]);
        agg.close_second([0; 4], 2_000);
        assert_eq!(agg.history.latest(), [0; 5], "the next second starts at zero");
    }

    #[test]
    fn a_source_rate_is_right_from_its_first_second() {
        let mut agg = Aggregate::new(Limits::default());
        for k in 0..50 {
            agg.record(xdp(Class::Icmp, "192.0.2.1", 1, 1_000 + k * 100));
        }
        let s = agg.source(&ip("192.0.2.1")).expect("seen");
        let r = s.packets_per_s(6_000);
        assert!((9.0..11.0).contains(&r), "10 packets/s over 5 s, not ramping from zero: {r}");
    }

    #[test]
    fn headline_states_rates_of_the_last_second_and_active_sources_of_the_window() {
        let mut agg = Aggregate::new(Limits::default());
        agg.record(located(xdp(Class::Icmp, "203.0.113.1", 1, 1_000), "DE", 1));
        agg.record(located(xdp(Class::Http, "203.0.113.2", 1, 50_000), "DE", 1));
        agg.record(located(syslog(Class::Icmp, "203.0.113.3", 60_500), "FR", 2));
        agg.close_second([0; 4], 61_000);
        agg.close_headline(1_500, 150_000, 61_000);
        let h = agg.headline.clone();
        assert_eq!((h.xdp_packets_per_s, h.xdp_bits_per_s, h.rate_window_s), (1_500, 1_200_000, 1));
        assert_eq!((h.syslog_packets_per_s, h.events_per_s), (1, 3), "syslog apart from XDP");
        // 203.0.113.1 was last seen 60 s before the end: outside the window.
        assert_eq!((h.active_sources, h.active_countries, h.active_window_s), (2, 2, 60));
        agg.close_second([0; 4], 62_000);
        agg.close_headline(0, 0, 62_000);
        assert_eq!(
            (agg.headline.events_per_s, agg.headline.syslog_packets_per_s),
            (0, 0),
            "per second, not since start"
        );
    }

    #[test]
    fn recent_events_are_bounded_by_count_and_age() {
        let mut agg = Aggregate::new(Limits { recent_events: 3, recent_max_age_ms: 10_000, sources: 100 });
        for ts in [1_000, 2_000, 15_000, 16_000] {
            agg.record(xdp(Class::Icmp, "203.0.113.7", 1, ts));
        }
        assert_eq!(agg.recent_doc().events, 3, "the count bound");
        agg.close_second([0; 4], 20_000);
        let doc = agg.recent_doc();
        assert_eq!((doc.events, doc.oldest_ms, doc.max_age_s), (2, Some(15_000), 10), "older than 10 s: gone");
    }

    #[test]
    fn windows_count_the_packets_of_their_minutes() {
        let mut agg = Aggregate::new(Limits::default());
        let minute = 60_000;
        // One source busy long ago, one now: the window ranks by the minutes it covers.
        agg.record(located(xdp(Class::Icmp, "203.0.113.1", 50, 100 * minute), "DE", 1));
        agg.record(located(xdp(Class::Icmp, "203.0.113.2", 5, 170 * minute), "FR", 2));
        agg.record(located(xdp(Class::Icmp, "203.0.113.2", 2, 174 * minute + 30_000), "FR", 2));
        let now = 175 * minute;
        let five = Some((5, now));
        let top: Vec<_> = agg.top_sources(10, now, five).into_iter().map(|t| (t.ip, t.window_packets)).collect();
        assert_eq!(top, [(ip("203.0.113.2"), Some(7))], "minutes 170..=175 are in the window, 100 is not");
        let since_start: Vec<_> = agg.top_sources(10, now, None).into_iter().map(|t| t.ip).collect();
        assert_eq!(since_start, [ip("203.0.113.1"), ip("203.0.113.2")]);
        assert_eq!(
            agg.top_countries(10, five).iter().map(|c| (c.country_code.as_str(), c.packets)).collect::<Vec<_>>(),
            [("FR", 7)]
        );
        assert_eq!(agg.top_asns(10, Some((60, now))).iter().map(|a| a.asn).collect::<Vec<_>>(), [2]);
    }
}
