//! The real HTTP timing programs, run by the kernel on crafted frames
//! (BPF_PROG_TEST_RUN): the XDP program records a request, the TC egress
//! program matches the response. The classifier always returns TC_ACT_OK
//! and never changes a byte; counters and events are exact.
//!
//! Needs root (CAP_BPF + CAP_NET_ADMIN).

use aya::{
    maps::{MapData, RingBuf},
    programs::{TestRun as _, TestRunOptions},
};
use etherparse::{IpHeaders, PacketBuilder, PacketBuilderStep};
use monitor::sources::kernel::{HttpKernelCounters, KernelConfig, KernelEventContext, Observer};
use monitor_common::timing::{latency_bucket, HttpResponseEvent, LATENCY_BUCKETS};

const XDP_PASS: u32 = 2;
const TC_ACT_OK: u32 = 0;
const CLIENT4: [u8; 4] = [192, 0, 2, 10];
const SERVER4: [u8; 4] = [198, 51, 100, 1];
const CLIENT6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10];
const SERVER6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01];
const CLIENT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const SERVER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];

const REQUEST: &[u8] = b"GET /index.html?x=1 HTTP/1.1\r\nHost: example.test\r\n\r\n";
const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

struct Harness {
    observer: Observer,
    http_ring: RingBuf<MapData>,
    _ring: RingBuf<MapData>,
}

impl Harness {
    fn new(recording: bool) -> Self {
        let config = KernelConfig { events_per_source: 0, events_per_sec: 0, ..KernelConfig::default() };
        let mut observer = Observer::load(&config).expect("loading the XDP program (these tests must run as root)");
        observer.load_tc().expect("the verifier accepts the TC program");
        observer.set_http_recording(recording).expect("config map");
        let _ring = observer.take_events().expect("ring");
        let http_ring = observer.take_http_events().expect("http ring");
        Harness { observer, http_ring, _ring }
    }

    fn request(&mut self, frame: &[u8]) {
        let mut opts = TestRunOptions::new();
        opts.data_in = Some(frame);
        let r = self.observer.program().expect("xdp").test_run(opts).expect("xdp test_run");
        assert_eq!(r.return_value, XDP_PASS);
    }

    /// Runs the classifier; asserts TC_ACT_OK and that the frame is unchanged.
    fn response(&mut self, frame: &[u8]) {
        let mut out = vec![0u8; frame.len() + 256];
        let mut opts = TestRunOptions::new();
        opts.data_in = Some(frame);
        opts.data_out = Some(&mut out);
        let r = self.observer.load_tc().expect("tc").test_run(opts).expect("tc test_run");
        assert_eq!(r.return_value, TC_ACT_OK, "the classifier must always pass");
        assert_eq!(&out[..r.data_size_out as usize], frame, "the classifier must not alter the packet");
    }

    fn counters(&self) -> HttpKernelCounters {
        self.observer.http_counters().expect("http counters")
    }

    fn events(&mut self) -> Vec<HttpResponseEvent> {
        let mut out = Vec::new();
        while let Some(item) = self.http_ring.next() {
            out.push(HttpResponseEvent::from_bytes(&item).expect("full record"));
        }
        out
    }
}

fn tcp4(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    tcp(PacketBuilder::ethernet2(CLIENT_MAC, SERVER_MAC).ipv4(src, dst, 64), sport, dport, payload)
}

fn tcp6(src: [u8; 16], dst: [u8; 16], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    tcp(PacketBuilder::ethernet2(CLIENT_MAC, SERVER_MAC).ipv6(src, dst, 64), sport, dport, payload)
}

/// A PSH+ACK segment carrying `payload` over the given IP layer.
fn tcp(ip: PacketBuilderStep<IpHeaders>, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    ip.tcp(sport, dport, 1, 64_240).psh().ack(1).write(&mut out, payload).expect("build");
    out
}

fn request4(client_port: u16) -> Vec<u8> {
    tcp4(CLIENT4, SERVER4, client_port, 80, REQUEST)
}

fn response4(client_port: u16, payload: &[u8]) -> Vec<u8> {
    tcp4(SERVER4, CLIENT4, 80, client_port, payload)
}

#[test]
fn response_matching_a_request_is_timed_counted_and_sampled() {
    let mut h = Harness::new(true);
    h.request(&request4(40_000));
    let c = h.counters();
    assert_eq!((c.requests_recorded, c.responses_matched), (1, 0));
    assert_eq!(h.observer.http_pending().expect("pending"), 1);

    h.response(&response4(40_000, RESPONSE));
    let c = h.counters();
    assert_eq!(c.responses_matched, 1);
    assert_eq!(c.responses_unmatched, 0);
    assert_eq!(c.status, [0, 0, 1, 0, 0, 0], "one 2xx");
    assert_eq!(c.latency.iter().sum::<u64>(), 1, "one latency sample");
    assert_eq!(c.event_submitted, 1);
    assert_eq!(h.observer.http_pending().expect("pending"), 0, "the matched request is removed");

    let events = h.events();
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(c.latency[latency_bucket(e.latency_ns) as usize], 1);
    assert_eq!(c.latency_sum_ns, e.latency_ns);
    assert_eq!(e.status_class, 2);
    assert_eq!((e.client_port, e.server_port, e.ip_version, e.weight), (40_000, 80, 4, 1));
    assert_eq!(&e.client[12..], &CLIENT4);
    assert_eq!(&e.server[12..], &SERVER4);
    assert_eq!(e.response(), RESPONSE);
    // The request is captured up to 64 bytes in 8-, 4- and 2-byte chunks:
    // all of it but a final odd byte.
    assert_eq!(e.request(), &REQUEST[..REQUEST.len().min(64) & !1]);

    let ev = KernelEventContext::new([]).event_from_response(e);
    assert_eq!(ev.class, monitor_common::Class::Http);
    assert_eq!(ev.src.to_string(), "192.0.2.10");
    let r = ev.response.as_ref().expect("response info");
    assert_eq!((r.status, r.status_class, r.reason.as_str()), (Some(200), "2xx", "OK"));
    assert!(ev.detail.starts_with("200 OK in "), "{}", ev.detail);
    assert!(ev.detail.ends_with(" ms (GET /index.html?x=1)"), "{}", ev.detail);

    // The same response again has nothing left to match.
    h.response(&response4(40_000, RESPONSE));
    let c = h.counters();
    assert_eq!((c.responses_matched, c.responses_unmatched), (1, 1));
    assert!(h.events().is_empty());
}

