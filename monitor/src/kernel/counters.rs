//! Reading the kernel's exact per-CPU counters.

use aya::maps::{HashMap, PerCpuArray};
use monitor_common::{
    class::CLASS_COUNT,
    maps::{
        ClassCounter, PipelineCounter, SourceKey, SourceStats, MAP_CLASS_COUNTERS,
        MAP_PIPELINE_COUNTERS, MAP_SOURCES,
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
        let pipeline: PerCpuArray<_, u64> = PerCpuArray::try_from(
            ebpf.map(MAP_PIPELINE_COUNTERS).ok_or(missing(MAP_PIPELINE_COUNTERS))?,
        )?;
        let sum = |c: PipelineCounter| -> Result<u64, KernelError> {
            Ok(pipeline.get(&(c as u32), 0)?.iter().sum())
        };
        out.pipeline = PipelineCounts {
            event_eligible: sum(PipelineCounter::EventEligible)?,
            event_submitted: sum(PipelineCounter::EventSubmitted)?,
            suppressed_source: sum(PipelineCounter::SuppressedSource)?,
            suppressed_global: sum(PipelineCounter::SuppressedGlobal)?,
            ring_full: sum(PipelineCounter::RingFull)?,
            source_inserted: sum(PipelineCounter::SourceInserted)?,
            source_insert_failed: sum(PipelineCounter::SourceInsertFailed)?,
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
