//! Delivery: each target (an Alertmanager, a webhook) has a task and a
//! bounded queue of its own, so a slow one delays no other and never the
//! engine. A post is retried a few times with a growing pause; what still
//! fails is counted and logged, and the next notification carries on.

pub mod alertmanager;
pub mod webhook;

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use thiserror::Error;
use tokio::{sync::mpsc, task::JoinHandle};

use super::doc::TargetDoc;
use crate::lock::lock;
pub use alertmanager::PostableAlert;

/// Batches waiting per target at most; more are dropped and counted.
const QUEUE: usize = 32;
/// Attempts per batch, and the pause before the first retry (doubling).
const ATTEMPTS: u32 = 3;
const RETRY_PAUSE: Duration = Duration::from_secs(1);
/// Connect and response timeout of one post.
const TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Error)]
pub enum DeliveryError {
    #[error("{flag} {url}: only http:// and https:// URLs are supported")]
    Scheme { flag: &'static str, url: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetKind {
    Alertmanager,
    Webhook,
}

impl TargetKind {
    fn name(self) -> &'static str {
        match self {
            TargetKind::Alertmanager => "alertmanager",
            TargetKind::Webhook => "webhook",
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    failed: AtomicU64,
    retries: AtomicU64,
    dropped: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// A target's sending end.
pub struct Target {
    name: String,
    kind: TargetKind,
    url: String,
    queue: mpsc::Sender<Arc<[u8]>>,
    counters: Arc<Counters>,
}

/// Every target, and their tasks.
pub struct Delivery {
    targets: Vec<Target>,
}

impl Delivery {
    /// Checks the URLs and starts one task per target.
    pub fn start(
        alertmanagers: &[String],
        webhooks: &[String],
    ) -> Result<(Delivery, Vec<JoinHandle<()>>), DeliveryError> {
        let mut targets = Vec::new();
        let mut tasks = Vec::new();
        let all = alertmanagers
            .iter()
            .map(|u| (TargetKind::Alertmanager, "--alertmanager", u))
            .chain(webhooks.iter().map(|u| (TargetKind::Webhook, "--alert-webhook", u)));
        let mut counts = [0usize; 2];
        for (kind, flag, url) in all {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(DeliveryError::Scheme { flag, url: url.clone() });
            }
            let n = &mut counts[usize::from(kind == TargetKind::Webhook)];
            *n += 1;
            let endpoint = match kind {
                TargetKind::Alertmanager => alertmanager::endpoint(url),
                TargetKind::Webhook => webhook::endpoint(url),
            };
            let (queue, rx) = mpsc::channel(QUEUE);
            let counters = Arc::new(Counters::default());
            let name = format!("{}-{n}", kind.name());
            tasks.push(tokio::spawn(run(name.clone(), endpoint.clone(), rx, Arc::clone(&counters))));
            targets.push(Target { name, kind, url: endpoint, queue, counters });
        }
        Ok((Delivery { targets }, tasks))
    }

    /// No targets (alerts only on the dashboard and in /metrics).
    pub fn none() -> Delivery {
        Delivery { targets: Vec::new() }
    }

    /// Queues `alerts` for every target; a full queue drops them (counted).
    pub fn send(&self, alerts: &[PostableAlert]) {
        if alerts.is_empty() || self.targets.is_empty() {
            return;
        }
        let body: Arc<[u8]> = match serde_json::to_vec(alerts) {
            Ok(body) => body.into(),
            Err(error) => {
                tracing::error!(%error, "cannot serialize alerts");
                return;
            }
        };
        for target in &self.targets {
            if target.queue.try_send(Arc::clone(&body)).is_err() {
                target.counters.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(target = %target.name, "alert delivery queue full: notification dropped");
            }
        }
    }

    pub fn docs(&self) -> Vec<TargetDoc> {
        self.targets
            .iter()
            .map(|t| {
                let c = &t.counters;
                TargetDoc {
                    name: t.name.clone(),
                    kind: t.kind.name(),
                    url: t.url.clone(),
                    sent: c.sent.load(Ordering::Relaxed),
                    failed: c.failed.load(Ordering::Relaxed),
                    retries: c.retries.load(Ordering::Relaxed),
                    dropped: c.dropped.load(Ordering::Relaxed),
                    last_error: lock(&c.last_error).clone(),
                }
            })
            .collect()
    }
}

/// A target's task: posts each batch, with retries, until the engine is gone.
async fn run(name: String, url: String, mut batches: mpsc::Receiver<Arc<[u8]>>, counters: Arc<Counters>) {
    let agent = ureq::AgentBuilder::new().timeout(TIMEOUT).build();
    while let Some(body) = batches.recv().await {
        let mut pause = RETRY_PAUSE;
        for attempt in 1..=ATTEMPTS {
            let (agent, to, body) = (agent.clone(), url.clone(), Arc::clone(&body));
            let result = tokio::task::spawn_blocking(move || post(&agent, &to, &body)).await;
            let error = match result {
                Ok(Ok(())) => {
                    counters.sent.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Ok(Err(error)) => error,
                Err(join) => join.to_string(),
            };
            if attempt == ATTEMPTS {
                counters.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(target = %name, %url, %error, "alert delivery failed after {ATTEMPTS} attempts");
                *lock(&counters.last_error) = Some(error);
            } else {
                counters.retries.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(target = %name, %error, "alert delivery failed; retrying");
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
        }
    }
}

fn post(agent: &ureq::Agent, url: &str, body: &[u8]) -> Result<(), String> {
    match agent.post(url).set("Content-Type", "application/json").send_bytes(body) {
        Ok(_) => Ok(()),
        Err(ureq::Error::Status(code, response)) => {
            let text = response.into_string().unwrap_or_default();
            Err(format!("HTTP {code}: {}", text.chars().take(200).collect::<String>()))
        }
        Err(error) => Err(error.to_string()),
    }
}
