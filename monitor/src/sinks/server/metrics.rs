//! Prometheus text exposition. Labels are fixed sets (classes, outcomes,
//! reasons the code defines), never addresses: cardinality stays bounded.
//! The one open label, `host`, is capped at METRICS_HOSTS hosts.

use std::{fmt::Write as _, sync::Arc};

use axum::{extract::State, http::header, response::IntoResponse};
use monitor_common::Class;

use super::ServerState;
use crate::{alerts::AlertsDoc, model::STATUS_CLASS_NAMES, state::Snapshot};

pub(super) async fn metrics(State(state): State<Arc<ServerState>>) -> impl IntoResponse {
    let snapshot = state.pipeline.snapshot();
    let mut out = String::new();
    if let Some(k) = &snapshot.kernel {
        family(&mut out, "monitor_xdp_packets_total", "counter", "Packets seen by the XDP observer, by class.");
        for (c, v) in Class::ALL.iter().zip(k.classes.iter()) {
            let _ = writeln!(out, "monitor_xdp_packets_total{{class=\"{}\"}} {}", c.name(), v.packets);
        }
        family(&mut out, "monitor_xdp_bytes_total", "counter", "Bytes seen by the XDP observer, by class.");
        for (c, v) in Class::ALL.iter().zip(k.classes.iter()) {
            let _ = writeln!(out, "monitor_xdp_bytes_total{{class=\"{}\"}} {}", c.name(), v.bytes);
        }
        let p = &k.pipeline;
        family(&mut out, "monitor_xdp_events_total", "counter",
            "Fate of packets eligible to become events: submitted, suppressed by sampling, or lost to a full ring buffer.");
        for (outcome, n) in [
            ("submitted", p.event_submitted),
            ("suppressed_source", p.suppressed_source),
            ("suppressed_global", p.suppressed_global),
            ("ring_full", p.ring_full),
        ] {
            let _ = writeln!(out, "monitor_xdp_events_total{{outcome=\"{outcome}\"}} {n}");
        }
        family(
            &mut out,
            "monitor_xdp_sources_inserted_total",
            "counter",
            "New entries in the kernel per-source table.",
        );
        let _ = writeln!(out, "monitor_xdp_sources_inserted_total {}", p.source_inserted);
    }
    http_metrics(&mut out, &snapshot);
    let stats = &snapshot.stats;
    family(&mut out, "monitor_events_received_total", "counter", "Events that reached the daemon's aggregator.");
    let _ = writeln!(out, "monitor_events_received_total {}", stats.events.received);
    family(
        &mut out,
        "monitor_pipeline_dropped_total",
        "counter",
        "Events the daemon dropped because its queue was full.",
    );
    let _ = writeln!(out, "monitor_pipeline_dropped_total {}", stats.events.dropped_queue_full);
    {
        let syslog = &stats.syslog;
        family(&mut out, "monitor_syslog_lines_total", "counter", "Syslog lines received, by outcome.");
        let _ = writeln!(out, "monitor_syslog_lines_total{{outcome=\"accepted\"}} {}", syslog.accepted);
        let mut reasons: Vec<_> = syslog.rejected.iter().collect();
        reasons.sort();
        for (reason, n) in reasons {
            let _ = writeln!(out, "monitor_syslog_lines_total{{outcome=\"{reason}\"}} {n}");
        }
        family(
            &mut out,
            "monitor_syslog_socket_drops_total",
            "counter",
            "Syslog datagrams the kernel dropped because a UDP receive buffer was full.",
        );
        let _ = writeln!(out, "monitor_syslog_socket_drops_total {}", syslog.socket_drops);
    }
    alert_metrics(&mut out, &state.alerts.doc());
    hosts(&mut out, &snapshot);
    family(&mut out, "monitor_websocket_clients", "gauge", "Dashboard viewers connected.");
    let _ = writeln!(out, "monitor_websocket_clients {}", snapshot.viewers.len());
    family(&mut out, "monitor_uptime_seconds", "gauge", "Seconds since the daemon started.");
    let _ = writeln!(out, "monitor_uptime_seconds {}", stats.uptime_s);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], out)
}

