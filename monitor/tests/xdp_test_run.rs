//! The real XDP program, run by the kernel on crafted frames
//! (BPF_PROG_TEST_RUN): the verdict is always XDP_PASS and the counters and
//! ring-buffer events are exactly what each frame should produce.
//!
//! Needs root (CAP_BPF + CAP_NET_ADMIN); `cargo xtask test` runs it as root.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use aya::{
    maps::{MapData, RingBuf},
    programs::{TestRun as _, TestRunOptions},
};
use etherparse::PacketBuilder;
use monitor::sources::kernel::{ip_from_kernel, KernelConfig, KernelCounters, Observer};
use monitor_common::{Class, PacketEvent};

const XDP_PASS: u32 = 2;
const SRC4: [u8; 4] = [192, 0, 2, 10];
const DST4: [u8; 4] = [198, 51, 100, 1];
const SRC6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10];
const DST6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01];

struct Harness {
    observer: Observer,
    ring: RingBuf<MapData>,
}

impl Harness {
    fn new() -> Self {
        Self::with(KernelConfig { events_per_source: 0, events_per_sec: 0, ..KernelConfig::default() })
    }

    fn with(config: KernelConfig) -> Self {
        let mut observer =
            Observer::load(&config).expect("loading the XDP program (these tests must run as root: cargo xtask test)");
        let ring = observer.take_events().expect("ring buffer");
        Harness { observer, ring }
    }

    /// Runs the program `repeat` times on `frame`; asserts XDP_PASS.
    fn run_n(&mut self, frame: &[u8], repeat: u32) {
        let mut opts = TestRunOptions::new();
        opts.data_in = Some(frame);
        opts.repeat = repeat;
        let result = self.observer.program().expect("program").test_run(opts).expect("test_run");
        assert_eq!(result.return_value, XDP_PASS, "the observer must always pass");
    }

    fn run(&mut self, frame: &[u8]) {
        self.run_n(frame, 1);
    }

    fn counters(&self) -> KernelCounters {
        self.observer.counters().expect("counters")
    }

    fn events(&mut self) -> Vec<PacketEvent> {
        let mut out = Vec::new();
        while let Some(item) = self.ring.next() {
            out.push(PacketEvent::from_bytes(&item).expect("full record"));
        }
        out
    }

    /// Asserts that exactly `n` packets were counted, all in `class`.
    fn assert_only(&self, class: Class, n: u64, bytes: u64) {
        let counters = self.counters();
        for c in Class::ALL {
            let expected = if c == class { (n, bytes) } else { (0, 0) };
            let got = counters.classes[c as usize];
            assert_eq!((got.packets, got.bytes), expected, "class {}", c.name());
        }
    }
}

fn eth_ipv4() -> etherparse::PacketBuilderStep<etherparse::IpHeaders> {
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]).ipv4(SRC4, DST4, 64)
}

fn eth_ipv6() -> etherparse::PacketBuilderStep<etherparse::IpHeaders> {
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]).ipv6(SRC6, DST6, 64)
}

fn build(builder: impl FnOnce(&mut Vec<u8>, &[u8]), payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::new();
    builder(&mut frame, payload);
    frame
}

fn icmp4_echo(id: u16, seq: u16) -> Vec<u8> {
    build(|out, p| eth_ipv4().icmpv4_echo_request(id, seq).write(out, p).expect("build"), &[0xab; 56])
}

fn icmp6_echo(id: u16, seq: u16) -> Vec<u8> {
    build(|out, p| eth_ipv6().icmpv6_echo_request(id, seq).write(out, p).expect("build"), &[0xcd; 56])
}

fn tcp4(dst_port: u16, payload: &[u8]) -> Vec<u8> {
    build(|out, p| eth_ipv4().tcp(40_000, dst_port, 1, 64_240).psh().ack(1).write(out, p).expect("build"), payload)
}

fn v4(addr: [u8; 4]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(addr))
}

#[test]
fn icmp_echo_v4_is_counted_and_sampled() {
    let mut h = Harness::new();
    let frame = icmp4_echo(4, 17);
    h.run(&frame);
    h.assert_only(Class::Icmp, 1, frame.len() as u64);
    let events = h.events();
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e.class, Class::Icmp as u8);
    assert_eq!(ip_from_kernel(e.src), v4(SRC4));
    assert_eq!(ip_from_kernel(e.dst), v4(DST4));
    assert_eq!((e.ip_version, e.icmp_type, e.icmp_code, e.icmp_id, e.icmp_seq), (4, 8, 0, 4, 17));
    assert_eq!((e.weight, e.packet_len), (1, frame.len() as u32));
    let p = h.counters().pipeline;
    assert_eq!((p.event_eligible, p.event_submitted, p.source_inserted), (1, 1, 1));
}

