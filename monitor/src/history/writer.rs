//! The writer task: watches the pipeline's snapshots and commits each new
//! minute (off the runtime, on a blocking thread), then applies the
//! retention; keeps the store's status for /api/stats.

use std::{path::PathBuf, sync::Arc};

use tokio::{sync::watch, task::JoinHandle};

use super::{
    error::HistoryError,
    reader::HistoryReader,
    store::{Retention, Store},
};
use crate::{
    model::now_ms,
    state::{documents::HistoryStatusDoc, Restored, Snapshot},
};

/// Where the store lives and how much it keeps.
#[derive(Clone, Debug)]
pub struct HistoryConfig {
    pub path: PathBuf,
    pub retention: Retention,
}

/// An open store: the writer's side, the last hour, the readers' side.
pub struct Opened {
    pub store: Store,
    pub restored: Restored,
    pub reader: HistoryReader,
}

impl Opened {
    /// The status to start with.
    pub fn status(&self) -> HistoryStatusDoc {
        HistoryStatusDoc {
            enabled: true,
            path: Some(self.store.path().display().to_string()),
            error: None,
            days: self.store.retention().days,
            max_bytes: self.store.retention().max_bytes,
            file_bytes: self.store.file_bytes(),
            minutes_written: 0,
            last_minute_ms: None,
            restored_minutes: self.restored.minutes.len() as u64,
        }
    }
}

/// Opens the store, applies the retention and loads the last hour back
/// (blocking: at start, before the pipeline exists).
pub fn open(config: &HistoryConfig) -> Result<Opened, HistoryError> {
    let mut store = Store::open(&config.path, config.retention)?;
    let now = now_ms();
    store.enforce_retention(now)?;
    let restored = store.load_last_hour(now)?;
    let reader = HistoryReader::spawn(&config.path)?;
    Ok(Opened { store, restored, reader })
}

/// Commits every new minute of `snapshots` until the pipeline stops (its
/// last snapshot carries the minute in progress).
pub fn spawn_writer(
    store: Store,
    mut snapshots: watch::Receiver<Arc<Snapshot>>,
    status: watch::Sender<HistoryStatusDoc>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut store = Some(store);
        let mut written = snapshots.borrow().last_minute.as_ref().map_or(0, |m| m.start_ms);
        while snapshots.changed().await.is_ok() {
            let minute = snapshots.borrow_and_update().last_minute.clone();
            let Some(minute) = minute.filter(|m| m.start_ms > written) else { continue };
            let Some(mut owned) = store.take() else { break };
            let task = tokio::task::spawn_blocking(move || {
                let result = owned.write_minute(&minute).and_then(|()| owned.enforce_retention(now_ms()));
                let bytes = owned.file_bytes();
                (owned, minute, result, bytes)
            });
            let Ok((owned, minute, result, bytes)) = task.await else {
                tracing::error!("the history writer panicked; history stops");
                break;
            };
            store = Some(owned);
            written = minute.start_ms;
            status.send_modify(|s| {
                s.file_bytes = bytes;
                match &result {
                    Ok(_) => {
                        s.minutes_written += 1;
                        s.last_minute_ms = Some(minute.start_ms);
                        s.error = None;
                    }
                    Err(error) => s.error = Some(error_chain(error)),
                }
            });
            match result {
                Ok(deleted) => {
                    tracing::debug!(minute_ms = minute.start_ms, deleted, bytes, "history: minute committed")
                }
                Err(error) => tracing::warn!(error = %error_chain(&error), "history: a minute was not written"),
            }
        }
        tracing::debug!("history writer stopped");
    })
}

/// The error and its sources on one line.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
