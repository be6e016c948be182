//! Reading the kernel's exact per-CPU counters.

use aya::maps::{HashMap, PerCpuArray};
use monitor_common::{
    class::CLASS_COUNT,
    maps::{
        ClassCounter, PipelineCounter, SourceKey, SourceStats, MAP_CLASS_COUNTERS, MAP_PIPELINE_COUNTERS, MAP_SOURCES,
    },
    timing::{
        FlowKey, HttpCounter, PendingRequest, LATENCY_BUCKETS, MAP_HTTP_COUNTERS, MAP_HTTP_LATENCY, MAP_HTTP_REQUESTS,
        MAP_HTTP_STATUS, STATUS_CLASSES,
    },
};
use serde::Serialize;

use super::{loader::missing, KernelError, Observer};

/// Counters summed over all CPUs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct KernelCounters {
    /// Indexed by `Class`.
    pub classes: [ClassCounterView; CLASS_COUNT],
    pub pipeline: PipelineCounts,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ClassCounterView {
    pub packets: u64,
    pub bytes: u64,
}

/// What happened to every packet that could have become an event.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PipelineCounts {
    pub event_eligible: u64,
    pub event_submitted: u64,
    pub suppressed_source: u64,
    pub suppressed_global: u64,
    pub ring_full: u64,
    pub source_inserted: u64,
    pub source_insert_failed: u64,
    /// Whole ClientHellos captured for their SNI (see tls_hello.rs).
    pub tls_hello: super::TlsHelloCounts,
}

impl Observer {
    pub fn counters(&self) -> Result<KernelCounters, KernelError> {
        let ebpf = self.ebpf();
        let classes: PerCpuArray<_, ClassCounter> =
            PerCpuArray::try_from(ebpf.map(MAP_CLASS_COUNTERS).ok_or(missing(MAP_CLASS_COUNTERS))?)?;
        let mut out = KernelCounters::default();
        for (i, slot) in out.classes.iter_mut().enumerate() {
            for cpu in classes.get(&(i as u32), 0)?.iter() {
                slot.packets += cpu.packets;
                slot.bytes += cpu.bytes;
            }
        }
        let pipeline: PerCpuArray<_, u64> =
            PerCpuArray::try_from(ebpf.map(MAP_PIPELINE_COUNTERS).ok_or(missing(MAP_PIPELINE_COUNTERS))?)?;
        let sum = |c: PipelineCounter| -> Result<u64, KernelError> { Ok(pipeline.get(&(c as u32), 0)?.iter().sum()) };
        out.pipeline = PipelineCounts {
            event_eligible: sum(PipelineCounter::EventEligible)?,
            event_submitted: sum(PipelineCounter::EventSubmitted)?,
            suppressed_source: sum(PipelineCounter::SuppressedSource)?,
            suppressed_global: sum(PipelineCounter::SuppressedGlobal)?,
            ring_full: sum(PipelineCounter::RingFull)?,
            source_inserted: sum(PipelineCounter::SourceInserted)?,
            source_insert_failed: sum(PipelineCounter::SourceInsertFailed)?,
            tls_hello: super::tls_hello::counts(self)?,
        };
        Ok(out)
    }

