//! Waiting for something another process does (a daemon starts, an event
//! shows in the API). Polling with a limit, never a bare sleep: a fast
//! machine does not wait for nothing, and a slow one fails with a message
//! that says what never happened instead of a confusing assertion later.

use std::time::{Duration, Instant};

/// How often a condition is checked.
pub const INTERVAL: Duration = Duration::from_millis(100);

/// Checks `condition` every [`INTERVAL`] until it returns `Some`, and
/// returns that; fails with "timed out after … waiting for {description}"
/// once `timeout` has passed. `condition` runs at least once, and once more
/// after the limit, so a slow check still counts.
pub fn poll_until<T>(timeout: Duration, description: &str, condition: impl FnMut() -> Option<T>) -> anyhow::Result<T> {
    try_poll(timeout, condition)
        .ok_or_else(|| anyhow::anyhow!("timed out after {:.1} s waiting for {description}", timeout.as_secs_f64()))
}

/// Like [`poll_until`], but `None` on timeout: for callers that explain the
/// failure themselves (or for which a timeout is an answer).
pub fn try_poll<T>(timeout: Duration, mut condition: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = condition() {
            return Some(v);
        }
        if start.elapsed() >= timeout {
            return None;
        }
        std::thread::sleep(INTERVAL);
    }
}
