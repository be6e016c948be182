//! The one task that owns the daemon's state. It receives event batches
//! from the sources, enriches and records them, closes a second on every
//! kernel report (or on its own clock without XDP), and publishes an
//! immutable [`Snapshot`] once a second. Readers never lock: they read the
//! latest snapshot, or ask through a [`PipelineHandle`].

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{atomic::AtomicU64, Arc},
    time::Duration,
};

use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::{
    activity::{Activity, ActivityBuilder},
    aggregate::{Aggregate, Limits, SourceSummary},
    documents::{
        ByClass, EventCountsDoc, HistoryStatusDoc, KernelDoc, PacketsBytes, SourceCountsDoc, StatsDoc, TopDoc,
        TopTotals, ViewerDoc, TOP_WINDOWS_MINUTES,
    },
    history::SERIES,
    http_timing::HttpTiming,
    minute::{MinuteAccumulator, MinuteSummary, Restored},
    publish::Published,
    snapshot::{Snapshot, HTTP_TOP_MAX, TOP_MAX},
};
use crate::{
    enrich::geo::Geo,
    lock::lock,
    model::{now_ms, Event, EventFilter, GeoInfo, SCHEMA_VERSION},
    sources::{
        kernel::{AttachedInterface, HttpTimingStatus, KernelCounters, KernelReport},
        syslog::Ingest,
        Batch, SinkCounters,
    },
};

/// Capacity of the fan-out channel to live consumers (WebSocket, NDJSON), in events.
const FANOUT_QUEUE: usize = 16_384;
/// Requests waiting for the pipeline at most; more wait in their handlers.
const REQUEST_QUEUE: usize = 256;
/// Slowest hosts and paths in the `http` part of /api/stats.
const STATS_HTTP_TOP: usize = 10;

/// What the pipeline is built from.
pub struct PipelineConfig {
    pub limits: Limits,
    pub hostname: String,
    /// Capacity of the kernel's per-source table (for its eviction estimate).
    pub sources_capacity: u32,
    pub interfaces: Vec<AttachedInterface>,
    pub http_status: HttpTimingStatus,
    pub geo: Arc<Geo>,
    /// The syslog path's counters, kept by its receivers.
    pub syslog: Arc<Ingest>,
    pub sink: Arc<SinkCounters>,
    /// The last hour from the history store, loaded back at start.
    pub restored: Restored,
    /// The history store's state, for /api/stats (kept by its writer).
    pub history_status: watch::Receiver<HistoryStatusDoc>,
}

/// Questions a reader may ask between snapshots.
enum Request {
    /// The newest `limit` events that match, oldest first.
    Recent {
        filter: EventFilter,
        limit: usize,
        reply: oneshot::Sender<Vec<Arc<Event>>>,
    },
    /// What the daemon knows of one address.
    Source {
        ip: IpAddr,
        reply: oneshot::Sender<(Arc<GeoInfo>, Option<SourceSummary>)>,
    },
    ViewerJoined {
        id: u64,
        addr: IpAddr,
        since_ms: u64,
    },
    ViewerLeft {
        id: u64,
    },
}

/// The readers' side: the latest snapshot, the live events, and questions.
#[derive(Clone)]
pub struct PipelineHandle {
    snapshots: watch::Receiver<Arc<Snapshot>>,
    fanout: broadcast::Sender<Arc<Published>>,
    requests: mpsc::Sender<Request>,
    next_viewer: Arc<AtomicU64>,
}

impl PipelineHandle {
    /// Every new snapshot, as it is published, for a task that reads each
    /// (the history writer, the alert engine).
    pub fn snapshots(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.snapshots.clone()
    }

    /// The latest snapshot (at most a second old).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshots.borrow().clone()
    }

    /// Live events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Published>> {
        self.fanout.subscribe()
    }

    /// The newest `limit` events that match `filter`, oldest first; empty
    /// once the pipeline has stopped.
    pub async fn recent(&self, filter: EventFilter, limit: usize) -> Vec<Arc<Event>> {
        let (reply, answer) = oneshot::channel();
        if self.requests.send(Request::Recent { filter, limit, reply }).await.is_err() {
            return Vec::new();
        }
        answer.await.unwrap_or_default()
    }

    /// Geolocation and the daemon's summary of `ip`; None once stopped.
    pub async fn source(&self, ip: IpAddr) -> Option<(Arc<GeoInfo>, Option<SourceSummary>)> {
        let (reply, answer) = oneshot::channel();
        self.requests.send(Request::Source { ip, reply }).await.ok()?;
        answer.await.ok()
    }

    /// Registers a dashboard viewer until the returned guard is dropped.
    pub fn viewer(&self, addr: IpAddr) -> ViewerGuard {
        let id = self.next_viewer.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let _ = self.requests.try_send(Request::ViewerJoined { id, addr, since_ms: now_ms() });
        ViewerGuard { id, requests: self.requests.clone() }
    }
}

