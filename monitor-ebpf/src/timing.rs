//! HTTP response timing. The XDP observer's stage [`monitor_xdp_request`]
//! records when a request arrives; the TC egress program [`monitor_tc`]
//! matches the response leaving on the reversed flow, counts its status
//! class and latency bucket exactly, and samples an event. Both only
//! observe: the classifier always returns TC_ACT_OK and never writes to the
//! packet.
//!
//! Only helpers available on Linux 5.10; packet bytes in TC are read with
//! bpf_skb_load_bytes (constant lengths), which copes with non-linear skbs.

use aya_ebpf::{
    bindings::{xdp_action, BPF_ANY, TC_ACT_OK},
    helpers::bpf_skb_load_bytes,
    macros::{classifier, xdp},
    programs::{TcContext, XdpContext},
};
use aya_log_ebpf::warn;
use monitor_common::{
    maps::PORT_HTTP,
    timing::{
        latency_bucket, looks_like_request, looks_like_response, status_class, FlowKey, HttpCounter, HttpResponseEvent,
        PendingRequest, REQUEST_CAPTURE, RESPONSE_CAPTURE,
    },
};

use crate::{
    budget, clock, copy, event,
    maps::{
        add, port_flags, HTTP_CONFIG, HTTP_COUNTERS, HTTP_EVENTS, HTTP_LATENCY, HTTP_REQUESTS, HTTP_STATUS,
        HTTP_WINDOW, SAMPLING,
    },
    parse::{ipv4_mapped, ptr_at, Summary, ETH_HLEN, ETH_P_IP, ETH_P_IPV6, IPPROTO_TCP},
    stash,
};

#[inline(always)]
fn bump(counter: HttpCounter) {
    add(&HTTP_COUNTERS, counter as u32, 1);
}

/// True for TCP to an HTTP port whose payload starts like a request, while
/// the daemon has timing on: the packet goes to [`monitor_xdp_request`].
#[inline(always)]
pub fn is_request(ctx: &XdpContext, s: &Summary) -> bool {
    if s.protocol != IPPROTO_TCP || s.payload_len < 8 {
        return false;
    }
    if !HTTP_CONFIG.get(0).is_some_and(|c| c.enabled != 0) {
        return false;
    }
    // SAFETY: bounds checked by ptr_at.
    ptr_at::<[u8; 8]>(ctx, s.payload_offset).is_some_and(|first| looks_like_request(unsafe { &*first }))
}

/// Stage of the XDP observer: remembers when a request started, keyed by
/// its connection, then writes the packet's event if it was sampled.
#[xdp]
pub fn monitor_xdp_request(ctx: XdpContext) -> u32 {
    if let Some(stash) = stash::get() {
        // SAFETY: this CPU's stash, written by the stage that called us.
        let stash = unsafe { &*stash };
        record_request(&ctx, &stash.summary);
        event::emit(&ctx, stash);
    }
    xdp_action::XDP_PASS
}

#[inline(always)]
fn record_request(ctx: &XdpContext, s: &Summary) {
    let key = FlowKey { client: s.src, server: s.dst, client_port: s.src_port, server_port: s.dst_port };
    if HTTP_REQUESTS.get_ptr(&key).is_some() {
        bump(HttpCounter::RequestsReplaced);
    }
    let mut pending = PendingRequest {
        ts_ns: clock::precise_now(),
        ifindex: ctx.ingress_ifindex() as u32,
        request_len: 0,
        _pad: 0,
        request: [0; REQUEST_CAPTURE],
    };
    let copied = copy::packet_bytes(ctx, s.payload_offset, &mut pending.request);
    pending.request_len = copied.min(s.payload_len) as u16;
    match HTTP_REQUESTS.insert(&key, &pending, u64::from(BPF_ANY)) {
        Ok(()) => bump(HttpCounter::RequestsRecorded),
        Err(code) => {
            bump(HttpCounter::RequestInsertFailed);
            warn!(ctx, "pending HTTP request table: insert failed ({})", code);
        }
    }
}

#[classifier]
pub fn monitor_tc(ctx: TcContext) -> i32 {
    observe_response(&ctx);
    TC_ACT_OK as i32
}

/// What the header walk of an outgoing packet found.
#[repr(C, align(8))]
struct Response {
    client: [u8; 16],
    server: [u8; 16],
    client_port: u16,
    server_port: u16,
    ip_version: u8,
    payload_offset: usize,
    payload_len: usize,
}

#[inline(always)]
fn observe_response(ctx: &TcContext) {
    let Some(r) = walk(ctx) else {
        return;
    };
    if r.payload_len < 12 {
        return;
    }
    let Ok(first) = ctx.load::<[u8; 12]>(r.payload_offset) else {
        return;
    };
    let mut head = [0u8; 8];
    head.copy_from_slice(&first[..8]);
    if !looks_like_response(&head) {
        return;
    }
    let key = FlowKey { client: r.client, server: r.server, client_port: r.client_port, server_port: r.server_port };
    let Some(request) = HTTP_REQUESTS.get_ptr(&key) else {
        bump(HttpCounter::ResponsesUnmatched);
        return;
    };
    let now = clock::precise_now();
    // SAFETY: map value pointer from a successful lookup.
    let latency = now.saturating_sub(unsafe { (*request).ts_ns });
    let status = status_class(&first);
    add(&HTTP_STATUS, status as u32, 1);
    add(&HTTP_LATENCY, latency_bucket(latency), 1);
    bump(HttpCounter::ResponsesMatched);
    add(&HTTP_COUNTERS, HttpCounter::LatencySumNs as u32, latency);
    emit(ctx, &r, request, latency, status, now);
    let _ = HTTP_REQUESTS.remove(&key);
}

