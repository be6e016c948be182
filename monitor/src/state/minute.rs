//! Per-minute summaries: what the pipeline hands the history store at each
//! minute boundary, and what a restart gives back (the store lives above
//! this layer; both sides speak these types).

use std::{collections::HashMap, net::IpAddr, sync::Arc};

use monitor_common::class::CLASS_COUNT;

use super::{documents::PacketsBytes, history::SERIES};
use crate::model::{AddressMap, Event};

/// Top sources kept per minute (the rest count in their country and ASN).
pub const MINUTE_TOP_SOURCES: usize = 100;
/// Sources followed within one minute at most: memory stays bounded under
/// a spoofed flood; sources beyond it count only in countries and ASNs.
const MINUTE_SOURCES_MAX: usize = 50_000;

/// Packets and bytes of one key (a country, an ASN, a source) in a minute.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyCount {
    pub packets: u64,
    pub bytes: u64,
    /// Distinct sources behind it (1 for a source).
    pub sources: u64,
}

/// One source among the top of its minute, with where it is.
#[derive(Clone, Debug, PartialEq)]
pub struct MinuteSource {
    pub ip: IpAddr,
    pub count: KeyCount,
    pub country_code: Option<String>,
    pub country: Option<String>,
    pub asn: Option<u32>,
    pub as_org: Option<Arc<str>>,
}

impl MinuteSource {
    /// Its geolocation as it was when counted.
    pub fn geo(&self) -> crate::model::GeoInfo {
        let mut geo = crate::model::GeoInfo::only(crate::model::label(self.ip));
        geo.country_code.clone_from(&self.country_code);
        geo.country.clone_from(&self.country);
        geo.asn = self.asn;
        geo.as_org.clone_from(&self.as_org);
        geo
    }
}

/// One wall-clock minute of traffic.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MinuteSummary {
    /// Start of the minute, ms since the epoch (a multiple of 60,000).
    pub start_ms: u64,
    /// Packets of each rate series ([`SERIES`]), summed over its seconds.
    pub series: [u64; SERIES.len()],
    /// The seconds of the minute that were counted, bit k for second k (a
    /// daemon started or stopped within it); 0 when not known (all).
    pub covered: u64,
    /// The kernel's exact packets and bytes per class (zeros without XDP).
    pub classes: [PacketsBytes; CLASS_COUNT],
    /// Event-weighted packets by country code, with the country's name.
    pub countries: Vec<(String, Option<String>, KeyCount)>,
    /// Event-weighted packets by ASN, with the network's name.
    pub asns: Vec<(u32, Option<Arc<str>>, KeyCount)>,
    /// The `MINUTE_TOP_SOURCES` busiest sources, busiest first.
    pub sources: Vec<MinuteSource>,
}

/// What a restart loads back from the history store: the minutes of the
/// last hour, oldest first. The pipeline fills its chart and its top-list
/// windows from them.
#[derive(Clone, Debug, Default)]
pub struct Restored {
    pub minutes: Vec<MinuteSummary>,
}

/// The minute being counted.
#[derive(Debug, Default)]
pub(super) struct MinuteAccumulator {
    minute: Option<u64>,
    series: [u64; SERIES.len()],
    covered: u64,
    classes: [PacketsBytes; CLASS_COUNT],
    sources: AddressMap<(KeyCount, Option<Arc<crate::model::GeoInfo>>)>,
    countries: HashMap<String, (Option<String>, KeyCount)>,
    asns: HashMap<u32, (Option<Arc<str>>, KeyCount)>,
}

impl MinuteAccumulator {
    /// Counts one event (already enriched) into the open minute.
    pub(super) fn record(&mut self, event: &Event) {
        if event.response.is_some() {
            return; // counted when its request arrived
        }
        let weight = u64::from(event.weight);
        let bytes = u64::from(event.len) * weight;
        let full = self.sources.len() >= MINUTE_SOURCES_MAX;
        let new_source = !self.sources.contains_key(&event.src);
        if !(full && new_source) {
            let entry = self.sources.entry(event.src).or_insert_with(|| (KeyCount::default(), event.geo.clone()));
            entry.0.packets += weight;
            entry.0.bytes += bytes;
            entry.0.sources = 1;
        }
        let Some(geo) = &event.geo else { return };
        if let Some(code) = &geo.country_code {
            // Found by reference: the code is copied once per minute, not per event.
            let entry = match self.countries.get_mut(code.as_str()) {
                Some(entry) => entry,
                None => {
                    self.countries.entry(code.clone()).or_insert_with(|| (geo.country.clone(), KeyCount::default()))
                }
            };
            entry.1.packets += weight;
            entry.1.bytes += bytes;
            entry.1.sources += u64::from(new_source);
        }
        if let Some(asn) = geo.asn {
            let entry = self.asns.entry(asn).or_insert_with(|| (geo.as_org.clone(), KeyCount::default()));
            entry.1.packets += weight;
            entry.1.bytes += bytes;
            entry.1.sources += u64::from(new_source);
        }
    }