/// A viewer counted while this lives.
pub struct ViewerGuard {
    id: u64,
    requests: mpsc::Sender<Request>,
}

impl Drop for ViewerGuard {
    fn drop(&mut self) {
        let request = Request::ViewerLeft { id: self.id };
        if let Err(mpsc::error::TrySendError::Full(request)) = self.requests.try_send(request) {
            // Rare: the queue is full; the leave must not be lost.
            let requests = self.requests.clone();
            tokio::spawn(async move { requests.send(request).await });
        }
    }
}

struct Viewer {
    addr: IpAddr,
    since_ms: u64,
}

pub struct Pipeline {
    config: PipelineConfig,
    aggregate: Aggregate,
    http: HttpTiming,
    viewers: HashMap<u64, Viewer>,
    /// Wall-clock start, ms since the epoch (uptime is measured against
    /// the same `now` as everything else in a snapshot).
    started_ms: u64,
    hostname: Arc<str>,
    interfaces: Arc<[AttachedInterface]>,
    /// The kernel counters of the last report, and of the one before.
    kernel: Option<KernelCounters>,
    http_kernel: Option<crate::sources::kernel::HttpReport>,
    seconds_started: bool,
    /// The current second per source, and the last complete one (alerts).
    activity: ActivityBuilder,
    last_activity: Arc<Activity>,
    /// The minute being counted, and the last one closed.
    minute: MinuteAccumulator,
    last_minute: Option<Arc<MinuteSummary>>,
    seq: u64,
    fanout: broadcast::Sender<Arc<Published>>,
    /// Events of this host's own observer (for /api/hosts).
    local_events: u64,
}

impl Pipeline {
    /// The pipeline and the handle its readers use.
    pub fn new(config: PipelineConfig) -> (Pipeline, PipelineHandle, PipelineEnds) {
        let (fanout, _) = broadcast::channel(FANOUT_QUEUE);
        let (requests, requests_rx) = mpsc::channel(REQUEST_QUEUE);
        let mut pipeline = Pipeline {
            aggregate: Aggregate::new(config.limits),
            http: HttpTiming::new(config.http_status.clone()),
            viewers: HashMap::new(),
            started_ms: now_ms(),
            hostname: Arc::from(config.hostname.as_str()),
            interfaces: Arc::from(config.interfaces.as_slice()),
            kernel: None,
            http_kernel: None,
            seconds_started: false,
            activity: ActivityBuilder::default(),
            last_activity: Arc::default(),
            minute: MinuteAccumulator::default(),
            last_minute: None,
            seq: 0,
            fanout: fanout.clone(),
            local_events: 0,
            config,
        };
        pipeline.restore(now_ms());
        let (snapshots, snapshots_rx) = watch::channel(Arc::new(pipeline.snapshot(now_ms())));
        let handle =
            PipelineHandle { snapshots: snapshots_rx, fanout, requests, next_viewer: Arc::new(AtomicU64::new(0)) };
        (pipeline, handle, PipelineEnds { requests: requests_rx, snapshots })
    }

