//! The SNI of large ClientHellos: the kernel sends the whole segments of a
//! sampled event's ClientHello to a perf event array (see
//! `monitor_common::tls_capture`); one reader task per CPU hands them to the
//! task that reads the packet event ring, which reassembles each hello
//! (`monitor_common::hello_reassembly`) and holds the hello's event, at most
//! [`HOLD`], until the hello's SNI and version can be joined onto it.
//!
//! Every loss is counted ([`TlsHelloCounts`], in `/api/stats` under
//! `kernel.pipeline.tls_hello`): kernel capture failures, perf samples the
//! kernel lost or the daemon could not queue, hellos that ended incomplete
//! (by why), events released without their hello.

use std::{
    collections::VecDeque,
    sync::{
        atomic::{AtomicU64, Ordering::Relaxed},
        Arc,
    },
    time::{Duration, Instant},
};

use aya::maps::{perf::PerfEvent, MapData, PerCpuArray, PerfEventArray, RingBuf};
use monitor_common::{
    hello_reassembly::{Config, FlowId, Outcome, Reassembled, Reassembler, Segment, Stats},
    tls,
    tls_capture::{
        client_hello_record_len, HelloCounter, HelloSegment, HELLO_PREFIX_LEN, MAP_TLS_HELLO_COUNTERS,
        MAP_TLS_HELLO_SEGMENTS, PERF_PAGES_PER_CPU, SEGMENT_FIRST,
    },
    Class, PacketEvent,
};
use serde::Serialize;
use tokio::{io::unix::AsyncFd, sync::mpsc, task::JoinHandle};

use super::{loader::missing, KernelError, Observer};
use tokio_util::sync::CancellationToken;

use super::decode::KernelEventContext;
use crate::{
    model::{describe, Event, TlsInfo},
    sources::{EventSink, MAX_BATCH},
};

/// Longest an event waits for its hello. The kernel follows a flow for 1 s
/// and the reassembly times out after 1 s; the margin covers the readers'
/// own delays.
pub(super) const HOLD: Duration = Duration::from_millis(1500);
/// Events held at once; beyond, an event goes on without waiting (counted).
const MAX_HELD: usize = 1024;
/// Hellos reassembled before their event arrived, kept for it at most [`HOLD`].
const MAX_UNCLAIMED: usize = 1024;
/// Segments queued from the perf readers to the joining task.
const SEGMENT_QUEUE: usize = 4096;
/// How often the ring is drained without being woken (as ring.rs does), and
/// held events and partial hellos are timed out.
const DRAIN_EVERY: Duration = Duration::from_millis(25);

/// What became of captured hellos, kernel and daemon side together.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TlsHelloCounts {
    /// Kernel: first segments and later segments sent to the daemon.
    pub first_captured: u64,
    pub next_captured: u64,
    /// Kernel: segments the perf buffer had no room for.
    pub output_failed: u64,
    /// Kernel: flows that could not be remembered for their next segment.
    pub flow_insert_failed: u64,
    /// Kernel: segments of a followed flow that were not the next in order.
    pub out_of_order: u64,
    /// Kernel: followed flows whose next segment came after the window.
    pub flow_expired: u64,
    /// Kernel: flows still pending at the segment limit.
    pub segment_limit: u64,
    /// Daemon: samples the kernel reported lost (perf buffer overrun).
    pub perf_lost: u64,
    /// Daemon: segments dropped because the joining task was behind.
    pub queue_full: u64,
    /// Daemon: samples too short or inconsistent to be a segment.
    pub malformed_samples: u64,
    /// Daemon: hellos reassembled whole.
    pub hellos_complete: u64,
    /// Daemon: hellos that ended incomplete (timed out, a gap, evicted,
    /// the segment limit, replaced); their bytes are still parsed.
    pub hellos_incomplete: u64,
    /// Daemon: events that got their TLS fields from a reassembled hello.
    pub events_joined: u64,
    /// Daemon: events released after [`HOLD`] (or at once, the hold table
    /// being full) without their hello.
    pub events_without_hello: u64,
    /// Daemon: reassembled hellos whose event never came.
    pub hellos_unclaimed: u64,
}