    /// Adds one closed second ending at `end_ms`; returns the minute it
    /// closed when this second starts a new one.
    pub(super) fn close_second(
        &mut self,
        series: [u64; SERIES.len()],
        classes: [PacketsBytes; CLASS_COUNT],
        end_ms: u64,
    ) -> Option<MinuteSummary> {
        // The second belongs to the minute it started in.
        let minute = end_ms.saturating_sub(1) / 60_000;
        let closed = match self.minute {
            Some(open) if open != minute => Some(self.take(open)),
            _ => None,
        };
        self.minute = Some(minute);
        self.covered |= 1 << (end_ms.saturating_sub(1) / 1000 % 60);
        for (sum, n) in self.series.iter_mut().zip(series) {
            *sum += n;
        }
        for (sum, c) in self.classes.iter_mut().zip(classes) {
            sum.packets += c.packets;
            sum.bytes += c.bytes;
        }
        closed
    }

    /// The minute in progress, closed early (the daemon is stopping).
    pub(super) fn flush(&mut self) -> Option<MinuteSummary> {
        let minute = self.minute?;
        Some(self.take(minute))
    }

    fn take(&mut self, minute: u64) -> MinuteSummary {
        let this = std::mem::take(self);
        let mut sources: Vec<_> = this
            .sources
            .into_iter()
            .map(|(ip, (count, geo))| MinuteSource {
                ip,
                count,
                country_code: geo.as_ref().and_then(|g| g.country_code.clone()),
                country: geo.as_ref().and_then(|g| g.country.clone()),
                asn: geo.as_ref().and_then(|g| g.asn),
                as_org: geo.as_ref().and_then(|g| g.as_org.clone()),
            })
            .collect();
        if sources.len() > MINUTE_TOP_SOURCES {
            sources.select_nth_unstable_by(MINUTE_TOP_SOURCES - 1, |a, b| b.count.packets.cmp(&a.count.packets));
            sources.truncate(MINUTE_TOP_SOURCES);
        }
        sources.sort_by(|a, b| b.count.packets.cmp(&a.count.packets).then(a.ip.cmp(&b.ip)));
        MinuteSummary {
            start_ms: minute * 60_000,
            series: this.series,
            covered: this.covered,
            classes: this.classes,
            countries: this.countries.into_iter().map(|(k, (name, c))| (k, name, c)).collect(),
            asns: this.asns.into_iter().map(|(k, (name, c))| (k, name, c)).collect(),
            sources,
        }
    }
}

#[cfg(test)]
mod tests {
    use monitor_common::Class;

    use super::*;
    use crate::{
        model::GeoInfo,
        sources::kernel::testing::{event, raw},
    };

    fn located(ip: &str, weight: u32, country: &str, asn: u32) -> Event {
        let mut e = event(&raw(Class::Icmp, ip.parse().expect("literal"), weight, 100));
        let mut geo = GeoInfo::only(crate::model::AddressLabel::Public);
        geo.country_code = Some(country.into());
        geo.asn = Some(asn);
        e.geo = Some(Arc::new(geo));
        e
    }

    #[test]
    fn a_minute_closes_when_a_second_of_the_next_one_does() {
        let mut acc = MinuteAccumulator::default();
        let classes = [PacketsBytes { packets: 2, bytes: 200 }; CLASS_COUNT];
        assert!(acc.close_second([1, 0, 0, 0, 0], classes, 60_000 * 10 + 59_000).is_none());
        acc.record(&located("203.0.113.1", 3, "DE", 64500));
        acc.record(&located("203.0.113.2", 5, "DE", 64501));
        acc.record(&located("203.0.113.2", 1, "DE", 64501));
        assert!(acc.close_second([2, 0, 0, 0, 1], classes, 60_000 * 11).is_none(), "ends exactly at the boundary");
        let m = acc.close_second([7, 0, 0, 0, 0], classes, 60_000 * 11 + 1_000).expect("minute 10 closed");
        assert_eq!(m.start_ms, 600_000);
        assert_eq!(m.series, [3, 0, 0, 0, 1]);
        assert_eq!(m.covered, 1 << 58 | 1 << 59, "the seconds ending at :59 and :00");
        assert_eq!(m.classes[0], PacketsBytes { packets: 4, bytes: 400 });
        let top: Vec<_> = m.sources.iter().map(|s| (s.ip.to_string(), s.count.packets)).collect();
        assert_eq!(top, [("203.0.113.2".to_string(), 6), ("203.0.113.1".to_string(), 3)]);
        assert_eq!(m.countries, [("DE".to_string(), None, KeyCount { packets: 9, bytes: 900, sources: 2 })]);
        assert_eq!(m.asns.len(), 2);
        let next = acc.close_second([0; 5], classes, 60_000 * 12 + 1_000).expect("minute 11 closed");
        assert_eq!((next.start_ms, next.series[0], next.sources.len()), (660_000, 7, 0));
    }

    #[test]
    fn only_the_top_sources_are_kept() {
        let mut acc = MinuteAccumulator::default();
        acc.close_second([0; 5], Default::default(), 1_000);
        for i in 0..(MINUTE_TOP_SOURCES as u32 + 20) {
            acc.record(&located(&format!("10.0.{}.{}", i / 200, i % 200), i + 1, "FR", 1));
        }
        let m = acc.close_second([0; 5], Default::default(), 61_000).expect("closed");
        assert_eq!(m.sources.len(), MINUTE_TOP_SOURCES);
        assert_eq!(m.sources[0].count.packets, MINUTE_TOP_SOURCES as u64 + 20);
        assert_eq!(m.countries[0].2.sources, MINUTE_TOP_SOURCES as u64 + 20, "countries count every source");
    }
}
