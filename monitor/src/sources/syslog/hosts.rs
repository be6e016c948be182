//! What the central knows of each reporting host: when it was last heard
//! from, and, for agents, their cumulative counters. Counters messages are
//! cumulative per agent run, so the newest one makes the totals exact
//! whatever was sampled or lost before it; a gap in their sequence numbers
//! or a new start time is counted, and a restart adds the run that ended to
//! the host's totals once.

use std::collections::HashMap;

use monitor_common::class::CLASS_COUNT;

use crate::model::forward::{ClassTotal, Counters};

/// Most hosts tracked; messages from more are counted in `over_cap`.
pub const MAX_HOSTS: usize = 1_000;

#[derive(Clone, Debug, Default)]
pub struct HostTable {
    pub hosts: HashMap<String, HostRecord>,
    /// Messages from hosts beyond MAX_HOSTS.
    pub over_cap: u64,
}

/// Sums over an agent's runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunTotals {
    pub classes: [ClassTotal; CLASS_COUNT],
    pub suppressed: u64,
    pub ring_full: u64,
    /// Dropped by the agent before sending.
    pub dropped: u64,
    /// Sent by the agent but never received here (lost in transit).
    pub lost: u64,
    /// Events the agent queued for sending (received, dropped or lost).
    pub events: u64,
}

impl RunTotals {
    fn add(&mut self, other: &RunTotals) {
        // Saturating: the values come from the network.
        for (a, b) in self.classes.iter_mut().zip(&other.classes) {
            a.packets = a.packets.saturating_add(b.packets);
            a.bytes = a.bytes.saturating_add(b.bytes);
        }
        self.suppressed = self.suppressed.saturating_add(other.suppressed);
        self.ring_full = self.ring_full.saturating_add(other.ring_full);
        self.dropped = self.dropped.saturating_add(other.dropped);
        self.lost = self.lost.saturating_add(other.lost);
        self.events = self.events.saturating_add(other.events);
    }
}

#[derive(Clone, Debug, Default)]
pub struct HostRecord {
    pub last_seen_ms: u64,
    /// Arrival minus the agent's timestamp of its latest counters message.
    pub lag_ms: Option<i64>,
    /// Events received from this host (agent events and LOG lines).
    pub events: u64,
    /// The latest counters message of the current run.
    pub counters: Option<Counters>,
    /// The current run's totals (from `counters`) and the runs before.
    pub current: RunTotals,
    pub previous: RunTotals,
    /// Counters messages missing from the sequence.
    pub seq_gaps: u64,
    /// Agent restarts seen (a new start time).
    pub restarts: u64,
    /// Counters messages that were not newer than the last (replays).
    pub stale: u64,
    /// Events received during the current run.
    run_events: u64,
}

impl HostRecord {
    /// Totals over every run seen.
    pub fn totals(&self) -> RunTotals {
        let mut t = self.previous;
        t.add(&self.current);
        t
    }
}

impl HostTable {
    fn entry(&mut self, host: &str) -> Option<&mut HostRecord> {
        if self.hosts.len() >= MAX_HOSTS && !self.hosts.contains_key(host) {
            self.over_cap += 1;
            return None;
        }
        Some(self.hosts.entry(host.to_owned()).or_default())
    }

    /// An event from `host` arrived at `now_ms`.
    pub fn event(&mut self, host: &str, now_ms: u64) {
        if let Some(r) = self.entry(host) {
            r.last_seen_ms = now_ms;
            r.events += 1;
            r.run_events += 1;
        }
    }

