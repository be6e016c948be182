//! The evaluator: one task reads each new snapshot, asks every rule's
//! condition for the instances it holds for, moves each through pending →
//! firing → resolved (Prometheus's `for` semantics), hands notifications to
//! delivery, records firings and resolutions in the alert log, and
//! publishes an immutable [`AlertsDoc`] on its own `watch`.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use tokio::sync::watch;

use super::{
    condition::{Condition, Context, Hit},
    delivery::{Delivery, PostableAlert},
    doc::{AlertDoc, AlertEventDoc, AlertsDoc, RuleDoc},
    history::{OriginHistory, Origins},
    http_availability::HttpAvailability,
    icmp_flood::IcmpFlood,
    log::AlertLog,
    new_origin::NewOrigin,
    ping_sweep::PingSweep,
    pipeline::PipelineHealth,
    rules::{Rule, RuleKind},
    template,
};
use crate::{
    model::{now_ms, rfc3339, SCHEMA_VERSION},
    state::Snapshot,
};

/// A firing alert is sent again this often (Prometheus's default), and
/// told to end four intervals later unless sent again: if this daemon
/// stops, Alertmanager resolves it by itself.
pub const RESEND_MS: u64 = 60_000;
/// Instances per rule at most (sources, origins); more are counted.
const INSTANCES_MAX: usize = 1_000;
/// Firings and resolutions in the document.
const RECENT_IN_DOC: usize = 50;

struct Active {
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    value: f64,
    active_since_ms: u64,
    fired_at_ms: Option<u64>,
    sent_ms: u64,
}

struct RuleState {
    rule: Rule,
    condition: Box<dyn Condition>,
    active: HashMap<String, Active>,
    dropped: u64,
}

/// What the engine is built from.
pub struct EngineConfig {
    pub rules: Vec<Rule>,
    /// Where the rules came from, for the document.
    pub rules_source: String,
    pub origins: Box<dyn OriginHistory>,
    pub log: Box<dyn AlertLog>,
    pub delivery: Delivery,
}

pub struct AlertEngine {
    rules: Vec<RuleState>,
    rules_source: String,
    origins: Box<dyn OriginHistory>,
    log: Box<dyn AlertLog>,
    delivery: Delivery,
    started_ms: u64,
    evaluated_ms: u64,
    origins_second: u64,
}

fn condition(kind: &RuleKind) -> Box<dyn Condition> {
    match kind {
        RuleKind::IcmpFlood(p) => Box::new(IcmpFlood::new(p.clone())),
        RuleKind::PingSweep(p) => Box::new(PingSweep::new(p.clone())),
        RuleKind::NewOrigin(p) => Box::new(NewOrigin::new(p.clone())),
        RuleKind::HttpAvailability(p) => Box::new(HttpAvailability::new(p.clone())),
        RuleKind::Pipeline(p) => Box::new(PipelineHealth::new(p.clone())),
    }
}

impl AlertEngine {
    pub fn new(config: EngineConfig, started_ms: u64) -> Self {
        let rules = config
            .rules
            .into_iter()
            .map(|rule| RuleState { condition: condition(&rule.kind), rule, active: HashMap::new(), dropped: 0 })
            .collect();
        AlertEngine {
            rules,
            rules_source: config.rules_source,
            origins: config.origins,
            log: config.log,
            delivery: config.delivery,
            started_ms,
            evaluated_ms: 0,
            origins_second: 0,
        }
    }

    /// Runs until the pipeline stops publishing; each new snapshot is
    /// evaluated and a new document published.
    pub async fn run(mut self, mut snapshots: watch::Receiver<Arc<Snapshot>>, docs: watch::Sender<Arc<AlertsDoc>>) {
        docs.send_replace(Arc::new(self.doc()));
        while snapshots.changed().await.is_ok() {
            let snapshot = Arc::clone(&snapshots.borrow_and_update());
            let notifications = self.evaluate(&snapshot, now_ms());
            self.delivery.send(&notifications);
            docs.send_replace(Arc::new(self.doc()));
        }
        tracing::debug!("alert engine stopped: the pipeline has");
    }

