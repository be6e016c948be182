//! HTTP interface: JSON API, Prometheus metrics, health.

use std::{fmt::Write as _, sync::Arc};

use axum::{
    extract::{Query, State},
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Json, Router,
};
use monitor_common::Class;
use serde::Deserialize;
use serde_json::json;

use crate::{
    app::{lock, AppState},
    event::SCHEMA_VERSION,
};

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/stats", get(stats))
        .route("/api/events", get(events))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// A client error with a message the client can act on.
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn stats(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let kernel = state.kernel_counters.read().unwrap_or_else(|e| e.into_inner()).clone();
    let kernel = kernel.map(|k| {
        let classes: serde_json::Map<_, _> = Class::ALL
            .iter()
            .zip(k.classes.iter())
            .map(|(c, v)| (c.name().to_owned(), json!({ "packets": v.packets, "bytes": v.bytes })))
            .collect();
        json!({ "classes": classes, "pipeline": k.pipeline, "sources_capacity": state.sources_capacity })
    });
    let agg = lock(&state.aggregate);
    let by_class = |v: &[u64]| -> serde_json::Map<String, serde_json::Value> {
        Class::ALL.iter().zip(v).map(|(c, n)| (c.name().to_owned(), json!(n))).collect()
    };
    let sink = &state.sink;
    use std::sync::atomic::Ordering::Relaxed;
    Json(json!({
        "schema": SCHEMA_VERSION,
        "hostname": state.hostname,
        "uptime_s": state.started.elapsed().as_secs(),
        "interfaces": state.interfaces,
        "kernel": kernel,
        "events": {
            "received": agg.events_total,
            "accepted": sink.accepted.load(Relaxed),
            "dropped_queue_full": sink.dropped_queue_full.load(Relaxed),
            "malformed_records": sink.malformed_records.load(Relaxed),
            "xdp_packets_by_class": by_class(&agg.xdp_event_packets),
            "syslog_packets_by_class": by_class(&agg.syslog_packets),
        },
        "sources": { "tracked": agg.source_count(), "evicted": agg.sources_evicted },
        "syslog": &*lock(&state.syslog.counters),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    limit: Option<usize>,
    class: Option<String>,
}

const MAX_EVENTS_PER_REQUEST: usize = 2_000;

async fn events(
    State(state): State<Arc<AppState>>,
    query: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))?;
    let limit = query.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_EVENTS_PER_REQUEST {
        return Err(ApiError(StatusCode::BAD_REQUEST, format!("limit must be 1..={MAX_EVENTS_PER_REQUEST}")));
    }
    let class = match &query.class {
        Some(name) => Some(Class::from_name(name).ok_or_else(|| {
            ApiError(StatusCode::BAD_REQUEST, format!("unknown class {name:?}"))
        })?),
        None => None,
    };
    let agg = lock(&state.aggregate);
    let events: Vec<_> = agg
        .recent(MAX_EVENTS_PER_REQUEST)
        .into_iter()
        .filter(|e| class.is_none_or(|c| e.class == c))
        .collect();
    let skip = events.len().saturating_sub(limit);
    Ok(Json(json!({ "schema": SCHEMA_VERSION, "events": &events[skip..] })))
}

async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let mut out = String::new();
    let kernel = state.kernel_counters.read().unwrap_or_else(|e| e.into_inner()).clone();
    if let Some(k) = kernel {
        metric_header(&mut out, "monitor_xdp_packets_total", "counter", "Packets seen by the XDP observer, by class.");
        for (c, v) in Class::ALL.iter().zip(k.classes.iter()) {
            let _ = writeln!(out, "monitor_xdp_packets_total{{class=\"{}\"}} {}", c.name(), v.packets);
        }
        metric_header(&mut out, "monitor_xdp_bytes_total", "counter", "Bytes seen by the XDP observer, by class.");
        for (c, v) in Class::ALL.iter().zip(k.classes.iter()) {
            let _ = writeln!(out, "monitor_xdp_bytes_total{{class=\"{}\"}} {}", c.name(), v.bytes);
        }
        let p = &k.pipeline;
        metric_header(&mut out, "monitor_xdp_events_total", "counter",
            "Fate of packets eligible to become events: submitted, suppressed by sampling, or lost to a full ring buffer.");
        for (outcome, n) in [
            ("submitted", p.event_submitted),
            ("suppressed_source", p.suppressed_source),
            ("suppressed_global", p.suppressed_global),
            ("ring_full", p.ring_full),
        ] {
            let _ = writeln!(out, "monitor_xdp_events_total{{outcome=\"{outcome}\"}} {n}");
        }
    }
    use std::sync::atomic::Ordering::Relaxed;
    metric_header(&mut out, "monitor_pipeline_dropped_total", "counter", "Events the daemon dropped because its queue was full.");
    let _ = writeln!(out, "monitor_pipeline_dropped_total {}", state.sink.dropped_queue_full.load(Relaxed));
    metric_header(&mut out, "monitor_uptime_seconds", "gauge", "Seconds since the daemon started.");
    let _ = writeln!(out, "monitor_uptime_seconds {}", state.started.elapsed().as_secs());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], out)
}

fn metric_header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}
