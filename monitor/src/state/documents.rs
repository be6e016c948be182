//! The API's documents, typed: every response body and every part of a
//! WebSocket frame is one of these, so docs/API.md, the golden files in
//! docs/api/ and the dashboard all read one schema.

use std::{collections::BTreeMap, net::IpAddr, sync::Arc};

use monitor_common::{
    class::{CLASS_COUNT, TRACKED_CLASS_COUNT},
    Class,
};
use serde::{ser::SerializeMap as _, Serialize, Serializer};

use super::{
    aggregate::{AsnCount, CountryCount, IcmpTypeCount, SourceSummary},
    headline::Headline,
    history::SERIES,
    http_timing::HttpDoc,
};
use crate::{
    enrich::geo::GeoStatus,
    model::{Event, GeoInfo, SCHEMA_VERSION, STATUS_CLASS_NAMES},
    sources::{
        kernel::{AttachedInterface, PipelineCounts},
        syslog::SyslogCounters,
    },
};

/// The windows the top lists can be asked for, in minutes.
pub const TOP_WINDOWS_MINUTES: [u32; 3] = [5, 15, 60];

/// One value per class, as a map keyed by class name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ByClass<T>(pub [T; CLASS_COUNT]);

impl<T: Serialize> Serialize for ByClass<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(CLASS_COUNT))?;
        for (class, v) in Class::ALL.iter().zip(&self.0) {
            map.serialize_entry(class.name(), v)?;
        }
        map.end()
    }
}