    /// One evaluation at `now`; returns what to send.
    pub fn evaluate(&mut self, snapshot: &Snapshot, now: u64) -> Vec<PostableAlert> {
        self.evaluated_ms = now;
        if snapshot.activity.end_ms != self.origins_second {
            self.origins_second = snapshot.activity.end_ms;
            let mut origins = Origins::default();
            for s in snapshot.activity.sources.values() {
                origins.countries.extend(s.country_code().map(str::to_owned));
                origins.asns.extend(s.asn());
            }
            if !origins.countries.is_empty() || !origins.asns.is_empty() {
                self.origins.record(now, &origins);
            }
        }
        let mut out = Vec::new();
        for state in &mut self.rules {
            let mut cx = Context { now_ms: now, started_ms: self.started_ms, origins: &mut *self.origins };
            let hits = state.condition.evaluate(snapshot, &mut cx);
            step(state, hits, now, &mut *self.log, &mut out);
        }
        out
    }

    pub fn doc(&self) -> AlertsDoc {
        let mut alerts = Vec::new();
        let mut rules = Vec::new();
        for state in &self.rules {
            let firing = state.active.values().filter(|a| a.fired_at_ms.is_some()).count();
            rules.push(RuleDoc {
                alertname: state.rule.name.clone(),
                kind: state.rule.kind.name(),
                for_s: state.rule.for_.ms() as f64 / 1_000.0,
                labels: state.rule.labels.clone(),
                pending: state.active.len() - firing,
                firing,
                instances_dropped: state.dropped,
            });
            alerts.extend(state.active.values().map(|a| AlertDoc {
                alertname: state.rule.name.clone(),
                kind: state.rule.kind.name(),
                state: if a.fired_at_ms.is_some() { "firing" } else { "pending" },
                labels: a.labels.clone(),
                annotations: a.annotations.clone(),
                value: a.value,
                active_since_ms: a.active_since_ms,
                fired_at_ms: a.fired_at_ms,
            }));
        }
        alerts.sort_by(|a, b| {
            (b.state == "firing", b.active_since_ms, &a.alertname, &a.labels).cmp(&(
                a.state == "firing",
                a.active_since_ms,
                &b.alertname,
                &b.labels,
            ))
        });
        AlertsDoc {
            schema: SCHEMA_VERSION,
            rules_source: self.rules_source.clone(),
            rules,
            alerts,
            recent: self.log.recent(RECENT_IN_DOC),
            targets: self.delivery.docs(),
            evaluated_ms: self.evaluated_ms,
        }
    }
}

fn key(labels: &BTreeMap<String, String>) -> String {
    labels.iter().map(|(k, v)| format!("{k}={v}\u{1f}")).collect()
}

fn postable(a: &Active, ends_at_ms: u64) -> PostableAlert {
    PostableAlert {
        labels: a.labels.clone(),
        annotations: a.annotations.clone(),
        starts_at: rfc3339(a.fired_at_ms.unwrap_or(a.active_since_ms)),
        ends_at: rfc3339(ends_at_ms),
    }
}

fn log_entry(rule: &Rule, a: &Active, state: &'static str, at_ms: u64) -> Arc<AlertEventDoc> {
    Arc::new(AlertEventDoc { at_ms, alertname: rule.name.clone(), state, labels: a.labels.clone(), value: a.value })
}

