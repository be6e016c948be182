//! The two requests every harness makes to the daemon's API: "does it
//! answer" (health) and "GET this as JSON". Timeouts on both, so a daemon
//! that stopped (SIGSTOP in a fault test) cannot hang a harness forever.

use std::time::Duration;

use anyhow::Context as _;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// GET `url` and parse the body as JSON; an HTTP error status is an error.
pub fn get_json(url: &str) -> anyhow::Result<serde_json::Value> {
    let agent = ureq::AgentBuilder::new().timeout_connect(CONNECT_TIMEOUT).timeout_read(READ_TIMEOUT).build();
    agent
        .get(url)
        .call()
        .with_context(|| format!("GET {url}"))?
        .into_json()
        .with_context(|| format!("GET {url}: the body is not JSON"))
}

/// True if GET `url` answers 200 within 5 s.
pub fn is_ok(url: &str) -> bool {
    ureq::get(url).timeout(Duration::from_secs(5)).call().is_ok_and(|r| r.status() == 200)
}
