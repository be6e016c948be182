//! HTTP response times and availability: exact counts and latency
//! percentiles from the kernel's histogram (since start and over a sliding
//! window), and per-host / per-path breakdowns from response events.
//! Everything is bounded.

use std::collections::{HashMap, VecDeque};

use monitor_common::timing::{bucket_lower_ns, bucket_mid_ns, bucket_upper_ns, STATUS_CLASSES};
use serde::Serialize;

use super::evict::evict_least_recent;
use crate::{
    model::{Event, SCHEMA_VERSION, STATUS_CLASS_NAMES},
    sources::kernel::{HttpKernelCounters, HttpReport, HttpTimingStatus},
};

/// Seconds the sliding window covers.
pub(super) const WINDOW_S: usize = 60;
/// Most hosts and paths remembered for the breakdowns.
pub(super) const BREAKDOWN_MAX: usize = 1_000;
/// Longest path kept (longer ones are cut).
const PATH_MAX: usize = 120;

/// What the UI and the API say about what cannot be timed.
pub const NOT_TIMED: &str = "HTTPS (TLS) responses are encrypted and cannot be timed; \
                             HTTP/2 cleartext is not timed either.";

/// Responses of one host or path, from events (so sampled when the event
/// budget is spent; `responses` sums event weights).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Breakdown {
    pub responses: u64,
    pub events: u64,
    pub mean_ms: f64,
    pub max_ms: f64,
    pub last_ms: f64,
    pub last_seen_ms: u64,
    pub status: HashMap<&'static str, u64>,
    #[serde(skip)]
    total_ms: f64,
}

impl Breakdown {
    fn add(&mut self, latency_ms: f64, class: &'static str, weight: u64, ts_ms: u64) {
        self.responses += weight;
        self.events += 1;
        self.total_ms += latency_ms;
        self.mean_ms = self.total_ms / self.events as f64;
        self.max_ms = self.max_ms.max(latency_ms);
        self.last_ms = latency_ms;
        self.last_seen_ms = self.last_seen_ms.max(ts_ms);
        *self.status.entry(class).or_default() += weight;
    }
}

#[derive(Debug, Default)]
pub(super) struct HttpTiming {
    pub status: HttpTimingStatus,
    latest: Option<HttpKernelCounters>,
    /// Kernel counters at the end of each of the last WINDOW_S seconds.
    snapshots: VecDeque<HttpKernelCounters>,
    /// Pending requests in the kernel table at the last sweep.
    pub pending: u64,
    /// Pending requests the daemon removed as too old.
    pub expired: u64,
    pub events: u64,
    hosts: HashMap<String, Breakdown>,
    paths: HashMap<String, Breakdown>,
    pub breakdowns_evicted: u64,
}

/// Percentiles and classes of a latency histogram.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Summary {
    pub responses: u64,
    /// Middles (ms) of the log-linear buckets holding each percentile: the
    /// counts are exact, the value within 1.6 % (0.6 µs below 33 µs).
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub status: HashMap<&'static str, u64>,
}

/// The latency (ms) at or below which a fraction `q` of the responses fall:
/// the middle of the bucket that holds it.
pub(super) fn percentile_ms(buckets: &[u64], q: f64) -> Option<f64> {
    let total: u64 = buckets.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
    let mut seen = 0;
    for (b, n) in buckets.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return Some(bucket_mid_ns(b) as f64 / 1e6);
        }
    }
    None
}

pub(super) fn summarize(latency: &[u64], status: &[u64; STATUS_CLASSES]) -> Summary {
    Summary {
        responses: latency.iter().sum(),
        p50_ms: percentile_ms(latency, 0.50),
        p90_ms: percentile_ms(latency, 0.90),
        p99_ms: percentile_ms(latency, 0.99),
        status: STATUS_CLASS_NAMES.iter().copied().zip(status.iter().copied()).collect(),
    }
}

fn minus(a: &HttpKernelCounters, b: &HttpKernelCounters) -> (Vec<u64>, [u64; STATUS_CLASSES]) {
    let latency =
        a.latency.iter().enumerate().map(|(i, n)| n.saturating_sub(b.latency.get(i).copied().unwrap_or(0))).collect();
    let mut status = [0; STATUS_CLASSES];
    for (i, s) in status.iter_mut().enumerate() {
        *s = a.status[i].saturating_sub(b.status[i]);
    }
    (latency, status)
}

/// The path of a request target, without the query, bounded.
pub(super) fn path_of(target: &str) -> String {
    let path = target.split(['?', '#']).next().unwrap_or(target);
    let mut end = path.len().min(PATH_MAX);
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    path[..end].to_owned()
}

impl HttpTiming {
    pub(super) fn new(status: HttpTimingStatus) -> Self {
        HttpTiming { status, ..HttpTiming::default() }
    }

