//! Monitor's XDP observer and HTTP timing programs. The observer counts
//! every ingress packet by class, keeps per-source statistics, and samples
//! events into a ring buffer with honest accounting; it always returns
//! `XDP_PASS`: it observes, never changes.
//!
//! The observer is three programs, so that each old verifier (Linux 5.10,
//! 6.1) walks each part on its own instead of every header path times every
//! event path: [`monitor_xdp`] parses and counts, then tail-calls
//! [`event::monitor_xdp_event`] for a sampled packet and
//! [`timing::monitor_xdp_request`] for an HTTP request, and
//! [`tls_hello::monitor_xdp_tls`] for an HTTPS segment while a ClientHello
//! may be pending (it follows the hello into its next segments). Only helpers of
//! Linux 5.10 are used, or ones the daemon enables by kernel (see clock.rs).
#![no_std]
#![no_main]
// The BPF target has no atomic RMW in `core::sync::atomic`; the intrinsic
// lowers to BPF_XADD, which every kernel we support has.
#![feature(core_intrinsics)]
#![allow(internal_features, reason = "core_intrinsics, for atomic_xadd")]

mod budget;
mod clock;
mod copy;
mod event;
mod maps;
mod parse;
mod stash;
mod timing;
mod tls_hello;

use core::intrinsics::{atomic_xadd, AtomicOrdering};

use aya_ebpf::{
    bindings::{xdp_action, BPF_NOEXIST},
    macros::xdp,
    programs::XdpContext,
};
use aya_log_ebpf::{error, warn};
use monitor_common::{
    class::TRACKED_CLASS_COUNT,
    maps::{PipelineCounter, SourceKey, SourceStats, Stage},
    Class,
};
use parse::Summary;

use crate::maps::{CLASS_COUNTERS, GLOBAL_WINDOW, PIPELINE_COUNTERS, SAMPLING, SOURCES, STAGES};

#[xdp]
pub fn monitor_xdp(ctx: XdpContext) -> u32 {
    observe(&ctx);
    xdp_action::XDP_PASS
}

#[inline(always)]
fn observe(ctx: &XdpContext) {
    let Some(stash) = stash::get() else {
        return;
    };
    let packet_len = (ctx.data_end() - ctx.data()) as u64;
    // The summary lives in the stash (map memory: the stack is too small
    // for it next to a fresh source entry, and the later stages read it
    // there). Its payload offset is the one value whose paths the verifier
    // would keep apart (it is added to packet pointers): blurred, they meet.
    // SAFETY: this CPU's stash; see stash.rs.
    let summary = unsafe {
        (*stash).summary = parse::summarize(ctx, stash);
        (*stash).summary.payload_offset = stash::blur(stash, (*stash).summary.payload_offset);
        &(*stash).summary
    };
    let class = summary.class as u32;
    if let Some(counter) = CLASS_COUNTERS.get_ptr_mut(class) {
        // SAFETY: per-CPU value, see maps::add.
        unsafe {
            (*counter).packets += 1;
            (*counter).bytes += packet_len;
        }
    }
    if !summary.class.is_tracked() {
        return;
    }
    let now = clock::coarse_now();
    let http_request = summary.class == Class::Http && timing::is_request(ctx, summary);
    let Some(source) = update_source(ctx, summary, class as usize, packet_len, now) else {
        return;
    };
    let weight = if event_worthy(summary) { sample(source, class as usize % TRACKED_CLASS_COUNT, now) } else { 0 };
    let tls_follow = !http_request && tls_hello::may_follow(summary, now);
    if weight == 0 && !http_request && !tls_follow {
        return;
    }
    // SAFETY: this CPU's stash; see stash.rs.
    unsafe {
        (*stash).packet_len = packet_len;
        (*stash).now = now;
        (*stash).weight = weight;
    }
    let next = if http_request {
        Stage::HttpRequest
    } else if tls_follow {
        Stage::TlsHello
    } else {
        Stage::Event
    };
    // SAFETY: a tail call does not return when it succeeds.
    unsafe { STAGES.tail_call(ctx, next as u32) };
    stage_failed(ctx, summary, weight);
}

/// A tail call failed (the daemon has not filled the stage table): counted,
/// and a sampled packet's weight goes back to its source.
#[inline(always)]
fn stage_failed(ctx: &XdpContext, s: &Summary, weight: u64) {
    bump(PipelineCounter::StageFailed);
    error!(ctx, "tail call to a later stage failed: is the stage table filled?");
    give_back(s, weight);
}

