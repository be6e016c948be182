//! The agent's bounded queue of formatted messages. Events and counters go
//! through one FIFO, so a counters message reaches the central after every
//! event queued before it: what the central has not received by then was
//! lost, and the counters say how many were sent. When the queue is full
//! the oldest message goes; dropped events are counted and reported in the
//! next counters message (a dropped counters message shows as a sequence gap).

use std::{collections::VecDeque, sync::Mutex};

use tokio::sync::Notify;

use crate::lock::lock;

#[derive(Debug)]
pub(super) enum Item {
    Event(String),
    Counters(String),
}

/// What a counters message reports about the queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct QueueCounts {
    /// Counters messages made so far (this one's sequence number).
    pub(super) seq: u64,
    /// Events handed to the queue, dropped or not.
    pub(super) events: u64,
    /// Events dropped before they were written.
    pub(super) dropped: u64,
}

#[derive(Debug, Default)]
struct Inner {
    items: VecDeque<Item>,
    counts: QueueCounts,
    closed: bool,
}

#[derive(Debug)]
pub(super) struct Queue {
    inner: Mutex<Inner>,
    capacity: usize,
    ready: Notify,
}

impl Queue {
    pub(super) fn new(capacity: usize) -> Self {
        Queue { inner: Mutex::new(Inner::default()), capacity: capacity.max(1), ready: Notify::new() }
    }

    fn make_room(&self, inner: &mut Inner) {
        while inner.items.len() >= self.capacity {
            if let Some(Item::Event(_)) = inner.items.pop_front() {
                inner.counts.dropped += 1;
            }
        }
    }

    pub(super) fn push_event(&self, message: String) {
        {
            let mut inner = lock(&self.inner);
            self.make_room(&mut inner);
            inner.counts.events += 1;
            inner.items.push_back(Item::Event(message));
        }
        self.ready.notify_one();
    }

    /// Events that never reached the queue (the agent's reader fell behind).
    pub(super) fn count_missed(&self, n: u64) {
        let mut inner = lock(&self.inner);
        inner.counts.events += n;
        inner.counts.dropped += n;
    }

    /// Queues a counters message made from the queue's counts at this moment.
    pub(super) fn push_counters(&self, make: impl FnOnce(QueueCounts) -> String) {
        {
            let mut inner = lock(&self.inner);
            self.make_room(&mut inner);
            inner.counts.seq += 1;
            let message = make(inner.counts);
            inner.items.push_back(Item::Counters(message));
        }
        self.ready.notify_one();
    }

    /// Messages that were being written when the connection failed.
    pub(super) fn lost(&self, items: &[Item]) {
        let events = items.iter().filter(|i| matches!(i, Item::Event(_))).count() as u64;
        lock(&self.inner).counts.dropped += events;
    }

    /// No more messages will come: the writer drains and stops.
    pub(super) fn close(&self) {
        lock(&self.inner).closed = true;
        self.ready.notify_one();
    }

    pub(super) fn counts(&self) -> QueueCounts {
        lock(&self.inner).counts
    }

    /// Up to `max` messages, waiting for the first; None once closed and empty.
    pub(super) async fn next(&self, max: usize) -> Option<Vec<Item>> {
        loop {
            // Registered before looking, so a push in between is not missed.
            let notified = self.ready.notified();
            {
                let mut inner = lock(&self.inner);
                if !inner.items.is_empty() {
                    let n = inner.items.len().min(max);
                    return Some(inner.items.drain(..n).collect());
                }
                if inner.closed {
                    return None;
                }
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bounded_with_counted_drops() {
        let q = Queue::new(3);
        q.push_counters(|c| format!("c{}", c.seq));
        for i in 0..4 {
            q.push_event(format!("e{i}"));
        }
        // c1 and e0 were pushed out; only e0 counts as a dropped event.
        assert_eq!(q.counts(), QueueCounts { seq: 1, events: 4, dropped: 1 });
        q.count_missed(2);
        q.push_counters(|c| format!("c{} events={} dropped={}", c.seq, c.events, c.dropped));
        let items = q.next(10).await.expect("items");
        let texts: Vec<_> = items
            .iter()
            .map(|i| match i {
                Item::Event(s) | Item::Counters(s) => s.as_str(),
            })
            .collect();
        assert_eq!(texts, ["e2", "e3", "c2 events=6 dropped=4"]);
        q.lost(&items);
        assert_eq!(q.counts().dropped, 6);
        q.close();
        assert!(q.next(10).await.is_none());
    }
}
