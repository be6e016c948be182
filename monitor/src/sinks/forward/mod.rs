//! Agent mode (`--forward`): this daemon's sampled XDP events and its
//! cumulative counters, sent as syslog to a central monitor (directly or
//! through the local rsyslog). A sink like the server: it reads the
//! pipeline's live events and snapshots, never its state. Wire format:
//! `model::forward`, docs/agent.md.

mod conn;
mod queue;

use std::{path::Path, sync::Arc, time::Duration};

use thiserror::Error;
use tokio::{sync::broadcast::error::RecvError, task::JoinHandle};
use tokio_rustls::rustls::{
    self,
    pki_types::{pem::PemObject as _, CertificateDer, PrivateKeyDer},
    ClientConfig, RootCertStore,
};
use tokio_util::sync::CancellationToken;

use crate::{
    config::{ForwardScheme, ForwardTarget},
    model::{
        forward::{self, ClassTotal, Counters, Kind},
        now_ms, Origin,
    },
    state::{PipelineHandle, Snapshot},
};
use queue::{Queue, QueueCounts};

/// How long a stopping agent tries to deliver what it still holds.
const FLUSH_ON_STOP: Duration = Duration::from_secs(3);

pub struct ForwardConfig {
    pub target: ForwardTarget,
    /// Between counters messages.
    pub interval: Duration,
    /// Messages held at most.
    pub queue: usize,
    /// For tls:// targets.
    pub tls: Option<Arc<ClientConfig>>,
}

#[derive(Debug, Error)]
pub enum ForwardError {
    #[error("a tls:// forward target needs --forward-ca")]
    NoCa,
    #[error("cannot read PEM file {path}")]
    Pem {
        path: String,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("TLS client configuration")]
    Tls(#[source] rustls::Error),
}

fn pem(path: &Path) -> impl Fn(rustls::pki_types::pem::Error) -> ForwardError + '_ {
    move |source| ForwardError::Pem { path: path.display().to_string(), source }
}

/// The TLS client side: the CA to trust and an optional client certificate.
pub fn tls_config(
    target: &ForwardTarget,
    ca: Option<&Path>,
    client: Option<(&Path, &Path)>,
) -> Result<Option<Arc<ClientConfig>>, ForwardError> {
    if target.scheme != ForwardScheme::Tls {
        return Ok(None);
    }
    let ca = ca.ok_or(ForwardError::NoCa)?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).map_err(pem(ca))? {
        roots.add(cert.map_err(pem(ca))?).map_err(ForwardError::Tls)?;
    }
    let builder = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(ForwardError::Tls)?
        .with_root_certificates(roots);
    let config = match client {
        Some((cert, key)) => {
            let certs = CertificateDer::pem_file_iter(cert)
                .map_err(pem(cert))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(pem(cert))?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(pem(key))?;
            builder.with_client_auth_cert(certs, key).map_err(ForwardError::Tls)?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Some(Arc::new(config)))
}

/// Forwards until `stop` is cancelled or the pipeline ends, then sends a
/// last counters message and tries for a few seconds to deliver the rest.
pub fn spawn(config: ForwardConfig, pipeline: PipelineHandle, stop: CancellationToken) -> JoinHandle<()> {
    let mut events = pipeline.subscribe();
    tokio::spawn(async move {
        let queue = Arc::new(Queue::new(config.queue));
        let writer = tokio::spawn(conn::run(config.target.clone(), config.tls.clone(), Arc::clone(&queue)));
        let agent = Agent { start_ms: now_ms(), pid: std::process::id() };
        // The first message of a run: the central attributes the events
        // that follow to this run.
        queue.push_counters(|counts| agent.counters(&pipeline.snapshot(), counts));
        let mut tick = tokio::time::interval(config.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                event = events.recv() => match event {
                    Ok(published) => {
                        let e = &published.event;
                        // Only what this host's observer saw: events that came
                        // in over syslog are another host's to forward.
                        if matches!(e.origin, Origin::Xdp { .. }) {
                            let host = e.host.as_deref().unwrap_or("-");
                            let text = forward::event_message(e);
                            queue.push_event(forward::syslog_message(host, e.ts_ms, agent.pid, Kind::Event, &text));
                        }
                    }
                    Err(RecvError::Lagged(missed)) => queue.count_missed(missed),
                    Err(RecvError::Closed) => break,
                },
                _ = tick.tick() => queue.push_counters(|counts| agent.counters(&pipeline.snapshot(), counts)),
            }
        }
        queue.push_counters(|counts| agent.counters(&pipeline.snapshot(), counts));
        queue.close();
        let counts = queue.counts();
        if tokio::time::timeout(FLUSH_ON_STOP, writer).await.is_err() {
            tracing::warn!(target = %config.target, "forward target unreachable at shutdown; undelivered messages dropped");
        }
        tracing::info!(events = counts.events, dropped = counts.dropped, "forwarding stopped");
    })
}

struct Agent {
    start_ms: u64,
    pid: u32,
}

impl Agent {
    /// The counters message for the latest snapshot.
    fn counters(&self, snapshot: &Snapshot, counts: QueueCounts) -> String {
        let now = now_ms();
        let mut c = Counters {
            seq: counts.seq,
            start_ms: self.start_ms,
            ts_ms: now,
            events: counts.events,
            dropped: counts.dropped,
            interfaces: snapshot
                .stats
                .interfaces
                .iter()
                .map(|i| (i.name.clone(), i.mode.as_str().to_owned()))
                .collect(),
            ..Counters::default()
        };
        if let Some(k) = &snapshot.kernel {
            c.classes = k.classes.map(|v| ClassTotal { packets: v.packets, bytes: v.bytes });
            c.suppressed = k.pipeline.suppressed_source + k.pipeline.suppressed_global;
            c.ring_full = k.pipeline.ring_full;
        }
        let text = forward::counters_message(&c);
        forward::syslog_message(&snapshot.stats.hostname, now, self.pid, Kind::Counters, &text)
    }
}
