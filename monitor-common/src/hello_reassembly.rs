//! Reassembling a TLS ClientHello record from the TCP segments the kernel
//! captured (see [`crate::tls_capture`]): a bounded table of partial hellos
//! keyed by connection (4-tuple) and the first segment's sequence number,
//! joined strictly in order, with a timeout. Pure: the caller passes the
//! time in, so every path is tested on the host.
//!
//! Every hello that starts ends exactly once, as one [`Reassembled`] with
//! its [`Outcome`]: complete, or cut short (and then counted by why). A
//! cut-short hello still carries the bytes that arrived in order, which
//! [`crate::tls::parse_client_hello`] reads as far as they go.

use alloc::vec::Vec;

use crate::tls_capture::{client_hello_record_len, HELLO_PREFIX_LEN};

/// A TCP connection, client to server; IPv4 is IPv4-mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowId {
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub src_port: u16,
    pub dst_port: u16,
}

/// One captured segment, as the kernel reported it.
#[derive(Clone, Copy, Debug)]
pub struct Segment<'a> {
    pub flow: FlowId,
    /// Sequence number of the payload's first byte.
    pub seq: u32,
    /// True for the segment the hello starts in.
    pub first: bool,
    /// The kernel's timestamp (for the first segment: its event's).
    pub timestamp_ns: u64,
    pub payload: &'a [u8],
}

/// How a hello's reassembly ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The whole record arrived.
    Complete,
    /// The next segment did not come within the timeout.
    TimedOut,
    /// A later segment than the next one arrived (one was lost).
    Gap,
    /// The table was full and this was the oldest hello in it.
    Evicted,
    /// The kernel's segment limit was reached before the record's end.
    SegmentLimit,
    /// A new hello started on the same connection.
    Replaced,
}

/// A hello whose reassembly ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reassembled {
    pub flow: FlowId,
    pub first_seq: u32,
    /// The first segment's kernel timestamp (its event's timestamp).
    pub timestamp_ns: u64,
    /// The record from its first byte, as far as it arrived in order; the
    /// whole record (and nothing after it) when complete.
    pub bytes: Vec<u8>,
    pub outcome: Outcome,
}

/// Limits of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Partial hellos held at once; the oldest is evicted beyond this.
    pub max_flows: usize,
    /// A partial hello older than this (by the caller's clock) times out.
    pub timeout_ns: u64,
    /// Segments of one hello accepted at most (the first included).
    pub max_segments: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config { max_flows: 256, timeout_ns: 1_000_000_000, max_segments: crate::tls_capture::MAX_HELLO_SEGMENTS }
    }
}

/// What happened to every segment and hello, for the daemon's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// First segments that started a hello.
    pub started: u64,
    /// Hellos by outcome.
    pub complete: u64,
    pub timed_out: u64,
    pub gaps: u64,
    pub evicted: u64,
    pub segment_limit: u64,
    pub replaced: u64,
    /// First segments that do not start a ClientHello record (not expected
    /// from the kernel, which checks the same prefix).
    pub not_hello: u64,
    /// Segments already had (a retransmitted first or later segment).
    pub duplicates: u64,
    /// Later segments of no partial hello (it ended or never started here).
    pub orphans: u64,
}

impl Stats {
    /// Hellos that ended without their whole record.
    pub fn incomplete(&self) -> u64 {
        self.timed_out + self.gaps + self.evicted + self.segment_limit + self.replaced
    }
}

struct Partial {
    flow: FlowId,
    first_seq: u32,
    timestamp_ns: u64,
    started_ns: u64,
    next_seq: u32,
    /// The record's total length (header included).
    total: usize,
    segments: u32,
    bytes: Vec<u8>,
}

impl Partial {
    fn finish(self, outcome: Outcome) -> Reassembled {
        Reassembled {
            flow: self.flow,
            first_seq: self.first_seq,
            timestamp_ns: self.timestamp_ns,
            bytes: self.bytes,
            outcome,
        }
    }
}

/// The table of partial hellos.
pub struct Reassembler {
    config: Config,
    partials: Vec<Partial>,
    stats: Stats,
}

