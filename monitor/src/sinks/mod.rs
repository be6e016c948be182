//! Where the state goes out: the dashboard, the JSON API, the NDJSON and
//! WebSocket streams, and Prometheus metrics, all served by `server`; and
//! to a central monitor, as syslog (`forward`, agent mode).

pub mod forward;
pub mod server;
