//! The running daemon: wires the kernel observer, the event pipeline and the
//! HTTP server together, and tears them down on SIGINT/SIGTERM.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, RwLock,
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use tokio::sync::{broadcast, mpsc};

use crate::{
    aggregate::{Aggregate, Limits},
    cli::Cli,
    event::{Event, EventSink, KernelEventContext, Published, SinkCounters},
    geo::{self, Geo, GeoConfig},
    http_timing::HttpTiming,
    kernel::{self, AttachedInterface, KernelConfig, KernelCounters, Observer},
    server::{self, AuthConfig, HostAllowlist},
    syslog::{self, Allowlist, Ingest, IngestConfig},
};

/// Capacity of the queue between the producers and the aggregator: most of
/// a second at the default kernel event budget. Larger backlogs wait in the
/// kernel (the ring buffer, a syslog socket's buffer), not in the daemon's
/// heap, whose high-water mark this bounds.
const PIPELINE_QUEUE: usize = 16_384;
/// Capacity of the fan-out channel to live consumers (WebSocket, NDJSON).
const FANOUT_QUEUE: usize = 16_384;

/// Everything the HTTP handlers read.
pub struct AppState {
    pub aggregate: Mutex<Aggregate>,
    pub kernel: Option<Mutex<Observer>>,
    /// Last counters read from the kernel (refreshed every second).
    pub kernel_counters: RwLock<Option<KernelCounters>>,
    /// HTTP response timing (kernel counters and response events).
    pub http: Mutex<HttpTiming>,
    pub sink: Arc<SinkCounters>,
    pub interfaces: Vec<AttachedInterface>,
    pub started: Instant,
    pub hostname: String,
    pub fanout: broadcast::Sender<Arc<Published>>,
    pub sources_capacity: u32,
    pub syslog: Arc<Ingest>,
    pub geo: Arc<Geo>,
    pub auth: AuthConfig,
    /// Names this dashboard answers to (Host, WebSocket Origin).
    pub hosts: HostAllowlist,
    /// Dashboard viewers connected over the WebSocket.
    pub viewers: Mutex<HashMap<u64, Viewer>>,
    next_viewer: AtomicU64,
    /// Top lists, rebuilt once a second rather than per viewer.
    top: RwLock<Arc<serde_json::Value>>,
    /// The WebSocket stats frames of the current second, shared by all clients.
    pub stats_frames: Mutex<Option<(std::time::Instant, [Arc<str>; 2])>>,
}

#[derive(Clone, Debug)]
pub struct Viewer {
    pub addr: IpAddr,
    pub since_ms: u64,
}

impl AppState {
    pub fn register_viewer(&self, viewer: Viewer) -> u64 {
        let id = self.next_viewer.fetch_add(1, Ordering::Relaxed);
        lock(&self.viewers).insert(id, viewer);
        id
    }