/// The daemon's side of [`TlsHelloCounts`]; one set per process (the
/// daemon runs one observer).
#[derive(Debug, Default)]
struct UserCounters {
    perf_lost: AtomicU64,
    queue_full: AtomicU64,
    malformed_samples: AtomicU64,
    hellos_complete: AtomicU64,
    hellos_incomplete: AtomicU64,
    events_joined: AtomicU64,
    events_without_hello: AtomicU64,
    hellos_unclaimed: AtomicU64,
}

static USER: UserCounters = UserCounters {
    perf_lost: AtomicU64::new(0),
    queue_full: AtomicU64::new(0),
    malformed_samples: AtomicU64::new(0),
    hellos_complete: AtomicU64::new(0),
    hellos_incomplete: AtomicU64::new(0),
    events_joined: AtomicU64::new(0),
    events_without_hello: AtomicU64::new(0),
    hellos_unclaimed: AtomicU64::new(0),
};

/// The kernel's hello counters summed over CPUs, with the daemon's.
pub(super) fn counts(observer: &Observer) -> Result<TlsHelloCounts, KernelError> {
    let map = observer.ebpf().map(MAP_TLS_HELLO_COUNTERS).ok_or(missing(MAP_TLS_HELLO_COUNTERS))?;
    let array: PerCpuArray<_, u64> = PerCpuArray::try_from(map)?;
    let k = |c: HelloCounter| -> Result<u64, KernelError> { Ok(array.get(&(c as u32), 0)?.iter().sum()) };
    let u = |c: &AtomicU64| c.load(Relaxed);
    Ok(TlsHelloCounts {
        first_captured: k(HelloCounter::FirstCaptured)?,
        next_captured: k(HelloCounter::NextCaptured)?,
        output_failed: k(HelloCounter::OutputFailed)?,
        flow_insert_failed: k(HelloCounter::FlowInsertFailed)?,
        out_of_order: k(HelloCounter::OutOfOrder)?,
        flow_expired: k(HelloCounter::FlowExpired)?,
        segment_limit: k(HelloCounter::SegmentLimit)?,
        perf_lost: u(&USER.perf_lost),
        queue_full: u(&USER.queue_full),
        malformed_samples: u(&USER.malformed_samples),
        hellos_complete: u(&USER.hellos_complete),
        hellos_incomplete: u(&USER.hellos_incomplete),
        events_joined: u(&USER.events_joined),
        events_without_hello: u(&USER.events_without_hello),
        hellos_unclaimed: u(&USER.hellos_unclaimed),
    })
}

impl Observer {
    /// Takes the perf event array of ClientHello segments (once), e.g. to
    /// read it after BPF_PROG_TEST_RUN.
    pub fn take_tls_hello_segments(&mut self) -> Result<PerfEventArray<MapData>, KernelError> {
        let map = self.ebpf_mut().take_map(MAP_TLS_HELLO_SEGMENTS).ok_or(missing(MAP_TLS_HELLO_SEGMENTS))?;
        Ok(PerfEventArray::try_from(map)?)
    }
}

/// One captured segment, owned, on its way to the joining task.
struct OwnedSegment {
    header: HelloSegment,
    payload: Vec<u8>,
}

