//! Map names, keys and values shared by the XDP program and the daemon.
//!
//! All values are plain `#[repr(C)]` structs with explicit padding so their
//! layout is identical in the BPF object and on the host.

use crate::class::TRACKED_CLASS_COUNT;

/// Per-CPU array of [`ClassCounter`], indexed by [`crate::Class`].
pub const MAP_CLASS_COUNTERS: &str = "CLASS_COUNTERS";
/// Per-CPU array of `u64`, indexed by [`PipelineCounter`].
pub const MAP_PIPELINE_COUNTERS: &str = "PIPELINE_COUNTERS";
/// LRU hash: [`SourceKey`] to [`SourceStats`].
pub const MAP_SOURCES: &str = "SOURCES";
/// Array of 65536 `u8` port flags ([`PORT_HTTP`], ...), indexed by port.
pub const MAP_PORTS: &str = "PORTS";
/// Array with one [`SamplingConfig`].
pub const MAP_SAMPLING: &str = "SAMPLING";
/// Per-CPU array with one [`RateWindow`]: the global event budget, per CPU.
pub const MAP_GLOBAL_WINDOW: &str = "GLOBAL_WINDOW";
/// Ring buffer of [`crate::PacketEvent`].
pub const MAP_EVENTS: &str = "EVENTS";
/// Program array of the XDP observer's later stages, indexed by [`Stage`].
pub const MAP_STAGES: &str = "STAGES";

/// `static` in the XDP object, set by the daemon before load: 1 when the
/// kernel has `bpf_ktime_get_coarse_ns` (Linux 5.11), else 0. The verifier
/// prunes the branch not taken, so an older kernel never sees the helper.
pub const GLOBAL_COARSE_CLOCK: &str = "COARSE_CLOCK";

/// Name of the XDP program in the object file.
pub const PROGRAM_XDP: &str = "monitor_xdp";
/// The XDP observer's stages, reached by tail call from [`PROGRAM_XDP`]:
/// each is verified on its own, so the verifier never walks the header
/// parser's paths times the event writer's.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Writes a sampled event (header fields and payload) to the ring.
    Event = 0,
    /// Records an HTTP request's arrival for response timing, then goes on
    /// to [`Stage::Event`] when the packet is also sampled.
    HttpRequest = 1,
    /// Follows a TLS ClientHello into the flow's next segments (see
    /// [`crate::tls_capture`]), then goes on as [`Stage::Event`] does.
    TlsHello = 2,
}

pub const STAGE_COUNT: u32 = 3;

impl Stage {
    pub const ALL: [Stage; STAGE_COUNT as usize] = [Stage::Event, Stage::HttpRequest, Stage::TlsHello];

    /// The program's name in the object file.
    pub const fn program(self) -> &'static str {
        match self {
            Stage::Event => "monitor_xdp_event",
            Stage::HttpRequest => "monitor_xdp_request",
            Stage::TlsHello => "monitor_xdp_tls",
        }
    }
}

/// Name of the trivial XDP_PASS program used as the benchmark baseline.
pub const PROGRAM_BASELINE: &str = "baseline_xdp";

pub const DEFAULT_SOURCES_MAX: u32 = 65_536;
pub const DEFAULT_RING_BYTES: u32 = 1 << 20;

/// TCP to this port is HTTP.
pub const PORT_HTTP: u8 = 1 << 0;
/// TCP to this port is HTTPS.
pub const PORT_HTTPS: u8 = 1 << 1;
/// UDP to this port is QUIC (counted as HTTPS).
pub const PORT_QUIC: u8 = 1 << 2;

/// Packets and bytes of one class.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClassCounter {
    pub packets: u64,
    pub bytes: u64,
}