/// HTTP timing: a Prometheus histogram of response times (the kernel's exact
/// log2 buckets) and counters by status class and outcome.
fn http_metrics(out: &mut String, snapshot: &Snapshot) {
    use monitor_common::timing::{bucket_upper_ns, LATENCY_SUB_BUCKETS};
    let Some(report) = &snapshot.http_kernel else { return };
    let Some(kernel_doc) = &snapshot.http.kernel else { return };
    let k = &report.counters;
    family(
        out,
        "monitor_http_response_seconds",
        "histogram",
        "HTTP response time (request in to first response packet out), from the kernel's log-linear buckets.",
    );
    // Every 8th bucket bound (4 per power of two): the kernel's buckets
    // merged exactly, and a scrape of ~90 series instead of ~700.
    const EVERY: usize = LATENCY_SUB_BUCKETS / 4;
    let mut cumulative = 0;
    for (b, n) in k.latency.iter().enumerate() {
        cumulative += n;
        if let Some(upper) = bucket_upper_ns(b).filter(|_| (b + 1) % EVERY == 0) {
            let le = upper as f64 / 1e9;
            let _ = writeln!(out, "monitor_http_response_seconds_bucket{{le=\"{le}\"}} {cumulative}");
        }
    }
    let _ = writeln!(out, "monitor_http_response_seconds_bucket{{le=\"+Inf\"}} {}", k.responses_matched);
    let _ = writeln!(out, "monitor_http_response_seconds_sum {}", k.latency_sum_ns as f64 / 1e9);
    let _ = writeln!(out, "monitor_http_response_seconds_count {}", k.responses_matched);
    family(out, "monitor_http_responses_total", "counter", "Timed HTTP responses by status class.");
    for (class, n) in STATUS_CLASS_NAMES.iter().zip(k.status.iter()) {
        let _ = writeln!(out, "monitor_http_responses_total{{class=\"{class}\"}} {n}");
    }
    family(
        out,
        "monitor_http_unmatched_responses_total",
        "counter",
        "HTTP responses with no recorded request (started before the monitor, evicted or expired).",
    );
    let _ = writeln!(out, "monitor_http_unmatched_responses_total {}", k.responses_unmatched);
    family(out, "monitor_http_requests_total", "counter", "HTTP requests by fate in the kernel's pending table.");
    for (outcome, n) in [
        ("recorded", k.requests_recorded),
        ("replaced", k.requests_replaced),
        ("insert_failed", k.request_insert_failed),
        ("expired", kernel_doc.requests_expired),
        ("evicted", kernel_doc.requests_evicted_at_least),
    ] {
        let _ = writeln!(out, "monitor_http_requests_total{{outcome=\"{outcome}\"}} {n}");
    }
    family(
        out,
        "monitor_http_events_total",
        "counter",
        "Fate of HTTP response events: submitted, suppressed, ring full.",
    );
    for (outcome, n) in
        [("submitted", k.event_submitted), ("suppressed", k.event_suppressed), ("ring_full", k.event_ring_full)]
    {
        let _ = writeln!(out, "monitor_http_events_total{{outcome=\"{outcome}\"}} {n}");
    }
}

/// Alerts by rule and state (every rule, zeros too), and deliveries by
/// target and outcome. Rules and targets are the operator's: bounded.
fn alert_metrics(out: &mut String, doc: &AlertsDoc) {
    family(out, "monitor_alerts", "gauge", "Alerts pending or firing, by rule.");
    for rule in &doc.rules {
        for (state, n) in [("pending", rule.pending), ("firing", rule.firing)] {
            let _ = writeln!(out, "monitor_alerts{{alertname=\"{}\",state=\"{state}\"}} {n}", rule.alertname);
        }
    }
    if doc.targets.is_empty() {
        return;
    }
    family(
        out,
        "monitor_alert_notifications_total",
        "counter",
        "Alert notification posts by target: sent, failed after retries, dropped (queue full).",
    );
    for t in &doc.targets {
        for (outcome, n) in [("sent", t.sent), ("failed", t.failed), ("dropped", t.dropped)] {
            let _ =
                writeln!(out, "monitor_alert_notifications_total{{target=\"{}\",outcome=\"{outcome}\"}} {n}", t.name);
        }
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Hosts labelled in /metrics at most (the first by name, local first);
/// the rest are counted in `monitor_hosts_unlabelled`.
const METRICS_HOSTS: usize = 100;

/// Per-host counters of a central (docs/agent.md).
fn hosts(out: &mut String, snapshot: &Snapshot) {
    let doc = &snapshot.hosts;
    let labelled = &doc.hosts[..doc.hosts.len().min(METRICS_HOSTS)];
    family(out, "monitor_hosts", "gauge", "Hosts reporting to this monitor (this one included).");
    let _ = writeln!(out, "monitor_hosts {}", doc.hosts.len());
    family(
        out,
        "monitor_hosts_unlabelled",
        "gauge",
        "Hosts beyond the labelled number, and messages from untracked hosts.",
    );
    let _ = writeln!(out, "monitor_hosts_unlabelled {}", doc.hosts.len() - labelled.len() + doc.over_cap as usize);
    family(
        out,
        "monitor_host_packets_total",
        "counter",
        "Packets by host and class, exact from each agent's counters.",
    );
    for h in labelled {
        for (c, v) in Class::ALL.iter().zip(h.classes.iter().flat_map(|b| b.0.iter())) {
            let _ = writeln!(
                out,
                "monitor_host_packets_total{{host=\"{}\",class=\"{}\"}} {}",
                label(&h.host),
                c.name(),
                v.packets
            );
        }
    }
    family(out, "monitor_host_events_total", "counter", "Events received, by host.");
    for h in labelled {
        let _ = writeln!(out, "monitor_host_events_total{{host=\"{}\"}} {}", label(&h.host), h.events);
    }
    family(
        out,
        "monitor_host_forward_events_lost_total",
        "counter",
        "Agent events dropped before sending or lost in transit, by host and where.",
    );
    for h in labelled {
        let _ = writeln!(
            out,
            "monitor_host_forward_events_lost_total{{host=\"{}\",where=\"agent\"}} {}",
            label(&h.host),
            h.dropped
        );
        let _ = writeln!(
            out,
            "monitor_host_forward_events_lost_total{{host=\"{}\",where=\"transit\"}} {}",
            label(&h.host),
            h.lost
        );
    }
    family(out, "monitor_host_sequence_gaps_total", "counter", "Counters messages missing from an agent's sequence.");
    for h in labelled {
        let _ = writeln!(out, "monitor_host_sequence_gaps_total{{host=\"{}\"}} {}", label(&h.host), h.seq_gaps);
    }
    family(out, "monitor_host_restarts_total", "counter", "Agent restarts seen.");
    for h in labelled {
        let _ = writeln!(out, "monitor_host_restarts_total{{host=\"{}\"}} {}", label(&h.host), h.restarts);
    }
}

/// A label value escaped as the exposition format wants.
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
