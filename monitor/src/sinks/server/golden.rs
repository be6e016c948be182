//! Golden files: every API document and WebSocket frame, built from a fixed
//! pipeline, must equal its file in docs/api/ (the examples docs/API.md
//! shows). A change of schema shows up as a diff there; after a deliberate
//! change, `UPDATE_GOLDEN=1 cargo test -p monitor --lib golden` rewrites them.

use std::{collections::BTreeMap, path::PathBuf, sync::Arc};

use serde::Serialize;
use serde_json::{json, value::to_raw_value, Value};

use super::frames::{ErrorDoc, ErrorFrame, PongFrame, SnapshotFrame, StatsFrame, UpdateFrame};
use crate::{
    model::SCHEMA_VERSION,
    state::{
        documents::{EventsDoc, HistoryDoc, KernelSourceDoc, LookupDoc, MetaDoc, TopDoc},
        fixture,
    },
};

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/api")
}

/// Every document by its file name.
fn documents() -> BTreeMap<&'static str, Value> {
    let (snapshot, recent) = fixture::snapshot();
    let update_events: Vec<_> = recent.iter().map(|e| to_raw_value(&**e).expect("event serializes")).collect();
    let mut docs = BTreeMap::new();
    docs.insert("meta", value(&MetaDoc::current()));
    docs.insert("stats", value(&snapshot.stats(true)));
    docs.insert("top", value(&snapshot.top(None, 20)));
    docs.insert("top-window", value(&snapshot.top(Some(5), 20)));
    docs.insert("history", value(&snapshot.history(60)));
    docs.insert("http", value(&snapshot.http.truncated(10)));
    docs.insert("events", value(&EventsDoc { schema: SCHEMA_VERSION, events: recent.clone() }));
    docs.insert("hosts", value(&*snapshot.hosts));
    let kernel =
        KernelSourceDoc { packets: 3, bytes: 294, first_seen_ms: 1_795_999_999_100, last_seen_ms: 1_795_999_999_100 };
    docs.insert(
        "lookup",
        value(&LookupDoc {
            schema: SCHEMA_VERSION,
            ip: "192.0.2.7".parse().expect("literal"),
            geo: Arc::clone(&snapshot.viewers[0].geo),
            seen: None,
            kernel: Some([("icmp", kernel)].into_iter().collect()),
        }),
    );
    docs.insert("alerts", value(&crate::alerts::testing::golden_doc()));
    let (history_range, top_range) = history_documents();
    docs.insert("history-range", value(&history_range));
    docs.insert("top-range", value(&top_range));
    docs.insert("error", value(&ErrorDoc { error: "n must be 1..=500".into() }));
    let frame = SnapshotFrame::new(snapshot.stats(false), snapshot.history(60), snapshot.top(None, 20), recent);
    docs.insert("frame-snapshot", value(&frame));
    docs.insert(
        "frame-stats",
        value(&StatsFrame::new(snapshot.stats(false), snapshot.top(Some(15), 20), &snapshot.rates)),
    );
    let update = UpdateFrame {
        kind: "update",
        schema: SCHEMA_VERSION,
        seq: 7,
        ts_ms: fixture::END_MS,
        events: update_events.iter().map(|e| &**e).collect(),
        rates: &snapshot.rates,
        skipped: 0,
    };
    docs.insert("frame-update", value(&update));
    docs.insert("frame-pong", value(&PongFrame { kind: "pong", schema: SCHEMA_VERSION, t: json!(42) }));
    docs.insert(
        "frame-error",
        value(&ErrorFrame { kind: "error", schema: SCHEMA_VERSION, error: "unknown class \"nope\"".into() }),
    );
    docs
}

/// `/api/history?from=&to=` and `/api/top?from=&to=` from a store holding
/// two minutes of the fixture's sources.
fn history_documents() -> (HistoryDoc, TopDoc) {
    use crate::{
        history::{HistoryRange, Retention, Store, MINUTE_MS},
        state::{KeyCount, MinuteSource, MinuteSummary},
    };
    let dir = std::env::temp_dir().join(format!("monitor-golden-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut store = Store::open(&dir.join("history.db"), Retention { days: 30, max_bytes: 1 << 30 }).expect("opens");
    let end = fixture::END_MS - fixture::END_MS % MINUTE_MS;
    let count = |packets: u64, sources| KeyCount { packets, bytes: packets * 98, sources };
    for (k, packets) in [(3, 120), (1, 30)] {
        store
            .write_minute(&MinuteSummary {
                start_ms: end - k * MINUTE_MS,
                series: [packets, 0, 0, 2, 1],
                covered: (1 << 60) - 1,
                classes: Default::default(),
                countries: vec![("DE".into(), Some("Germany".into()), count(packets, 1))],
                asns: vec![(64500, Some(Arc::from("Example Net")), count(packets, 1))],
                sources: vec![MinuteSource {
                    ip: "192.0.2.7".parse().expect("literal"),
                    count: count(packets, 1),
                    country_code: Some("DE".into()),
                    country: Some("Germany".into()),
                    asn: Some(64500),
                    as_org: Some(Arc::from("Example Net")),
                }],
            })
            .expect("written");
    }
    let conn = store.connection();
    let range = HistoryRange { from_ms: end - 4 * MINUTE_MS, to_ms: end, step_ms: None };
    let history = crate::history::query_history(conn, range, end).expect("range");
    let top = crate::history::query_top(conn, end - 4 * MINUTE_MS, end, 20, end).expect("top");
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
    (history, top)
}

fn value<T: Serialize>(doc: &T) -> Value {
    serde_json::to_value(doc).expect("serializes")
}

#[test]
fn every_document_matches_its_golden_file() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut stale = Vec::new();
    for (name, doc) in documents() {
        let path = golden_dir().join(format!("{name}.json"));
        if update {
            let text = serde_json::to_string_pretty(&doc).expect("serializes") + "\n";
            std::fs::write(&path, text).expect("golden file written");
            continue;
        }
        let golden: Value =
            std::fs::read_to_string(&path).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or(Value::Null);
        if golden != doc {
            stale.push(format!("{}:\n{}", path.display(), serde_json::to_string_pretty(&doc).unwrap_or_default()));
        }
    }
    assert!(stale.is_empty(), "documents differ from docs/api/ (UPDATE_GOLDEN=1 to accept):\n{}", stale.join("\n"));
}
