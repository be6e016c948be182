//! The writer task: watches the pipeline's snapshots and commits each new
//! minute (off the runtime, on a blocking thread), then applies the
//! retention; keeps the store's status for /api/stats.

use std::{path::PathBuf, sync::Arc};

use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
};

use super::{
    error::HistoryError,
    reader::HistoryReader,
    store::{AlertRecord, Retention, Store},
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

/// Where alert rules record their alerts: the writer commits them between
/// minutes (one writer, one connection). Cheap to clone.
#[derive(Clone)]
pub struct AlertRecorder {
    alerts: mpsc::Sender<AlertRecord>,
}

impl AlertRecorder {
    /// Queues `alert` for the writer; Busy when it is this far behind.
    pub fn record(&self, alert: AlertRecord) -> Result<(), HistoryError> {
        self.alerts.try_send(alert).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => HistoryError::Busy,
            mpsc::error::TrySendError::Closed(_) => HistoryError::Stopped,
        })
    }
}

/// Alerts waiting for the writer at most.
const ALERT_QUEUE: usize = 1_024;

/// Runs `work` on the store off the runtime; None if it panicked (the
/// store is then gone and history stops).
async fn blocking<T: Send + 'static>(
    store: &mut Option<Store>,
    work: impl FnOnce(&mut Store) -> T + Send + 'static,
) -> Option<T> {
    let mut owned = store.take()?;
    let task = tokio::task::spawn_blocking(move || {
        let result = work(&mut owned);
        (owned, result)
    });
    match task.await {
        Ok((owned, result)) => {
            *store = Some(owned);
            Some(result)
        }
        Err(_) => {
            tracing::error!("the history writer panicked; history stops");
            None
        }
    }
}

/// Commits every new minute of `snapshots` until the pipeline stops (its
/// last snapshot carries the minute in progress), and the alerts recorded
/// through the returned [`AlertRecorder`].
pub fn spawn_writer(
    store: Store,
    mut snapshots: watch::Receiver<Arc<Snapshot>>,
    status: watch::Sender<HistoryStatusDoc>,
) -> (JoinHandle<()>, AlertRecorder) {
    let (alerts_tx, mut alerts) = mpsc::channel::<AlertRecord>(ALERT_QUEUE);
    let task = tokio::spawn(async move {
        let mut store = Some(store);
        let mut written = snapshots.borrow().last_minute.as_ref().map_or(0, |m| m.start_ms);
        loop {
            let minute = tokio::select! {
                changed = snapshots.changed() => match changed {
                    Ok(()) => snapshots.borrow_and_update().last_minute.clone(),
                    Err(_) => break, // the pipeline has stopped
                },
                Some(alert) = alerts.recv() => {
                    let Some(result) = blocking(&mut store, move |s| s.record_alert(&alert)).await else { break };
                    if let Err(error) = result {
                        tracing::warn!(error = %error_chain(&error), "history: an alert was not recorded");
                    }
                    continue;
                }
            };
            let Some(minute) = minute.filter(|m| m.start_ms > written) else { continue };
            written = minute.start_ms;
            let start_ms = minute.start_ms;
            let work = move |s: &mut Store| {
                let result = s.write_minute(&minute).and_then(|()| s.enforce_retention(now_ms()));
                (result, s.file_bytes())
            };
            let Some((result, bytes)) = blocking(&mut store, work).await else { break };
            status.send_modify(|s| {
                s.file_bytes = bytes;
                match &result {
                    Ok(_) => {
                        s.minutes_written += 1;
                        s.last_minute_ms = Some(start_ms);
                        s.error = None;
                    }
                    Err(error) => s.error = Some(error_chain(error)),
                }
            });
            match result {
                Ok(deleted) => tracing::debug!(minute_ms = start_ms, deleted, bytes, "history: minute committed"),
                Err(error) => tracing::warn!(error = %error_chain(&error), "history: a minute was not written"),
            }
        }
        tracing::debug!("history writer stopped");
    });
    (task, AlertRecorder { alerts: alerts_tx })
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
