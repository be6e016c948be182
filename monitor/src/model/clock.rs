//! Wall-clock time, and the kernel's monotonic timestamps turned into it.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Turns the kernel's `bpf_ktime_get_ns` (CLOCK_MONOTONIC) into wall-clock
/// milliseconds, with the offset between the two clocks taken once.
#[derive(Clone, Copy, Debug)]
pub struct WallClock {
    /// CLOCK_REALTIME minus CLOCK_MONOTONIC, in ns.
    realtime_offset_ns: i128,
}

impl WallClock {
    pub fn new() -> Self {
        WallClock { realtime_offset_ns: clock_ns(libc::CLOCK_REALTIME) - clock_ns(libc::CLOCK_MONOTONIC) }
    }

    /// A kernel timestamp as wall-clock milliseconds; 0 stays 0 ("never").
    pub fn wall_ms(&self, monotonic_ns: u64) -> u64 {
        if monotonic_ns == 0 {
            return 0;
        }
        u64::try_from((i128::from(monotonic_ns) + self.realtime_offset_ns) / 1_000_000).unwrap_or(0)
    }
}

impl Default for WallClock {
    fn default() -> Self {
        Self::new()
    }
}

fn clock_ns(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: valid clock id and a valid out pointer.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128
}
