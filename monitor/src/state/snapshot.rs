//! What the pipeline publishes once a second: an immutable picture of the
//! state that every reader (HTTP handler, WebSocket client, metrics scrape)
//! shares without a lock.

use std::sync::Arc;

use super::{
    activity::Activity,
    documents::{HistoryDoc, Rates, StatsDoc, TopDoc, ViewerDoc},
    history::History,
    hosts::HostsDoc,
    http_timing::HttpDoc,
    minute::MinuteSummary,
};
use crate::sources::kernel::{HttpReport, KernelCounters};

/// Most entries a top list holds (`/api/top?n=` at most).
pub const TOP_MAX: usize = 500;
/// Most slowest hosts and paths (`/api/http?n=` at most).
pub const HTTP_TOP_MAX: usize = 100;

#[derive(Debug)]
pub struct Snapshot {
    /// Counts publications: a reader can tell a new snapshot from the last.
    pub seq: u64,
    /// `/api/stats` without `viewers`.
    pub stats: StatsDoc,
    pub viewers: Arc<[ViewerDoc]>,
    /// Since start, then one per window of `TOP_WINDOWS_MINUTES`; `TOP_MAX` each.
    pub tops: Vec<TopDoc>,
    pub history: History,
    /// With `HTTP_TOP_MAX` slowest hosts and paths.
    pub http: Arc<HttpDoc>,
    pub rates: Rates,
    /// What /metrics needs beyond the documents.
    pub kernel: Option<KernelCounters>,
    pub http_kernel: Option<HttpReport>,
    /// The last complete second per source (the alert rules read it).
    pub activity: Arc<Activity>,
    /// The last complete minute, for the history store's writer.
    pub last_minute: Option<Arc<MinuteSummary>>,
    /// `/api/hosts`.
    pub hosts: Arc<HostsDoc>,
}

impl Snapshot {
    /// `/api/stats`; the viewers only for those allowed to see them.
    pub fn stats(&self, with_viewers: bool) -> StatsDoc {
        let mut stats = self.stats.clone();
        stats.viewers = with_viewers.then(|| Arc::clone(&self.viewers));
        stats
    }

    /// The top lists over `window_minutes` (None: since start), `n` of each.
    pub fn top(&self, window_minutes: Option<u32>, n: usize) -> TopDoc {
        let doc = self.tops.iter().find(|t| t.window_minutes == window_minutes).unwrap_or(&self.tops[0]);
        doc.truncated(n)
    }

    pub fn history(&self, minutes: usize) -> HistoryDoc {
        self.history.doc(minutes)
    }
}