impl Reassembler {
    pub fn new(config: Config) -> Self {
        let config = Config { max_flows: config.max_flows.max(1), max_segments: config.max_segments.max(1), ..config };
        Reassembler { config, partials: Vec::new(), stats: Stats::default() }
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Partial hellos held now.
    pub fn pending(&self) -> usize {
        self.partials.len()
    }

    /// Takes one segment at time `now_ns`; hands every hello that ended to
    /// `done` (at most two: one it evicted or replaced, and its own).
    pub fn push(&mut self, segment: Segment<'_>, now_ns: u64, mut done: impl FnMut(Reassembled)) {
        if segment.first {
            self.push_first(segment, now_ns, &mut done);
        } else {
            self.push_next(segment, &mut done);
        }
    }

    fn push_first(&mut self, s: Segment<'_>, now_ns: u64, done: &mut impl FnMut(Reassembled)) {
        let total = match s.payload.first_chunk::<HELLO_PREFIX_LEN>().and_then(client_hello_record_len) {
            Some(total) => total,
            None => {
                self.stats.not_hello += 1;
                return;
            }
        };
        if let Some(i) = self.find(&s.flow) {
            if self.partials[i].first_seq == s.seq {
                self.stats.duplicates += 1;
                return;
            }
            self.stats.replaced += 1;
            done(self.partials.swap_remove(i).finish(Outcome::Replaced));
        }
        self.stats.started += 1;
        let have = s.payload.len().min(total);
        let partial = Partial {
            flow: s.flow,
            first_seq: s.seq,
            timestamp_ns: s.timestamp_ns,
            started_ns: now_ns,
            next_seq: s.seq.wrapping_add(s.payload.len() as u32),
            total,
            segments: 1,
            bytes: s.payload[..have].to_vec(),
        };
        if have == total {
            self.stats.complete += 1;
            done(partial.finish(Outcome::Complete));
            return;
        }
        if self.config.max_segments <= 1 {
            self.stats.segment_limit += 1;
            done(partial.finish(Outcome::SegmentLimit));
            return;
        }
        if self.partials.len() >= self.config.max_flows {
            let oldest = (0..self.partials.len()).min_by_key(|&i| self.partials[i].started_ns).unwrap_or(0);
            self.stats.evicted += 1;
            done(self.partials.swap_remove(oldest).finish(Outcome::Evicted));
        }
        self.partials.push(partial);
    }

    fn push_next(&mut self, s: Segment<'_>, done: &mut impl FnMut(Reassembled)) {
        let Some(i) = self.find(&s.flow) else {
            self.stats.orphans += 1;
            return;
        };
        let p = &mut self.partials[i];
        // Where the segment starts relative to the next byte expected.
        let offset = s.seq.wrapping_sub(p.next_seq) as i32;
        if offset > 0 {
            self.stats.gaps += 1;
            done(self.partials.swap_remove(i).finish(Outcome::Gap));
            return;
        }
        // Bytes of this segment already had (a retransmission overlapping
        // what arrived); a segment entirely before the next byte, or one
        // that starts before the hello itself, is a duplicate.
        let skip = offset.unsigned_abs() as usize;
        if skip >= s.payload.len() || s.seq.wrapping_sub(p.first_seq) as i32 <= 0 {
            self.stats.duplicates += 1;
            return;
        }
        let new = &s.payload[skip..];
        let take = new.len().min(p.total - p.bytes.len());
        p.bytes.extend_from_slice(&new[..take]);
        p.next_seq = p.next_seq.wrapping_add(new.len() as u32);
        p.segments += 1;
        if p.bytes.len() == p.total {
            self.stats.complete += 1;
            done(self.partials.swap_remove(i).finish(Outcome::Complete));
        } else if p.segments >= self.config.max_segments {
            self.stats.segment_limit += 1;
            done(self.partials.swap_remove(i).finish(Outcome::SegmentLimit));
        }
    }

    /// Ends every partial hello older than the timeout at `now_ns`.
    pub fn expire(&mut self, now_ns: u64, mut done: impl FnMut(Reassembled)) {
        let timeout = self.config.timeout_ns;
        let mut i = 0;
        while i < self.partials.len() {
            if now_ns.saturating_sub(self.partials[i].started_ns) >= timeout {
                self.stats.timed_out += 1;
                done(self.partials.swap_remove(i).finish(Outcome::TimedOut));
            } else {
                i += 1;
            }
        }
    }

    /// When the oldest partial hello times out, if any is held.
    pub fn next_deadline(&self) -> Option<u64> {
        self.partials.iter().map(|p| p.started_ns.saturating_add(self.config.timeout_ns)).min()
    }

    fn find(&self, flow: &FlowId) -> Option<usize> {
        self.partials.iter().position(|p| p.flow == *flow)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const SEC: u64 = 1_000_000_000;

    fn flow(n: u8) -> FlowId {
        FlowId { src: [n; 16], dst: [9; 16], src_port: 40_000 + u16::from(n), dst_port: 443 }
    }

    /// A record of `total` bytes: a ClientHello record header, then a
    /// counting pattern (the reassembler does not parse further).
    fn record(total: usize) -> Vec<u8> {
        let len = (total - 5) as u16;
        let mut r = vec![22, 3, 1, (len >> 8) as u8, len as u8, 1];
        r.extend((6..total).map(|i| i as u8));
        r
    }

    fn seg(flow: FlowId, seq: u32, first: bool, payload: &[u8]) -> Segment<'_> {
        Segment { flow, seq, first, timestamp_ns: 5, payload }
    }

    fn push(r: &mut Reassembler, s: Segment<'_>, now: u64) -> Vec<Reassembled> {
        let mut out = Vec::new();
        r.push(s, now, |d| out.push(d));
        out
    }

    #[test]
    fn two_segments_join_in_order() {
        let hello = record(1800);
        let mut r = Reassembler::new(Config::default());
        assert!(push(&mut r, seg(flow(1), 1000, true, &hello[..1448]), 0).is_empty());
        assert_eq!(r.pending(), 1);
        let done = push(&mut r, seg(flow(1), 2448, false, &hello[1448..]), 1);
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].outcome, Outcome::Complete);
        assert_eq!(done[0].bytes, hello);
        assert_eq!((done[0].first_seq, done[0].timestamp_ns), (1000, 5));
        assert_eq!(r.pending(), 0);
        assert_eq!(r.stats().complete, 1);
    }

    #[test]
    fn single_segment_hello_completes_at_once_and_trailing_bytes_are_cut() {
        let mut bytes = record(600);
        bytes.extend_from_slice(b"next record");
        let mut r = Reassembler::new(Config::default());
        let done = push(&mut r, seg(flow(1), 7, true, &bytes), 0);
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].bytes, record(600));
        assert_eq!(r.pending(), 0);
    }

    #[test]
    fn sequence_numbers_wrap() {
        let hello = record(1000);
        let mut r = Reassembler::new(Config::default());
        let seq = u32::MAX - 100;
        push(&mut r, seg(flow(1), seq, true, &hello[..500]), 0);
        let done = push(&mut r, seg(flow(1), seq.wrapping_add(500), false, &hello[500..]), 0);
        assert_eq!(done[0].bytes, hello);
    }

    #[test]
    fn duplicates_and_overlapping_retransmissions() {
        let hello = record(1500);
        let mut r = Reassembler::new(Config::default());
        push(&mut r, seg(flow(1), 0, true, &hello[..600]), 0);
        assert!(push(&mut r, seg(flow(1), 0, true, &hello[..600]), 0).is_empty(), "first again");
        assert!(push(&mut r, seg(flow(1), 100, false, &hello[100..600]), 0).is_empty(), "old bytes");
        assert_eq!(r.stats().duplicates, 2);
        // Overlaps what arrived and goes on.
        push(&mut r, seg(flow(1), 500, false, &hello[500..1000]), 0);
        let done = push(&mut r, seg(flow(1), 1000, false, &hello[1000..]), 0);
        assert_eq!(done[0].outcome, Outcome::Complete);
        assert_eq!(done[0].bytes, hello);
    }

    #[test]
    fn a_gap_ends_the_hello_with_what_arrived() {
        let hello = record(3000);
        let mut r = Reassembler::new(Config::default());
        push(&mut r, seg(flow(1), 0, true, &hello[..1000]), 0);
        let done = push(&mut r, seg(flow(1), 2000, false, &hello[2000..]), 0);
        assert_eq!(done[0].outcome, Outcome::Gap);
        assert_eq!(done[0].bytes, hello[..1000]);
        assert_eq!(r.stats().gaps, 1);
        assert!(push(&mut r, seg(flow(1), 1000, false, &hello[1000..2000]), 0).is_empty());
        assert_eq!(r.stats().orphans, 1, "its flow is gone");
    }

    #[test]
    fn timeout_and_deadline() {
        let hello = record(2000);
        let mut r = Reassembler::new(Config::default());
        push(&mut r, seg(flow(1), 0, true, &hello[..1000]), 10);
        assert_eq!(r.next_deadline(), Some(10 + SEC));
        let mut out = Vec::new();
        r.expire(SEC, |d| out.push(d));
        assert!(out.is_empty());
        r.expire(SEC + 10, |d| out.push(d));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].outcome, Outcome::TimedOut);
        assert_eq!(r.next_deadline(), None);
    }

    #[test]
    fn table_is_bounded_and_evicts_the_oldest() {
        let hello = record(2000);
        let mut r = Reassembler::new(Config { max_flows: 2, ..Config::default() });
        push(&mut r, seg(flow(1), 0, true, &hello[..1000]), 1);
        push(&mut r, seg(flow(2), 0, true, &hello[..1000]), 2);
        let done = push(&mut r, seg(flow(3), 0, true, &hello[..1000]), 3);
        assert_eq!(done.len(), 1);
        assert_eq!((done[0].flow, done[0].outcome), (flow(1), Outcome::Evicted));
        assert_eq!(r.pending(), 2);
    }

    #[test]
    fn segment_limit_and_replacement_and_non_hellos() {
        let hello = record(2000);
        let mut r = Reassembler::new(Config { max_segments: 2, ..Config::default() });
        push(&mut r, seg(flow(1), 0, true, &hello[..500]), 0);
        let done = push(&mut r, seg(flow(1), 500, false, &hello[500..1000]), 0);
        assert_eq!(done[0].outcome, Outcome::SegmentLimit);
        push(&mut r, seg(flow(2), 0, true, &hello[..500]), 0);
        let done = push(&mut r, seg(flow(2), 9000, true, &hello[..500]), 0);
        assert_eq!(done[0].outcome, Outcome::Replaced);
        assert_eq!(r.pending(), 1);
        assert!(push(&mut r, seg(flow(3), 0, true, b"GET / HTTP/1.1\r\n"), 0).is_empty());
        assert!(push(&mut r, seg(flow(3), 0, true, b""), 0).is_empty());
        assert_eq!(r.stats().not_hello, 2);
    }

    #[test]
    fn a_whole_real_hello_parses_after_reassembly() {
        // A ClientHello whose SNI is its last extension, 1,700 bytes in.
        let rec = crate::tls_sample::client_hello("late.sni.test", 1600);
        assert!(crate::tls::parse_client_hello(&rec[..1448]).expect("a hello").server_name.is_none());
        let mut r = Reassembler::new(Config::default());
        push(&mut r, seg(flow(1), 0, true, &rec[..1448]), 0);
        let done = push(&mut r, seg(flow(1), 1448, false, &rec[1448..]), 0);
        let hello = crate::tls::parse_client_hello(&done[0].bytes).expect("the whole hello");
        assert_eq!(hello.server_name, Some("late.sni.test"));
        assert!(!hello.truncated);
    }

    proptest! {
        /// A record cut into in-order segments, with any of them sent twice
        /// (a retransmission), comes back whole and exactly once.
        #[test]
        fn in_order_segments_with_retransmissions_reassemble(
            total in 7usize..6000,
            cuts in proptest::collection::vec(1usize..6000, 0..3),
            repeat in proptest::collection::vec(any::<bool>(), 4),
            seq in any::<u32>(),
        ) {
            let hello = record(total);
            let mut points: Vec<usize> = cuts.into_iter().map(|c| c % total).filter(|&c| c >= 6).collect();
            points.sort_unstable();
            points.dedup();
            points.push(total);
            // A hello in one segment is whole at once: sent again, it is a
            // new hello (the kernel sends it again only for a new event).
            let single = points.len() == 1;
            let mut r = Reassembler::new(Config::default());
            let mut out = Vec::new();
            let mut start = 0;
            for (i, end) in points.into_iter().enumerate() {
                let s = seg(flow(1), seq.wrapping_add(start as u32), i == 0, &hello[start..end]);
                r.push(s, 0, |d| out.push(d));
                if repeat[i] && !single {
                    r.push(s, 0, |d| out.push(d));
                }
                start = end;
            }
            prop_assert_eq!(out.len(), 1);
            prop_assert_eq!(out[0].outcome, Outcome::Complete);
            prop_assert_eq!(&out[0].bytes, &hello);
            prop_assert_eq!(r.pending(), 0);
        }

        /// Whatever arrives, in whatever order: the table stays within its
        /// bound, every started hello ends at most once, and started =
        /// ended + pending; after the timeout nothing is pending.
        #[test]
        fn accounting_adds_up_for_any_segments(
            ops in proptest::collection::vec((0u8..4, any::<bool>(), 0u32..4000, 0usize..2500, 0u64..3), 0..60),
        ) {
            let hello = record(2400);
            let config = Config { max_flows: 2, timeout_ns: 2, max_segments: 3 };
            let mut r = Reassembler::new(config);
            let mut ended = 0u64;
            let mut now = 0;
            for (f, first, seq, from, dt) in ops {
                now += dt;
                let from = if first { 0 } else { from.min(hello.len()) };
                let payload = &hello[from..(from + 900).min(hello.len())];
                r.push(seg(flow(f), seq, first, payload), now, |d| {
                    assert!(d.bytes.len() <= 2400);
                    assert!(d.outcome != Outcome::Complete || d.bytes.len() == 2400);
                    ended += 1;
                });
                prop_assert!(r.pending() <= config.max_flows);
                r.expire(now, |_| ended += 1);
                let s = r.stats();
                prop_assert_eq!(s.started, s.complete + s.incomplete() + r.pending() as u64);
                prop_assert_eq!(s.started, ended + r.pending() as u64);
            }
            r.expire(now + 2, |_| ended += 1);
            prop_assert_eq!(r.pending(), 0);
            prop_assert_eq!(r.stats().started, ended);
        }
    }
}
