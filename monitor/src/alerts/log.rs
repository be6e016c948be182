//! Alert history: every firing and resolution. A trait, so the daemon's
//! history store can keep it; [`MemoryAlertLog`] keeps the newest in memory.

use std::{collections::VecDeque, sync::Arc};

use super::doc::AlertEventDoc;

pub trait AlertLog: Send {
    fn record(&mut self, entry: Arc<AlertEventDoc>);
    /// The newest `n`, newest first.
    fn recent(&self, n: usize) -> Vec<Arc<AlertEventDoc>>;
}

/// The newest `capacity` entries.
#[derive(Debug)]
pub struct MemoryAlertLog {
    entries: VecDeque<Arc<AlertEventDoc>>,
    capacity: usize,
}

impl MemoryAlertLog {
    pub fn new(capacity: usize) -> Self {
        MemoryAlertLog { entries: VecDeque::new(), capacity: capacity.max(1) }
    }
}

impl AlertLog for MemoryAlertLog {
    fn record(&mut self, entry: Arc<AlertEventDoc>) {
        if self.entries.len() >= self.capacity {
            self.entries.pop_front();
        }
        self.entries.push_back(entry);
    }

    fn recent(&self, n: usize) -> Vec<Arc<AlertEventDoc>> {
        self.entries.iter().rev().take(n).cloned().collect()
    }
}
