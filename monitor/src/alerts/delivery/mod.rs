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

#[cfg(test)]
mod tests {
    use std::{
        io::{Read as _, Write as _},
        net::TcpListener,
    };

    use super::*;

    /// A receiver on loopback that answers each post with the next status.
    fn receiver(statuses: &'static [u16]) -> (String, std::thread::JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let thread = std::thread::spawn(move || {
            let mut bodies = Vec::new();
            for status in statuses {
                let (mut conn, _) = listener.accept().expect("accept");
                let mut buf = vec![0u8; 8192];
                let mut got = 0;
                // Headers, then Content-Length bytes of body.
                let body = loop {
                    got += conn.read(&mut buf[got..]).expect("read");
                    let text = String::from_utf8_lossy(&buf[..got]).to_string();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let len = head
                            .lines()
                            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(str::to_owned))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if body.len() >= len {
                            break body.to_owned();
                        }
                    }
                };
                bodies.push(body);
                let _ = write!(conn, "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            }
            bodies
        });
        (url, thread)
    }

    async fn until(delivery: &Delivery, done: impl Fn(&[TargetDoc]) -> bool) -> Vec<TargetDoc> {
        for _ in 0..100 {
            let docs = delivery.docs();
            if done(&docs) {
                return docs;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("delivery did not finish: {:?}", delivery.docs());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn retried_then_delivered_or_counted_as_failed() {
        let (url, server) = receiver(&[500, 200]);
        // A port nothing listens on: refused at once, every attempt.
        let dead = {
            let l = TcpListener::bind("127.0.0.1:0").expect("bind");
            format!("http://{}", l.local_addr().expect("addr"))
        };
        let (delivery, _tasks) = Delivery::start(&[dead], &[url]).expect("valid URLs");
        let alert = PostableAlert {
            labels: [("alertname".to_owned(), "T".to_owned())].into(),
            annotations: Default::default(),
            starts_at: crate::model::rfc3339(0),
            ends_at: crate::model::rfc3339(1),
        };
        delivery.send(&[alert]);
        let docs = until(&delivery, |d| d[0].failed == 1 && d[1].sent == 1).await;
        assert_eq!((docs[0].name.as_str(), docs[0].retries), ("alertmanager-1", 2));
        assert!(docs[0].last_error.is_some());
        assert_eq!((docs[1].name.as_str(), docs[1].retries, docs[1].failed), ("webhook-1", 1, 0));
        let bodies = server.join().expect("receiver");
        assert_eq!(bodies.len(), 2, "the same body, twice");
        assert!(bodies[1].starts_with("[{\"labels\":{\"alertname\":\"T\"}"), "{}", bodies[1]);
    }

    #[test]
    fn only_http_urls() {
        let err = Delivery::start(&[], &["file:///etc/passwd".into()]).err().expect("refused");
        assert!(err.to_string().contains("--alert-webhook file:///etc/passwd"), "{err}");
    }
}
