//! `/api/alerts`: the rules, the alerts pending and firing, the newest
//! firings and resolutions, and how delivery is going. Published by the
//! engine as an immutable document on its own `watch`.

use std::{collections::BTreeMap, sync::Arc};

use serde::Serialize;

/// An alert pending (its condition holds, not yet for `for`) or firing.
#[derive(Clone, Debug, Serialize)]
pub struct AlertDoc {
    pub alertname: String,
    pub kind: &'static str,
    /// `pending` or `firing`.
    pub state: &'static str,
    /// Every label: `alertname`, the instance's, the rule's.
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// The condition's latest value (packets/s, destinations, a ratio...).
    pub value: f64,
    pub active_since_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fired_at_ms: Option<u64>,
}

/// A firing or a resolution, for the history.
#[derive(Clone, Debug, Serialize)]
pub struct AlertEventDoc {
    pub at_ms: u64,
    pub alertname: String,
    /// `firing` or `resolved`.
    pub state: &'static str,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A rule as loaded.
#[derive(Clone, Debug, Serialize)]
pub struct RuleDoc {
    pub alertname: String,
    pub kind: &'static str,
    pub for_s: f64,
    pub labels: BTreeMap<String, String>,
    pub pending: usize,
    pub firing: usize,
    /// Instances not followed because the rule had too many already.
    pub instances_dropped: u64,
}

/// A delivery target and its counts.
#[derive(Clone, Debug, Serialize)]
pub struct TargetDoc {
    /// `alertmanager-1`, `webhook-1`: the `target` label in /metrics.
    pub name: String,
    pub kind: &'static str,
    pub url: String,
    /// Posts that succeeded, that failed after every retry, retries, and
    /// batches dropped because the target's queue was full.
    pub sent: u64,
    pub failed: u64,
    pub retries: u64,
    pub dropped: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// `/api/alerts`.
#[derive(Clone, Debug, Serialize)]
pub struct AlertsDoc {
    pub schema: u32,
    /// Where the rules came from: a path, or the shipped defaults.
    pub rules_source: String,
    pub rules: Vec<RuleDoc>,
    /// Firing first, then pending; newest first within each.
    pub alerts: Vec<AlertDoc>,
    /// The newest firings and resolutions, newest first.
    pub recent: Vec<Arc<AlertEventDoc>>,
    pub targets: Vec<TargetDoc>,
    /// When the engine last evaluated (ms since the epoch; 0: not yet).
    pub evaluated_ms: u64,
}
