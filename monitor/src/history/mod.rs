//! The embedded history store: SQLite (WAL) under `/var/lib/monitor/`.
//! One writer task commits each minute the pipeline closes (and rolls it
//! up into its hour); a reader thread answers ranges for the API; the last
//! hour is loaded back at start. Between `state` (whose snapshots it
//! reads, and whose types it returns) and `sinks` (which ask it).
//!
//! Tiers: minutes are kept for [`MINUTE_TIER_DAYS`] (within
//! `--history-days`), hours for `--history-days`; past `--history-max-bytes`
//! the oldest hour goes first, and the file shrinks (incremental vacuum).

mod error;
mod query;
mod reader;
mod schema;
mod store;
mod writer;

#[cfg(test)]
mod tests;

pub use error::HistoryError;
pub use query::{choose_step, HistoryRange, MAX_POINTS};
/// The reader thread's queries on a connection of one's own (tests, tools).
pub use query::{history as query_history, top as query_top};
pub use reader::HistoryReader;
pub use store::{AlertRecord, Retention, Store, HOUR_MS, MINUTE_MS, MINUTE_TIER_DAYS};
pub use writer::{error_chain, open, spawn_writer, AlertRecorder, HistoryConfig, Opened};
