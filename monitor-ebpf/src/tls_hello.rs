//! Whole TLS ClientHellos for the daemon (see monitor_common::tls_capture):
//! a sampled HTTPS event whose payload starts a ClientHello record its
//! event cannot hold sends its whole frame to a perf event array, and the
//! flow's next in-order data segments follow (stage [`monitor_xdp_tls`])
//! until the record's end, a segment limit or a one-second window.
//!
//! `bpf_perf_event_output` with the frame length in the upper 32 bits of
//! its flags appends the XDP frame itself to the sample: no copy loop for
//! the verifier to walk. Available on every kernel we support (4.8+).
//!
//! Ordinary packets pay one array read (the gate) in the first stage; the
//! flow lookup happens only while a hello may be pending.

use core::{ffi::c_void, mem::size_of};

use aya_ebpf::{
    bindings::{xdp_action, BPF_ANY, BPF_F_CURRENT_CPU},
    helpers::bpf_perf_event_output,
    macros::xdp,
    programs::XdpContext,
    EbpfContext as _,
};
use monitor_common::{
    event::PAYLOAD_CAPTURE,
    timing::FlowKey,
    tls_capture::{
        client_hello_record_len, HelloCounter, HelloFlow, HelloSegment, HELLO_PREFIX_LEN, HELLO_WINDOW_NS,
        MAX_HELLO_SEGMENTS, MAX_SEGMENT_CAPTURE, SEGMENT_FIRST, SEGMENT_NEXT,
    },
    Class,
};

use crate::{
    atomic_add, event,
    maps::{add, TLS_HELLO_COUNTERS, TLS_HELLO_FLOWS, TLS_HELLO_GATE, TLS_HELLO_SEGMENTS},
    parse::{ptr_at, Summary, IPPROTO_TCP, MAX_OFFSET},
    stash::{self, Stash},
};

#[inline(always)]
fn bump(counter: HelloCounter) {
    add(&TLS_HELLO_COUNTERS, counter as u32, 1);
}

/// First stage: true for an HTTPS TCP data segment while some flow's hello
/// may be pending (the packet then goes to [`monitor_xdp_tls`]).
#[inline(always)]
pub fn may_follow(s: &Summary, now: u64) -> bool {
    if s.class != Class::Https || s.protocol != IPPROTO_TCP || s.payload_len == 0 {
        return false;
    }
    TLS_HELLO_GATE.get(0).is_some_and(|g| g.pending > 0 && now.wrapping_sub(g.last_insert_ns) < HELLO_WINDOW_NS)
}

/// Stage of the XDP observer: captures the packet if it is the next segment
/// of a pending hello, then writes its event if it was sampled.
#[xdp]
pub fn monitor_xdp_tls(ctx: XdpContext) -> u32 {
    if let Some(stash) = stash::get() {
        // SAFETY: this CPU's stash, written by the stage that called us.
        let stash = unsafe { &*stash };
        follow(&ctx, stash);
        if event::emit(&ctx, stash) {
            capture_first(&ctx, stash);
        }
    }
    xdp_action::XDP_PASS
}

#[inline(always)]
fn flow_key(s: &Summary) -> FlowKey {
    FlowKey { client: s.src, server: s.dst, client_port: s.src_port, server_port: s.dst_port }
}

/// After a sampled event was written: if its payload starts a ClientHello
/// record the event does not hold whole, the frame goes to the daemon, and
/// the flow is remembered if the record goes on past this segment.
#[inline(always)]
pub fn capture_first(ctx: &XdpContext, stash: &Stash) {
    let s = &stash.summary;
    if s.class != Class::Https || s.protocol != IPPROTO_TCP {
        return;
    }
    let Some(prefix) = ptr_at::<[u8; HELLO_PREFIX_LEN]>(ctx, s.payload_offset & MAX_OFFSET) else {
        return;
    };
    // SAFETY: bounds checked by ptr_at.
    let Some(total) = client_hello_record_len(unsafe { &*prefix }) else {
        return;
    };
    if total <= PAYLOAD_CAPTURE && total <= s.payload_len {
        return;
    }
    if !output(ctx, stash, SEGMENT_FIRST) {
        return;
    }
    bump(HelloCounter::FirstCaptured);
    if total <= s.payload_len {
        return;
    }
    let flow = HelloFlow {
        first_ns: stash.now,
        next_seq: s.tcp_seq.wrapping_add(s.payload_len as u32),
        remaining: (total - s.payload_len) as u32,
        segments: 1,
        _pad: 0,
    };
    if TLS_HELLO_FLOWS.insert(&flow_key(s), &flow, u64::from(BPF_ANY)).is_err() {
        bump(HelloCounter::FlowInsertFailed);
        return;
    }
    if let Some(gate) = TLS_HELLO_GATE.get_ptr_mut(0) {
        // SAFETY: map value pointer. Racing CPUs may miscount; the gate
        // only decides whether to look, and the window bounds the error.
        unsafe {
            if stash.now.wrapping_sub((*gate).last_insert_ns) >= HELLO_WINDOW_NS {
                (*gate).window_start_ns = stash.now;
                (*gate).pending = 1;
            } else {
                atomic_add((&raw mut (*gate).pending).cast::<u64>(), 1);
            }
            (*gate).last_insert_ns = stash.now;
        }
    }
}