/// `/api/meta`: what a client needs to know to read the rest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MetaDoc {
    pub schema: u32,
    pub version: &'static str,
    /// Every class, in the order of the kernel's counters.
    pub classes: Vec<&'static str>,
    /// The classes with per-source statistics and events.
    pub tracked_classes: Vec<&'static str>,
    /// The series of the rate chart (`/api/history`, `rates` in frames).
    pub rate_series: [&'static str; SERIES.len()],
    pub status_classes: [&'static str; STATUS_CLASS_NAMES.len()],
    pub top_windows_minutes: [u32; TOP_WINDOWS_MINUTES.len()],
}

impl MetaDoc {
    pub fn current() -> Self {
        MetaDoc {
            schema: SCHEMA_VERSION,
            version: env!("CARGO_PKG_VERSION"),
            classes: Class::ALL.iter().map(|c| c.name()).collect(),
            tracked_classes: Class::ALL[..TRACKED_CLASS_COUNT].iter().map(|c| c.name()).collect(),
            rate_series: SERIES,
            status_classes: STATUS_CLASS_NAMES,
            top_windows_minutes: TOP_WINDOWS_MINUTES,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PacketsBytes {
    pub packets: u64,
    pub bytes: u64,
}

/// `kernel` in /api/stats: the XDP observer's exact counters.
#[derive(Clone, Debug, Serialize)]
pub struct KernelDoc {
    pub classes: ByClass<PacketsBytes>,
    pub pipeline: PipelineCounts,
    pub sources_capacity: u32,
    /// The kernel does not count LRU evictions; every insert beyond the
    /// capacity evicted one entry (the LRU may start a little earlier).
    pub sources_evicted_at_least: u64,
}

/// `events` in /api/stats.
#[derive(Clone, Debug, Serialize)]
pub struct EventCountsDoc {
    pub received: u64,
    pub accepted: u64,
    pub dropped_queue_full: u64,
    pub malformed_records: u64,
    pub xdp_packets_by_class: ByClass<u64>,
    pub syslog_packets_by_class: ByClass<u64>,
    /// What the daemon keeps of them for /api/events and the feed.
    pub recent: RecentDoc,
}

/// `recent` in /api/stats: how far back /api/events and the feed can look.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RecentDoc {
    pub events: usize,
    pub capacity: usize,
    pub max_age_s: u64,
    /// Timestamp of the oldest event kept (None when there is none).
    pub oldest_ms: Option<u64>,
}

/// `sources` in /api/stats: the daemon's own source table.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct SourceCountsDoc {
    pub tracked: usize,
    pub evicted: u64,
}

/// A dashboard viewer (only for viewers with the token, see docs/API.md).
#[derive(Clone, Debug, Serialize)]
pub struct ViewerDoc {
    pub addr: IpAddr,
    pub since_ms: u64,
    pub geo: Arc<GeoInfo>,
}

/// `/api/stats`, and `stats` in the snapshot and stats frames.
#[derive(Clone, Debug, Serialize)]
pub struct StatsDoc {
    pub schema: u32,
    pub version: &'static str,
    pub hostname: Arc<str>,
    pub uptime_s: u64,
    pub interfaces: Arc<[AttachedInterface]>,
    pub kernel: Option<KernelDoc>,
    pub events: EventCountsDoc,
    pub sources: SourceCountsDoc,
    pub headline: Headline,
    pub syslog: Arc<SyslogCounters>,
    pub geo: Arc<GeoStatus>,
    pub http: Arc<HttpDoc>,
    pub history: HistoryStatusDoc,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub viewers: Option<Arc<[ViewerDoc]>>,
}

/// One entry of `sources` in /api/top.
#[derive(Clone, Debug, Serialize)]
pub struct TopSource {
    pub ip: IpAddr,
    #[serde(flatten)]
    pub summary: SourceSummary,
    /// Packets per second over about the last minute (see docs/API.md).
    pub packets_per_s: f64,
    /// In a windowed list: the packets within the window, by which it is ranked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_packets: Option<u64>,
}

/// `totals` in /api/top: how the weighted event counts compare with the
/// kernel's exact ones.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct TopTotals {
    pub events: u64,
    pub weighted_packets: u64,
    pub counted_packets: Option<u64>,
}

/// `/api/top`, and `top` in frames.
#[derive(Clone, Debug, Serialize)]
pub struct TopDoc {
    pub schema: u32,
    /// The window the lists cover; None: since the daemon started.
    pub window_minutes: Option<u32>,
    pub sources: Vec<TopSource>,
    pub countries: Vec<CountryCount>,
    pub asns: Vec<AsnCount>,
    pub icmp_types: Vec<IcmpTypeCount>,
    pub totals: TopTotals,
    /// Lists from the history store over this range (`/api/top?from=&to=`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range: Option<RangeDoc>,
}

impl TopDoc {
    /// The first `n` of each list.
    pub fn truncated(&self, n: usize) -> TopDoc {
        TopDoc {
            schema: self.schema,
            window_minutes: self.window_minutes,
            sources: self.sources.iter().take(n).cloned().collect(),
            countries: self.countries.iter().take(n).cloned().collect(),
            asns: self.asns.iter().take(n).cloned().collect(),
            icmp_types: self.icmp_types.clone(),
            totals: self.totals,
            range: self.range,
        }
    }
}

/// `/api/history`.
#[derive(Clone, Debug, Serialize)]
pub struct HistoryDoc {
    pub schema: u32,
    pub step_ms: u64,
    /// Wall-clock end of the newest step, ms since the epoch.
    pub end_ms: u64,
    /// One array per series of `rate_series`, oldest first: packets per
    /// step; null for a step nobody counted.
    pub series: BTreeMap<&'static str, Vec<Option<u64>>>,
}

/// A time range asked of the history store (`/api/history`, `/api/top`
/// with `from`/`to`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct RangeDoc {
    pub from_ms: u64,
    pub to_ms: u64,
    /// The store's tier the answer comes from (60,000 or 3,600,000).
    pub step_ms: u64,
}

/// `history` in /api/stats: the embedded store of per-minute history.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HistoryStatusDoc {
    /// Writing and answering ranges.
    pub enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Why history is off or failing (None when all is well).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub days: u32,
    pub max_bytes: u64,
    /// The database's size on disk (the file and its WAL).
    pub file_bytes: u64,
    /// Minutes written since start; the start of the last one.
    pub minutes_written: u64,
    pub last_minute_ms: Option<u64>,
    /// Minutes of the last hour loaded back at start.
    pub restored_minutes: u64,
}

/// `kernel` in /api/lookup: the kernel's per-source counters of one class.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct KernelSourceDoc {
    pub packets: u64,
    pub bytes: u64,
    pub first_seen_ms: u64,
    pub last_seen_ms: u64,
}

/// `/api/lookup/{ip}`.
#[derive(Clone, Debug, Serialize)]
pub struct LookupDoc {
    pub schema: u32,
    pub ip: IpAddr,
    pub geo: Arc<GeoInfo>,
    pub seen: Option<SourceSummary>,
    pub kernel: Option<BTreeMap<&'static str, KernelSourceDoc>>,
}

/// `/api/events`.
#[derive(Clone, Debug, Serialize)]
pub struct EventsDoc {
    pub schema: u32,
    pub events: Vec<Arc<Event>>,
}

/// The latest second of every rate series (`rates` in frames).
pub type Rates = BTreeMap<&'static str, u64>;
