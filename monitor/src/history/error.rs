//! What can go wrong with the history store.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("history directory {} is not writable (history is off; choose another --history-path, or --no-history)", .dir.display())]
    NotWritable {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the history database {}", .path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("history database: {what}")]
    Sql {
        what: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    /// A range the store cannot answer as asked (the message says why).
    #[error("{0}")]
    Range(String),
    #[error("cannot start the history reader thread")]
    Thread(#[source] std::io::Error),
    #[error("history is busy: too many range queries waiting")]
    Busy,
    #[error("history has stopped")]
    Stopped,
}

/// Attaches what was being done to a SQLite error.
pub(super) trait SqlContext<T> {
    fn what(self, what: &'static str) -> Result<T, HistoryError>;
}

impl<T> SqlContext<T> for Result<T, rusqlite::Error> {
    fn what(self, what: &'static str) -> Result<T, HistoryError> {
        self.map_err(|source| HistoryError::Sql { what, source })
    }
}