#[inline(always)]
fn walk(ctx: &TcContext) -> Option<Response> {
    let ethertype = u16::from_be_bytes(ctx.load::<[u8; 2]>(12).ok()?);
    let mut r = Response {
        client: [0; 16],
        server: [0; 16],
        client_port: 0,
        server_port: 0,
        ip_version: 0,
        payload_offset: 0,
        payload_len: 0,
    };
    let (l4, l4_len) = match ethertype {
        ETH_P_IP => {
            let hdr = ctx.load::<[u8; 20]>(ETH_HLEN).ok()?;
            let header_len = ((hdr[0] & 0x0f) as usize) * 4;
            let total_len = u16::from_be_bytes([hdr[2], hdr[3]]) as usize;
            let fragment_offset = u16::from_be_bytes([hdr[6], hdr[7]]) & 0x1fff;
            if hdr[0] >> 4 != 4 || header_len < 20 || total_len < header_len || hdr[9] != IPPROTO_TCP || fragment_offset != 0 {
                return None;
            }
            r.ip_version = 4;
            ipv4_mapped(&raw mut r.server, [hdr[12], hdr[13], hdr[14], hdr[15]]);
            ipv4_mapped(&raw mut r.client, [hdr[16], hdr[17], hdr[18], hdr[19]]);
            (ETH_HLEN + header_len, total_len - header_len)
        }
        ETH_P_IPV6 => {
            let hdr = ctx.load::<[u8; 40]>(ETH_HLEN).ok()?;
            // Extension headers are not walked on egress: a local TCP
            // response carries none.
            if hdr[0] >> 4 != 6 || hdr[6] != IPPROTO_TCP {
                return None;
            }
            r.ip_version = 6;
            r.server.copy_from_slice(&hdr[8..24]);
            r.client.copy_from_slice(&hdr[24..40]);
            (ETH_HLEN + 40, u16::from_be_bytes([hdr[4], hdr[5]]) as usize)
        }
        _ => return None,
    };
    let tcp = ctx.load::<[u8; 20]>(l4).ok()?;
    let data_offset = ((tcp[12] >> 4) as usize) * 4;
    r.server_port = u16::from_be_bytes([tcp[0], tcp[1]]);
    r.client_port = u16::from_be_bytes([tcp[2], tcp[3]]);
    if data_offset < 20 || l4_len < data_offset {
        return None;
    }
    if port_flags(r.server_port) & PORT_HTTP == 0 {
        return None;
    }
    r.payload_offset = l4 + data_offset;
    // A GSO packet's IP length may not describe this skb: trust the smaller.
    let in_skb = (ctx.len() as usize).saturating_sub(r.payload_offset);
    r.payload_len = (l4_len - data_offset).min(in_skb);
    Some(r)
}

#[inline(always)]
fn emit(ctx: &TcContext, r: &Response, request: *const PendingRequest, latency: u64, status: u8, now: u64) {
    let Some(config) = SAMPLING.get(0) else {
        return;
    };
    if config.events_enabled == 0 {
        return;
    }
    let Some(pending) = HTTP_COUNTERS.get_ptr_mut(HttpCounter::PendingWeight as u32) else {
        return;
    };
    let Some(window) = HTTP_WINDOW.get_ptr_mut(0) else {
        return;
    };
    if !budget::take(window, config.global_per_cpu_per_sec, now) {
        bump(HttpCounter::EventSuppressed);
        // SAFETY: per-CPU value, see add().
        unsafe { *pending += 1 };
        return;
    }
    let Some(mut entry) = HTTP_EVENTS.reserve::<HttpResponseEvent>(0) else {
        bump(HttpCounter::EventRingFull);
        unsafe { *pending += 1 };
        return;
    };
    let ev = entry.as_mut_ptr();
    // SAFETY: `ev` is a reservation of size_of::<HttpResponseEvent>(), every
    // field is written before submit; `request` is a live map value pointer.
    unsafe {
        let weight = *pending + 1;
        *pending = 0;
        (*ev).timestamp_ns = now;
        (*ev).latency_ns = latency;
        (*ev).client = r.client;
        (*ev).server = r.server;
        (*ev).ifindex = (*ctx.skb.skb).ifindex;
        (*ev).weight = weight.min(u32::MAX as u64) as u32;
        (*ev).client_port = r.client_port;
        (*ev).server_port = r.server_port;
        (*ev).ip_version = r.ip_version;
        (*ev).status_class = status;
        (*ev).request_len = (*request).request_len;
        (*ev)._pad = [0; 6];
        (*ev).request = (*request).request;
        (*ev).response = [0; RESPONSE_CAPTURE];
        let out = (*ev).response.as_mut_ptr().cast();
        let skb = ctx.skb.skb.cast();
        let offset = r.payload_offset as u32;
        // A bounded length (12..=64, known non-zero) the verifier accepts.
        let want = r.payload_len.min(RESPONSE_CAPTURE) as u32;
        let copied =
            if (12..=RESPONSE_CAPTURE as u32).contains(&want) && bpf_skb_load_bytes(skb, offset, out, want) == 0 {
                want as usize
            } else {
                0
            };
        (*ev).response_len = copied.min(r.payload_len) as u16;
    }
    entry.submit(0);
    bump(HttpCounter::EventSubmitted);
}
