//! What every rule kind answers each second: for which instances (a
//! source, an origin, a measure) its condition holds now, and the value.

use std::collections::{BTreeMap, VecDeque};

use crate::state::Snapshot;

use super::history::OriginHistory;

/// One instance for which a condition holds.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    /// The labels that tell this instance from the rule's others.
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl Hit {
    pub fn new(label: &str, instance: impl Into<String>, value: f64) -> Self {
        Hit { labels: [(label.to_owned(), instance.into())].into_iter().collect(), value }
    }
}

/// What a condition may use besides the snapshot.
pub struct Context<'a> {
    /// Wall-clock time of this evaluation, ms since the epoch.
    pub now_ms: u64,
    /// When the engine started (warm-ups count from here).
    pub started_ms: u64,
    pub origins: &'a mut dyn OriginHistory,
}

/// A rule kind's evaluation; it keeps what it needs between seconds,
/// bounded.
pub trait Condition: Send {
    fn evaluate(&mut self, snapshot: &Snapshot, cx: &mut Context<'_>) -> Vec<Hit>;
}

/// A counter's increase over a sliding window of seconds, from the
/// cumulative values seen at each evaluation.
#[derive(Debug, Default)]
pub struct CounterWindow {
    samples: VecDeque<(u64, u64)>,
}

impl CounterWindow {
    /// Adds the value at `now_ms`; returns the increase over `window_ms`
    /// (since the oldest sample within it; a reset counts from zero).
    pub fn push(&mut self, now_ms: u64, value: u64, window_ms: u64) -> u64 {
        // Keep one sample at or before the window's start, as its base.
        while self.samples.len() >= 2 && self.samples[1].0 + window_ms <= now_ms {
            self.samples.pop_front();
        }
        if self.samples.back().is_some_and(|&(_, v)| v > value) {
            self.samples.clear(); // the counter restarted
        }
        self.samples.push_back((now_ms, value));
        let base = self.samples.front().map_or(value, |&(_, v)| v);
        value - base
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_window_slides() {
        let mut w = CounterWindow::default();
        assert_eq!(w.push(0, 10, 3_000), 0);
        assert_eq!(w.push(1_000, 15, 3_000), 5);
        assert_eq!(w.push(3_000, 20, 3_000), 10);
        assert_eq!(w.push(4_000, 20, 3_000), 5);
        assert_eq!(w.push(9_000, 20, 3_000), 0);
        assert_eq!(w.push(10_000, 3, 3_000), 0);
    }
}
