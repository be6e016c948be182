//! Where events come from: the kernel's ring buffers and syslog senders.
//! Each source sends batches into an [`EventSink`] it does not own the other
//! end of; the pipeline (`state`) reads them.

pub mod kernel;
pub mod syslog;

use std::sync::{
    atomic::{AtomicU64, Ordering::Relaxed},
    Arc,
};

use serde::Serialize;
use tokio::sync::mpsc;

use crate::model::Event;

/// Most events in one batch: what one ring drain or one `recvmmsg` yields
/// at most, so the queue's bound in batches bounds it in events.
pub const MAX_BATCH: usize = 256;

/// Events that arrived together, handed over with one channel operation
/// (one wake-up of the pipeline instead of one per event).
pub type Batch = Vec<Event>;

/// Counts of what happened to events on their way into the pipeline.
#[derive(Debug, Default)]
pub struct SinkCounters {
    pub accepted: AtomicU64,
    /// The pipeline queue was full: the daemon could not keep up.
    pub dropped_queue_full: AtomicU64,
    /// Ring-buffer records too short to be an event (a kernel/daemon mismatch).
    pub malformed_records: AtomicU64,
}

/// A copy of [`SinkCounters`] at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SinkCounts {
    pub accepted: u64,
    pub dropped_queue_full: u64,
    pub malformed_records: u64,
}

impl SinkCounters {
    pub fn read(&self) -> SinkCounts {
        SinkCounts {
            accepted: self.accepted.load(Relaxed),
            dropped_queue_full: self.dropped_queue_full.load(Relaxed),
            malformed_records: self.malformed_records.load(Relaxed),
        }
    }
}

/// The entry into the pipeline. The kernel ring readers never wait: a batch
/// that does not fit is dropped and counted. Syslog receivers wait instead,
/// so a backlog stays in the socket (UDP: counted drops when its buffer is
/// full; TCP: flow control slows the sender).
#[derive(Clone)]
pub struct EventSink {
    tx: mpsc::Sender<Batch>,
    counters: Arc<SinkCounters>,
}

impl EventSink {
    /// A sink whose queue holds at most `batches` batches of [`MAX_BATCH`] events.
    pub fn new(batches: usize) -> (EventSink, mpsc::Receiver<Batch>, Arc<SinkCounters>) {
        let (tx, rx) = mpsc::channel(batches);
        let counters = Arc::new(SinkCounters::default());
        (EventSink { tx, counters: Arc::clone(&counters) }, rx, counters)
    }

    /// Never waits: a batch the queue cannot take is dropped and counted.
    pub fn offer(&self, batch: Batch) {
        let n = batch.len() as u64;
        if n == 0 {
            return;
        }
        match self.tx.try_send(batch) {
            Ok(()) => self.counters.accepted.fetch_add(n, Relaxed),
            Err(_) => self.counters.dropped_queue_full.fetch_add(n, Relaxed),
        };
    }

    /// Waits while the queue is full (only from a thread outside the async
    /// runtime); false once the pipeline has shut down.
    pub fn offer_waiting(&self, batch: Batch) -> bool {
        let n = batch.len() as u64;
        if n == 0 {
            return !self.tx.is_closed();
        }
        let sent = self.tx.blocking_send(batch).is_ok();
        if sent {
            self.counters.accepted.fetch_add(n, Relaxed);
        }
        sent
    }

    /// Waits while the queue is full; false once the pipeline has shut down.
    pub async fn send(&self, batch: Batch) -> bool {
        let n = batch.len() as u64;
        let sent = self.tx.send(batch).await.is_ok();
        if sent {
            self.counters.accepted.fetch_add(n, Relaxed);
        }
        sent
    }

    pub fn count_malformed_record(&self) {
        self.counters.malformed_records.fetch_add(1, Relaxed);
    }
}
