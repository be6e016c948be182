//! Where the state goes out: the dashboard, the JSON API, the NDJSON and
//! WebSocket streams, and Prometheus metrics, all served by `server`.

pub mod server;
