//! The running daemon: one function that wires the stages (sources →
//! pipeline → sinks) and stops them in that order on SIGINT/SIGTERM.

use std::sync::Arc;

use anyhow::Context as _;
use tokio::{sync::mpsc, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use crate::{
    alerts::{self, AlertEngine, AlertsHandle, EngineConfig},
    config::Cli,
    enrich::geo::{self, Geo, GeoConfig},
    history::{self, HistoryConfig, Retention},
    sinks::{
        forward::{self, ForwardConfig},
        server::{self, AuthConfig, HostAllowlist, ServerState},
    },
    sources::{
        kernel::{self, KernelConfig, KernelEventContext, Observer},
        syslog::{self, Allowlist, Ingest, IngestConfig},
        EventSink, MAX_BATCH,
    },
    state::{documents::HistoryStatusDoc, Limits, Pipeline, PipelineConfig, Restored},
};

/// Capacity of the queue between the sources and the pipeline, in events:
/// most of a second at the default kernel event budget. Larger backlogs
/// wait in the kernel (the ring buffer, a syslog socket's buffer), not in
/// the daemon's heap, whose high-water mark this bounds.
const PIPELINE_QUEUE_EVENTS: usize = 16_384;

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    if cli.check_kernel {
        let check = kernel::KernelCheck::run(&kernel_config(&cli));
        print!("{check}");
        anyhow::ensure!(check.passed(), "a kernel program failed to load or is over the verifier budget");
        return Ok(());
    }
    // Configuration errors first, before anything is attached or bound.
    let token = match &cli.auth_token_file {
        Some(path) => Some(read_token(path)?),
        None => cli.auth_token.clone().filter(|t| !t.is_empty()),
    };
    let auth = AuthConfig::new(cli.listen, token, cli.no_auth)?;
    let tls = match (&cli.tls_cert, &cli.tls_key) {
        (Some(cert), Some(key)) => Some(server::tls::load_config(cert, key)?),
        _ => None,
    };
    let hosts = HostAllowlist::new(cli.listen, &cli.public_names, &cli.allowed_origins).map_err(anyhow::Error::msg)?;
    let alert_rules = load_alert_rules(&cli)?;
    let forward_tls = match &cli.forward {
        Some(target) => forward::tls_config(
            target,
            cli.forward_ca.as_deref(),
            cli.forward_cert.as_deref().zip(cli.forward_key.as_deref()),
        )
        .context("--forward")?,
        None => None,
    };
    let syslog_tls = match (&cli.syslog_tls_cert, &cli.syslog_tls_key) {
        (Some(cert), Some(key)) => Some(
            syslog::server_config(cert, key, cli.syslog_tls_client_ca.as_deref())
                .context("--syslog-tls-cert/--syslog-tls-key/--syslog-tls-client-ca")?,
        ),
        _ => None,
    };

    // Sources: they stop when `sources_stop` is cancelled.
    let sources_stop = CancellationToken::new();
    let (sink, events, sink_counters) = EventSink::new(PIPELINE_QUEUE_EVENTS / MAX_BATCH);
    let mut sources: Vec<JoinHandle<()>> = Vec::new();
    let mut kernel_side = None;
    let mut http_status = kernel::HttpTimingStatus {
        errors: vec!["off: --no-xdp (HTTP timing needs the XDP observer)".into()],
        ..Default::default()
    };
    let mut interfaces = Vec::new();
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
        interfaces = obs.interfaces().to_vec();
        let context = Arc::new(KernelEventContext::new(obs.interfaces().iter().map(|i| (i.ifindex, i.name.clone()))));
        let ring = obs.take_events()?;
        sources.extend(
            kernel::spawn_packet_reader(&mut obs, ring, Arc::clone(&context), sink.clone(), sources_stop.clone())
                .context("watching the event ring buffer")?,
        );
        if http_status.enabled {
            let ring = obs.take_http_events()?;
            sources.push(
                kernel::spawn_ring_reader(
                    ring,
                    kernel::RingKind::HttpResponses,
                    context,
                    sink.clone(),
                    sources_stop.clone(),
                )
                .context("watching the HTTP response ring buffer")?,
            );
        }
        match kernel::spawn_kernel_log(&mut obs, sources_stop.clone()) {
            Ok(task) => sources.push(task),
            Err(error) => tracing::warn!(%error, "kernel diagnostics unavailable; counting is unaffected"),
        }
        let (reports, reports_rx) = mpsc::channel(4);
        let (handle, task) = kernel::spawn_owner(obs, reports, cli.stats_interval, sources_stop.clone());
        sources.push(task);
        kernel_side = Some((handle, reports_rx));
    }

    let ingest = Arc::new(Ingest::new(ingest_config(&cli)));
    for addr in cli.syslog_udp.iter().flatten() {
        let task = syslog::spawn_udp_listener(
            *addr,
            cli.syslog_rcvbuf as usize,
            Arc::clone(&ingest),
            sink.clone(),
            sources_stop.clone(),
        )
        .with_context(|| format!("cannot receive syslog on UDP {addr} (--syslog-udp)"))?;
        sources.push(task);
    }
    for addr in cli.syslog_tcp.iter().flatten() {
        let task = syslog::spawn_tcp_listener(*addr, Arc::clone(&ingest), sink.clone(), sources_stop.clone())
            .await
            .with_context(|| format!("cannot receive syslog on TCP {addr} (--syslog-tcp)"))?;
        sources.push(task);
    }
    if let (Some(addr), Some(config)) = (cli.syslog_tls, syslog_tls) {
        let check_hosts = cli.syslog_tls_client_ca.is_some();
        let task = syslog::spawn_tls_listener(
            addr,
            config,
            check_hosts,
            Arc::clone(&ingest),
            sink.clone(),
            sources_stop.clone(),
        )
        .await
        .with_context(|| format!("cannot receive syslog on TLS {addr} (--syslog-tls)"))?;
        sources.push(task);
    }
    // The sources hold the only senders: the pipeline ends when they all have.
    drop(sink);

    // Enrichment: loads in the background, reloads on SIGHUP or a new file.
    let geo = Arc::new(Geo::new(GeoConfig {
        city: without_none(&cli.geo_city),
        asn: without_none(&cli.geo_asn),
        cache_entries: cli.geo_cache as usize,
    }));
    {
        let geo = Arc::clone(&geo);
        tokio::task::spawn_blocking(move || geo.reload());
    }
    let geo_stop = CancellationToken::new();
    let geo_watch = tokio::spawn(geo::watch(Arc::clone(&geo), geo_stop.clone()));

    // History: the last hour back before the pipeline starts; a store that
    // cannot open leaves the daemon running without it.
    let (history, history_status) = open_history(&cli);
    let (history_status_tx, history_status_rx) = tokio::sync::watch::channel(history_status);
    let (history_store, restored, history_reader) = match history {
        Some(h) => (Some(h.store), h.restored, Some(h.reader)),
        None => (None, Restored::default(), None),
    };

    // State: one task owns it.
    let (kernel_handle, kernel_reports) = kernel_side.unzip();
    let (pipeline, handle, ends) = Pipeline::new(PipelineConfig {
        limits: Limits {
            recent_events: cli.recent_events as usize,
            recent_max_age_ms: u64::from(cli.recent_minutes) * 60_000,
            ..Limits::default()
        },
        hostname: cli.hostname.clone().filter(|h| !h.is_empty()).unwrap_or_else(hostname),
        sources_capacity: cli.sources_max,
        interfaces,
        http_status,
        geo,
        syslog: ingest,
        sink: sink_counters,
        restored,
        history_status: history_status_rx,
    });
    let snapshots = handle.snapshots();
    let (history_writer, alert_recorder) =
        history_store.map(|store| history::spawn_writer(store, handle.snapshots(), history_status_tx)).unzip();
    let pipeline = tokio::spawn(pipeline.run(events, ends, kernel_reports));

    // Alerts: the engine reads each snapshot; it stops when the pipeline has.
    // With history on, new_origin rules also know what the store saw, and
    // every alert's changes are kept there.
    let stored = history_reader.clone().zip(alert_recorder);
    let (alerts_handle, alerts_tasks) = start_alerts(&cli, alert_rules, snapshots, stored)?;

    // Sinks: the server reads the pipeline's snapshots.
    let listener = tokio::net::TcpListener::bind(cli.listen)
        .await
        .with_context(|| format!("cannot listen on {} (--listen)", cli.listen))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(url = %format!("{scheme}://{}/", cli.listen), "dashboard and API listening");
    let sinks_stop = CancellationToken::new();
    let forwarding = cli.forward.clone().map(|target| {
        let config = ForwardConfig {
            target,
            interval: cli.forward_interval,
            queue: cli.forward_queue as usize,
            tls: forward_tls,
        };
        forward::spawn(config, handle.clone(), sinks_stop.clone())
    });
    let app = server::router(Arc::new(ServerState {
        pipeline: handle,
        kernel: kernel_handle,
        alerts: alerts_handle,
        history: history_reader,
        auth,
        hosts,
    }));
    let tls = tls.map(|config| tokio_rustls::TlsAcceptor::from(Arc::new(config)));
    let serving = tokio::spawn(server::conn::serve(
        listener,
        tls,
        app,
        server::conn::connection_limit(),
        sinks_stop.clone().cancelled_owned(),
    ));

    shutdown_signal().await;
    // Sources first (XDP detaches with the kernel's owner), then the
    // pipeline drains what they sent, then the sinks stop serving.
    sources_stop.cancel();
    for task in sources {
        let _ = task.await;
    }
    let _ = pipeline.await;
    // Notifications already queued get a moment to leave, not more.
    let _ = tokio::time::timeout(ALERTS_DRAIN, futures_util::future::join_all(alerts_tasks)).await;
    // The pipeline's last snapshot carries the minute in progress.
    if let Some(writer) = history_writer {
        let _ = writer.await;
    }
    sinks_stop.cancel();
    let _ = serving.await;
    if let Some(forwarding) = forwarding {
        let _ = forwarding.await;
    }
    geo_stop.cancel();
    let _ = geo_watch.await;
    tracing::info!("stopped");
    Ok(())
}

