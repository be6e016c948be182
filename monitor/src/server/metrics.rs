//! Prometheus text exposition. Labels are fixed sets (classes, outcomes,
//! reasons the code defines), never addresses: cardinality stays bounded.

use std::{fmt::Write as _, sync::atomic::Ordering::Relaxed, sync::Arc};

use axum::{extract::State, http::header, response::IntoResponse};
use monitor_common::Class;

use crate::app::{lock, AppState};

pub async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let mut out = String::new();
    let kernel = state.kernel_counters.read().unwrap_or_else(|e| e.into_inner()).clone();
    if let Some(k) = kernel {
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
        family(&mut out, "monitor_xdp_sources_inserted_total", "counter", "New entries in the kernel per-source table.");
        let _ = writeln!(out, "monitor_xdp_sources_inserted_total {}", p.source_inserted);
    }
    family(&mut out, "monitor_events_received_total", "counter", "Events that reached the daemon's aggregator.");
    let _ = writeln!(out, "monitor_events_received_total {}", lock(&state.aggregate).events_total);
    family(&mut out, "monitor_pipeline_dropped_total", "counter", "Events the daemon dropped because its queue was full.");
    let _ = writeln!(out, "monitor_pipeline_dropped_total {}", state.sink.dropped_queue_full.load(Relaxed));
    {
        let syslog = lock(&state.syslog.counters);
        family(&mut out, "monitor_syslog_lines_total", "counter", "Syslog lines received, by outcome.");
        let _ = writeln!(out, "monitor_syslog_lines_total{{outcome=\"accepted\"}} {}", syslog.accepted);
        let mut reasons: Vec<_> = syslog.rejected.iter().collect();
        reasons.sort();
        for (reason, n) in reasons {
            let _ = writeln!(out, "monitor_syslog_lines_total{{outcome=\"{reason}\"}} {n}");
        }
    }
    family(&mut out, "monitor_websocket_clients", "gauge", "Dashboard viewers connected.");
    let _ = writeln!(out, "monitor_websocket_clients {}", lock(&state.viewers).len());
    family(&mut out, "monitor_uptime_seconds", "gauge", "Seconds since the daemon started.");
    let _ = writeln!(out, "monitor_uptime_seconds {}", state.started.elapsed().as_secs());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], out)
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}
