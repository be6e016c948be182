//! Capturing whole TLS ClientHellos in the kernel: a modern hello (a
//! post-quantum key share, an ECH outer hello) is 1.5 to 2 kB, spans two
//! TCP segments, and its SNI can sit anywhere in it, far past the
//! [`crate::event::PAYLOAD_CAPTURE`] bytes of an event.
//!
//! When a sampled HTTPS event's TCP payload starts a ClientHello record the
//! packet's event does not hold whole, the XDP observer sends the whole
//! frame to a perf event array (no copy loop: `bpf_perf_event_output` with
//! the frame length in the flags' upper 32 bits), and, if the record goes
//! on past the segment, remembers the flow in a small LRU map so that the
//! flow's next in-order data segments follow, up to [`MAX_HELLO_SEGMENTS`]
//! and the record's end. Each perf sample is a [`HelloSegment`] header then
//! `captured_len` bytes of the frame. The daemon reassembles the record
//! ([`crate::hello_reassembly`]) and joins its SNI onto the event.
//!
//! Every capture that fails in the kernel is counted ([`HelloCounter`]);
//! the daemon counts what it loses on its side.

/// Perf event array the hello segments go to (one buffer per CPU).
pub const MAP_TLS_HELLO_SEGMENTS: &str = "TLS_HELLO_SEGMENTS";
/// LRU hash: [`crate::timing::FlowKey`] to [`HelloFlow`]: flows whose hello
/// goes on in a later segment.
pub const MAP_TLS_HELLO_FLOWS: &str = "TLS_HELLO_FLOWS";
/// Per-CPU array of `u64`, indexed by [`HelloCounter`].
pub const MAP_TLS_HELLO_COUNTERS: &str = "TLS_HELLO_COUNTERS";
/// Array with one [`HelloGate`]: whether any flow may be pending, so that
/// ordinary HTTPS packets skip the flow lookup.
pub const MAP_TLS_HELLO_GATE: &str = "TLS_HELLO_GATE";

/// Flows the kernel follows at once (LRU: the oldest is evicted, and its
/// hello then ends incomplete in the daemon, counted there).
pub const HELLO_FLOWS_MAX: u32 = 1024;
/// A flow's later segments are followed for this long after its first.
pub const HELLO_WINDOW_NS: u64 = 1_000_000_000;
/// Segments of one hello captured at most (the first included).
pub const MAX_HELLO_SEGMENTS: u32 = 4;
/// Frame bytes one perf sample carries at most: more than any MTU-sized
/// frame; a larger (GRO'd, generic XDP) frame is cut there, and a hello is
/// at most 16 KiB + 5 anyway.
pub const MAX_SEGMENT_CAPTURE: u32 = 16 * 1024 + 256;
/// Perf buffer pages per CPU the daemon maps (a power of two).
pub const PERF_PAGES_PER_CPU: usize = 16;

/// TLS record header plus the handshake type: what the kernel checks.
pub const HELLO_PREFIX_LEN: usize = 6;
/// TLS record header length.
pub const RECORD_HEADER_LEN: usize = 5;

/// The record's total length (header included) if `prefix` starts a TLS
/// handshake record holding a ClientHello: content type 22, a version
/// 3.x, a length of at most 2^14 + 2048, handshake type 1.
#[inline(always)]
pub fn client_hello_record_len(prefix: &[u8; HELLO_PREFIX_LEN]) -> Option<usize> {
    if prefix[0] != 22 || prefix[1] != 3 || prefix[5] != 1 {
        return None;
    }
    let len = u16::from_be_bytes([prefix[3], prefix[4]]) as usize;
    if len == 0 || len > (1 << 14) + 2048 {
        return None;
    }
    Some(len + RECORD_HEADER_LEN)
}

/// Which part of a hello a [`HelloSegment`] is.
pub const SEGMENT_FIRST: u8 = 1;
pub const SEGMENT_NEXT: u8 = 2;

/// The header of each perf sample; `captured_len` frame bytes follow it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HelloSegment {
    /// For the first segment: the timestamp of the packet's event (the same
    /// value, so the daemon joins them exactly). For later ones: when the
    /// segment arrived. CLOCK_MONOTONIC.
    pub timestamp_ns: u64,
    /// Client and server; IPv4 is IPv4-mapped.
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub src_port: u16,
    pub dst_port: u16,
    /// TCP sequence number of the segment's first payload byte.
    pub seq: u32,
    pub ifindex: u32,
    /// Frame bytes that follow this header.
    pub captured_len: u32,
    /// Offset of the TCP payload in the frame.
    pub payload_offset: u16,
    /// TCP payload length according to the IP header.
    pub payload_len: u16,
    /// [`SEGMENT_FIRST`] or [`SEGMENT_NEXT`].
    pub kind: u8,
    pub _pad: [u8; 3],
}

pub const HELLO_SEGMENT_HEADER_LEN: usize = core::mem::size_of::<HelloSegment>();

impl HelloSegment {
    /// Splits a perf sample into its header and the segment's TCP payload
    /// (as far as it was captured); `None` if the sample is malformed.
    pub fn parse(sample: &[u8]) -> Option<(HelloSegment, &[u8])> {
        if sample.len() < HELLO_SEGMENT_HEADER_LEN {
            return None;
        }
        // SAFETY: length checked above; HelloSegment is repr(C) plain data
        // valid for any bit pattern; read_unaligned copes with alignment.
        let header = unsafe { core::ptr::read_unaligned(sample.as_ptr().cast::<HelloSegment>()) };
        let frame = &sample[HELLO_SEGMENT_HEADER_LEN..];
        let frame = frame.get(..header.captured_len as usize)?;
        let start = header.payload_offset as usize;
        let end = start.checked_add(header.payload_len as usize)?.min(frame.len());
        let payload = frame.get(start..end)?;
        Some((header, payload))
    }
}