    pub fn cached_top(&self) -> Arc<serde_json::Value> {
        self.top.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    if cli.check_kernel {
        let check = kernel::KernelCheck::run(&kernel_config(&cli));
        print!("{check}");
        anyhow::ensure!(check.passed(), "a kernel program failed to load or is over the verifier budget");
        return Ok(());
    }
    let token = match &cli.auth_token_file {
        Some(path) => Some(read_token(path)?),
        None => cli.auth_token.clone().filter(|t| !t.is_empty()),
    };
    let auth = AuthConfig::new(cli.listen, token, cli.no_auth)?;
    // Configuration errors first, before anything is attached or bound.
    let tls = match (&cli.tls_cert, &cli.tls_key) {
        (Some(cert), Some(key)) => Some(server::tls::load_config(cert, key)?),
        _ => None,
    };
    // The names the dashboard answers to (Host, WebSocket Origin).
    let hosts = HostAllowlist::new(cli.listen, &cli.public_names, &cli.allowed_origins).map_err(anyhow::Error::msg)?;
    let (sink, rx, sink_counters) = EventSink::new(PIPELINE_QUEUE);
    let mut tasks = Vec::new();

    let mut observer = None;
    let mut http_status = kernel::HttpTimingStatus {
        errors: vec!["off: --no-xdp (HTTP timing needs the XDP observer)".into()],
        ..Default::default()
    };
    if !cli.no_xdp {
        let ifaces = if cli.ifaces.is_empty() { vec![kernel::default_route_interface()?] } else { cli.ifaces.clone() };
        let mut obs = Observer::load(&kernel_config(&cli))?;
        obs.attach(&ifaces, cli.xdp_mode, cli.netns.as_deref())?;
        if cli.no_http_timing {
            obs.disable_http_timing("off: --no-http-timing");
        } else {
            obs.attach_http_timing(cli.netns.as_deref());
        }
        http_status = obs.http_timing().clone();
        let context = Arc::new(KernelEventContext::new(obs.interfaces().iter().map(|i| (i.ifindex, i.name.clone()))));
        let ring = obs.take_events()?;
        tasks.extend(
            kernel::spawn_packet_reader(&mut obs, ring, context.clone(), sink.clone())
                .context("watching the event ring buffer")?,
        );
        if http_status.enabled {
            let ring = obs.take_http_events()?;
            tasks.push(
                kernel::spawn_ring_reader(ring, kernel::RingKind::HttpResponses, context, sink.clone())
                    .context("watching the HTTP response ring buffer")?,
            );
        }
        match kernel::spawn_kernel_log(&mut obs) {
            Ok(task) => tasks.push(task),
            Err(error) => tracing::warn!(%error, "kernel diagnostics unavailable; counting is unaffected"),
        }
        observer = Some(obs);
    }

    let ingest = Arc::new(Ingest::new(ingest_config(&cli)));
    for addr in cli.syslog_udp.iter().flatten() {
        let task = syslog::spawn_udp_listener(*addr, cli.syslog_rcvbuf as usize, ingest.clone(), sink.clone())
            .with_context(|| format!("cannot receive syslog on UDP {addr} (--syslog-udp)"))?;
        tasks.push(task);
    }
    for addr in cli.syslog_tcp.iter().flatten() {
        let task = syslog::spawn_tcp_listener(*addr, ingest.clone(), sink.clone())
            .await
            .with_context(|| format!("cannot receive syslog on TCP {addr} (--syslog-tcp)"))?;
        tasks.push(task);
    }

    let geo = Arc::new(Geo::new(GeoConfig {
        city: without_none(&cli.geo_city),
        asn: without_none(&cli.geo_asn),
        cache_entries: cli.geo_cache as usize,
    }));
    {
        let geo = geo.clone();
        tokio::task::spawn_blocking(move || geo.reload());
    }
    tasks.push(tokio::spawn(geo::watch(geo.clone())));

    let (fanout, _) = broadcast::channel(FANOUT_QUEUE);
    let state = Arc::new(AppState {
        aggregate: Mutex::new(Aggregate::new(Limits::default())),
        interfaces: observer.as_ref().map(|o| o.interfaces().to_vec()).unwrap_or_default(),
        kernel: observer.map(Mutex::new),
        kernel_counters: RwLock::new(None),
        http: Mutex::new(HttpTiming::new(http_status)),
        sink: sink_counters,
        started: Instant::now(),
        hostname: hostname(),
        fanout,
        sources_capacity: cli.sources_max,
        syslog: ingest,
        geo,
        auth,
        hosts,
        viewers: Mutex::new(HashMap::new()),
        next_viewer: AtomicU64::new(0),
        top: RwLock::new(Arc::new(serde_json::Value::Null)),
        stats_frames: Mutex::new(None),
    });
    *state.top.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(server::top_json(&state));

    tasks.push(tokio::spawn(aggregate_events(rx, state.clone())));
    tasks.push(tokio::spawn(every_second(state.clone(), cli.stats_interval)));

    let listener = tokio::net::TcpListener::bind(cli.listen)
        .await
        .with_context(|| format!("cannot listen on {} (--listen)", cli.listen))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(url = %format!("{scheme}://{}/", cli.listen), "dashboard and API listening");
    let app = server::router(state.clone());
    drop(sink);
    let max_connections = server::conn::connection_limit();
    let tls = tls.map(|config| tokio_rustls::TlsAcceptor::from(Arc::new(config)));
    server::conn::serve(listener, tls, app, max_connections, shutdown_signal()).await;

    for task in tasks {
        task.abort();
    }
    // Dropping the observer closes the bpf_link fds: XDP is detached.
    let had_xdp = state.kernel.is_some();
    drop(state);
    if had_xdp {
        tracing::info!("stopped; XDP detached");
    } else {
        tracing::info!("stopped");
    }
    Ok(())
}

fn kernel_config(cli: &Cli) -> KernelConfig {
    KernelConfig {
        http_ports: cli.http_ports.clone(),
        https_ports: cli.https_ports.clone(),
        quic_ports: cli.quic_ports.clone(),
        sources_max: cli.sources_max,
        ring_bytes: cli.ring_bytes,
        events_per_sec: cli.events_per_sec,
        events_per_source: cli.events_per_source,
        events_enabled: !cli.no_events,
        http_requests_max: cli.http_requests_max,
    }
}

fn ingest_config(cli: &Cli) -> IngestConfig {
    let allowlist =
        if cli.syslog_allow.is_empty() { Allowlist::local_default() } else { Allowlist::new(cli.syslog_allow.clone()) };
    IngestConfig {
        prefixes: cli.syslog_prefixes.clone(),
        allowlist,
        http_ports: cli.http_ports.clone(),
        https_ports: cli.https_ports.clone(),
        quic_ports: cli.quic_ports.clone(),
    }
}

fn without_none(paths: &[std::path::PathBuf]) -> Vec<std::path::PathBuf> {
    paths.iter().filter(|p| p.as_os_str() != "none").cloned().collect()
}

async fn aggregate_events(mut rx: mpsc::Receiver<Event>, state: Arc<AppState>) {
    while let Some(mut event) = rx.recv().await {
        event.geo = Some(state.geo.lookup(event.src));
        tracing::debug!(class = event.class.name(), src = %event.src, origin = %event.origin.label(),
                        detail = %event.detail, weight = event.weight, "event");
        if event.response.is_some() {
            lock(&state.http).record_event(&event);
        }
        let recorded = lock(&state.aggregate).record(event);
        // Serialized only when someone watches live; no receivers is fine.
        if state.fanout.receiver_count() > 0 {
            if let Some(published) = Published::new(recorded) {
                let _ = state.fanout.send(Arc::new(published));
            }
        }
    }
}

fn read_kernel_counters(state: &AppState) -> Option<KernelCounters> {
    state.kernel.as_ref().and_then(|kernel| match lock(kernel).counters() {
        Ok(c) => Some(c),
        Err(error) => {
            tracing::warn!(%error, "reading kernel counters failed");
            None
        }
    })
}

/// Once a second: refresh the kernel counters, close a second of history,
/// rebuild the top lists; log the counters every `log_every`.
async fn every_second(state: Arc<AppState>, log_every: Duration) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_log = Instant::now();
    // The first tick is immediate: it starts the first second (history holds
    // complete seconds only, so a chart shows the time before as unknown).
    tick.tick().await;
    let mut previous = read_kernel_counters(&state);
    if let Some(c) = &previous {
        *state.kernel_counters.write().unwrap_or_else(|e| e.into_inner()) = Some(c.clone());
    }
    let mut seconds = 0u64;
    loop {
        tick.tick().await;
        let counters = read_kernel_counters(&state);
        let mut delta = [0u64; 4];
        let (mut all_packets, mut all_bytes) = (0u64, 0u64);
        if let (Some(now), Some(before)) = (&counters, &previous) {
            for (i, d) in delta.iter_mut().enumerate() {
                *d = now.classes[i].packets.saturating_sub(before.classes[i].packets);
            }
            for (n, b) in now.classes.iter().zip(&before.classes) {
                all_packets += n.packets.saturating_sub(b.packets);
                all_bytes += n.bytes.saturating_sub(b.bytes);
            }
        }
        {
            let end_ms = crate::event::now_ms();
            let mut agg = lock(&state.aggregate);
            agg.close_second(delta, end_ms);
            agg.close_headline(all_packets, all_bytes, end_ms);
        }
        refresh_http(&state, &mut seconds);
        *state.top.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(server::top_json(&state));
        if let Some(c) = &counters {
            if last_log.elapsed() >= log_every {
                last_log = Instant::now();
                log_counters(c);
            }
            *state.kernel_counters.write().unwrap_or_else(|e| e.into_inner()) = Some(c.clone());
        }
        if counters.is_some() {
            previous = counters;
        }
    }
}