/// Streams the packet event ring into `sink` like
/// [`super::spawn_ring_reader`], joining reassembled ClientHellos onto
/// their events. If the perf buffers cannot be opened, the plain reader
/// runs instead (a warning says why): events then carry what their own
/// capture holds.
pub fn spawn_packet_reader(
    observer: &mut Observer,
    ring: RingBuf<MapData>,
    context: Arc<KernelEventContext>,
    sink: EventSink,
    stop: CancellationToken,
) -> std::io::Result<Vec<JoinHandle<()>>> {
    let (tx, rx) = mpsc::channel(SEGMENT_QUEUE);
    let readers = match spawn_perf_readers(observer, &tx, &stop) {
        Ok(readers) => readers,
        Err(error) => {
            tracing::warn!(%error, "TLS ClientHello capture unavailable: SNI only from each event's own bytes");
            return Ok(vec![super::spawn_ring_reader(ring, super::RingKind::Packets, context, sink, stop)?]);
        }
    };
    drop(tx);
    // SAFETY: the RingBuf owns its map fd and keeps it open and unchanged
    // for as long as the AsyncFd owns the RingBuf.
    let fd = unsafe { AsyncFd::register(ring) }.map_err(std::io::Error::from)?;
    let mut tasks = readers;
    tasks.push(tokio::spawn(join_loop(fd, rx, context, sink, stop)));
    Ok(tasks)
}

fn spawn_perf_readers(
    observer: &mut Observer,
    tx: &mpsc::Sender<OwnedSegment>,
    stop: &CancellationToken,
) -> Result<Vec<JoinHandle<()>>, KernelError> {
    let mut array = observer.take_tls_hello_segments()?;
    let cpus = aya::util::online_cpus().map_err(|(_, e)| KernelError::Config(format!("online CPUs: {e}")))?;
    let mut tasks = Vec::new();
    for cpu in cpus {
        let buffer = array
            .open(cpu, Some(PERF_PAGES_PER_CPU))
            .map_err(|e| KernelError::Config(format!("perf buffer of CPU {cpu}: {e}")))?;
        // SAFETY: the buffer owns its perf event fd and keeps it open and
        // unchanged for as long as the AsyncFd owns the buffer.
        let mut fd = unsafe { AsyncFd::register(buffer) }
            .map_err(|e| KernelError::Config(format!("perf buffer of CPU {cpu}: {e}")))?;
        let (tx, stop) = (tx.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let readable = tokio::select! {
                    () = stop.cancelled() => return,
                    readable = fd.readable_mut() => readable,
                };
                let mut guard = match readable {
                    Ok(guard) => guard,
                    Err(error) => {
                        tracing::error!(%error, cpu, "TLS hello perf buffer failed; its segments stop");
                        return;
                    }
                };
                guard.get_inner_mut().for_each(|event| match event {
                    PerfEvent::Sample { head, tail } => {
                        let mut sample = Vec::with_capacity(head.len() + tail.len());
                        sample.extend_from_slice(head);
                        sample.extend_from_slice(tail);
                        match HelloSegment::parse(&sample) {
                            Some((header, payload)) => {
                                let segment = OwnedSegment { header, payload: payload.to_vec() };
                                if tx.try_send(segment).is_err() {
                                    USER.queue_full.fetch_add(1, Relaxed);
                                }
                            }
                            None => {
                                USER.malformed_samples.fetch_add(1, Relaxed);
                            }
                        }
                    }
                    PerfEvent::Lost { count } => {
                        USER.perf_lost.fetch_add(count, Relaxed);
                    }
                });
                guard.clear_ready();
            }
        }));
    }
    Ok(tasks)
}

async fn join_loop(
    mut fd: AsyncFd<RingBuf<MapData>>,
    mut segments: mpsc::Receiver<OwnedSegment>,
    context: Arc<KernelEventContext>,
    sink: EventSink,
    stop: CancellationToken,
) {
    let start = Instant::now();
    let now = move || start.elapsed().as_nanos() as u64;
    let mut joiner = Joiner::new();
    let mut drain_tick = tokio::time::interval(DRAIN_EVERY);
    drain_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut out = Vec::new();
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            readable = fd.readable_mut() => {
                let mut guard = match readable {
                    Ok(guard) => guard,
                    Err(error) => {
                        tracing::error!(%error, "kernel ring buffer failed; its events stop");
                        return;
                    }
                };
                drain(guard.get_inner_mut(), &context, &mut joiner, now(), &mut out, &sink);
                guard.clear_ready();
            }
            Some(segment) = segments.recv() => {
                joiner.on_segment(&segment.header, &segment.payload, now(), &mut out);
            }
            _ = drain_tick.tick() => {
                drain(fd.get_mut(), &context, &mut joiner, now(), &mut out, &sink);
                joiner.tick(now(), &mut out);
            }
        }
        // On in batches of at most MAX_BATCH.
        while !out.is_empty() {
            let rest = out.split_off(out.len().min(MAX_BATCH));
            sink.offer(std::mem::replace(&mut out, rest));
        }
    }
}