/// The packet's flow: if a hello is pending on it and this is its next
/// segment in order, the frame goes to the daemon.
#[inline(always)]
fn follow(ctx: &XdpContext, stash: &Stash) {
    let s = &stash.summary;
    let key = flow_key(s);
    let Some(flow) = TLS_HELLO_FLOWS.get_ptr_mut(&key) else {
        return;
    };
    // SAFETY: map value pointer from a successful lookup.
    let flow = unsafe { &mut *flow };
    if stash.now.wrapping_sub(flow.first_ns) >= HELLO_WINDOW_NS {
        bump(HelloCounter::FlowExpired);
        forget(&key, flow.first_ns);
        return;
    }
    let first_ns = flow.first_ns;
    if s.tcp_seq != flow.next_seq {
        bump(HelloCounter::OutOfOrder);
        return;
    }
    if !output(ctx, stash, SEGMENT_NEXT) {
        // The daemon's reassembly ends at the gap; stop following.
        forget(&key, first_ns);
        return;
    }
    bump(HelloCounter::NextCaptured);
    flow.segments += 1;
    let len = s.payload_len as u32;
    if len >= flow.remaining {
        forget(&key, first_ns);
        return;
    }
    if flow.segments >= MAX_HELLO_SEGMENTS {
        bump(HelloCounter::SegmentLimit);
        forget(&key, first_ns);
        return;
    }
    flow.remaining -= len;
    flow.next_seq = flow.next_seq.wrapping_add(len);
}

/// Stops following a flow remembered at `first_ns`; it counts down the
/// gate only if the gate's window counted it.
#[inline(always)]
fn forget(key: &FlowKey, first_ns: u64) {
    if TLS_HELLO_FLOWS.remove(key).is_err() {
        return;
    }
    if let Some(gate) = TLS_HELLO_GATE.get_ptr_mut(0) {
        // SAFETY: map value pointer; adding u64::MAX subtracts one.
        unsafe {
            if first_ns >= (*gate).window_start_ns {
                atomic_add((&raw mut (*gate).pending).cast::<u64>(), u64::MAX);
            }
        }
    }
}

/// Sends the header and the whole frame (up to [`MAX_SEGMENT_CAPTURE`]) to
/// this CPU's perf buffer; counts a failure.
#[inline(always)]
fn output(ctx: &XdpContext, stash: &Stash, kind: u8) -> bool {
    let s = &stash.summary;
    let captured = stash.packet_len.min(u64::from(MAX_SEGMENT_CAPTURE));
    let header = HelloSegment {
        timestamp_ns: stash.now,
        src: s.src,
        dst: s.dst,
        src_port: s.src_port,
        dst_port: s.dst_port,
        seq: s.tcp_seq,
        ifindex: ctx.ingress_ifindex() as u32,
        captured_len: captured as u32,
        payload_offset: s.payload_offset as u16,
        payload_len: s.payload_len.min(0xffff) as u16,
        kind,
        _pad: [0; 3],
    };
    let flags = (captured << 32) | u64::from(BPF_F_CURRENT_CPU);
    // SAFETY: the map pointer is the perf event array's definition (what
    // aya-ebpf's own wrapper passes); the header is a live stack value of
    // the size given; `captured` is at most the frame's length.
    let ret = unsafe {
        bpf_perf_event_output(
            ctx.as_ptr(),
            (&raw const TLS_HELLO_SEGMENTS).cast_mut().cast::<c_void>(),
            flags,
            (&raw const header).cast_mut().cast::<c_void>(),
            size_of::<HelloSegment>() as u64,
        )
    };
    if ret != 0 {
        bump(HelloCounter::OutputFailed);
        return false;
    }
    true
}