    /// The kernel's exact statistics for one source, if it is in the table.
    pub fn source(&self, ip: std::net::IpAddr) -> Result<Option<SourceStats>, KernelError> {
        let map: HashMap<_, SourceKey, SourceStats> =
            HashMap::try_from(self.ebpf().map(MAP_SOURCES).ok_or(missing(MAP_SOURCES))?)?;
        let addr = match ip {
            std::net::IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            std::net::IpAddr::V6(v6) => v6.octets(),
        };
        match map.get(&SourceKey { addr }, 0) {
            Ok(stats) => Ok(Some(stats)),
            Err(aya::maps::MapError::KeyNotFound) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Every entry of the per-source table. One syscall pair per entry: call
    /// it every few seconds, not per event.
    pub fn sources(&self) -> Result<Vec<(SourceKey, SourceStats)>, KernelError> {
        let map: HashMap<_, SourceKey, SourceStats> =
            HashMap::try_from(self.ebpf().map(MAP_SOURCES).ok_or(missing(MAP_SOURCES))?)?;
        // An entry evicted between listing and lookup is simply skipped.
        Ok(map.iter().filter_map(Result::ok).collect())
    }
}

/// The HTTP timing counters, summed over all CPUs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HttpKernelCounters {
    pub requests_recorded: u64,
    pub requests_replaced: u64,
    pub request_insert_failed: u64,
    pub responses_matched: u64,
    pub responses_unmatched: u64,
    pub event_submitted: u64,
    pub event_suppressed: u64,
    pub event_ring_full: u64,
    pub latency_sum_ns: u64,
    /// Matched responses per status class: other, 1xx, 2xx, 3xx, 4xx, 5xx.
    pub status: [u64; STATUS_CLASSES],
    /// Matched responses per log2 latency bucket (see monitor_common::timing).
    pub latency: Vec<u64>,
}

impl Observer {
    pub fn http_counters(&self) -> Result<HttpKernelCounters, KernelError> {
        let ebpf = self.ebpf();
        let array = |name: &'static str| -> Result<PerCpuArray<_, u64>, KernelError> {
            Ok(PerCpuArray::try_from(ebpf.map(name).ok_or(missing(name))?)?)
        };
        let sum = |map: &PerCpuArray<_, u64>, i: u32| -> Result<u64, KernelError> { Ok(map.get(&i, 0)?.iter().sum()) };
        let counters = array(MAP_HTTP_COUNTERS)?;
        let c = |k: HttpCounter| sum(&counters, k as u32);
        let mut out = HttpKernelCounters {
            requests_recorded: c(HttpCounter::RequestsRecorded)?,
            requests_replaced: c(HttpCounter::RequestsReplaced)?,
            request_insert_failed: c(HttpCounter::RequestInsertFailed)?,
            responses_matched: c(HttpCounter::ResponsesMatched)?,
            responses_unmatched: c(HttpCounter::ResponsesUnmatched)?,
            event_submitted: c(HttpCounter::EventSubmitted)?,
            event_suppressed: c(HttpCounter::EventSuppressed)?,
            event_ring_full: c(HttpCounter::EventRingFull)?,
            latency_sum_ns: c(HttpCounter::LatencySumNs)?,
            ..HttpKernelCounters::default()
        };
        let status = array(MAP_HTTP_STATUS)?;
        for (i, slot) in out.status.iter_mut().enumerate() {
            *slot = sum(&status, i as u32)?;
        }
        let latency = array(MAP_HTTP_LATENCY)?;
        out.latency = (0..LATENCY_BUCKETS as u32).map(|i| sum(&latency, i)).collect::<Result<_, _>>()?;
        Ok(out)
    }

    /// Pending requests in the kernel table.
    pub fn http_pending(&self) -> Result<u64, KernelError> {
        let map: HashMap<_, FlowKey, PendingRequest> =
            HashMap::try_from(self.ebpf().map(MAP_HTTP_REQUESTS).ok_or(missing(MAP_HTTP_REQUESTS))?)?;
        Ok(map.keys().filter(Result::is_ok).count() as u64)
    }

    /// Deletes pending requests older than `max_age_ns` (by the monotonic
    /// clock the kernel stamps them with); returns how many.
    pub fn expire_http_requests(&mut self, max_age_ns: u64) -> Result<u64, KernelError> {
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: valid clock id and out pointer.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        let now = ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64;
        let mut map: HashMap<_, FlowKey, PendingRequest> =
            HashMap::try_from(self.ebpf_mut().map_mut(MAP_HTTP_REQUESTS).ok_or(missing(MAP_HTTP_REQUESTS))?)?;
        let old: Vec<FlowKey> = map
            .iter()
            .filter_map(Result::ok)
            .filter(|(_, v)| now.saturating_sub(v.ts_ns) > max_age_ns)
            .map(|(k, _)| k)
            .collect();
        let mut removed = 0;
        for key in old {
            // Answered (and removed by the kernel) in the meantime: not expired.
            if map.remove(&key).is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }
}