#[test]
fn icmp_echo_v6_is_counted_and_sampled() {
    let mut h = Harness::new();
    let frame = icmp6_echo(9, 2);
    h.run(&frame);
    h.assert_only(Class::Icmpv6, 1, frame.len() as u64);
    let e = h.events().pop().expect("one event");
    assert_eq!(ip_from_kernel(e.src), IpAddr::V6(Ipv6Addr::from(SRC6)));
    assert_eq!((e.ip_version, e.icmp_type, e.icmp_id, e.icmp_seq), (6, 128, 9, 2));
}

#[test]
fn vlan_tagged_frames_are_looked_through() {
    let mut h = Harness::new();
    let single = build(
        |out, p| {
            PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
                .single_vlan(etherparse::VlanId::try_new(42).expect("vlan"))
                .ipv4(SRC4, DST4, 64)
                .icmpv4_echo_request(1, 1)
                .write(out, p)
                .expect("build")
        },
        &[0; 8],
    );
    let double = build(
        |out, p| {
            PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
                .double_vlan(
                    etherparse::VlanId::try_new(100).expect("vlan"),
                    etherparse::VlanId::try_new(42).expect("vlan"),
                )
                .ipv6(SRC6, DST6, 64)
                .icmpv6_echo_request(1, 2)
                .write(out, p)
                .expect("build")
        },
        &[0; 8],
    );
    h.run(&single);
    h.run(&double);
    let c = h.counters();
    assert_eq!(c.classes[Class::Icmp as usize].packets, 1);
    assert_eq!(c.classes[Class::Icmpv6 as usize].packets, 1);
    assert_eq!(h.events().len(), 2);
}

/// IPv4 with `extra_words` 32-bit words of options (IHL = 5 + extra_words).
fn icmp4_with_options(extra_words: u8) -> Vec<u8> {
    let mut frame = icmp4_echo(7, 3);
    let options = vec![1u8; extra_words as usize * 4]; // NOP options
    frame.splice(34..34, options);
    frame[14] = 0x40 | (5 + extra_words);
    let total = u16::from_be_bytes([frame[16], frame[17]]) + u16::from(extra_words) * 4;
    frame[16..18].copy_from_slice(&total.to_be_bytes());
    frame
}

#[test]
fn ipv4_options_of_every_length_are_skipped() {
    let mut h = Harness::new();
    for words in 1..=10 {
        h.run(&icmp4_with_options(words));
    }
    assert_eq!(h.counters().classes[Class::Icmp as usize].packets, 10);
    let events = h.events();
    assert_eq!(events.len(), 10);
    assert!(events.iter().all(|e| e.icmp_id == 7 && e.icmp_seq == 3 && e.icmp_type == 8));
}

/// An IPv6 ICMPv6 echo behind the given extension headers, each given as
/// (header type, body bytes after the two-byte next/len prefix).
fn icmp6_behind(exts: &[(u8, usize)]) -> Vec<u8> {
    let frame = icmp6_echo(5, 6);
    let (head, icmp) = frame.split_at(54);
    let mut out = head.to_vec();
    let mut chain = Vec::new();
    for (i, &(kind, len)) in exts.iter().enumerate() {
        let next = exts.get(i + 1).map_or(58, |e| e.0);
        let mut hdr = vec![next, 0];
        match kind {
            44 => hdr.extend([0u8; 6]), // fragment: offset 0, first fragment
            51 => {
                hdr[1] = ((len + 2) / 4 - 2) as u8;
                hdr.extend(vec![0u8; len]);
            }
            _ => {
                hdr[1] = ((len + 2) / 8 - 1) as u8;
                hdr.extend(vec![1u8; len]);
            }
        }
        chain.extend(hdr);
    }
    out[20] = exts.first().map_or(58, |e| e.0);
    let payload_len = (chain.len() + icmp.len()) as u16;
    out[18..20].copy_from_slice(&payload_len.to_be_bytes());
    out.extend(chain);
    out.extend_from_slice(icmp);
    out
}

