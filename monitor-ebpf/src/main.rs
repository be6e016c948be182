//! Monitor's XDP observer: counts every ingress packet by class, keeps
//! per-source statistics, and samples events into a ring buffer with honest
//! accounting. It always returns `XDP_PASS`: it observes, never changes.
//!
//! Only helpers available on Linux 5.15 are used.
#![no_std]
#![no_main]
// The BPF target has no atomic RMW in `core::sync::atomic`; the intrinsic
// lowers to BPF_XADD, which every kernel we support has.
#![feature(core_intrinsics)]
#![allow(internal_features)]

mod parse;
mod timing;

use core::intrinsics::{atomic_xadd, AtomicOrdering};

use aya_ebpf::{
    bindings::{xdp_action, BPF_NOEXIST, BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    helpers::{bpf_ktime_get_coarse_ns, bpf_ktime_get_ns},
    macros::{map, xdp},
    maps::{Array, LruHashMap, PerCpuArray, RingBuf},
    programs::XdpContext,
};
use monitor_common::{
    class::CLASS_COUNT,
    event::PAYLOAD_CAPTURE,
    maps::{
        ClassCounter, PipelineCounter, RateWindow, SamplingConfig, SourceKey, SourceStats, DEFAULT_RING_BYTES,
        DEFAULT_SOURCES_MAX, PIPELINE_COUNTER_COUNT, WINDOW_NS,
    },
    PacketEvent,
};
use parse::{ptr_at, Summary};

#[map]
static CLASS_COUNTERS: PerCpuArray<ClassCounter> = PerCpuArray::with_max_entries(CLASS_COUNT as u32, 0);

#[map]
static PIPELINE_COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(PIPELINE_COUNTER_COUNT, 0);

#[map]
static SOURCES: LruHashMap<SourceKey, SourceStats> = LruHashMap::with_max_entries(DEFAULT_SOURCES_MAX, 0);

#[map]
pub(crate) static PORTS: Array<u8> = Array::with_max_entries(65_536, 0);

#[map]
pub(crate) static SAMPLING: Array<SamplingConfig> = Array::with_max_entries(1, 0);

#[map]
static GLOBAL_WINDOW: PerCpuArray<RateWindow> = PerCpuArray::with_max_entries(1, 0);

#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(DEFAULT_RING_BYTES, 0);

#[xdp]
pub fn monitor_xdp(ctx: XdpContext) -> u32 {
    observe(&ctx);
    xdp_action::XDP_PASS
}

#[inline(always)]
fn observe(ctx: &XdpContext) {
    let packet_len = (ctx.data_end() - ctx.data()) as u64;
    let summary = parse::summarize(ctx);
    let class = summary.class as u32;
    if let Some(counter) = CLASS_COUNTERS.get_ptr_mut(class) {
        // SAFETY: per-CPU value, only this CPU writes it, and XDP runs with
        // preemption disabled.
        unsafe {
            (*counter).packets += 1;
            (*counter).bytes += packet_len;
        }
    }
    if !summary.class.is_tracked() {
        return;
    }
    // The coarse clock (one tick's resolution) is a fraction of the cost of
    // the precise one and ample for rate windows and first/last seen; the
    // HTTP request time that responses are measured against stays precise.
    let now = unsafe { bpf_ktime_get_coarse_ns() };
    if summary.class == monitor_common::Class::Http {
        timing::record_request(ctx, &summary, unsafe { bpf_ktime_get_ns() });
    }
    let Some(source) = update_source(&summary, class as usize, packet_len, now) else {
        return;
    };
    if event_worthy(&summary) {
        sample(ctx, &summary, source, packet_len, now);
    }
}

/// ICMP always; TCP when it opens a connection or carries data (pure ACKs
/// are counted but would only crowd out the interesting events); QUIC always.
#[inline(always)]
fn event_worthy(s: &Summary) -> bool {
    const SYN: u8 = 0x02;
    s.protocol != 6 || s.tcp_flags & SYN != 0 || s.payload_len > 0
}

#[inline(always)]
fn bump(counter: PipelineCounter) {
    if let Some(v) = PIPELINE_COUNTERS.get_ptr_mut(counter as u32) {
        // SAFETY: per-CPU value, see observe().
        unsafe { *v += 1 };
    }
}

#[inline(always)]
fn atomic_add(target: *mut u64, value: u64) {
    // SAFETY: `target` points into a map value shared by all CPUs; the add is
    // atomic (BPF_XADD) and its result unused.
    unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(target, value) };
}