    /// Once a second: the kernel's counters now.
    pub(super) fn record_kernel(&mut self, report: HttpReport) {
        self.expired = report.expired;
        self.pending = report.pending;
        if self.snapshots.len() > WINDOW_S {
            self.snapshots.pop_front();
        }
        self.snapshots.push_back(report.counters.clone());
        self.latest = Some(report.counters);
    }

    /// A response event (one with `response` set).
    pub(super) fn record_event(&mut self, event: &Event) {
        let Some(r) = &event.response else {
            return;
        };
        self.events += 1;
        let weight = u64::from(event.weight);
        let host = event.http.as_ref().and_then(|h| h.host.clone()).unwrap_or_else(|| match event.dst_port {
            Some(port) => std::net::SocketAddr::new(event.dst, port).to_string(),
            None => event.dst.to_string(),
        });
        let path = event.http.as_ref().map_or_else(|| "(unknown)".to_owned(), |h| path_of(&h.target));
        for (map, key) in [(&mut self.hosts, host), (&mut self.paths, path)] {
            if !map.contains_key(&key) && map.len() >= BREAKDOWN_MAX {
                self.breakdowns_evicted += evict_least_recent(map, |b| b.last_seen_ms) as u64;
            }
            map.entry(key).or_default().add(r.latency_ms, r.status_class, weight, event.ts_ms);
        }
    }

    /// Requests recorded that were neither answered, replaced, expired nor
    /// still pending: pushed out of the full LRU table.
    pub(super) fn evicted_at_least(&self) -> u64 {
        self.latest.as_ref().map_or(0, |k| {
            k.requests_recorded.saturating_sub(k.responses_matched + k.requests_replaced + self.expired + self.pending)
        })
    }

    pub(super) fn window(&self) -> Option<Summary> {
        let latest = self.latest.as_ref()?;
        let oldest = self.snapshots.front()?;
        let (latency, status) = minus(latest, oldest);
        Some(summarize(&latency, &status))
    }

    /// The `n` slowest by mean latency.
    fn slowest(map: &HashMap<String, Breakdown>, n: usize) -> Vec<(String, Breakdown)> {
        let mut all: Vec<(&String, &Breakdown)> = map.iter().collect();
        all.sort_by(|a, b| b.1.mean_ms.total_cmp(&a.1.mean_ms));
        all.into_iter().take(n).map(|(key, b)| (key.clone(), b.clone())).collect()
    }

    /// The `/api/http` document, with the `n` slowest hosts and paths.
    pub(super) fn doc(&self, n: usize) -> HttpDoc {
        let kernel = self.latest.as_ref().map(|k| HttpKernelDoc {
            requests_recorded: k.requests_recorded,
            requests_replaced: k.requests_replaced,
            request_insert_failed: k.request_insert_failed,
            responses_matched: k.responses_matched,
            responses_unmatched: k.responses_unmatched,
            requests_pending: self.pending,
            requests_expired: self.expired,
            requests_evicted_at_least: self.evicted_at_least(),
            events: HttpEventsDoc {
                submitted: k.event_submitted,
                suppressed: k.event_suppressed,
                ring_full: k.event_ring_full,
            },
        });
        let since_start = self.latest.as_ref().map(|k| SinceStart {
            summary: summarize(&k.latency, &k.status),
            mean_ms: (k.responses_matched > 0).then(|| k.latency_sum_ns as f64 / k.responses_matched as f64 / 1e6),
            buckets: k
                .latency
                .iter()
                .enumerate()
                .filter(|(_, n)| **n > 0)
                .map(|(b, n)| BucketDoc {
                    ge_ms: bucket_lower_ns(b) as f64 / 1e6,
                    lt_ms: bucket_upper_ns(b).map(|ns| ns as f64 / 1e6),
                    count: *n,
                })
                .collect(),
        });
        HttpDoc {
            schema: SCHEMA_VERSION,
            enabled: self.status.enabled,
            interfaces: self.status.interfaces.clone(),
            errors: self.status.errors.clone(),
            not_timed: NOT_TIMED,
            kernel,
            since_start,
            window_s: WINDOW_S,
            window: self.window(),
            events: self.events,
            slowest_hosts: Self::slowest(&self.hosts, n)
                .into_iter()
                .map(|(host, breakdown)| SlowHost { host, breakdown })
                .collect(),
            slowest_paths: Self::slowest(&self.paths, n)
                .into_iter()
                .map(|(path, breakdown)| SlowPath { path, breakdown })
                .collect(),
            hosts_tracked: self.hosts.len(),
            paths_tracked: self.paths.len(),
            breakdowns_evicted: self.breakdowns_evicted,
        }
    }
}

