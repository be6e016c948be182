//! `/api/hosts`: every host the daemon hears from, this one first. Agents'
//! totals come from their counters messages (exact, whatever was sampled
//! or lost); hosts that only send LOG lines have no totals.

use std::sync::Arc;

use serde::Serialize;

use super::documents::{ByClass, PacketsBytes};
use crate::{
    model::SCHEMA_VERSION,
    sources::{
        kernel::{AttachedInterface, KernelCounters},
        syslog::HostTable,
    },
};

#[derive(Clone, Debug, Serialize)]
pub struct HostsDoc {
    pub schema: u32,
    pub hosts: Vec<HostDoc>,
    /// Messages from hosts beyond the tracked number.
    pub over_cap: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct HostDoc {
    pub host: Arc<str>,
    /// This daemon's own host (its XDP observer).
    pub local: bool,
    /// When a message from it last arrived (local: the snapshot's time).
    pub last_seen_ms: u64,
    /// Arrival minus the agent's clock at its latest counters message.
    pub lag_ms: Option<i64>,
    /// The agent's start time (its current run).
    pub started_ms: Option<u64>,
    /// Sequence number of its latest counters message.
    pub counter_seq: Option<u64>,
    pub seq_gaps: u64,
    pub restarts: u64,
    /// Events received from it.
    pub events: u64,
    /// Events the agent dropped before sending (queue full, reconnects).
    pub dropped: u64,
    /// Events the agent sent that never arrived.
    pub lost: u64,
    /// Events the agent queued for sending: `events` + `dropped` + `lost`
    /// once the latest counters message is in.
    pub agent_events: u64,
    pub suppressed: u64,
    pub ring_full: u64,
    pub interfaces: Vec<HostInterfaceDoc>,
    /// Exact packets and bytes by class over all its runs; null for hosts
    /// that send no counters.
    pub classes: Option<ByClass<PacketsBytes>>,
}

#[derive(Clone, Debug, Serialize)]
pub struct HostInterfaceDoc {
    pub name: String,
    /// XDP mode: "driver" or "skb".
    pub mode: String,
}

/// The document at `now`: the local host (when it observes anything), then
/// the others by name.
pub(super) fn doc(
    local: (&Arc<str>, &[AttachedInterface], Option<&KernelCounters>, u64),
    table: &HostTable,
    now: u64,
) -> HostsDoc {
    let (name, interfaces, kernel, local_events) = local;
    let mut hosts = Vec::with_capacity(table.hosts.len() + 1);
    if kernel.is_some() || !interfaces.is_empty() || local_events > 0 || table.hosts.is_empty() {
        let ring_full = kernel.map_or(0, |k| k.pipeline.ring_full);
        hosts.push(HostDoc {
            host: Arc::clone(name),
            local: true,
            last_seen_ms: now,
            lag_ms: None,
            started_ms: None,
            counter_seq: None,
            seq_gaps: 0,
            restarts: 0,
            events: local_events,
            dropped: 0,
            lost: 0,
            agent_events: 0,
            suppressed: kernel.map_or(0, |k| k.pipeline.suppressed_source + k.pipeline.suppressed_global),
            ring_full,
            interfaces: interfaces
                .iter()
                .map(|i| HostInterfaceDoc { name: i.name.clone(), mode: i.mode.as_str().into() })
                .collect(),
            classes: kernel.map(|k| ByClass(k.classes.map(|c| PacketsBytes { packets: c.packets, bytes: c.bytes }))),
        });
    }
    let mut others: Vec<_> = table.hosts.iter().filter(|(h, _)| h.as_str() != &**name).collect();
    others.sort_by(|a, b| a.0.cmp(b.0));
    for (host, r) in others {
        let totals = r.totals();
        hosts.push(HostDoc {
            host: Arc::from(host.as_str()),
            local: false,
            last_seen_ms: r.last_seen_ms,
            lag_ms: r.lag_ms,
            started_ms: r.counters.as_ref().map(|c| c.start_ms),
            counter_seq: r.counters.as_ref().map(|c| c.seq),
            seq_gaps: r.seq_gaps,
            restarts: r.restarts,
            events: r.events,
            dropped: totals.dropped,
            lost: totals.lost,
            agent_events: totals.events,
            suppressed: totals.suppressed,
            ring_full: totals.ring_full,
            interfaces: r
                .counters
                .iter()
                .flat_map(|c| &c.interfaces)
                .map(|(name, mode)| HostInterfaceDoc { name: name.clone(), mode: mode.clone() })
                .collect(),
            classes: r
                .counters
                .as_ref()
                .map(|_| ByClass(totals.classes.map(|c| PacketsBytes { packets: c.packets, bytes: c.bytes }))),
        });
    }
    HostsDoc { schema: SCHEMA_VERSION, hosts, over_cap: table.over_cap }
}