    /// A counters message from `host` arrived at `now_ms`.
    pub fn counters(&mut self, host: &str, c: Counters, now_ms: u64) {
        let Some(r) = self.entry(host) else { return };
        r.last_seen_ms = now_ms;
        match &r.counters {
            Some(last) if c.start_ms == last.start_ms && c.seq <= last.seq => {
                r.stale += 1;
                return;
            }
            Some(last) if c.start_ms < last.start_ms => {
                r.stale += 1;
                return;
            }
            Some(last) if c.start_ms == last.start_ms => {
                r.seq_gaps = r.seq_gaps.saturating_add(c.seq - last.seq - 1);
            }
            Some(_) => {
                // A new run: the one that ended counts once, as last reported.
                r.restarts += 1;
                let ended = r.current;
                r.previous.add(&ended);
                r.current = RunTotals::default();
                // Events that arrived before this run's first counters
                // message belong to it (the agent sends one at start).
                r.run_events = 0;
                r.seq_gaps = r.seq_gaps.saturating_add(c.seq.saturating_sub(1));
            }
            // First contact mid-run (this central started later): what the
            // agent sent before is not ours to count as lost.
            None => {}
        }
        let signed = |ms: u64| i64::try_from(ms).unwrap_or(i64::MAX);
        r.lag_ms = Some(signed(now_ms).saturating_sub(signed(c.ts_ms)));
        // Everything the agent queued before this message was sent ahead of
        // it on the same stream: what has not arrived by now was lost.
        let sent = c.events.saturating_sub(c.dropped);
        r.current = RunTotals {
            classes: c.classes,
            suppressed: c.suppressed,
            ring_full: c.ring_full,
            dropped: c.dropped,
            lost: sent.saturating_sub(r.run_events),
            events: c.events,
        };
        r.counters = Some(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters(start_ms: u64, seq: u64, icmp: u64, events: u64) -> Counters {
        let mut c = Counters {
            seq,
            start_ms,
            ts_ms: start_ms.wrapping_add(seq.wrapping_mul(1000)),
            events,
            ..Counters::default()
        };
        c.classes[0] = ClassTotal { packets: icmp, bytes: icmp.wrapping_mul(98) };
        c
    }

    #[test]
    fn totals_gaps_restarts_and_losses() {
        let mut t = HostTable::default();
        t.counters("a", counters(1000, 1, 0, 0), 2000);
        for _ in 0..3 {
            t.event("a", 2500);
        }
        t.counters("a", counters(1000, 2, 10, 5), 3000);
        let r = &t.hosts["a"];
        assert_eq!((r.totals().classes[0].packets, r.totals().lost, r.seq_gaps), (10, 2, 0));
        // Seq 3 lost, seq 4 arrives; a replay of 2 is ignored.
        t.counters("a", counters(1000, 4, 20, 5), 5000);
        t.counters("a", counters(1000, 2, 10, 5), 5000);
        let r = &t.hosts["a"];
        assert_eq!((r.totals().classes[0].packets, r.seq_gaps, r.stale), (20, 1, 1));
        // A restart: the old run counts once, the new one adds on.
        t.counters("a", counters(9000, 1, 4, 0), 9500);
        t.counters("a", counters(9000, 2, 6, 0), 9600);
        let r = &t.hosts["a"];
        assert_eq!((r.totals().classes[0].packets, r.restarts, r.seq_gaps), (26, 1, 1));
        assert_eq!(r.lag_ms, Some(9600 - 11_000));
        // First heard of mid-run: no gaps for what came before.
        t.counters("b", counters(5, 9, 1, 0), 20_000);
        assert_eq!(t.hosts["b"].seq_gaps, 0);
    }

    #[test]
    fn hostile_values_do_not_panic() {
        let mut t = HostTable::default();
        t.counters("a", counters(1, 1, 0, 0), 0);
        let mut c = counters(1, u64::MAX, u64::MAX, u64::MAX);
        c.ts_ms = u64::MAX;
        t.counters("a", c, 0);
        t.counters("a", counters(u64::MAX, u64::MAX, 1, 0), u64::MAX);
        assert_eq!(t.hosts["a"].restarts, 1);
    }

    #[test]
    fn hosts_are_bounded() {
        let mut t = HostTable::default();
        for n in 0..=MAX_HOSTS {
            t.event(&format!("h{n}"), 1);
        }
        assert_eq!((t.hosts.len(), t.over_cap), (MAX_HOSTS, 1));
    }
}