    /// Runs until every source has stopped (`events` closed). Seconds close
    /// on each kernel report, or every second by the clock without one.
    pub async fn run(
        mut self,
        mut events: mpsc::Receiver<Batch>,
        ends: PipelineEnds,
        mut kernel: Option<mpsc::Receiver<KernelReport>>,
    ) {
        let PipelineEnds { mut requests, snapshots } = ends;
        let publish = |pipeline: &mut Pipeline| {
            snapshots.send_replace(Arc::new(pipeline.snapshot(now_ms())));
        };
        let mut clock = tokio::time::interval(Duration::from_secs(1));
        clock.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                batch = events.recv() => match batch {
                    Some(batch) => self.record(batch),
                    None => break,
                },
                Some(request) = requests.recv() => self.answer(request),
                report = next_report(&mut kernel) => match report {
                    Some(report) => {
                        self.close_second(Some(report), now_ms());
                        publish(&mut self);
                    }
                    // The kernel's owner stopped: the clock takes over.
                    None => kernel = None,
                },
                _ = clock.tick(), if kernel.is_none() => {
                    self.close_second(None, now_ms());
                    publish(&mut self);
                }
            }
        }
        // The minute in progress goes to the history store too.
        if let Some(minute) = self.minute.flush() {
            self.last_minute = Some(Arc::new(minute));
        }
        publish(&mut self);
        tracing::debug!("pipeline stopped: every source has");
    }

    /// The chart and the top-list windows from the restored minutes.
    fn restore(&mut self, now: u64) {
        let restored = std::mem::take(&mut self.config.restored);
        let series: Vec<_> = restored.minutes.iter().map(|m| (m.start_ms, m.series, m.covered)).collect();
        if !series.is_empty() {
            self.aggregate.history.restore(&series, now);
        }
        for minute in &restored.minutes {
            self.aggregate.restore_minute(minute);
        }
    }

    fn record(&mut self, batch: Batch) {
        let live = self.fanout.receiver_count() > 0;
        self.aggregate.set_geo_generation(self.config.geo.generation());
        for mut event in batch {
            let geo = self.aggregate.known_geo(&event.src).unwrap_or_else(|| self.config.geo.lookup(event.src));
            event.geo = Some(geo);
            // Sources that know another host set it; the rest are this host's.
            if event.host.is_none() {
                event.host = Some(Arc::clone(&self.hostname));
                self.local_events += 1;
            }
            tracing::trace!(class = event.class.name(), src = %event.src, origin = %event.origin.label(),
                            detail = %event.detail, weight = event.weight, "event");
            if event.response.is_some() {
                self.http.record_event(&event);
            } else {
                self.activity.record(&event);
            }
            self.minute.record(&event);
            let recorded = self.aggregate.record(event);
            // Serialized only when someone watches live.
            if live {
                if let Some(published) = Published::new(recorded) {
                    let _ = self.fanout.send(Arc::new(published));
                }
            }
        }
    }

    fn answer(&mut self, request: Request) {
        match request {
            Request::Recent { filter, limit, reply } => {
                let _ = reply.send(self.aggregate.recent_matching(&filter, limit));
            }
            Request::Source { ip, reply } => {
                let geo = self.config.geo.lookup(ip);
                let _ = reply.send((geo, self.aggregate.source(&ip).cloned()));
            }
            Request::ViewerJoined { id, addr, since_ms } => {
                self.viewers.insert(id, Viewer { addr, since_ms });
            }
            Request::ViewerLeft { id } => {
                self.viewers.remove(&id);
            }
        }
    }

    /// Closes one second: the kernel's deltas into the history, the
    /// headline, the HTTP counters.
    fn close_second(&mut self, report: Option<KernelReport>, end_ms: u64) {
        let counters = report.as_ref().and_then(|r| r.counters.clone());
        if let Some(http) = report.and_then(|r| r.http) {
            self.http.record_kernel(http.clone());
            self.http_kernel = Some(http);
        }
        // The first report (or tick) only starts the first second: history
        // holds complete seconds, so a chart shows the time before as unknown.
        if self.seconds_started {
            let (mut by_series, mut all_packets, mut all_bytes) = ([0u64; 4], 0u64, 0u64);
            let mut classes = [PacketsBytes::default(); monitor_common::class::CLASS_COUNT];
            if let (Some(now), Some(before)) = (&counters, &self.kernel) {
                for (i, (n, b)) in now.classes.iter().zip(&before.classes).enumerate() {
                    let packets = n.packets.saturating_sub(b.packets);
                    if let Some(d) = by_series.get_mut(i) {
                        *d = packets;
                    }
                    if let Some(c) = classes.get_mut(i) {
                        *c = PacketsBytes { packets, bytes: n.bytes.saturating_sub(b.bytes) };
                    }
                    all_packets += packets;
                    all_bytes += n.bytes.saturating_sub(b.bytes);
                }
            }
            self.aggregate.close_second(by_series, end_ms);
            self.aggregate.close_headline(all_packets, all_bytes, end_ms);
            if let Some(minute) = self.minute.close_second(self.aggregate.history.latest(), classes, end_ms) {
                self.last_minute = Some(Arc::new(minute));
            }
        }
        self.seconds_started = true;
        self.last_activity = Arc::new(self.activity.close(end_ms));
        if counters.is_some() {
            self.kernel = counters;
        }
    }

    /// The snapshot at `now` (ms since the epoch).
    fn snapshot(&mut self, now: u64) -> Snapshot {
        self.seq += 1;
        let agg = &self.aggregate;
        let geo = &self.config.geo;
        let kernel = self.kernel.as_ref().map(|k| KernelDoc {
            classes: ByClass(k.classes.map(|c| PacketsBytes { packets: c.packets, bytes: c.bytes })),
            pipeline: k.pipeline.clone(),
            sources_capacity: self.config.sources_capacity,
            sources_evicted_at_least: k
                .pipeline
                .source_inserted
                .saturating_sub(u64::from(self.config.sources_capacity)),
        });
        let sink = self.config.sink.read();
        let http = Arc::new(self.http.doc(HTTP_TOP_MAX));
        let stats = StatsDoc {
            schema: SCHEMA_VERSION,
            version: env!("CARGO_PKG_VERSION"),
            hostname: Arc::clone(&self.hostname),
            uptime_s: now.saturating_sub(self.started_ms) / 1000,
            interfaces: Arc::clone(&self.interfaces),
            kernel,
            events: EventCountsDoc {
                received: agg.events_total,
                accepted: sink.accepted,
                dropped_queue_full: sink.dropped_queue_full,
                malformed_records: sink.malformed_records,
                xdp_packets_by_class: ByClass(agg.xdp_event_packets),
                syslog_packets_by_class: ByClass(agg.syslog_packets),
                recent: agg.recent_doc(),
            },
            sources: SourceCountsDoc { tracked: agg.source_count(), evicted: agg.sources_evicted },
            headline: agg.headline.clone(),
            syslog: Arc::new(lock(&self.config.syslog.counters).clone()),
            geo: Arc::new(geo.status()),
            http: Arc::new(http.truncated(STATS_HTTP_TOP)),
            history: self.config.history_status.borrow().clone(),
            viewers: None,
        };
        let viewers = self
            .viewers
            .values()
            .map(|v| ViewerDoc { addr: v.addr, since_ms: v.since_ms, geo: geo.lookup(v.addr) })
            .collect();
        let totals = TopTotals {
            events: agg.events_total,
            weighted_packets: agg.xdp_event_packets.iter().chain(&agg.syslog_packets).sum(),
            counted_packets: self.kernel.as_ref().map(|k| k.classes.iter().take(4).map(|c| c.packets).sum()),
        };
        let windows = std::iter::once(None).chain(TOP_WINDOWS_MINUTES.map(Some));
        let tops = windows
            .map(|minutes| {
                let window = minutes.map(|m| (u64::from(m), now));
                TopDoc {
                    schema: SCHEMA_VERSION,
                    window_minutes: minutes,
                    sources: agg.top_sources(TOP_MAX, now, window),
                    countries: agg.top_countries(TOP_MAX, window),
                    asns: agg.top_asns(TOP_MAX, window),
                    icmp_types: agg.icmp_types(),
                    totals,
                    range: None,
                }
            })
            .collect();
        let hosts = super::hosts::doc(
            (&self.hostname, &self.interfaces, self.kernel.as_ref(), self.local_events),
            &lock(&self.config.syslog.hosts),
            now,
        );
        let latest = agg.history.latest();
        Snapshot {
            seq: self.seq,
            stats,
            viewers,
            tops,
            history: agg.history.clone(),
            http,
            rates: SERIES.iter().copied().zip(latest).collect(),
            kernel: self.kernel.clone(),
            http_kernel: self.http_kernel.clone(),
            activity: Arc::clone(&self.last_activity),
            last_minute: self.last_minute.clone(),
            hosts: Arc::new(hosts),
        }
    }
}