/// A flow whose hello goes on in later segments.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HelloFlow {
    /// When its first segment was captured (coarse monotonic clock).
    pub first_ns: u64,
    /// The sequence number the next in-order segment starts at.
    pub next_seq: u32,
    /// Bytes of the record still to come.
    pub remaining: u32,
    /// Segments captured so far.
    pub segments: u32,
    pub _pad: u32,
}

/// Whether a flow may be pending: `pending` flows were remembered since
/// `window_start_ns` and not yet forgotten, the last at `last_insert_ns`.
/// When no flow was remembered for [`HELLO_WINDOW_NS`], every remembered
/// flow is stale: the next one starts a new window with `pending` 1, and
/// only flows of the current window count down when forgotten. An estimate
/// that errs towards looking (a flow the LRU evicted is never forgotten:
/// the gate then stays open until the window ends).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HelloGate {
    pub last_insert_ns: u64,
    pub window_start_ns: u64,
    pub pending: i64,
}

/// Indexes into [`MAP_TLS_HELLO_COUNTERS`].
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HelloCounter {
    /// First segments of a hello sent to the daemon.
    FirstCaptured = 0,
    /// Later segments sent to the daemon.
    NextCaptured = 1,
    /// Segments the perf buffer had no room for (or no reader on that CPU).
    OutputFailed = 2,
    /// Flows that could not be remembered (the LRU insert failed).
    FlowInsertFailed = 3,
    /// Segments of a remembered flow that were not the next in order
    /// (retransmitted, reordered, or after a lost segment): not captured.
    OutOfOrder = 4,
    /// Remembered flows whose next segment came after the window.
    FlowExpired = 5,
    /// Flows still pending when they reached the segment limit.
    SegmentLimit = 6,
}

pub const HELLO_COUNTER_COUNT: u32 = 7;

impl HelloCounter {
    pub const ALL: [HelloCounter; HELLO_COUNTER_COUNT as usize] = [
        HelloCounter::FirstCaptured,
        HelloCounter::NextCaptured,
        HelloCounter::OutputFailed,
        HelloCounter::FlowInsertFailed,
        HelloCounter::OutOfOrder,
        HelloCounter::FlowExpired,
        HelloCounter::SegmentLimit,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            HelloCounter::FirstCaptured => "first_captured",
            HelloCounter::NextCaptured => "next_captured",
            HelloCounter::OutputFailed => "output_failed",
            HelloCounter::FlowInsertFailed => "flow_insert_failed",
            HelloCounter::OutOfOrder => "out_of_order",
            HelloCounter::FlowExpired => "flow_expired",
            HelloCounter::SegmentLimit => "segment_limit",
        }
    }
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: repr(C) structs of integers with explicit padding, valid for
    // any bit pattern.
    unsafe impl aya::Pod for super::HelloFlow {}
    unsafe impl aya::Pod for super::HelloGate {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_has_no_hidden_padding() {
        assert_eq!(HELLO_SEGMENT_HEADER_LEN, 8 + 32 + 4 + 4 + 4 + 4 + 2 + 2 + 1 + 3);
        assert_eq!(HELLO_SEGMENT_HEADER_LEN % 8, 0);
    }

    #[test]
    fn record_prefix_check() {
        assert_eq!(client_hello_record_len(&[22, 3, 1, 0x07, 0x00, 1]), Some(0x700 + 5));
        assert_eq!(client_hello_record_len(&[22, 3, 3, 0, 0x3e, 2]), None, "ServerHello");
        assert_eq!(client_hello_record_len(&[23, 3, 3, 0, 0x3e, 1]), None, "application data");
        assert_eq!(client_hello_record_len(&[22, 2, 0, 0, 0x3e, 1]), None, "SSLv2-ish");
        assert_eq!(client_hello_record_len(&[22, 3, 1, 0, 0, 1]), None, "empty");
        assert_eq!(client_hello_record_len(&[22, 3, 1, 0xff, 0xff, 1]), None, "too long");
    }

    #[test]
    fn parse_sample_slices_payload() {
        let mut header = HelloSegment { captured_len: 10, payload_offset: 4, payload_len: 4, ..Default::default() };
        header.seq = 77;
        let mut sample = unsafe {
            core::slice::from_raw_parts((&header as *const HelloSegment).cast::<u8>(), HELLO_SEGMENT_HEADER_LEN)
        }
        .to_vec();
        sample.extend_from_slice(b"hdr:PAYL..");
        sample.extend_from_slice(&[0, 0]); // perf pads samples
        let (h, payload) = HelloSegment::parse(&sample).expect("well formed");
        assert_eq!((h.seq, payload), (77, &b"PAYL"[..]));
        // A payload the capture cut short is what was captured.
        header.payload_len = 100;
        let mut cut = unsafe {
            core::slice::from_raw_parts((&header as *const HelloSegment).cast::<u8>(), HELLO_SEGMENT_HEADER_LEN)
        }
        .to_vec();
        cut.extend_from_slice(b"hdr:PAYL..");
        assert_eq!(HelloSegment::parse(&cut).map(|(_, p)| p), Some(&b"PAYL.."[..]));
        // A captured length beyond the sample, or an offset beyond the frame: malformed.
        header.captured_len = 50;
        let mut short = unsafe {
            core::slice::from_raw_parts((&header as *const HelloSegment).cast::<u8>(), HELLO_SEGMENT_HEADER_LEN)
        }
        .to_vec();
        short.extend_from_slice(b"hdr:PAYL..");
        assert!(HelloSegment::parse(&short).is_none());
        assert!(HelloSegment::parse(&sample[..10]).is_none());
    }
}