#[test]
fn ipv6_extension_headers_are_skipped() {
    let mut h = Harness::new();
    h.run(&icmp6_behind(&[(0, 6)]));
    h.run(&icmp6_behind(&[(0, 14), (60, 6), (43, 22)]));
    h.run(&icmp6_behind(&[(44, 0), (51, 10)]));
    assert_eq!(h.counters().classes[Class::Icmpv6 as usize].packets, 3);
    assert!(h.events().iter().all(|e| e.icmp_id == 5 && e.icmp_seq == 6));
}

#[test]
fn ipv6_chains_too_deep_or_later_fragments_are_other_ipv6() {
    let mut h = Harness::new();
    let too_deep = icmp6_behind(&[(60, 6); 7]);
    let mut later_fragment = icmp6_behind(&[(44, 0)]);
    later_fragment[54 + 3] = 0x08; // fragment offset 1
    h.run(&too_deep);
    h.run(&later_fragment);
    h.assert_only(Class::OtherIpv6, 2, (too_deep.len() + later_fragment.len()) as u64);
    assert!(h.events().is_empty());
}

#[test]
fn http_request_is_counted_with_its_request_line() {
    let mut h = Harness::new();
    let request = b"GET /api/users?page=2 HTTP/1.1\r\nHost: example.test\r\nUser-Agent: t\r\n\r\n";
    let frame = tcp4(80, request);
    h.run(&frame);
    h.assert_only(Class::Http, 1, frame.len() as u64);
    let e = h.events().pop().expect("event");
    assert_eq!((e.src_port, e.dst_port, e.protocol), (40_000, 80, 6));
    // At most the final odd byte of the payload is not captured.
    assert!(request.len() - e.payload().len() <= 1, "captured {}", e.payload().len());
    assert_eq!(e.payload(), &request[..e.payload().len()]);
    let line = monitor_common::http::parse_request_line(e.payload()).expect("request line");
    assert_eq!((line.method, line.target), ("GET", "/api/users?page=2"));
}

#[test]
fn payload_capture_is_bounded_and_respects_ip_length() {
    let mut h = Harness::new();
    let long = vec![b'a'; 1000];
    h.run(&tcp4(8080, &long));
    let e = h.events().pop().expect("event");
    assert_eq!(e.payload().len(), monitor_common::event::PAYLOAD_CAPTURE);
    // Ethernet padding after the IP packet is not payload.
    let mut padded = tcp4(80, b"GET / HTTP/1.0\r\n\r\n");
    padded.extend([0xee; 20]);
    h.run(&padded);
    let e = h.events().pop().expect("event");
    assert!(e.payload().len() <= 18 && !e.payload().contains(&0xee));
}

#[test]
fn tls_client_hello_is_https_with_payload() {
    let mut h = Harness::new();
    let hello = client_hello("api.example.com");
    let frame = tcp4(443, &hello);
    h.run(&frame);
    h.assert_only(Class::Https, 1, frame.len() as u64);
    let e = h.events().pop().expect("event");
    let parsed = monitor_common::tls::parse_client_hello(e.payload()).expect("client hello");
    assert_eq!(parsed.server_name, Some("api.example.com"));
}

/// A minimal, valid TLS 1.2 ClientHello with one SNI extension.
fn client_hello(sni: &str) -> Vec<u8> {
    monitor_common::tls_sample::client_hello(sni, 0)
}

/// A ClientHello whose SNI follows `pad` bytes of padding extension.
fn client_hello_padded(sni: &str, pad: usize) -> Vec<u8> {
    monitor_common::tls_sample::client_hello(sni, pad)
}

fn tcp4_seq(seq: u32, payload: &[u8]) -> Vec<u8> {
    build(|out, p| eth_ipv4().tcp(40_000, 443, seq, 64_240).psh().ack(1).write(out, p).expect("build"), payload)
}

/// Every perf sample waiting on any CPU, as (header, TCP payload).
fn hello_segments(
    buffers: &mut [aya::maps::perf::PerfEventArrayBuffer<MapData>],
) -> Vec<(monitor_common::tls_capture::HelloSegment, Vec<u8>)> {
    let mut out = Vec::new();
    for buffer in buffers {
        buffer.for_each(|event| {
            if let aya::maps::perf::PerfEvent::Sample { head, tail } = event {
                let sample = [head, tail].concat();
                let (h, payload) =
                    monitor_common::tls_capture::HelloSegment::parse(&sample).expect("well-formed sample");
                out.push((h, payload.to_vec()));
            }
        });
    }
    out
}

