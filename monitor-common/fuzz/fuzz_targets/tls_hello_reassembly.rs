//! Drives the ClientHello reassembler (what the daemon does with every
//! segment the kernel captures) with arbitrary segments, clock steps and
//! flows. It may not panic; the table stays within its bound; every hello
//! that starts ends exactly once; a complete one is exactly its record's
//! length; and the TLS parser copes with whatever comes out.
//!
//! Input: a sequence of operations, each a 12-byte head and a payload:
//! flow (1 byte, 4 flows), flags (bit 0: first segment, bit 1: expire),
//! clock step in ms (2), seq (4), payload length (2), unused (2).
#![no_main]

use libfuzzer_sys::fuzz_target;
use monitor_common::{
    hello_reassembly::{Config, FlowId, Outcome, Reassembler, Segment},
    tls,
};

fuzz_target!(|data: &[u8]| {
    let config = Config { max_flows: 3, timeout_ns: 50_000_000, max_segments: 4 };
    let mut r = Reassembler::new(config);
    let mut ended = 0u64;
    let mut now = 0u64;
    let mut rest = data;
    while rest.len() >= 12 {
        let (head, tail) = rest.split_at(12);
        let flow = FlowId { src: [head[0] & 3; 16], dst: [1; 16], src_port: 1, dst_port: 443 };
        now += u64::from(u16::from_le_bytes([head[2], head[3]])) * 1_000_000;
        let seq = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        let len = usize::from(u16::from_le_bytes([head[8], head[9]])).min(tail.len());
        let (payload, next) = tail.split_at(len);
        rest = next;
        let segment = Segment { flow, seq, first: head[1] & 1 != 0, timestamp_ns: now, payload };
        let mut check = |d: monitor_common::hello_reassembly::Reassembled| {
            ended += 1;
            if d.outcome == Outcome::Complete {
                let declared = 5 + usize::from(u16::from_be_bytes([d.bytes[3], d.bytes[4]]));
                assert_eq!(d.bytes.len(), declared);
            }
            if let Ok(hello) = tls::parse_client_hello(&d.bytes) {
                let _ = hello.server_name;
            }
        };
        r.push(segment, now, &mut check);
        if head[1] & 2 != 0 {
            r.expire(now, &mut check);
        }
        assert!(r.pending() <= config.max_flows);
        let s = r.stats();
        assert_eq!(s.started, ended + r.pending() as u64);
        assert_eq!(s.started, s.complete + s.incomplete() + r.pending() as u64);
    }
    r.expire(u64::MAX, |_| ended += 1);
    assert_eq!(r.pending(), 0);
    assert_eq!(r.stats().started, ended);
});