/// Moves one rule's instances on by this evaluation's hits.
fn step(state: &mut RuleState, hits: Vec<Hit>, now: u64, log: &mut dyn AlertLog, out: &mut Vec<PostableAlert>) {
    let rule = &state.rule;
    let mut held = std::collections::HashSet::new();
    for hit in hits {
        let instance = key(&hit.labels);
        if !state.active.contains_key(&instance) && state.active.len() >= INSTANCES_MAX {
            state.dropped += 1;
            continue;
        }
        let active = state.active.entry(instance.clone()).or_insert_with(|| {
            let mut labels = rule.labels.clone();
            labels.extend(hit.labels.clone());
            labels.insert("alertname".into(), rule.name.clone());
            Active {
                labels,
                annotations: BTreeMap::new(),
                value: hit.value,
                active_since_ms: now,
                fired_at_ms: None,
                sent_ms: 0,
            }
        });
        active.value = hit.value;
        active.annotations =
            rule.annotations.iter().map(|(k, t)| (k.clone(), template::render(t, &active.labels, hit.value))).collect();
        if active.fired_at_ms.is_none() && now.saturating_sub(active.active_since_ms) >= rule.for_.ms() {
            active.fired_at_ms = Some(now);
            tracing::info!(alert = %rule.name, labels = ?active.labels, value = hit.value, "alert firing");
            log.record(log_entry(rule, active, "firing", now));
        }
        if active.fired_at_ms.is_some() && (active.sent_ms == 0 || now >= active.sent_ms + RESEND_MS) {
            active.sent_ms = now;
            out.push(postable(active, now + 4 * RESEND_MS));
        }
        held.insert(instance);
    }
    state.active.retain(|instance, active| {
        if held.contains(instance) {
            return true;
        }
        if active.fired_at_ms.is_some() {
            tracing::info!(alert = %rule.name, labels = ?active.labels, "alert resolved");
            log.record(log_entry(rule, active, "resolved", now));
            out.push(postable(active, now));
        }
        false
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::{
        delivery::Delivery,
        history::MemoryOriginHistory,
        log::MemoryAlertLog,
        rules,
        testing::{activity, snapshot_with},
    };

    #[test]
    fn pending_firing_resent_and_resolved() {
        let text = "groups:\n- name: g\n  rules:\n  - alert: Flood\n    kind: icmp_flood\n    for: 2s\n    params: {packets_per_s: 10, window: 1s}\n    labels: {severity: page}\n    annotations: {summary: '{{ $labels.source }} at {{ $value }}/s'}\n";
        let mut engine = AlertEngine::new(
            EngineConfig {
                rules: rules::parse(text, "t").expect("valid"),
                rules_source: "t".into(),
                origins: Box::new(MemoryOriginHistory::default()),
                log: Box::new(MemoryAlertLog::new(10)),
                delivery: Delivery::none(),
            },
            0,
        );
        let flood = |end: u64| snapshot_with(activity(end, &[("192.0.2.9", 50, &[])]));
        assert!(engine.evaluate(&flood(1_000), 1_000).is_empty());
        assert_eq!(engine.doc().alerts[0].state, "pending");
        assert!(engine.evaluate(&flood(2_000), 2_000).is_empty());
        let sent = engine.evaluate(&flood(3_000), 3_000);
        assert_eq!(sent.len(), 1, "fires after `for`");
        assert_eq!(sent[0].labels["alertname"], "Flood");
        assert_eq!(sent[0].labels["source"], "192.0.2.9");
        assert_eq!(sent[0].labels["severity"], "page");
        assert_eq!(sent[0].annotations["summary"], "192.0.2.9 at 50/s");
        assert_eq!(sent[0].ends_at, rfc3339(3_000 + 4 * RESEND_MS));
        assert!(engine.evaluate(&flood(4_000), 4_000).is_empty(), "not re-sent at once");
        assert_eq!(engine.evaluate(&flood(5_000), 3_000 + RESEND_MS).len(), 1, "re-sent while firing");
        let doc = engine.doc();
        assert_eq!((doc.rules[0].firing, doc.alerts[0].state), (1, "firing"));
        let quiet = snapshot_with(activity(6_000, &[]));
        let resolved = engine.evaluate(&quiet, 70_000);
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].ends_at, rfc3339(70_000));
        let doc = engine.doc();
        assert!(doc.alerts.is_empty());
        assert_eq!(doc.recent.iter().map(|e| e.state).collect::<Vec<_>>(), ["resolved", "firing"]);
    }
}