/// A ClientHello too long for one segment and the event's capture: its
/// first segment and then its next one in order go to the perf array
/// whole, a retransmission does not, and the two make the whole hello.
#[test]
fn large_client_hello_segments_are_captured_whole() {
    use monitor_common::tls_capture::{SEGMENT_FIRST, SEGMENT_NEXT};
    let mut h = Harness::new();
    let mut array = h.observer.take_tls_hello_segments().expect("perf array");
    let cpus = aya::util::online_cpus().expect("online CPUs");
    let mut buffers: Vec<_> = cpus.iter().map(|&cpu| array.open(cpu, Some(16)).expect("perf buffer")).collect();
    let hello = client_hello_padded("late.example.com", 1700);
    assert!(hello.len() > 1448 + 100);
    let (first, rest) = hello.split_at(1000);
    h.run(&tcp4_seq(5000, first));
    h.run(&tcp4_seq(5000, first)); // a retransmission of the first: a new event, not a next segment
    h.run(&tcp4_seq(7000, rest)); // out of order
    h.run(&tcp4_seq(6000, rest));
    h.run(&tcp4_seq(6000, rest)); // the flow is complete: not followed any more
    let mut segments = hello_segments(&mut buffers);
    // Per-CPU buffers: the test thread may have moved between runs.
    segments.sort_by_key(|(h, _)| (h.kind, h.seq, h.timestamp_ns));
    let kinds: Vec<(u8, u32)> = segments.iter().map(|(h, _)| (h.kind, h.seq)).collect();
    assert_eq!(kinds, [(SEGMENT_FIRST, 5000), (SEGMENT_FIRST, 5000), (SEGMENT_NEXT, 6000)]);
    assert_eq!(segments[0].1, first);
    assert_eq!(segments[2].1, rest);
    let events = h.events();
    assert_eq!(segments[0].0.timestamp_ns, events[0].timestamp_ns, "the first segment names its event");
    assert_eq!(ip_from_kernel(segments[0].0.src), v4(SRC4));
    let whole = [segments[0].1.as_slice(), &segments[2].1].concat();
    let parsed = monitor_common::tls::parse_client_hello(&whole).expect("client hello");
    assert_eq!(parsed.server_name, Some("late.example.com"));
    let c = h.counters().pipeline.tls_hello;
    assert_eq!((c.first_captured, c.next_captured, c.out_of_order, c.output_failed), (2, 1, 2, 0), "{c:?}");

    // A hello that fits the event's capture is not sent again.
    let small = client_hello("small.example.com");
    h.run(&tcp4_seq(1, &small));
    assert!(hello_segments(&mut buffers).is_empty());
}

/// With no reader on the CPU, the perf output fails: counted, and the flow
/// is not followed.
#[test]
fn hello_capture_without_a_reader_is_counted() {
    let mut h = Harness::new();
    let hello = client_hello_padded("late.example.com", 1700);
    let (first, rest) = hello.split_at(1000);
    h.run(&tcp4_seq(5000, first));
    h.run(&tcp4_seq(6000, rest));
    let c = h.counters().pipeline.tls_hello;
    assert_eq!((c.first_captured, c.next_captured, c.output_failed), (0, 0, 1), "{c:?}");
    assert_eq!(h.events().len(), 2, "the events themselves are unaffected");
}

#[test]
fn other_tcp_udp_and_quic() {
    let mut h = Harness::new();
    h.run(&tcp4(22, b"SSH-2.0-x\r\n"));
    h.run(&build(|o, p| eth_ipv4().udp(5353, 53).write(o, p).expect("build"), &[0; 20]));
    h.run(&build(|o, p| eth_ipv6().udp(5353, 53).write(o, p).expect("build"), &[0; 20]));
    h.run(&build(|o, p| eth_ipv4().udp(50_000, 443).write(o, p).expect("build"), &[0xc3; 40]));
    let c = h.counters();
    assert_eq!(c.classes[Class::OtherIpv4 as usize].packets, 2);
    assert_eq!(c.classes[Class::OtherIpv6 as usize].packets, 1);
    assert_eq!(c.classes[Class::Https as usize].packets, 1, "QUIC to UDP 443 is HTTPS");
    let events = h.events();
    assert_eq!(events.len(), 1, "only the QUIC packet is a tracked class");
    assert_eq!((events[0].protocol, events[0].dst_port), (17, 443));
}

