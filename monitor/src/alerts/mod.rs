//! Alerts: rules over the snapshots the state publishes (a layer between
//! state and sinks). One task, the [`engine`](engine::AlertEngine), reads
//! each new snapshot, evaluates the rules of the rules file
//! (`--alert-rules`, or the shipped `docs/alert-rules.yaml`), sends
//! notifications to Alertmanager and webhooks, and publishes an immutable
//! [`AlertsDoc`] that the server reads without a lock.
//!
//! One file per rule kind; what a kind needs of the past (origins seen,
//! the alert history) is behind a trait with an in-memory implementation,
//! so a history store can take its place.

pub mod condition;
pub mod delivery;
pub mod doc;
pub mod duration;
pub mod engine;
pub mod history;
pub mod http_availability;
pub mod icmp_flood;
pub mod log;
pub mod new_origin;
pub mod ping_sweep;
pub mod pipeline;
pub mod rules;
pub mod template;
#[cfg(test)]
pub(crate) mod testing;

use std::sync::Arc;

use tokio::sync::watch;

pub use doc::AlertsDoc;
pub use engine::{AlertEngine, EngineConfig};
pub use history::{MemoryOriginHistory, OriginHistory, Origins};
pub use log::{AlertLog, MemoryAlertLog};
pub use rules::{Rule, RulesError};

/// Firings and resolutions the in-memory log keeps.
pub const ALERT_LOG_ENTRIES: usize = 1_000;

/// The readers' side: the latest alerts document.
#[derive(Clone)]
pub struct AlertsHandle {
    docs: watch::Receiver<Arc<AlertsDoc>>,
}

impl AlertsHandle {
    /// A channel for the engine's documents, and the handle that reads them.
    pub fn channel(rules_source: &str) -> (watch::Sender<Arc<AlertsDoc>>, AlertsHandle) {
        let empty = AlertsDoc {
            schema: crate::model::SCHEMA_VERSION,
            rules_source: rules_source.to_owned(),
            rules: Vec::new(),
            alerts: Vec::new(),
            recent: Vec::new(),
            targets: Vec::new(),
            evaluated_ms: 0,
        };
        let (tx, docs) = watch::channel(Arc::new(empty));
        (tx, AlertsHandle { docs })
    }

    pub fn doc(&self) -> Arc<AlertsDoc> {
        Arc::clone(&self.docs.borrow())
    }
}