fn drain(
    ring: &mut RingBuf<MapData>,
    context: &KernelEventContext,
    joiner: &mut Joiner,
    now: u64,
    out: &mut Vec<Event>,
    sink: &EventSink,
) {
    while let Some(record) = ring.next() {
        match PacketEvent::from_bytes(&record) {
            Some(raw) => joiner.on_event(&raw, context.event_from_kernel(&raw), now, out),
            None => sink.count_malformed_record(),
        }
    }
}

/// Which hello an event or a reassembled record belongs to: the connection
/// and the kernel timestamp the event and its first segment share.
type HelloKey = (FlowId, u64);

struct Held {
    key: HelloKey,
    deadline: u64,
    event: Event,
}

struct Unclaimed {
    key: HelloKey,
    expires: u64,
    tls: Option<TlsInfo>,
}

/// Joins reassembled hellos onto their events; times in ns of any clock
/// that only goes forward (the caller's).
pub(crate) struct Joiner {
    reassembler: Reassembler,
    /// In arrival order, so the oldest deadline is in front.
    held: VecDeque<Held>,
    unclaimed: VecDeque<Unclaimed>,
    /// The reassembler's stats already added to the counters.
    counted: Stats,
}

impl Joiner {
    pub(crate) fn new() -> Self {
        Joiner {
            reassembler: Reassembler::new(Config::default()),
            held: VecDeque::new(),
            unclaimed: VecDeque::new(),
            counted: Stats::default(),
        }
    }

    /// An event from the ring: goes to `out` now, unless the kernel
    /// captured its ClientHello; then when the hello is reassembled.
    pub(crate) fn on_event(&mut self, raw: &PacketEvent, mut event: Event, now: u64, out: &mut Vec<Event>) {
        let Some(key) = awaits_hello(raw) else {
            out.push(event);
            return;
        };
        if let Some(i) = self.unclaimed.iter().position(|u| u.key == key) {
            if let Some(u) = self.unclaimed.remove(i) {
                join(&mut event, u.tls);
            }
            out.push(event);
            return;
        }
        if self.held.len() >= MAX_HELD {
            USER.events_without_hello.fetch_add(1, Relaxed);
            out.push(event);
            return;
        }
        self.held.push_back(Held { key, deadline: now + HOLD.as_nanos() as u64, event });
    }

    /// A captured segment: may complete a hello and release its event.
    pub(crate) fn on_segment(&mut self, header: &HelloSegment, payload: &[u8], now: u64, out: &mut Vec<Event>) {
        let segment = Segment {
            flow: FlowId { src: header.src, dst: header.dst, src_port: header.src_port, dst_port: header.dst_port },
            seq: header.seq,
            first: header.kind == SEGMENT_FIRST,
            timestamp_ns: header.timestamp_ns,
            payload,
        };
        let mut done = Vec::new();
        self.reassembler.push(segment, now, |r| done.push(r));
        for hello in done {
            self.finished(hello, now, out);
        }
        self.count();
    }

    /// Times out partial hellos, held events and unclaimed hellos.
    pub(crate) fn tick(&mut self, now: u64, out: &mut Vec<Event>) {
        let mut done = Vec::new();
        self.reassembler.expire(now, |r| done.push(r));
        for hello in done {
            self.finished(hello, now, out);
        }
        self.count();
        while self.held.front().is_some_and(|h| h.deadline <= now) {
            if let Some(h) = self.held.pop_front() {
                USER.events_without_hello.fetch_add(1, Relaxed);
                out.push(h.event);
            }
        }
        while self.unclaimed.front().is_some_and(|u| u.expires <= now) {
            self.unclaimed.pop_front();
            USER.hellos_unclaimed.fetch_add(1, Relaxed);
        }
    }