/// How long a stopping daemon waits for queued alert notifications.
const ALERTS_DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

/// The rules file's rules (the shipped ones without a file; none for "none").
fn load_alert_rules(cli: &Cli) -> anyhow::Result<Option<(Vec<alerts::Rule>, String)>> {
    match cli.alert_rules.as_deref() {
        Some(path) if path.as_os_str() == "none" => Ok(None),
        Some(path) => Ok(Some((alerts::rules::load(Some(path))?, path.display().to_string()))),
        None => Ok(Some((alerts::rules::load(None)?, alerts::rules::DEFAULT_RULES_NAME.to_owned()))),
    }
}

/// The alert engine and its delivery tasks, reading `snapshots`; with the
/// history store's reader and alert recorder when history is on.
fn start_alerts(
    cli: &Cli,
    rules: Option<(Vec<alerts::Rule>, String)>,
    snapshots: tokio::sync::watch::Receiver<Arc<crate::state::Snapshot>>,
    stored: Option<(history::HistoryReader, history::AlertRecorder)>,
) -> anyhow::Result<(AlertsHandle, Vec<JoinHandle<()>>)> {
    let Some((rules, source)) = rules else {
        return Ok((AlertsHandle::channel("none (--alert-rules none)").1, Vec::new()));
    };
    let (delivery, mut tasks) = alerts::delivery::Delivery::start(&cli.alertmanagers, &cli.alert_webhooks)?;
    tracing::info!(rules = rules.len(), from = %source, targets = cli.alertmanagers.len() + cli.alert_webhooks.len(),
                   "alert rules loaded");
    let (docs, handle) = AlertsHandle::channel(&source);
    let engine = AlertEngine::new(
        EngineConfig {
            rules,
            rules_source: source,
            origins: match &stored {
                Some((reader, _)) => Box::new(StoredOrigins { reader: reader.clone(), run: Default::default() }),
                None => Box::new(alerts::MemoryOriginHistory::default()),
            },
            log: {
                let memory = alerts::MemoryAlertLog::new(alerts::ALERT_LOG_ENTRIES);
                match stored {
                    Some((_, recorder)) => Box::new(StoredAlertLog { memory, recorder }),
                    None => Box::new(memory),
                }
            },
            delivery,
        },
        crate::model::now_ms(),
    );
    tasks.insert(0, tokio::spawn(engine.run(snapshots, docs)));
    Ok((handle, tasks))
}