#[test]
fn tcp_without_syn_or_payload_is_counted_without_event() {
    let mut h = Harness::new();
    let ack = build(|o, p| eth_ipv4().tcp(40_000, 80, 1, 100).ack(5).write(o, p).expect("build"), &[]);
    let syn = build(|o, p| eth_ipv4().tcp(40_000, 80, 1, 100).syn().write(o, p).expect("build"), &[]);
    h.run(&ack);
    h.run(&syn);
    assert_eq!(h.counters().classes[Class::Http as usize].packets, 2);
    let events = h.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].tcp_flags & 0x02, 0x02);
}

#[test]
fn arp_is_non_ip() {
    let mut h = Harness::new();
    let mut arp = vec![0xff; 6];
    arp.extend([2, 0, 0, 0, 0, 1, 0x08, 0x06]);
    arp.extend([0, 1, 8, 0, 6, 4, 0, 1]);
    arp.extend([0u8; 20]);
    h.run(&arp);
    h.assert_only(Class::NonIp, 1, arp.len() as u64);
    assert!(h.events().is_empty());
}

#[test]
fn truncation_at_every_header_boundary_is_malformed() {
    let icmp = icmp4_echo(1, 1);
    let icmp6 = icmp6_echo(1, 1);
    let tcp = tcp4(80, b"GET / HTTP/1.1\r\n\r\n");
    let vlan = build(
        |out, p| {
            PacketBuilder::ethernet2([2; 6], [3; 6])
                .single_vlan(etherparse::VlanId::try_new(5).expect("vlan"))
                .ipv4(SRC4, DST4, 1)
                .icmpv4_echo_request(1, 1)
                .write(out, p)
                .expect("build")
        },
        &[],
    );
    // (frame, lengths to cut it at): inside the VLAN tag, the IP header and
    // the transport header. test_run needs at least an Ethernet header.
    let cases: [(&[u8], &[usize]); 4] = [
        (&icmp, &[14, 20, 33, 34, 38, 41]),
        (&icmp6, &[14, 30, 53, 54, 58, 61]),
        (&tcp, &[14, 33, 34, 40, 53]),
        (&vlan, &[14, 16, 17, 18, 30, 37, 38, 45]),
    ];
    let mut h = Harness::new();
    let mut n = 0;
    let mut bytes = 0;
    for (frame, cuts) in cases {
        for &cut in cuts {
            h.run(&frame[..cut]);
            n += 1;
            bytes += cut as u64;
        }
    }
    h.assert_only(Class::Malformed, n, bytes);
    assert!(h.events().is_empty());
}

#[test]
fn inconsistent_headers_are_malformed() {
    let mut h = Harness::new();
    let mut bad_ihl = icmp4_echo(1, 1);
    bad_ihl[14] = 0x43;
    let mut options_missing = icmp4_echo(1, 1);
    options_missing[14] = 0x4f; // 60-byte header in a frame too short for it
    options_missing.truncate(14 + 50);
    let mut short_total = icmp4_echo(1, 1);
    short_total[16..18].copy_from_slice(&10u16.to_be_bytes());
    let mut bad_version = icmp4_echo(1, 1);
    bad_version[14] = 0x65;
    let mut bad_data_offset = tcp4(80, b"x");
    bad_data_offset[14 + 20 + 12] = 0x30;
    for frame in [&bad_ihl, &options_missing, &short_total, &bad_version, &bad_data_offset] {
        h.run(frame);
    }
    assert_eq!(h.counters().classes[Class::Malformed as usize].packets, 5);
    assert!(h.events().is_empty());
}

/// Newer kernels refuse to test-run a frame shorter than an Ethernet
/// header; 5.10 runs the program on one that is empty. Either way nothing
/// but `malformed` may count it.
#[test]
fn frames_shorter_than_ethernet_are_refused_or_malformed() {
    let mut h = Harness::new();
    let (mut run, mut bytes) = (0, 0);
    for len in [0usize, 1, 13] {
        let frame = vec![0u8; len];
        let mut opts = TestRunOptions::new();
        opts.data_in = Some(&frame);
        if let Ok(result) = h.observer.program().expect("program").test_run(opts) {
            assert_eq!(result.return_value, XDP_PASS, "len {len}");
            run += 1;
            bytes += len as u64;
        }
    }
    h.assert_only(Class::Malformed, run, bytes);
}