/// The pipeline's ends of the channels its readers use.
pub struct PipelineEnds {
    requests: mpsc::Receiver<Request>,
    snapshots: watch::Sender<Arc<Snapshot>>,
}

/// The next kernel report; never, without a kernel.
async fn next_report(kernel: &mut Option<mpsc::Receiver<KernelReport>>) -> Option<KernelReport> {
    match kernel {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// A pipeline fed with fixed events at fixed times, for tests of the
/// documents built from it (docs/api/ golden files).
#[cfg(test)]
pub(crate) mod fixture {
    use std::sync::Arc;

    use monitor_common::Class;

    use super::*;
    use crate::{
        config::PortList,
        enrich::geo::GeoConfig,
        model::{HttpInfo, Origin, ResponseInfo},
        sources::{
            kernel::testing::{event, raw},
            syslog::{Allowlist, IngestConfig},
        },
    };

    /// The end of the fixture's only complete second.
    pub(crate) const END_MS: u64 = 1_796_000_000_000;

    /// The snapshot after three sources sent ICMP, HTTPS, a syslog line and
    /// a timed HTTP response, with one viewer; and the recent events.
    pub(crate) fn snapshot() -> (Snapshot, Vec<Arc<Event>>) {
        let ports = |s: &str| s.parse::<PortList>().expect("valid ports");
        let (_, _, sink) = crate::sources::EventSink::new(1);
        let (mut pipeline, _, _) = Pipeline::new(PipelineConfig {
            limits: Limits::default(),
            hostname: "golden-host".into(),
            sources_capacity: 65_536,
            interfaces: Vec::new(),
            http_status: HttpTimingStatus::default(),
            geo: Arc::new(Geo::new(GeoConfig::default())),
            syslog: Arc::new(Ingest::new(IngestConfig {
                prefixes: Vec::new(),
                allowlist: Allowlist::new(Vec::new()),
                http_ports: ports("80"),
                https_ports: ports("443"),
                quic_ports: ports("443"),
            })),
            sink,
            restored: Restored::default(),
            history_status: watch::channel(HistoryStatusDoc {
                enabled: true,
                path: Some("/var/lib/monitor/history.db".into()),
                error: None,
                days: 30,
                max_bytes: 256 << 20,
                file_bytes: 1_187_840,
                minutes_written: 42,
                last_minute_ms: Some(END_MS - 60_000),
                restored_minutes: 60,
            })
            .1,
        });
        let at = |mut e: Event, ms: u64| {
            e.ts_ms = END_MS - 1_000 + ms;
            e
        };
        let ip = |s: &str| s.parse::<IpAddr>().expect("literal address");
        let mut ping = raw(Class::Icmp, ip("192.0.2.7"), 3, 98);
        (ping.icmp_type, ping.icmp_id, ping.icmp_seq) = (8, 4, 17);
        let mut hello = raw(Class::Https, ip("2001:db8::9"), 1, 517);
        (hello.protocol, hello.src_port, hello.dst_port) = (6, 40_000, 443);
        let mut logged = event(&raw(Class::Icmp, ip("198.51.100.3"), 1, 84));
        logged.origin =
            Origin::Syslog { sender: ip("127.0.0.1"), hostname: Some("fw1".into()), prefix: "IPT_ICMP".into() };
        let mut response = event(&raw(Class::Http, ip("192.0.2.7"), 1, 0));
        response.http = Some(HttpInfo { method: "GET".into(), target: "/x".into(), host: Some("a.test".into()) });
        response.response =
            Some(ResponseInfo { status: Some(200), status_class: "2xx", reason: "OK".into(), latency_ms: 1.25 });
        pipeline.record(vec![
            at(event(&ping), 100),
            at(event(&hello), 200),
            at(logged.described(), 300),
            at(response.described(), 400),
        ]);
        pipeline.started_ms = END_MS - 5_000;
        // An agent that reported twice and sent one event (docs/agent.md).
        {
            let mut hosts = lock(&pipeline.config.syslog.hosts);
            let mut counters = crate::model::forward::Counters {
                seq: 1,
                start_ms: END_MS - 60_000,
                ts_ms: END_MS - 5_000,
                interfaces: vec![("ens9".into(), "driver".into())],
                ..Default::default()
            };
            hosts.counters("agent-1", counters.clone(), END_MS - 4_990);
            hosts.event("agent-1", END_MS - 2_000);
            counters.seq = 2;
            counters.ts_ms = END_MS - 1_000;
            (counters.events, counters.suppressed) = (1, 6);
            counters.classes[0] = crate::model::forward::ClassTotal { packets: 7, bytes: 686 };
            hosts.counters("agent-1", counters, END_MS - 985);
        }
        pipeline.answer(Request::ViewerJoined { id: 1, addr: ip("127.0.0.1"), since_ms: END_MS - 500 });
        pipeline.close_second(None, END_MS - 1_000);
        pipeline.close_second(None, END_MS);
        let recent = pipeline.aggregate.recent_matching(&EventFilter::default(), 10);
        (pipeline.snapshot(END_MS), recent)
    }
}