#[test]
fn ipv6_and_status_classes() {
    let mut h = Harness::new(true);
    for (port, status) in [
        (41_000u16, &b"HTTP/1.1 404 Not Found\r\n\r\n"[..]),
        (41_001, b"HTTP/1.0 503 Busy\r\n\r\n"),
        (41_002, b"HTTP/1.1 301 Moved\r\n\r\n"),
        (41_003, b"HTTP/1.1 999 Odd\r\n\r\n"),
    ] {
        h.request(&tcp6(CLIENT6, SERVER6, port, 8080, REQUEST));
        h.response(&tcp6(SERVER6, CLIENT6, 8080, port, status));
    }
    let c = h.counters();
    assert_eq!(c.requests_recorded, 4);
    assert_eq!(c.responses_matched, 4);
    assert_eq!(c.status, [1, 0, 0, 1, 1, 1], "other, 3xx, 4xx, 5xx");
    let events = h.events();
    assert_eq!(events.len(), 4);
    assert!(events.iter().all(|e| e.ip_version == 6 && e.client == CLIENT6 && e.server_port == 8080));
}

#[test]
fn unmatched_non_http_and_malformed_frames_pass_untouched_and_uncounted() {
    let mut h = Harness::new(true);
    h.request(&request4(42_000));
    let before = h.counters();
    let full = response4(42_000, RESPONSE);
    let mut frames: Vec<Vec<u8>> = vec![
        // A response on another connection: unmatched (counted as such below).
        response4(42_001, RESPONSE),
    ];
    let uncounted: Vec<Vec<u8>> = vec![
        // (BPF_PROG_TEST_RUN itself refuses frames without a whole IP header.)
        full[..14 + 20 + 10].to_vec(),     // TCP header cut
        full[..14 + 20 + 20 + 6].to_vec(), // payload cut short
        {
            let mut f = full[..14 + 20 + 8].to_vec();
            f[14] = 0x4f; // IHL 15: options beyond the frame
            f
        },
        {
            let mut f = full.clone();
            f[14 + 20 + 12] = 0xf0; // TCP data offset 60: beyond the segment
            f
        },
        response4(42_000, b"HTTP/1"),                  // payload too short
        response4(42_000, b"HTTP/2 200 OK\r\n\r\n"),   // not HTTP/1.x
        response4(42_000, b"GET / HTTP/1.1\r\n\r\n"),  // a request, not a response
        tcp4(SERVER4, CLIENT4, 443, 42_000, RESPONSE), // not an HTTP port
        {
            let mut f = full.clone();
            f[14] = 0x44; // IHL 4: impossible
            f
        },
        {
            let mut f = full.clone();
            f[12] = 0x08;
            f[13] = 0x06; // ARP
            f
        },
    ];
    frames.extend(uncounted.iter().cloned());
    for f in &frames {
        h.response(f);
    }
    let c = h.counters();
    assert_eq!(c.responses_unmatched, before.responses_unmatched + 1, "only the other connection's response");
    assert_eq!(c.responses_matched, 0);
    assert_eq!(c.latency, vec![0; LATENCY_BUCKETS]);
    assert_eq!(h.observer.http_pending().expect("pending"), 1, "the request still waits");
    assert!(h.events().is_empty());
    // Its real response still matches afterwards.
    h.response(&full);
    assert_eq!(h.counters().responses_matched, 1);
}

#[test]
fn requests_are_recorded_only_when_enabled_and_replaced_on_reuse() {
    let mut h = Harness::new(false);
    h.request(&request4(43_000));
    assert_eq!(h.counters().requests_recorded, 0, "recording is off until TC is attached");
    h.response(&response4(43_000, RESPONSE));
    assert_eq!(h.counters().responses_unmatched, 1);

    h.observer.set_http_recording(true).expect("config");
    h.request(&request4(43_001));
    h.request(&request4(43_001));
    // Not a request: no record.
    h.request(&tcp4(CLIENT4, SERVER4, 43_002, 80, b"hello there\r\n"));
    let c = h.counters();
    assert_eq!((c.requests_recorded, c.requests_replaced), (2, 1));
    assert_eq!(h.observer.http_pending().expect("pending"), 1);
    assert_eq!(h.observer.expire_http_requests(u64::MAX).expect("expire"), 0, "nothing that old");
    assert_eq!(h.observer.expire_http_requests(0).expect("expire"), 1);
    assert_eq!(h.observer.http_pending().expect("pending"), 0);
}