/// Origins for new_origin rules: what the history store saw, and what this
/// run has seen (the store learns the current minute only when it closes).
struct StoredOrigins {
    reader: history::HistoryReader,
    run: alerts::MemoryOriginHistory,
}

impl alerts::OriginHistory for StoredOrigins {
    fn seen_since(&self, since_ms: u64) -> alerts::Origins {
        let mut origins = self.run.seen_since(since_ms);
        // Called rarely (a rule's start, then it keeps its own record): a
        // short wait on the store's reader thread is fine.
        let reader = self.reader.clone();
        let stored = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(reader.origins_seen_since(since_ms))
        });
        match stored {
            Ok((countries, asns)) => {
                origins.countries.extend(countries);
                origins.asns.extend(asns);
            }
            Err(error) => tracing::warn!(%error, "reading past origins from history failed; this run's only"),
        }
        origins
    }

    fn record(&mut self, at_ms: u64, origins: &alerts::Origins) {
        self.run.record(at_ms, origins);
    }
}

/// The alert log in memory for /api/alerts, and every change in the store.
struct StoredAlertLog {
    memory: alerts::MemoryAlertLog,
    recorder: history::AlertRecorder,
}

impl alerts::AlertLog for StoredAlertLog {
    fn record(&mut self, entry: Arc<alerts::doc::AlertEventDoc>) {
        let record = history::AlertRecord {
            name: entry.alertname.clone(),
            labels: serde_json::to_string(&entry.labels).unwrap_or_default(),
            state: entry.state.to_owned(),
            starts_ms: entry.at_ms,
            ends_ms: (entry.state == "resolved").then_some(entry.at_ms),
        };
        if let Err(error) = self.recorder.record(record) {
            tracing::warn!(%error, alert = %entry.alertname, "alert not kept in history");
        }
        self.memory.record(entry);
    }