/// Adds the packet to its source's statistics; returns the entry.
#[inline(always)]
fn update_source(s: &Summary, class: usize, packet_len: u64, now: u64) -> Option<*mut SourceStats> {
    let class = class & 3;
    let key = SourceKey { addr: s.src };
    if let Some(stats) = SOURCES.get_ptr_mut(&key) {
        // SAFETY: map value pointer from a successful lookup; fields are
        // plain integers and `class` is masked to the array length.
        unsafe {
            atomic_add(&raw mut (*stats).packets[class], 1);
            atomic_add(&raw mut (*stats).bytes[class], packet_len);
            if (*stats).first_seen_ns[class] == 0 {
                (*stats).first_seen_ns[class] = now;
            }
            (*stats).last_seen_ns[class] = now;
        }
        return Some(stats);
    }
    let mut fresh = SourceStats::default();
    fresh.packets[class] = 1;
    fresh.bytes[class] = packet_len;
    fresh.first_seen_ns[class] = now;
    fresh.last_seen_ns[class] = now;
    match SOURCES.insert(&key, &fresh, BPF_NOEXIST as u64) {
        Ok(()) => bump(PipelineCounter::SourceInserted),
        Err(_) => {
            // Another CPU inserted it first: add to its entry instead.
            let Some(stats) = SOURCES.get_ptr_mut(&key) else {
                bump(PipelineCounter::SourceInsertFailed);
                return None;
            };
            // SAFETY: as above.
            unsafe {
                atomic_add(&raw mut (*stats).packets[class], 1);
                atomic_add(&raw mut (*stats).bytes[class], packet_len);
                (*stats).last_seen_ns[class] = now;
            }
            return Some(stats);
        }
    }
    SOURCES.get_ptr_mut(&key)
}

/// True if the window still has budget; rolls the window over when due.
#[inline(always)]
fn take_budget(window: *mut RateWindow, limit: u64, now: u64) -> bool {
    // SAFETY: `window` is a map value pointer. Concurrent updates of a shared
    // source window may race; that can only let a few extra events through,
    // and every event or suppression is still counted exactly per CPU.
    unsafe {
        if now.wrapping_sub((*window).start_ns) >= WINDOW_NS {
            (*window).start_ns = now;
            (*window).count = 0;
        }
        if limit != 0 && (*window).count >= limit {
            return false;
        }
        (*window).count += 1;
    }
    true
}

#[inline(always)]
fn sample(ctx: &XdpContext, s: &Summary, source: *mut SourceStats, packet_len: u64, now: u64) {
    let Some(config) = SAMPLING.get(0) else {
        return;
    };
    if config.events_enabled == 0 {
        return;
    }
    bump(PipelineCounter::EventEligible);
    // SAFETY: `source` is a live map value pointer from update_source.
    let pending = unsafe { &raw mut (*source).pending_weight };
    if !take_budget(unsafe { &raw mut (*source).window }, config.per_source_per_sec, now) {
        bump(PipelineCounter::SuppressedSource);
        atomic_add(pending, 1);
        return;
    }
    let Some(global) = GLOBAL_WINDOW.get_ptr_mut(0) else {
        return;
    };
    if !take_budget(global, config.global_per_cpu_per_sec, now) {
        bump(PipelineCounter::SuppressedGlobal);
        atomic_add(pending, 1);
        return;
    }
    let Some(mut entry) = EVENTS.reserve::<PacketEvent>(0) else {
        bump(PipelineCounter::RingFull);
        atomic_add(pending, 1);
        return;
    };
    // SAFETY: plain reads/writes of a map value; see take_budget on races.
    let weight = unsafe {
        let w = *pending + 1;
        *pending = 0;
        w
    };
    fill_event(ctx, s, entry.as_mut_ptr(), packet_len, weight, now);
    entry.submit(wakeup_flag(config.wakeup_bytes));
    bump(PipelineCounter::EventSubmitted);
}

