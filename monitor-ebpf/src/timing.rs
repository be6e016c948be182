//! HTTP response timing. The XDP program records when a request arrives
//! ([`record_request`]); the TC egress program [`monitor_tc`] matches the
//! response leaving on the reversed flow, counts its status class and
//! latency bucket exactly, and samples an event. Both only observe: the
//! classifier always returns TC_ACT_OK and never writes to the packet.
//!
//! Only helpers available on Linux 5.15; packet bytes in TC are read with
//! bpf_skb_load_bytes (constant lengths), which copes with non-linear skbs.

use aya_ebpf::{
    bindings::{BPF_ANY, TC_ACT_OK},
    helpers::{bpf_ktime_get_ns, bpf_skb_load_bytes},
    macros::{classifier, map},
    maps::{Array, LruHashMap, PerCpuArray, RingBuf},
    programs::{TcContext, XdpContext},
};
use monitor_common::{
    maps::{RateWindow, PORT_HTTP, WINDOW_NS},
    timing::{
        latency_bucket, looks_like_request, looks_like_response, status_class, FlowKey, HttpCounter, HttpResponseEvent,
        HttpTimingConfig, PendingRequest, DEFAULT_HTTP_REQUESTS_MAX, HTTP_COUNTER_COUNT, LATENCY_BUCKETS,
        REQUEST_CAPTURE, RESPONSE_CAPTURE, STATUS_CLASSES,
    },
};

use crate::{
    parse::{ptr_at, Summary},
    PORTS, SAMPLING,
};

#[map]
static HTTP_REQUESTS: LruHashMap<FlowKey, PendingRequest> = LruHashMap::with_max_entries(DEFAULT_HTTP_REQUESTS_MAX, 0);

#[map]
static HTTP_COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(HTTP_COUNTER_COUNT, 0);

#[map]
static HTTP_STATUS: PerCpuArray<u64> = PerCpuArray::with_max_entries(STATUS_CLASSES as u32, 0);

#[map]
static HTTP_LATENCY: PerCpuArray<u64> = PerCpuArray::with_max_entries(LATENCY_BUCKETS as u32, 0);

#[map]
static HTTP_CONFIG: Array<HttpTimingConfig> = Array::with_max_entries(1, 0);

#[map]
static HTTP_WINDOW: PerCpuArray<RateWindow> = PerCpuArray::with_max_entries(1, 0);

#[map]
static HTTP_EVENTS: RingBuf = RingBuf::with_byte_size(1 << 18, 0);

const ETH_HLEN: usize = 14;

#[inline(always)]
fn add(map: &PerCpuArray<u64>, index: u32, value: u64) {
    if let Some(v) = map.get_ptr_mut(index) {
        // SAFETY: per-CPU value; XDP and TC egress both run with bottom
        // halves disabled, so nothing else on this CPU writes it meanwhile.
        unsafe { *v += value };
    }
}

#[inline(always)]
fn bump(counter: HttpCounter) {
    add(&HTTP_COUNTERS, counter as u32, 1);
}

/// Called by the XDP program for TCP to an HTTP port: remembers when a
/// request started, keyed by its connection.
#[inline(always)]
pub fn record_request(ctx: &XdpContext, s: &Summary, now: u64) {
    if s.protocol != 6 || s.payload_len < 8 {
        return;
    }
    match HTTP_CONFIG.get(0) {
        Some(c) if c.enabled != 0 => {}
        _ => return,
    }
    let Some(first) = ptr_at::<[u8; 8]>(ctx, s.payload_offset) else {
        return;
    };
    // SAFETY: bounds checked by ptr_at.
    if !looks_like_request(unsafe { &*first }) {
        return;
    }
    let key = FlowKey { client: s.src, server: s.dst, client_port: s.src_port, server_port: s.dst_port };
    if HTTP_REQUESTS.get_ptr(&key).is_some() {
        bump(HttpCounter::RequestsReplaced);
    }
    let mut pending = PendingRequest {
        ts_ns: now,
        ifindex: ctx.ingress_ifindex() as u32,
        request_len: 0,
        _pad: 0,
        request: [0; REQUEST_CAPTURE],
    };
    let mut copied = 0usize;
    while copied + 8 <= REQUEST_CAPTURE {
        let Some(src) = ptr_at::<[u8; 8]>(ctx, s.payload_offset + copied) else {
            break;
        };
        // SAFETY: bounds checked by ptr_at; copied + 8 <= REQUEST_CAPTURE.
        unsafe { pending.request.as_mut_ptr().add(copied).cast::<[u8; 8]>().write_unaligned(*src) };
        copied += 8;
    }
    pending.request_len = copied.min(s.payload_len) as u16;
    match HTTP_REQUESTS.insert(&key, &pending, BPF_ANY as u64) {
        Ok(()) => bump(HttpCounter::RequestsRecorded),
        Err(_) => bump(HttpCounter::RequestInsertFailed),
    }
}

#[classifier]
pub fn monitor_tc(ctx: TcContext) -> i32 {
    observe_response(&ctx);
    TC_ACT_OK as i32
}

/// What the header walk of an outgoing packet found.
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
    let now = unsafe { bpf_ktime_get_ns() };
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
        0x0800 => {
            let hdr = ctx.load::<[u8; 20]>(ETH_HLEN).ok()?;
            let header_len = ((hdr[0] & 0x0f) as usize) * 4;
            let total_len = u16::from_be_bytes([hdr[2], hdr[3]]) as usize;
            let fragment_offset = u16::from_be_bytes([hdr[6], hdr[7]]) & 0x1fff;
            if hdr[0] >> 4 != 4 || header_len < 20 || total_len < header_len || hdr[9] != 6 || fragment_offset != 0 {
                return None;
            }
            r.ip_version = 4;
            r.server[10] = 0xff;
            r.server[11] = 0xff;
            r.server[12..16].copy_from_slice(&hdr[12..16]);
            r.client[10] = 0xff;
            r.client[11] = 0xff;
            r.client[12..16].copy_from_slice(&hdr[16..20]);
            (ETH_HLEN + header_len, total_len - header_len)
        }
        0x86dd => {
            let hdr = ctx.load::<[u8; 40]>(ETH_HLEN).ok()?;
            // Extension headers are not walked on egress: a local TCP
            // response carries none.
            if hdr[0] >> 4 != 6 || hdr[6] != 6 {
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
    if PORTS.get(r.server_port as u32).copied().unwrap_or(0) & PORT_HTTP == 0 {
        return None;
    }
    r.payload_offset = l4 + data_offset;
    // A GSO packet's IP length may not describe this skb: trust the smaller.
    let in_skb = (ctx.len() as usize).saturating_sub(r.payload_offset);
    r.payload_len = (l4_len - data_offset).min(in_skb);
    Some(r)
}

/// True if the per-CPU window still has budget; rolls it over when due.
#[inline(always)]
fn take_budget(limit: u64, now: u64) -> bool {
    let Some(w) = HTTP_WINDOW.get_ptr_mut(0) else {
        return false;
    };
    // SAFETY: per-CPU map value, see add().
    unsafe {
        if now.wrapping_sub((*w).start_ns) >= WINDOW_NS {
            (*w).start_ns = now;
            (*w).count = 0;
        }
        if limit != 0 && (*w).count >= limit {
            return false;
        }
        (*w).count += 1;
    }
    true
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
    if !take_budget(config.global_per_cpu_per_sec, now) {
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