/// Returns an event's weight to its source, to ride on its next event.
#[inline(always)]
pub(crate) fn give_back(s: &Summary, weight: u64) {
    if weight == 0 {
        return;
    }
    let class = s.class as usize % TRACKED_CLASS_COUNT;
    if let Some(stats) = SOURCES.get_ptr_mut(&SourceKey { addr: s.src }) {
        // SAFETY: map value pointer from a successful lookup; `class` is
        // below the array's length.
        atomic_add(unsafe { &raw mut (*stats).pending_weight[class] }, weight);
    }
}

/// ICMP always; TCP when it opens a connection or carries data (pure ACKs
/// are counted but would only crowd out the interesting events); QUIC always.
#[inline(always)]
fn event_worthy(s: &Summary) -> bool {
    const SYN: u8 = 0x02;
    s.protocol != parse::IPPROTO_TCP || s.tcp_flags & SYN != 0 || s.payload_len > 0
}

#[inline(always)]
pub(crate) fn bump(counter: PipelineCounter) {
    maps::add(&PIPELINE_COUNTERS, counter as u32, 1);
}

#[inline(always)]
fn atomic_add(target: *mut u64, value: u64) {
    // SAFETY: `target` points into a map value shared by all CPUs; the add is
    // atomic (BPF_XADD) and its result unused.
    unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(target, value) };
}

/// Adds the packet to its source's statistics; returns the entry.
#[inline(always)]
fn update_source(ctx: &XdpContext, s: &Summary, class: usize, packet_len: u64, now: u64) -> Option<*mut SourceStats> {
    let class = class % TRACKED_CLASS_COUNT;
    let key = SourceKey { addr: s.src };
    if let Some(stats) = SOURCES.get_ptr_mut(&key) {
        add_to_source(stats, class, packet_len, now);
        return Some(stats);
    }
    // The new entry is built in the stash: 152 bytes the stack cannot spare.
    let fresh = stash::fresh_source()?;
    // SAFETY: this CPU's stash; `class` is below the arrays' length.
    let fresh = unsafe {
        *fresh = SourceStats::default();
        (*fresh).packets[class] = 1;
        (*fresh).bytes[class] = packet_len;
        (*fresh).first_seen_ns[class] = now;
        (*fresh).last_seen_ns[class] = now;
        &*fresh
    };
    if SOURCES.insert(&key, fresh, u64::from(BPF_NOEXIST)).is_ok() {
        bump(PipelineCounter::SourceInserted);
        return SOURCES.get_ptr_mut(&key);
    }
    // Another CPU inserted it first: add to its entry instead.
    let Some(stats) = SOURCES.get_ptr_mut(&key) else {
        bump(PipelineCounter::SourceInsertFailed);
        warn!(ctx, "per-source table: insert failed and no entry exists");
        return None;
    };
    add_to_source(stats, class, packet_len, now);
    Some(stats)
}

#[inline(always)]
fn add_to_source(stats: *mut SourceStats, class: usize, packet_len: u64, now: u64) {
    // SAFETY: map value pointer from a successful lookup; fields are plain
    // integers and `class` is below the arrays' length.
    unsafe {
        atomic_add(&raw mut (*stats).packets[class], 1);
        atomic_add(&raw mut (*stats).bytes[class], packet_len);
        if (*stats).first_seen_ns[class] == 0 {
            (*stats).first_seen_ns[class] = now;
        }
        (*stats).last_seen_ns[class] = now;
    }
}

/// The sampling decision: the event's weight (itself plus the packets of
/// its source and class suppressed since its last event of that class), or
/// 0 when the per-source or global budget is spent (the packet then adds to
/// its class's pending weight).
#[inline(always)]
fn sample(source: *mut SourceStats, class: usize, now: u64) -> u64 {
    let Some(config) = SAMPLING.get(0) else {
        return 0;
    };
    if config.events_enabled == 0 {
        return 0;
    }
    bump(PipelineCounter::EventEligible);
    // SAFETY: `source` is a live map value pointer from update_source.
    let pending = unsafe { &raw mut (*source).pending_weight[class] };
    if !budget::take(unsafe { &raw mut (*source).window }, config.per_source_per_sec, now) {
        bump(PipelineCounter::SuppressedSource);
        atomic_add(pending, 1);
        return 0;
    }
    let Some(global) = GLOBAL_WINDOW.get_ptr_mut(0) else {
        return 0;
    };
    if !budget::take(global, config.global_per_cpu_per_sec, now) {
        bump(PipelineCounter::SuppressedGlobal);
        atomic_add(pending, 1);
        return 0;
    }
    // SAFETY: plain read and reset of a map value; see budget::take on races.
    unsafe {
        let weight = *pending + 1;
        *pending = 0;
        weight
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