    fn finished(&mut self, hello: Reassembled, now: u64, out: &mut Vec<Event>) {
        let key = (hello.flow, hello.timestamp_ns);
        let tls = tls_info(&hello.bytes);
        if hello.outcome != Outcome::Complete {
            tracing::debug!(outcome = ?hello.outcome, bytes = hello.bytes.len(), "TLS ClientHello incomplete");
        }
        if let Some(i) = self.held.iter().position(|h| h.key == key) {
            if let Some(mut h) = self.held.remove(i) {
                join(&mut h.event, tls);
                out.push(h.event);
            }
            return;
        }
        if self.unclaimed.len() >= MAX_UNCLAIMED {
            self.unclaimed.pop_front();
            USER.hellos_unclaimed.fetch_add(1, Relaxed);
        }
        self.unclaimed.push_back(Unclaimed { key, expires: now + HOLD.as_nanos() as u64, tls });
    }

    /// Adds what the reassembler counted since the last call.
    fn count(&mut self) {
        let s = *self.reassembler.stats();
        USER.hellos_complete.fetch_add(s.complete - self.counted.complete, Relaxed);
        USER.hellos_incomplete.fetch_add(s.incomplete() - self.counted.incomplete(), Relaxed);
        self.counted = s;
    }
}

/// The hello an event waits for, if the kernel captured one for it: an
/// HTTPS TCP event whose payload starts a ClientHello record it does not
/// hold whole (the kernel's own test).
fn awaits_hello(raw: &PacketEvent) -> Option<HelloKey> {
    if raw.class != Class::Https as u8 || raw.protocol != 6 {
        return None;
    }
    let total = raw.payload().first_chunk::<HELLO_PREFIX_LEN>().and_then(client_hello_record_len)?;
    if total <= raw.payload().len() {
        return None;
    }
    let flow = FlowId { src: raw.src, dst: raw.dst, src_port: raw.src_port, dst_port: raw.dst_port };
    Some((flow, raw.timestamp_ns))
}

/// The TLS fields of a reassembled record (whole or as far as it came).
fn tls_info(record: &[u8]) -> Option<TlsInfo> {
    let hello = tls::parse_client_hello(record).ok()?;
    Some(TlsInfo { sni: hello.server_name.map(str::to_owned), version: Some(tls::version_name(hello.max_version())) })
}