    fn recent(&self, n: usize) -> Vec<Arc<alerts::doc::AlertEventDoc>> {
        self.memory.recent(n)
    }
}

/// The history store as the command line asks, and its status; an error
/// is logged and shown in /api/stats, and the daemon runs on without it.
fn open_history(cli: &Cli) -> (Option<history::Opened>, HistoryStatusDoc) {
    let mut status = HistoryStatusDoc {
        path: Some(cli.history_path.display().to_string()),
        days: cli.history_days,
        max_bytes: cli.history_max_bytes,
        ..HistoryStatusDoc::default()
    };
    if cli.no_history {
        status.error = Some("off: --no-history".into());
        tracing::info!("history is off (--no-history)");
        return (None, status);
    }
    let config = HistoryConfig {
        path: cli.history_path.clone(),
        retention: Retention { days: cli.history_days, max_bytes: cli.history_max_bytes },
    };
    match history::open(&config) {
        Ok(opened) => {
            let status = opened.status();
            tracing::info!(path = %cli.history_path.display(), restored_minutes = status.restored_minutes,
                           "history on");
            (Some(opened), status)
        }
        Err(error) => {
            let message = history::error_chain(&error);
            tracing::error!(error = %message, "history is off; the daemon runs on without it");
            status.error = Some(message);
            (None, status)
        }
    }
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

fn read_token(path: &std::path::Path) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read --auth-token-file {}", path.display()))?;
    let token = text.lines().next().unwrap_or("").trim().to_owned();
    anyhow::ensure!(!token.is_empty(), "--auth-token-file {} is empty", path.display());
    Ok(token)
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
