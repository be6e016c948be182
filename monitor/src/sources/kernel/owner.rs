//! The one task that owns the loaded [`Observer`]: once a second it reads
//! the kernel's counters and sends them on as a [`KernelReport`]; between
//! reports it answers map queries sent to its [`KernelHandle`]. Nobody else
//! touches the kernel maps, so no lock is needed and no reader waits behind
//! a slow sweep. Dropping it at the end detaches XDP and TC.

use std::{net::IpAddr, time::Duration};

use monitor_common::maps::SourceStats;
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinHandle,
};
use tokio_util::sync::CancellationToken;

use super::{HttpKernelCounters, KernelCounters, Observer};

/// Pending HTTP requests older than this are dropped from the kernel table
/// and counted as expired (a response that late is not timed).
const HTTP_REQUEST_MAX_AGE: Duration = Duration::from_secs(120);
/// Seconds between sweeps of the pending HTTP request table.
const HTTP_SWEEP_EVERY_S: u64 = 5;

/// The kernel's counters at the end of one second.
#[derive(Clone, Debug, Default)]
pub struct KernelReport {
    /// None when reading them failed (logged).
    pub counters: Option<KernelCounters>,
    pub http: Option<HttpReport>,
}

/// HTTP timing as the kernel counted it.
#[derive(Clone, Debug, Default)]
pub struct HttpReport {
    pub counters: HttpKernelCounters,
    /// Pending requests the daemon removed as too old, since start.
    pub expired: u64,
    /// Requests pending in the kernel table at the last sweep.
    pub pending: u64,
}

enum Query {
    Source { ip: IpAddr, reply: oneshot::Sender<Option<SourceStats>> },
}

/// Asks the owner of the kernel maps; cheap to clone.
#[derive(Clone)]
pub struct KernelHandle {
    queries: mpsc::Sender<Query>,
}

impl KernelHandle {
    /// The kernel's per-source counters for `ip`; None if it has no entry,
    /// the read failed or the owner has stopped.
    pub async fn source(&self, ip: IpAddr) -> Option<SourceStats> {
        let (reply, answer) = oneshot::channel();
        self.queries.send(Query::Source { ip, reply }).await.ok()?;
        answer.await.ok().flatten()
    }
}

/// Starts the owner: a report every second into `reports` until `stop`;
/// the counters also go to the log every `log_every`.
pub fn spawn_owner(
    observer: Observer,
    reports: mpsc::Sender<KernelReport>,
    log_every: Duration,
    stop: CancellationToken,
) -> (KernelHandle, JoinHandle<()>) {
    let (queries, rx) = mpsc::channel(64);
    (KernelHandle { queries }, tokio::spawn(run(observer, reports, rx, log_every, stop)))
}

async fn run(
    mut observer: Observer,
    reports: mpsc::Sender<KernelReport>,
    mut queries: mpsc::Receiver<Query>,
    log_every: Duration,
    stop: CancellationToken,
) {
    let mut last_log = tokio::time::Instant::now();
    let timing = observer.http_timing().enabled;
    let mut http = HttpReport::default();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seconds = 0u64;
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            Some(query) = queries.recv() => match query {
                Query::Source { ip, reply } => {
                    let _ = reply.send(observer.source(ip).unwrap_or_else(|error| {
                        tracing::warn!(%error, %ip, "reading a kernel source entry failed");
                        None
                    }));
                }
            },
            _ = tick.tick() => {
                let counters = observer.counters().map_err(|error| tracing::warn!(%error, "reading kernel counters failed")).ok();
                let http = timing.then(|| read_http(&mut observer, &mut http, seconds)).flatten();
                seconds += 1;
                if let Some(c) = counters.as_ref().filter(|_| last_log.elapsed() >= log_every) {
                    last_log = tokio::time::Instant::now();
                    log_counters(c);
                }
                if reports.send(KernelReport { counters, http }).await.is_err() {
                    break;
                }
            }
        }
    }
    drop(observer);
    tracing::info!("XDP detached");
}

/// The HTTP counters now; every few seconds also expires stale requests.
fn read_http(observer: &mut Observer, http: &mut HttpReport, seconds: u64) -> Option<HttpReport> {
    if seconds.is_multiple_of(HTTP_SWEEP_EVERY_S) {
        match observer.expire_http_requests(HTTP_REQUEST_MAX_AGE.as_nanos() as u64) {
            Ok(n) => http.expired += n,
            Err(error) => tracing::warn!(%error, "expiring HTTP requests failed"),
        }
        if let Ok(n) = observer.http_pending() {
            http.pending = n;
        }
    }
    match observer.http_counters() {
        Ok(c) => http.counters = c,
        Err(error) => {
            tracing::warn!(%error, "reading HTTP timing counters failed");
            return None;
        }
    }
    Some(http.clone())
}

fn log_counters(counters: &KernelCounters) {
    use monitor_common::Class;
    let p = &counters.pipeline;
    let packets = |class: Class| counters.classes[class as usize].packets;
    tracing::info!(
        icmp = packets(Class::Icmp),
        icmpv6 = packets(Class::Icmpv6),
        http = packets(Class::Http),
        https = packets(Class::Https),
        other_v4 = packets(Class::OtherIpv4),
        other_v6 = packets(Class::OtherIpv6),
        non_ip = packets(Class::NonIp),
        malformed = packets(Class::Malformed),
        events = p.event_submitted,
        suppressed = p.suppressed_source + p.suppressed_global,
        ring_full = p.ring_full,
        "kernel counters"
    );
}
