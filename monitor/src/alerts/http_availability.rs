//! `http_availability`: from the snapshot's HTTP document (the kernel's
//! exact request and response counts): the 5xx share of responses or the
//! p99 latency over the document's window, or the share of requests that
//! were never answered (expired from the kernel's pending table) over the
//! rule's own window.

use serde::Deserialize;

use super::{
    condition::{Condition, Context, CounterWindow, Hit},
    duration::Duration,
};
use crate::state::Snapshot;

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// 5xx responses / responses (0 to 1), over the HTTP document's window.
    ErrorRatio,
    /// Requests expired unanswered / requests recorded (0 to 1), over `window`.
    UnansweredRatio,
    /// The 99th percentile response time in ms, over the HTTP document's window.
    P99Ms,
}

impl Measure {
    fn name(self) -> &'static str {
        match self {
            Measure::ErrorRatio => "error_ratio",
            Measure::UnansweredRatio => "unanswered_ratio",
            Measure::P99Ms => "p99_ms",
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpParams {
    pub measure: Measure,
    pub threshold: f64,
    /// Fewer requests (or responses) than this in the window: no judgement.
    #[serde(default = "twenty")]
    pub min_requests: u64,
    /// The window of `unanswered_ratio` (10s to 1h).
    #[serde(default = "one_minute")]
    pub window: Duration,
}

fn twenty() -> u64 {
    20
}

fn one_minute() -> Duration {
    Duration::secs(60)
}

impl HttpParams {
    pub(super) fn validated(self) -> Result<Self, String> {
        if !(self.threshold.is_finite() && self.threshold >= 0.0) {
            return Err("params: threshold must be a number, 0 or more".into());
        }
        if self.measure != Measure::P99Ms && self.threshold > 1.0 {
            return Err("params: threshold of a ratio is 0 to 1".into());
        }
        if !(Duration::secs(10)..=Duration::secs(3_600)).contains(&self.window) {
            return Err("params: window must be 10s to 1h".into());
        }
        Ok(self)
    }
}

pub struct HttpAvailability {
    params: HttpParams,
    recorded: CounterWindow,
    expired: CounterWindow,
}

impl HttpAvailability {
    pub fn new(params: HttpParams) -> Self {
        HttpAvailability { params, recorded: CounterWindow::default(), expired: CounterWindow::default() }
    }

    fn value(&mut self, snapshot: &Snapshot, now_ms: u64) -> Option<f64> {
        let http = &snapshot.http;
        let min = self.params.min_requests.max(1);
        match self.params.measure {
            Measure::ErrorRatio => {
                let w = http.window.as_ref()?;
                let errors = w.status.get("5xx").copied().unwrap_or(0);
                (w.responses >= min).then(|| errors as f64 / w.responses as f64)
            }
            Measure::P99Ms => http.window.as_ref().filter(|w| w.responses >= min).and_then(|w| w.p99_ms),
            Measure::UnansweredRatio => {
                let k = http.kernel.as_ref()?;
                let window = self.params.window.ms();
                let recorded = self.recorded.push(now_ms, k.requests_recorded, window);
                let expired = self.expired.push(now_ms, k.requests_expired, window);
                (recorded >= min).then(|| (expired as f64 / recorded as f64).min(1.0))
            }
        }
    }
}

impl Condition for HttpAvailability {
    fn evaluate(&mut self, snapshot: &Snapshot, cx: &mut Context<'_>) -> Vec<Hit> {
        match self.value(snapshot, cx.now_ms) {
            Some(v) if v > self.params.threshold => vec![Hit::new("measure", self.params.measure.name(), v)],
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::testing::{context_parts, http_window};

    #[test]
    fn error_ratio_and_p99_over_the_window() {
        let (mut origins, now) = context_parts();
        let mut cx = Context { now_ms: now, started_ms: 0, origins: &mut origins };
        let params = |measure, threshold| HttpParams { measure, threshold, min_requests: 10, window: one_minute() };
        let mut ratio = HttpAvailability::new(params(Measure::ErrorRatio, 0.1));
        assert_eq!(ratio.evaluate(&http_window(100, 20, 5.0), &mut cx), vec![Hit::new("measure", "error_ratio", 0.2)]);
        assert!(ratio.evaluate(&http_window(100, 5, 5.0), &mut cx).is_empty());
        assert!(ratio.evaluate(&http_window(5, 5, 5.0), &mut cx).is_empty(), "too few to judge");
        let mut p99 = HttpAvailability::new(params(Measure::P99Ms, 250.0));
        assert_eq!(p99.evaluate(&http_window(100, 0, 300.0), &mut cx).len(), 1);
        assert!(p99.evaluate(&http_window(100, 0, 200.0), &mut cx).is_empty());
    }
}
