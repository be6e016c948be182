//! The JSON documents /api/stats, /api/top and /api/history serve, built in
//! one place so the WebSocket frames carry exactly the same shapes.

use std::sync::atomic::Ordering::Relaxed;

use monitor_common::Class;
use serde_json::{json, Map, Value};

use crate::{
    app::{lock, AppState},
    event::SCHEMA_VERSION,
};

pub fn stats(state: &AppState, include_viewers: bool) -> Value {
    let kernel = state.kernel_counters.read().unwrap_or_else(|e| e.into_inner()).clone();
    let kernel = kernel.map(|k| {
        let classes: Map<_, _> = Class::ALL
            .iter()
            .zip(k.classes.iter())
            .map(|(c, v)| (c.name().to_owned(), json!({ "packets": v.packets, "bytes": v.bytes })))
            .collect();
        // The kernel does not count LRU evictions; every insert beyond the
        // capacity evicted one entry (the LRU may start a little earlier).
        let evicted = k.pipeline.source_inserted.saturating_sub(u64::from(state.sources_capacity));
        json!({
            "classes": classes, "pipeline": k.pipeline,
            "sources_capacity": state.sources_capacity, "sources_evicted_at_least": evicted,
        })
    });
    let by_class = |v: &[u64]| -> Map<String, Value> {
        Class::ALL.iter().zip(v).map(|(c, n)| (c.name().to_owned(), json!(n))).collect()
    };
    let sink = &state.sink;
    let mut doc = {
        let agg = lock(&state.aggregate);
        json!({
            "schema": SCHEMA_VERSION,
            "version": env!("CARGO_PKG_VERSION"),
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
            "headline": agg.headline,
        })
    };
    doc["syslog"] = json!(&*lock(&state.syslog.counters));
    doc["geo"] = json!(state.geo.status());
    doc["http"] = http(state, 10);
    if include_viewers {
        let viewers: Vec<Value> = lock(&state.viewers)
            .values()
            .map(|v| json!({ "addr": v.addr, "since_ms": v.since_ms, "geo": state.geo.lookup(v.addr) }))
            .collect();
        doc["viewers"] = json!(viewers);
    }
    doc
}

/// The HTTP timing document (/api/http and `http` in /api/stats).
pub fn http(state: &AppState, n: usize) -> Value {
    let mut v = lock(&state.http).json(n);
    v["schema"] = json!(SCHEMA_VERSION);
    v
}

pub fn top(state: &AppState, n: usize) -> Value {
    let agg = lock(&state.aggregate);
    let now = crate::event::now_ms();
    let sources: Vec<Value> = agg
        .top_sources(n)
        .into_iter()
        .map(|(ip, s)| {
            let mut v = json!(s);
            v["ip"] = json!(ip);
            v["packets_per_s"] = json!((s.packets_per_s(now) * 100.0).round() / 100.0);
            v
        })
        .collect();
    let weighted: u64 = agg.xdp_event_packets.iter().chain(agg.syslog_packets.iter()).sum();
    let counted = state
        .kernel_counters
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .map(|k| k.classes.iter().take(4).map(|c| c.packets).sum::<u64>());
    json!({
        "schema": SCHEMA_VERSION,
        "sources": sources,
        "countries": agg.top_countries(n),
        "asns": agg.top_asns(n),
        "icmp_types": agg.icmp_types(),
        "totals": { "events": agg.events_total, "weighted_packets": weighted, "counted_packets": counted },
    })
}

pub fn history(state: &AppState, minutes: usize) -> Value {
    let agg = lock(&state.aggregate);
    let mut v = json!(agg.history.view(minutes));
    v["schema"] = json!(SCHEMA_VERSION);
    v
}
