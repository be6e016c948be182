//! Stage 2 of the XDP observer: one sampled packet becomes a ring-buffer
//! event (its header fields and the first bytes of its payload).

use aya_ebpf::{
    bindings::{xdp_action, BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    macros::xdp,
    programs::XdpContext,
};
use monitor_common::{maps::PipelineCounter, PacketEvent};

use crate::{
    bump, copy, give_back,
    maps::{EVENTS, SAMPLING},
    stash::{self, Stash},
    tls_hello,
};

#[xdp]
pub fn monitor_xdp_event(ctx: XdpContext) -> u32 {
    if let Some(stash) = stash::get() {
        // SAFETY: this CPU's stash, written by the stage that called us.
        let stash = unsafe { &*stash };
        if emit(&ctx, stash) {
            tls_hello::capture_first(&ctx, stash);
        }
    }
    xdp_action::XDP_PASS
}

/// Writes the stashed packet to the ring; a full ring gives the event's
/// weight back to its source, so no packet goes uncounted. True if an event
/// was written.
#[inline(always)]
pub fn emit(ctx: &XdpContext, stash: &Stash) -> bool {
    if stash.weight == 0 {
        return false;
    }
    let Some(mut entry) = EVENTS.reserve::<PacketEvent>(0) else {
        bump(PipelineCounter::RingFull);
        give_back(&stash.summary, stash.weight);
        return false;
    };
    fill(ctx, stash, entry.as_mut_ptr());
    let wakeup_bytes = SAMPLING.get(0).map_or(0, |c| c.wakeup_bytes);
    entry.submit(wakeup_flag(wakeup_bytes));
    bump(PipelineCounter::EventSubmitted);
    true
}

/// Bytes one event takes in the ring: the record plus its 8-byte header.
const RING_RECORD: u64 = (core::mem::size_of::<PacketEvent>() as u64 + 8 + 7) & !7;

/// Wakes the reader only when this record takes the unread data across
/// `wakeup_bytes`; the reader drains on its own timer otherwise. Waking on
/// every record costs microseconds each, and so would waking on every record
/// while the reader is behind.
#[inline(always)]
fn wakeup_flag(wakeup_bytes: u32) -> u64 {
    let unread = EVENTS.query(u64::from(BPF_RB_AVAIL_DATA));
    let threshold = u64::from(wakeup_bytes);
    if unread >= threshold && unread < threshold + RING_RECORD {
        u64::from(BPF_RB_FORCE_WAKEUP)
    } else {
        u64::from(BPF_RB_NO_WAKEUP)
    }
}

#[inline(always)]
fn fill(ctx: &XdpContext, stash: &Stash, ev: *mut PacketEvent) {
    let s = &stash.summary;
    // SAFETY: `ev` is a ring-buffer reservation of size_of::<PacketEvent>();
    // every field is written before submit.
    unsafe {
        (*ev).timestamp_ns = stash.now;
        (*ev).src = s.src;
        (*ev).dst = s.dst;
        (*ev).ifindex = ctx.ingress_ifindex() as u32;
        (*ev).packet_len = stash.packet_len as u32;
        (*ev).weight = stash.weight.min(u64::from(u32::MAX)) as u32;
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
        let copied = copy::packet_bytes(ctx, s.payload_offset, &mut (*ev).payload);
        (*ev).payload_len = copied.min(s.payload_len) as u16;
    }
}
