//! The dashboard's headline figures, computed once a second where the data
//! is, so that every viewer reads the same numbers, each with its window.

use serde::Serialize;

/// Seconds over which sources and countries count as active.
pub(super) const ACTIVE_WINDOW_S: u64 = 60;

/// `headline` in /api/stats (docs/API.md).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Headline {
    /// Wall-clock end of the second the rates describe, ms since the epoch (0 before the first).
    pub end_ms: u64,
    /// The rates are over the last complete second.
    pub rate_window_s: u64,
    /// Packets of every class the kernel counted on the XDP interfaces in that second.
    pub xdp_packets_per_s: u64,
    /// Their bits (frame bytes × 8).
    pub xdp_bits_per_s: u64,
    /// Packets that syslog senders reported in that second (event weights): apart, never added to XDP's.
    pub syslog_packets_per_s: u64,
    /// Events received in that second, both paths.
    pub events_per_s: u64,
    /// Sources and countries are those seen in the last `active_window_s` seconds.
    pub active_window_s: u64,
    pub active_sources: u64,
    pub active_countries: u64,
}
