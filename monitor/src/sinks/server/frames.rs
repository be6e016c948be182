//! The WebSocket's frames and the error body, typed (docs/API.md).

use std::sync::Arc;

use serde::Serialize;
use serde_json::value::RawValue;

use crate::{
    model::{Event, SCHEMA_VERSION},
    state::documents::{HistoryDoc, MetaDoc, Rates, StatsDoc, TopDoc},
};

/// Every error response: `{"error": "..."}`.
#[derive(Debug, Serialize)]
pub struct ErrorDoc {
    pub error: String,
}

/// The first frame: everything a page needs to draw itself.
#[derive(Debug, Serialize)]
pub struct SnapshotFrame {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub schema: u32,
    pub meta: MetaDoc,
    pub stats: StatsDoc,
    pub history: HistoryDoc,
    pub top: TopDoc,
    pub recent: Vec<Arc<Event>>,
}

impl SnapshotFrame {
    pub fn new(stats: StatsDoc, history: HistoryDoc, top: TopDoc, recent: Vec<Arc<Event>>) -> Self {
        SnapshotFrame {
            kind: "snapshot",
            schema: SCHEMA_VERSION,
            meta: MetaDoc::current(),
            stats,
            history,
            top,
            recent,
        }
    }
}

/// Once a second.
#[derive(Debug, Serialize)]
pub struct StatsFrame<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub schema: u32,
    pub stats: StatsDoc,
    pub top: TopDoc,
    pub rates: &'a Rates,
}

impl<'a> StatsFrame<'a> {
    pub fn new(stats: StatsDoc, top: TopDoc, rates: &'a Rates) -> Self {
        StatsFrame { kind: "stats", schema: SCHEMA_VERSION, stats, top, rates }
    }
}

/// Every 200 ms while events arrive; the events are the shared, already
/// serialized JSON.
#[derive(Debug, Serialize)]
pub(super) struct UpdateFrame<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub schema: u32,
    pub seq: u64,
    pub ts_ms: u64,
    pub events: Vec<&'a RawValue>,
    pub rates: &'a Rates,
    /// Events this client missed since the last frame (it fell behind).
    pub skipped: u64,
}

/// The answer to a client's `{"type":"ping","t":...}`.
#[derive(Debug, Serialize)]
pub(super) struct PongFrame {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub schema: u32,
    pub t: serde_json::Value,
}

/// A client message the daemon could not take.
#[derive(Debug, Serialize)]
pub(super) struct ErrorFrame {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub schema: u32,
    pub error: String,
}
