//! Range queries off the async runtime: one thread with its own read-only
//! connection (WAL lets it read while the writer commits); handlers send
//! it a job and await the answer, holding no lock.

use std::{path::Path, sync::mpsc};

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::{error::HistoryError, query, schema, HistoryRange};
use crate::state::documents::{HistoryDoc, TopDoc};

/// Queries waiting for the reader at most; more are refused as busy.
const QUEUE: usize = 64;

type Job = Box<dyn FnOnce(&Connection) + Send>;

/// The handlers' side of the reader thread; it stops when every clone is gone.
#[derive(Clone)]
pub struct HistoryReader {
    jobs: mpsc::SyncSender<Job>,
}

impl HistoryReader {
    /// Starts the reader thread on the database at `path` (which exists).
    pub fn spawn(path: &Path) -> Result<HistoryReader, HistoryError> {
        let conn = schema::open_reader(path)?;
        let (jobs, queue) = mpsc::sync_channel::<Job>(QUEUE);
        std::thread::Builder::new()
            .name("history-reader".into())
            .spawn(move || {
                for job in queue {
                    job(&conn);
                }
            })
            .map_err(HistoryError::Thread)?;
        Ok(HistoryReader { jobs })
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, HistoryError> + Send + 'static,
    ) -> Result<T, HistoryError> {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let _ = reply.send(f(conn));
        });
        self.jobs.try_send(job).map_err(|e| match e {
            mpsc::TrySendError::Full(_) => HistoryError::Busy,
            mpsc::TrySendError::Disconnected(_) => HistoryError::Stopped,
        })?;
        answer.await.map_err(|_| HistoryError::Stopped)?
    }

    /// The chart over a range (see [`query::choose_step`] for the step).
    pub async fn history(&self, range: HistoryRange, now_ms: u64) -> Result<HistoryDoc, HistoryError> {
        self.run(move |conn| query::history(conn, range, now_ms)).await
    }

    /// The country codes and ASNs seen since `since_ms` (the alert rules'
    /// `new_origin`: what was not seen in the last D days).
    pub async fn origins_seen_since(
        &self,
        since_ms: u64,
    ) -> Result<(std::collections::HashSet<String>, std::collections::HashSet<u32>), HistoryError> {
        self.run(move |conn| query::origins_seen_since(conn, since_ms)).await
    }

    /// The top lists of a range, `n` of each.
    pub async fn top(&self, from_ms: u64, to_ms: u64, n: usize, now_ms: u64) -> Result<TopDoc, HistoryError> {
        self.run(move |conn| query::top(conn, from_ms, to_ms, n, now_ms)).await
    }
}