/// Pending requests older than this are dropped from the kernel table and
/// counted as expired (a response that late is not timed).
const HTTP_REQUEST_MAX_AGE: Duration = Duration::from_secs(120);

/// Reads the HTTP timing counters; every 5 s also expires stale requests.
fn refresh_http(state: &AppState, seconds: &mut u64) {
    let Some(kernel) = &state.kernel else { return };
    if !lock(&state.http).status.enabled {
        return;
    }
    *seconds += 1;
    let mut obs = lock(kernel);
    let (mut expired, mut pending) = (None, None);
    if seconds.is_multiple_of(5) {
        match obs.expire_http_requests(HTTP_REQUEST_MAX_AGE.as_nanos() as u64) {
            Ok(n) => expired = Some(n),
            Err(error) => tracing::warn!(%error, "expiring HTTP requests failed"),
        }
        pending = obs.http_pending().ok();
    }
    let counters = obs.http_counters();
    drop(obs);
    let mut http = lock(&state.http);
    if let Some(n) = expired {
        http.expired += n;
    }
    if let Some(n) = pending {
        http.pending = n;
    }
    match counters {
        Ok(c) => http.record_kernel(c),
        Err(error) => tracing::warn!(%error, "reading HTTP timing counters failed"),
    }
}

fn log_counters(counters: &KernelCounters) {
    let p = &counters.pipeline;
    let c = &counters.classes;
    tracing::info!(
        icmp = c[0].packets,
        icmpv6 = c[1].packets,
        http = c[2].packets,
        https = c[3].packets,
        other_v4 = c[4].packets,
        other_v6 = c[5].packets,
        non_ip = c[6].packets,
        malformed = c[7].packets,
        events = p.event_submitted,
        suppressed = p.suppressed_source + p.suppressed_global,
        ring_full = p.ring_full,
        "kernel counters"
    );
}

fn read_token(path: &std::path::Path) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read --auth-token-file {}", path.display()))?;
    let token = text.lines().next().unwrap_or("").trim().to_owned();
    anyhow::ensure!(!token.is_empty(), "--auth-token-file {} is empty", path.display());
    Ok(token)
}

/// Locks a mutex, recovering from poisoning: a panicked reader must not take
/// the whole daemon down with it.
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(error) => {
            tracing::warn!(%error, "cannot watch SIGTERM; stop with SIGINT");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
    }
}