/// `/api/http`, and `http` in /api/stats.
#[derive(Clone, Debug, Serialize)]
pub struct HttpDoc {
    pub schema: u32,
    pub enabled: bool,
    pub interfaces: Vec<String>,
    pub errors: Vec<String>,
    pub not_timed: &'static str,
    pub kernel: Option<HttpKernelDoc>,
    pub since_start: Option<SinceStart>,
    pub window_s: usize,
    pub window: Option<Summary>,
    pub events: u64,
    pub slowest_hosts: Vec<SlowHost>,
    pub slowest_paths: Vec<SlowPath>,
    pub hosts_tracked: usize,
    pub paths_tracked: usize,
    pub breakdowns_evicted: u64,
}

impl HttpDoc {
    /// The same with at most `n` slowest hosts and paths.
    pub fn truncated(&self, n: usize) -> HttpDoc {
        let mut doc = self.clone();
        doc.slowest_hosts.truncate(n);
        doc.slowest_paths.truncate(n);
        doc
    }
}

/// `kernel` in /api/http: the kernel's exact request and response counts.
#[derive(Clone, Debug, Serialize)]
pub struct HttpKernelDoc {
    pub requests_recorded: u64,
    pub requests_replaced: u64,
    pub request_insert_failed: u64,
    pub responses_matched: u64,
    pub responses_unmatched: u64,
    pub requests_pending: u64,
    pub requests_expired: u64,
    pub requests_evicted_at_least: u64,
    pub events: HttpEventsDoc,
}

#[derive(Clone, Copy, Debug, Serialize)]
pub struct HttpEventsDoc {
    pub submitted: u64,
    pub suppressed: u64,
    pub ring_full: u64,
}

/// `since_start` in /api/http: the whole histogram.
#[derive(Clone, Debug, Serialize)]
pub struct SinceStart {
    #[serde(flatten)]
    pub summary: Summary,
    pub mean_ms: Option<f64>,
    pub buckets: Vec<BucketDoc>,
}

/// One non-empty latency bucket: `count` responses took `ge_ms` ≤ t < `lt_ms`.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct BucketDoc {
    pub ge_ms: f64,
    pub lt_ms: Option<f64>,
    pub count: u64,
}

/// One of `slowest_hosts`.
#[derive(Clone, Debug, Serialize)]
pub struct SlowHost {
    pub host: String,
    #[serde(flatten)]
    pub breakdown: Breakdown,
}

/// One of `slowest_paths`.
#[derive(Clone, Debug, Serialize)]
pub struct SlowPath {
    pub path: String,
    #[serde(flatten)]
    pub breakdown: Breakdown,
}

#[cfg(test)]
mod tests {
    use monitor_common::timing::LATENCY_BUCKETS;

    use super::*;

    #[test]
    fn percentiles_are_bucket_middles_within_the_bound() {
        use monitor_common::timing::latency_bucket;
        let mut b = vec![0u64; LATENCY_BUCKETS];
        assert_eq!(percentile_ms(&b, 0.5), None);
        // 90 responses at 1.05 ms and 10 at 201 ms (the example).
        b[latency_bucket(1_050_000) as usize] = 90;
        b[latency_bucket(201_000_000) as usize] = 10;
        let within = |got: Option<f64>, truth: f64| got.is_some_and(|g| (g - truth).abs() <= truth / 64.0);
        assert!(within(percentile_ms(&b, 0.5), 1.05), "{:?}", percentile_ms(&b, 0.5));
        assert!(within(percentile_ms(&b, 0.9), 1.05));
        assert!(within(percentile_ms(&b, 0.99), 201.0), "{:?}", percentile_ms(&b, 0.99));
        b[LATENCY_BUCKETS - 1] = 1000;
        let last = monitor_common::timing::bucket_lower_ns(LATENCY_BUCKETS - 1) as f64 / 1e6;
        assert_eq!(percentile_ms(&b, 0.99), Some(last));
    }

    #[test]
    fn paths_drop_queries_and_are_bounded() {
        assert_eq!(path_of("/a/b?x=1"), "/a/b");
        assert_eq!(path_of("/a#f"), "/a");
        assert_eq!(path_of(&format!("/{}", "é".repeat(100))).len(), PATH_MAX - 1);
    }

    #[test]
    fn window_subtracts_the_oldest_snapshot() {
        let mut t = HttpTiming::default();
        let mut k = HttpKernelCounters { latency: vec![0; LATENCY_BUCKETS], ..Default::default() };
        k.latency[3] = 5;
        k.status[2] = 5;
        let report = |counters: &HttpKernelCounters| HttpReport { counters: counters.clone(), expired: 0, pending: 0 };
        t.record_kernel(report(&k));
        k.latency[10] += 2;
        k.status[4] += 2;
        t.record_kernel(report(&k));
        let w = t.window().expect("window");
        assert_eq!(w.responses, 2);
        assert_eq!(w.status["4xx"], 2);
        assert_eq!(w.status["2xx"], 0);
    }
}
