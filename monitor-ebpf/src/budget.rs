//! The fixed one-second event budget every sampling decision uses.

use monitor_common::maps::{RateWindow, WINDOW_NS};

/// True if `window` still has budget this second (0 = no limit); rolls the
/// window over when due and takes one unit.
#[inline(always)]
pub fn take(window: *mut RateWindow, limit: u64, now: u64) -> bool {
    // SAFETY: `window` is a map value pointer. Concurrent updates of a
    // shared window may race; that can only let a few extra events through,
    // and every event or suppression is still counted exactly per CPU.
    unsafe {
        if now.wrapping_sub((*window).start_ns) >= WINDOW_NS {
            (*window).start_ns = now;
            (*window).count = 0;
        }
        if limit != 0 && (*window).count >= limit {
            return false;
        }
        (*window).count += 1;
    }
    true
}
