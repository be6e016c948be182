//! Every map of the XDP observer and the TC timing program, in one place:
//! the stages reached by tail call share them.

use aya_ebpf::{
    macros::map,
    maps::{Array, LruHashMap, PerCpuArray, PerfEventArray, ProgramArray, RingBuf},
};
use monitor_common::{
    class::CLASS_COUNT,
    maps::{
        ClassCounter, RateWindow, SamplingConfig, SourceKey, SourceStats, DEFAULT_RING_BYTES, DEFAULT_SOURCES_MAX,
        PIPELINE_COUNTER_COUNT, STAGE_COUNT,
    },
    timing::{
        FlowKey, HttpTimingConfig, PendingRequest, DEFAULT_HTTP_REQUESTS_MAX, HTTP_COUNTER_COUNT, LATENCY_BUCKETS,
        STATUS_CLASSES,
    },
    tls_capture::{HelloFlow, HelloGate, HelloSegment, HELLO_COUNTER_COUNT, HELLO_FLOWS_MAX},
};

use crate::stash::Stash;

#[map]
pub static CLASS_COUNTERS: PerCpuArray<ClassCounter> = PerCpuArray::with_max_entries(CLASS_COUNT as u32, 0);

#[map]
pub static PIPELINE_COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(PIPELINE_COUNTER_COUNT, 0);

#[map]
pub static SOURCES: LruHashMap<SourceKey, SourceStats> = LruHashMap::with_max_entries(DEFAULT_SOURCES_MAX, 0);

#[map]
pub static PORTS: Array<u8> = Array::with_max_entries(65_536, 0);

#[map]
pub static SAMPLING: Array<SamplingConfig> = Array::with_max_entries(1, 0);

#[map]
pub static GLOBAL_WINDOW: PerCpuArray<RateWindow> = PerCpuArray::with_max_entries(1, 0);

#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(DEFAULT_RING_BYTES, 0);

/// The later stages of the XDP observer, filled by the daemon.
#[map]
pub static STAGES: ProgramArray = ProgramArray::with_max_entries(STAGE_COUNT, 0);

/// What the first stage hands to the later ones (per CPU: a tail call stays
/// on its CPU and XDP runs with preemption disabled).
#[map]
pub static STASH: PerCpuArray<Stash> = PerCpuArray::with_max_entries(1, 0);

#[map]
pub static HTTP_REQUESTS: LruHashMap<FlowKey, PendingRequest> =
    LruHashMap::with_max_entries(DEFAULT_HTTP_REQUESTS_MAX, 0);

#[map]
pub static HTTP_COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(HTTP_COUNTER_COUNT, 0);

#[map]
pub static HTTP_STATUS: PerCpuArray<u64> = PerCpuArray::with_max_entries(STATUS_CLASSES as u32, 0);

#[map]
pub static HTTP_LATENCY: PerCpuArray<u64> = PerCpuArray::with_max_entries(LATENCY_BUCKETS as u32, 0);

#[map]
pub static HTTP_CONFIG: Array<HttpTimingConfig> = Array::with_max_entries(1, 0);

#[map]
pub static HTTP_WINDOW: PerCpuArray<RateWindow> = PerCpuArray::with_max_entries(1, 0);

#[map]
pub static HTTP_EVENTS: RingBuf = RingBuf::with_byte_size(1 << 18, 0);

/// Whole frames of ClientHello segments, for the daemon to reassemble.
#[map]
pub static TLS_HELLO_SEGMENTS: PerfEventArray<HelloSegment> = PerfEventArray::new(0);

/// Flows whose ClientHello goes on in a later segment.
#[map]
pub static TLS_HELLO_FLOWS: LruHashMap<FlowKey, HelloFlow> = LruHashMap::with_max_entries(HELLO_FLOWS_MAX, 0);

#[map]
pub static TLS_HELLO_COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(HELLO_COUNTER_COUNT, 0);

#[map]
pub static TLS_HELLO_GATE: Array<HelloGate> = Array::with_max_entries(1, 0);

/// Adds `value` to a per-CPU counter. Per-CPU values need no atomics: XDP
/// and TC both run with bottom halves disabled, so nothing else on this CPU
/// writes the value meanwhile.
#[inline(always)]
pub fn add(map: &PerCpuArray<u64>, index: u32, value: u64) {
    if let Some(v) = map.get_ptr_mut(index) {
        // SAFETY: per-CPU map value, see above.
        unsafe { *v += value };
    }
}

/// The daemon's flags for `port` (`PORT_HTTP`, ...; 0 if none).
#[inline(always)]
pub fn port_flags(port: u16) -> u8 {
    PORTS.get(u32::from(port)).copied().unwrap_or(0)
}