/// Puts the reassembled hello's fields on its event (they supersede what
/// the event's own bytes gave: the whole hello holds at least as much).
fn join(event: &mut Event, tls: Option<TlsInfo>) {
    let Some(tls) = tls else {
        USER.events_without_hello.fetch_add(1, Relaxed);
        return;
    };
    USER.events_joined.fetch_add(1, Relaxed);
    event.tls = Some(tls);
    event.detail = describe(event);
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use monitor_common::tls_capture::SEGMENT_NEXT;

    use super::*;
    use crate::sources::kernel::testing;

    const SEC: u64 = 1_000_000_000;

    /// A ClientHello record with `pad` bytes of padding extension before
    /// its SNI `name`, so the SNI lies past the event's capture.
    fn hello_with_late_sni(name: &str, pad: usize) -> Vec<u8> {
        monitor_common::tls_sample::client_hello(name, pad)
    }

    /// The kernel's event for the hello's first segment (ts 77).
    fn raw_event(first_segment: &[u8]) -> PacketEvent {
        let src: IpAddr = "203.0.113.9".parse().expect("literal");
        let mut raw = testing::raw(Class::Https, src, 1, 1514);
        (raw.protocol, raw.src_port, raw.dst_port, raw.tcp_flags) = (6, 40_001, 443, 0x18);
        raw.timestamp_ns = 77;
        let n = first_segment.len().min(raw.payload.len());
        raw.payload[..n].copy_from_slice(&first_segment[..n]);
        raw.payload_len = n as u16;
        raw
    }

    fn header(raw: &PacketEvent, seq: u32, kind: u8) -> HelloSegment {
        HelloSegment {
            timestamp_ns: if kind == SEGMENT_FIRST { raw.timestamp_ns } else { 999 },
            src: raw.src,
            dst: raw.dst,
            src_port: raw.src_port,
            dst_port: raw.dst_port,
            seq,
            kind,
            ..HelloSegment::default()
        }
    }

    #[test]
    fn held_event_gets_the_sni_of_its_reassembled_hello() {
        let hello = hello_with_late_sni("late.example.test", 1700);
        let raw = raw_event(&hello[..1448]);
        let first_event = testing::event(&raw);
        assert_eq!(first_event.tls.as_ref().and_then(|t| t.sni.clone()), None, "not in the first 256 bytes");
        let mut j = Joiner::new();
        let mut out = Vec::new();
        j.on_event(&raw, first_event, 0, &mut out);
        assert!(out.is_empty(), "held for its hello");
        j.on_segment(&header(&raw, 5000, SEGMENT_FIRST), &hello[..1448], 1, &mut out);
        assert!(out.is_empty());
        j.on_segment(&header(&raw, 6448, SEGMENT_NEXT), &hello[1448..], 2, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].tls.as_ref().and_then(|t| t.sni.as_deref()), Some("late.example.test"));
        assert_eq!(out[0].detail, "TLS late.example.test");
    }

    #[test]
    fn hello_before_its_event_waits_for_it() {
        let hello = hello_with_late_sni("early.example.test", 1700);
        let raw = raw_event(&hello[..1448]);
        let mut j = Joiner::new();
        let mut out = Vec::new();
        j.on_segment(&header(&raw, 1, SEGMENT_FIRST), &hello[..1448], 0, &mut out);
        j.on_segment(&header(&raw, 1449, SEGMENT_NEXT), &hello[1448..], 0, &mut out);
        assert!(out.is_empty());
        j.on_event(&raw, testing::event(&raw), 1, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].tls.as_ref().and_then(|t| t.sni.as_deref()), Some("early.example.test"));
    }

    #[test]
    fn an_event_whose_hello_never_completes_goes_on_after_the_hold() {
        let hello = hello_with_late_sni("lost.example.test", 1700);
        let raw = raw_event(&hello[..1448]);
        let mut j = Joiner::new();
        let mut out = Vec::new();
        j.on_event(&raw, testing::event(&raw), 0, &mut out);
        j.on_segment(&header(&raw, 1, SEGMENT_FIRST), &hello[..1448], 0, &mut out);
        j.tick(SEC / 2, &mut out);
        assert!(out.is_empty());
        // The reassembly times out first: the partial hello still parses.
        j.tick(SEC, &mut out);
        assert_eq!(out.len(), 1);
        let tls = out[0].tls.as_ref().expect("a ClientHello, cut short");
        assert_eq!(tls.sni, None);
        // Without any segment, the event waits HOLD and no longer.
        let mut other = raw;
        other.timestamp_ns = 78;
        j.on_event(&other, testing::event(&other), 2 * SEC, &mut out);
        j.tick(2 * SEC + HOLD.as_nanos() as u64 - 1, &mut out);
        assert_eq!(out.len(), 1);
        j.tick(2 * SEC + HOLD.as_nanos() as u64, &mut out);
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn ordinary_events_pass_at_once() {
        let hello = hello_with_late_sni("small.test", 10);
        assert!(hello.len() < 256);
        let raw = raw_event(&hello);
        let mut j = Joiner::new();
        let mut out = Vec::new();
        j.on_event(&raw, testing::event(&raw), 0, &mut out);
        assert_eq!(out.len(), 1, "a hello the event holds whole is not waited for");
        assert_eq!(out[0].tls.as_ref().and_then(|t| t.sni.as_deref()), Some("small.test"));
        let mut http = raw_event(b"GET / HTTP/1.1\r\n");
        http.class = Class::Http as u8;
        j.on_event(&http, testing::event(&http), 0, &mut out);
        assert_eq!(out.len(), 2);
    }
}