#[test]
fn per_source_sampling_suppresses_and_carries_weight() {
    let mut h = Harness::with(KernelConfig { events_per_source: 3, events_per_sec: 0, ..KernelConfig::default() });
    h.run_n(&icmp4_echo(1, 1), 10);
    let c = h.counters();
    assert_eq!(c.classes[Class::Icmp as usize].packets, 10, "every packet is counted");
    let p = c.pipeline;
    assert_eq!(p.event_eligible, 10);
    assert_eq!(p.event_submitted + p.suppressed_source + p.suppressed_global + p.ring_full, 10);
    assert_eq!(p.event_submitted, 3);
    assert_eq!(p.suppressed_source, 7);
    let events = h.events();
    assert_eq!(events.len(), 3);
}

/// A suppressed packet's weight rides on its source's next event of the
/// same class, never another's: event weights summed by class, plus what is
/// still pending, equal the kernel's class counters.
#[test]
fn suppressed_weight_stays_in_its_class() {
    let mut h = Harness::with(KernelConfig { events_per_source: 1, events_per_sec: 0, ..KernelConfig::default() });
    let request = tcp4(80, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    h.run_n(&icmp4_echo(1, 1), 5); // one event, then 4 ICMP packets suppressed
    h.run_n(&request, 3); // the source's budget is spent: 3 HTTP packets suppressed
                          // The per-source budget is a one-second window of the kernel's clock.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    h.run(&request); // the new window's event: the 3 HTTP packets and itself
    let events = h.events();
    let weight =
        |class: Class| events.iter().filter(|e| e.class == class as u8).map(|e| u64::from(e.weight)).sum::<u64>();
    assert_eq!((weight(Class::Icmp), weight(Class::Http)), (1, 4), "weights by class");
    let stats = h.observer.source(IpAddr::V4(Ipv4Addr::from(SRC4))).expect("lookup").expect("source entry");
    let counters = h.counters();
    for class in [Class::Icmp, Class::Http] {
        let pending = stats.pending_weight[class as usize];
        assert_eq!(weight(class) + pending, counters.classes[class as usize].packets, "class {}", class.name());
    }
}

#[test]
fn global_budget_suppresses_beyond_the_per_cpu_share() {
    let cpus = aya::util::nr_cpus().expect("cpus") as u64;
    // One event per second per CPU; test_run runs on a single CPU.
    let mut h = Harness::with(KernelConfig { events_per_source: 0, events_per_sec: cpus, ..KernelConfig::default() });
    h.run_n(&icmp4_echo(1, 1), 5);
    let p = h.counters().pipeline;
    assert_eq!((p.event_eligible, p.event_submitted, p.suppressed_global), (5, 1, 4));
    assert_eq!(h.events().len(), 1);
}

#[test]
fn full_ring_is_counted_and_carried_as_weight() {
    let mut h = Harness::with(KernelConfig {
        events_per_source: 0,
        events_per_sec: 0,
        ring_bytes: 4096,
        ..KernelConfig::default()
    });
    h.run_n(&icmp4_echo(1, 1), 50);
    let p = h.counters().pipeline;
    assert!(p.ring_full > 0, "a one-page ring cannot hold 50 events");
    assert_eq!(p.event_submitted + p.ring_full, 50);
    let events = h.events();
    assert_eq!(events.len() as u64, p.event_submitted);
    // The next event after the ring drains carries the lost ones as weight.
    h.run(&icmp4_echo(1, 2));
    let next = h.events().pop().expect("event after drain");
    assert_eq!(u64::from(next.weight), p.ring_full + 1);
}

/// Records what the kernel programs log (aya-log), for the test to read.
#[derive(Clone, Default)]
struct CapturedLog(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl log::Log for CapturedLog {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        self.0.lock().expect("log lock").push(record.args().to_string());
    }

    fn flush(&self) {}
}

#[test]
fn a_header_chain_too_deep_to_follow_is_logged_by_the_kernel() {
    let mut h = Harness::new();
    let captured = CapturedLog::default();
    let mut log = h.observer.kernel_log(captured.clone()).expect("kernel log ring");
    // Three 802.1Q tags: one more than the parser follows.
    let mut frame = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
    for _ in 0..3 {
        frame.extend_from_slice(&[0x81, 0x00, 0x00, 0x01]);
    }
    frame.extend_from_slice(&[0x08, 0x00]);
    frame.resize(64, 0);
    h.run(&frame);
    h.assert_only(Class::NonIp, 1, 64);
    log.flush();
    let lines = captured.0.lock().expect("log lock").clone();
    assert!(lines.iter().any(|l| l.contains("more than 2 VLAN tags")), "kernel log: {lines:?}");
}