/// Indexes into the pipeline counter array: the honest accounting of what
/// happened to every packet that was eligible to become an event.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PipelineCounter {
    /// Packets of a tracked class that could have become an event.
    EventEligible = 0,
    /// Events written to the ring buffer.
    EventSubmitted = 1,
    /// Events not emitted because a per-source budget was spent.
    SuppressedSource = 2,
    /// Events not emitted because the global budget was spent.
    SuppressedGlobal = 3,
    /// Events lost because the ring buffer was full.
    RingFull = 4,
    /// New entries inserted into the sources map (evictions = inserted - live).
    SourceInserted = 5,
    /// Source entries that could not be inserted.
    SourceInsertFailed = 6,
    /// Packets whose later stage could not be reached (a failed tail call:
    /// never expected once the daemon has filled [`MAP_STAGES`]); a sampled
    /// one's weight goes back to its source's pending weight.
    StageFailed = 7,
}

pub const PIPELINE_COUNTER_COUNT: u32 = 8;

impl PipelineCounter {
    pub const ALL: [PipelineCounter; PIPELINE_COUNTER_COUNT as usize] = [
        PipelineCounter::EventEligible,
        PipelineCounter::EventSubmitted,
        PipelineCounter::SuppressedSource,
        PipelineCounter::SuppressedGlobal,
        PipelineCounter::RingFull,
        PipelineCounter::SourceInserted,
        PipelineCounter::SourceInsertFailed,
        PipelineCounter::StageFailed,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            PipelineCounter::EventEligible => "event_eligible",
            PipelineCounter::EventSubmitted => "event_submitted",
            PipelineCounter::SuppressedSource => "suppressed_source",
            PipelineCounter::SuppressedGlobal => "suppressed_global",
            PipelineCounter::RingFull => "ring_full",
            PipelineCounter::SourceInserted => "source_inserted",
            PipelineCounter::SourceInsertFailed => "source_insert_failed",
            PipelineCounter::StageFailed => "stage_failed",
        }
    }
}

/// Source address as IPv6; IPv4 is stored IPv4-mapped (`::ffff:a.b.c.d`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SourceKey {
    pub addr: [u8; 16],
}

/// Per-source statistics for the tracked classes (indexed by class).
/// Updated with atomic adds from every CPU; timestamps are
/// `bpf_ktime_get_ns` (CLOCK_MONOTONIC), 0 meaning "never".
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SourceStats {
    pub packets: [u64; TRACKED_CLASS_COUNT],
    pub bytes: [u64; TRACKED_CLASS_COUNT],
    pub first_seen_ns: [u64; TRACKED_CLASS_COUNT],
    pub last_seen_ns: [u64; TRACKED_CLASS_COUNT],
    /// Per-source event budget window (see [`RateWindow`]).
    pub window: RateWindow,
    /// Packets of each class suppressed since this source's last event of
    /// that class; its next event of the same class carries them as weight,
    /// so event weights summed by class match the class counters.
    pub pending_weight: [u64; TRACKED_CLASS_COUNT],
}

/// A fixed one-second window event budget.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateWindow {
    pub start_ns: u64,
    pub count: u64,
}

/// Event sampling limits, set by the daemon. A limit of 0 means "no limit".
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SamplingConfig {
    /// Events per second per CPU (the daemon divides its global limit).
    pub global_per_cpu_per_sec: u64,
    /// Events per second per source address.
    pub per_source_per_sec: u64,
    /// 1 to emit events at all; 0 for counting only.
    pub events_enabled: u32,
    /// Unread bytes in the event ring at which a submit wakes the reader;
    /// below that the reader's own timer drains the ring. Waking on every
    /// event costs microseconds per packet at low rates.
    pub wakeup_bytes: u32,
}

pub const WINDOW_NS: u64 = 1_000_000_000;

#[cfg(feature = "user")]
mod pod {
    // SAFETY: all of these are repr(C) structs of integers with explicit
    // padding, valid for any bit pattern.
    unsafe impl aya::Pod for super::ClassCounter {}
    unsafe impl aya::Pod for super::SourceKey {}
    unsafe impl aya::Pod for super::SourceStats {}
    unsafe impl aya::Pod for super::RateWindow {}
    unsafe impl aya::Pod for super::SamplingConfig {}
}
