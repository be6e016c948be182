//! The last complete second, per source, for the alert rules (`alerts/`):
//! packets by source, the distinct destinations each reached, and the
//! origins (countries, ASNs) traffic came from. The top lists rank sources
//! over minutes; a rule needs every source's last second, and the
//! destinations, which no other document keeps.
//!
//! Built from events, so it counts what the events stand for: weighted
//! packets are close to the kernel's exact counts (an event carries the
//! packets sampling suppressed before it), but a destination reached only
//! by suppressed packets is not seen: under sampling a sweep's distinct
//! destinations are undercounted, never overcounted.

use std::{net::IpAddr, sync::Arc};

use monitor_common::Class;

use crate::model::{address_map, AddressMap, Event, GeoInfo};

/// Sources kept per second at most; more are counted in `sources_dropped`.
pub const ACTIVITY_SOURCES_MAX: usize = 10_000;
/// Distinct destinations kept per second over all sources; more are
/// counted in `destinations_dropped`.
pub const ACTIVITY_DESTINATIONS_MAX: usize = 65_536;
/// Distinct destinations kept per source and second.
pub const ACTIVITY_DESTINATIONS_PER_SOURCE: usize = 1_024;

/// One source's second.
#[derive(Clone, Debug, Default)]
pub struct SourceSecond {
    /// ICMP and ICMPv6 packets (event weights).
    pub icmp_packets: u64,
    /// All packets (event weights).
    pub packets: u64,
    /// Distinct destinations of its ICMP echo requests (type 8 / 128).
    pub echo_destinations: Vec<IpAddr>,
    /// Distinct destinations of any of its packets.
    pub destinations: Vec<IpAddr>,
    /// Where it is (shared with the event: no copy per source and second).
    pub geo: Option<Arc<GeoInfo>>,
}

impl SourceSecond {
    pub fn country_code(&self) -> Option<&str> {
        self.geo.as_ref()?.country_code.as_deref()
    }

    pub fn asn(&self) -> Option<u32> {
        self.geo.as_ref()?.asn
    }
}

/// `activity` in the snapshot: the last complete second.
#[derive(Clone, Debug, Default)]
pub struct Activity {
    /// Wall-clock end of the second, ms since the epoch (0: none yet).
    pub end_ms: u64,
    pub sources: AddressMap<SourceSecond>,
    pub sources_dropped: u64,
    pub destinations_dropped: u64,
}

/// The second being filled, owned by the pipeline.
#[derive(Debug, Default)]
pub(super) struct ActivityBuilder {
    current: Activity,
    destinations: usize,
}

impl ActivityBuilder {
    pub(super) fn record(&mut self, event: &Event) {
        let full = self.current.sources.len() >= ACTIVITY_SOURCES_MAX;
        if full && !self.current.sources.contains_key(&event.src) {
            self.current.sources_dropped += 1;
            return;
        }
        let source = self.current.sources.entry(event.src).or_default();
        let weight = u64::from(event.weight);
        source.packets += weight;
        if matches!(event.class, Class::Icmp | Class::Icmpv6) {
            source.icmp_packets += weight;
        }
        if event.geo.is_some() {
            source.geo.clone_from(&event.geo);
        }
        let echo = event
            .icmp
            .as_ref()
            .is_some_and(|i| matches!((event.class, i.type_), (Class::Icmp, 8) | (Class::Icmpv6, 128)));
        let lists = [(true, &mut source.destinations), (echo, &mut source.echo_destinations)];
        for (wanted, list) in lists {
            // A linear scan: the list is short (a sweep's second) and capped.
            if !wanted || list.contains(&event.dst) {
                continue;
            }
            if list.len() >= ACTIVITY_DESTINATIONS_PER_SOURCE || self.destinations >= ACTIVITY_DESTINATIONS_MAX {
                self.current.destinations_dropped += 1;
                continue;
            }
            list.push(event.dst);
            self.destinations += 1;
        }
    }

    /// Closes the second ending at `end_ms` and starts the next.
    pub(super) fn close(&mut self, end_ms: u64) -> Activity {
        self.destinations = 0;
        // Sized for as many sources as this second had: the table does not
        // grow (and rehash) again from nothing every second.
        let next = Activity { sources: address_map(self.current.sources.len()), ..Activity::default() };
        let mut done = std::mem::replace(&mut self.current, next);
        done.end_ms = end_ms;
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::kernel::testing::{event, raw};

    #[test]
    fn counts_weights_and_distinct_echo_destinations() {
        let mut b = ActivityBuilder::default();
        let src: IpAddr = "192.0.2.1".parse().expect("literal");
        for d in [1, 2, 2, 3] {
            let mut r = raw(Class::Icmp, src, 2, 84);
            r.icmp_type = 8;
            let mut e = event(&r);
            e.dst = format!("198.51.100.{d}").parse().expect("literal");
            b.record(&e);
        }
        let a = b.close(5_000);
        let s = &a.sources[&src];
        assert_eq!((s.icmp_packets, s.packets, s.echo_destinations.len()), (8, 8, 3));
        assert_eq!(a.end_ms, 5_000);
        assert!(b.close(6_000).sources.is_empty());
    }
}