/// Bytes one event takes in the ring: the record plus its 8-byte header.
const RING_RECORD: u64 = (core::mem::size_of::<PacketEvent>() as u64 + 8 + 7) & !7;

/// Wakes the reader only when this record takes the unread data across
/// `wakeup_bytes`; the reader drains on its own timer otherwise. Waking on
/// every record costs microseconds each, and so would waking on every record
/// while the reader is behind.
#[inline(always)]
fn wakeup_flag(wakeup_bytes: u32) -> u64 {
    let unread = EVENTS.query(BPF_RB_AVAIL_DATA as u64);
    let threshold = u64::from(wakeup_bytes);
    if unread >= threshold && unread < threshold + RING_RECORD {
        BPF_RB_FORCE_WAKEUP as u64
    } else {
        BPF_RB_NO_WAKEUP as u64
    }
}

#[inline(always)]
fn fill_event(ctx: &XdpContext, s: &Summary, ev: *mut PacketEvent, packet_len: u64, weight: u64, now: u64) {
    // SAFETY: `ev` is a ring-buffer reservation of size_of::<PacketEvent>();
    // every field is written before submit.
    unsafe {
        (*ev).timestamp_ns = now;
        (*ev).src = s.src;
        (*ev).dst = s.dst;
        (*ev).ifindex = ctx.ingress_ifindex() as u32;
        (*ev).packet_len = packet_len as u32;
        (*ev).weight = weight.min(u32::MAX as u64) as u32;
        (*ev).class = s.class as u8;
        (*ev).ip_version = s.ip_version;
        (*ev).icmp_type = s.icmp_type;
        (*ev).icmp_code = s.icmp_code;
        (*ev).icmp_id = s.icmp_id;
        (*ev).icmp_seq = s.icmp_seq;
        (*ev).src_port = s.src_port;
        (*ev).dst_port = s.dst_port;
        (*ev).tcp_flags = s.tcp_flags;
        (*ev).protocol = s.protocol;
        (*ev)._pad = 0;
        let copied = copy_payload(ctx, s.payload_offset, &mut (*ev).payload);
        (*ev).payload_len = copied.min(s.payload_len) as u16;
    }
}

/// Copies up to PAYLOAD_CAPTURE bytes from `offset` and returns how many
/// were copied: 8-byte chunks, then one 4-byte and one 2-byte chunk, each
/// read bounds-checked. A payload's final odd byte is not captured: a
/// one-byte bounds check is a shape the verifier cannot follow (see parse.rs),
/// and a byte loop multiplies its states.
#[inline(always)]
fn copy_payload(ctx: &XdpContext, offset: usize, out: &mut [u8; PAYLOAD_CAPTURE]) -> usize {
    let mut copied = copy_chunks::<8>(ctx, offset, out, 0, PAYLOAD_CAPTURE);
    copied = copy_chunks::<4>(ctx, offset, out, copied, copied + 4);
    copy_chunks::<2>(ctx, offset, out, copied, copied + 2)
}

/// Copies N-byte chunks from `offset + copied` while they fit in the packet
/// and below `limit` (at most PAYLOAD_CAPTURE); returns the new `copied`.
#[inline(always)]
fn copy_chunks<const N: usize>(
    ctx: &XdpContext,
    offset: usize,
    out: &mut [u8; PAYLOAD_CAPTURE],
    mut copied: usize,
    limit: usize,
) -> usize {
    while copied + N <= limit && copied + N <= PAYLOAD_CAPTURE {
        let Some(src) = ptr_at::<[u8; N]>(ctx, offset + copied) else {
            break;
        };
        // SAFETY: bounds checked by ptr_at; copied + N <= PAYLOAD_CAPTURE.
        unsafe { out.as_mut_ptr().add(copied).cast::<[u8; N]>().write_unaligned(*src) };
        copied += N;
    }
    copied
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
