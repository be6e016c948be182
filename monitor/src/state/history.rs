//! Per-second packet rates per class: a fixed ring of an hour.

use std::collections::VecDeque;

use super::documents::HistoryDoc;
use crate::model::SCHEMA_VERSION;

/// The series the dashboard charts, in this order.
pub const SERIES: [&str; 5] = ["icmp", "icmpv6", "http", "https", "syslog"];
pub(super) const HISTORY_SECONDS: usize = 3600;

#[derive(Clone, Debug)]
pub struct History {
    /// Oldest first; each entry is one second of [`SERIES`] counts.
    seconds: VecDeque<[u64; SERIES.len()]>,
    /// Wall-clock end of the newest second, in ms.
    end_ms: u64,
}

impl Default for History {
    fn default() -> Self {
        History { seconds: VecDeque::with_capacity(HISTORY_SECONDS), end_ms: 0 }
    }
}

impl History {
    /// Appends one completed second.
    pub fn push(&mut self, counts: [u64; SERIES.len()], end_ms: u64) {
        if self.seconds.len() == HISTORY_SECONDS {
            self.seconds.pop_front();
        }
        self.seconds.push_back(counts);
        self.end_ms = end_ms;
    }

    /// The most recent complete second.
    pub fn latest(&self) -> [u64; SERIES.len()] {
        self.seconds.back().copied().unwrap_or_default()
    }

    /// The last `minutes` (or as much as there is), per series.
    pub fn doc(&self, minutes: usize) -> HistoryDoc {
        let n = (minutes * 60).min(self.seconds.len());
        let skip = self.seconds.len() - n;
        let series = SERIES
            .iter()
            .enumerate()
            .map(|(i, name)| (*name, self.seconds.iter().skip(skip).map(|s| s[i]).collect()))
            .collect();
        HistoryDoc { schema: SCHEMA_VERSION, step_ms: 1000, end_ms: self.end_ms, series }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_to_an_hour() {
        let mut h = History::default();
        for i in 0..(HISTORY_SECONDS as u64 + 10) {
            h.push([i, 0, 0, 0, 0], i * 1000);
        }
        let v = h.doc(60);
        let icmp = &v.series["icmp"];
        assert_eq!(icmp.len(), HISTORY_SECONDS);
        assert_eq!(icmp[0], 10);
        assert_eq!(h.doc(1).series["icmp"].len(), 60);
        assert_eq!(h.latest()[0], HISTORY_SECONDS as u64 + 9);
    }
}
