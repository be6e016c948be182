//! Mutexes that survive a panicked holder.

use std::sync::{Mutex, MutexGuard};

/// Locks a mutex, recovering from poisoning: a panicked thread must not
/// take the whole daemon down with it.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
