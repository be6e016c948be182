//! `pipeline`: the monitor losing data: events lost to a full ring buffer,
//! syslog datagrams the kernel dropped (a full socket buffer), events the
//! daemon's queue had no room for; more than `threshold` within `window`.
//! (Later: an agent gone silent.)

use serde::Deserialize;

use super::{
    condition::{Condition, Context, CounterWindow, Hit},
    duration::Duration,
};
use crate::state::Snapshot;

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// Events the XDP program could not write: the ring buffer was full.
    RingFull,
    /// Syslog datagrams dropped by the kernel before the daemon read them.
    SyslogSocketDrops,
    /// Events dropped because the pipeline's queue was full.
    QueueFull,
}

impl Measure {
    fn name(self) -> &'static str {
        match self {
            Measure::RingFull => "ring_full",
            Measure::SyslogSocketDrops => "syslog_socket_drops",
            Measure::QueueFull => "queue_full",
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineParams {
    pub measure: Measure,
    /// Drops within the window above this fire (default 0: any drop).
    #[serde(default)]
    pub threshold: u64,
    #[serde(default = "one_minute")]
    pub window: Duration,
}

fn one_minute() -> Duration {
    Duration::secs(60)
}

impl PipelineParams {
    pub(super) fn validated(self) -> Result<Self, String> {
        if !(Duration::secs(1)..=Duration::secs(86_400)).contains(&self.window) {
            return Err("params: window must be 1s to 1d".into());
        }
        Ok(self)
    }
}

pub struct PipelineHealth {
    params: PipelineParams,
    counter: CounterWindow,
}

impl PipelineHealth {
    pub fn new(params: PipelineParams) -> Self {
        PipelineHealth { params, counter: CounterWindow::default() }
    }
}

/// The measure's counter since start, if this daemon has it.
fn counter(snapshot: &Snapshot, measure: Measure) -> Option<u64> {
    match measure {
        Measure::RingFull => snapshot.kernel.as_ref().map(|k| k.pipeline.ring_full),
        Measure::SyslogSocketDrops => Some(snapshot.stats.syslog.socket_drops),
        Measure::QueueFull => Some(snapshot.stats.events.dropped_queue_full),
    }
}

impl Condition for PipelineHealth {
    fn evaluate(&mut self, snapshot: &Snapshot, cx: &mut Context<'_>) -> Vec<Hit> {
        let Some(total) = counter(snapshot, self.params.measure) else { return Vec::new() };
        let increase = self.counter.push(cx.now_ms, total, self.params.window.ms());
        if increase > self.params.threshold {
            vec![Hit::new("measure", self.params.measure.name(), increase as f64)]
        } else {
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::alerts::testing::{context_parts, snapshot_with};

    #[test]
    fn syslog_drops_within_the_window() {
        let (mut origins, _) = context_parts();
        let mut rule = PipelineHealth::new(PipelineParams {
            measure: Measure::SyslogSocketDrops,
            threshold: 5,
            window: Duration::secs(10),
        });
        let mut at = |now: u64, drops: u64| {
            let mut snap = snapshot_with(Default::default());
            let mut syslog = (*snap.stats.syslog).clone();
            syslog.socket_drops = drops;
            snap.stats.syslog = Arc::new(syslog);
            let mut cx = Context { now_ms: now, started_ms: 0, origins: &mut origins };
            rule.evaluate(&snap, &mut cx)
        };
        assert!(at(0, 100).is_empty());
        assert!(at(1_000, 104).is_empty());
        assert_eq!(at(2_000, 110), vec![Hit::new("measure", "syslog_socket_drops", 10.0)]);
        assert!(at(20_000, 110).is_empty());
    }
}
