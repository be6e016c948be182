//! HTTP response timing: the XDP program records when a request arrived
//! (ingress), the TC egress program matches the response leaving, and both
//! share these map names, keys and records.
//!
//! Only cleartext HTTP/1.x can be timed: HTTPS is encrypted and HTTP/2
//! cleartext has no status line to match.
//!
//! The byte checks here are the kernel's cheap prefilters; the daemon parses
//! what they let through with [`crate::http`].

/// LRU hash: [`FlowKey`] to [`PendingRequest`].
pub const MAP_HTTP_REQUESTS: &str = "HTTP_REQUESTS";
/// Per-CPU array of `u64`, indexed by [`HttpCounter`].
pub const MAP_HTTP_COUNTERS: &str = "HTTP_COUNTERS";
/// Per-CPU array of `u64` responses per status class ([`status_class`]).
pub const MAP_HTTP_STATUS: &str = "HTTP_STATUS";
/// Per-CPU array of `u64` responses per latency bucket ([`latency_bucket`]).
pub const MAP_HTTP_LATENCY: &str = "HTTP_LATENCY";
/// Array with one [`HttpTimingConfig`].
pub const MAP_HTTP_CONFIG: &str = "HTTP_CONFIG";
/// Per-CPU array with one [`crate::maps::RateWindow`]: the response event budget.
pub const MAP_HTTP_WINDOW: &str = "HTTP_WINDOW";
/// Ring buffer of [`HttpResponseEvent`].
pub const MAP_HTTP_EVENTS: &str = "HTTP_EVENTS";

/// Name of the TC egress program in the object file (and of its tc filter).
pub const PROGRAM_TC_HTTP: &str = "monitor_tc";

pub const DEFAULT_HTTP_REQUESTS_MAX: u32 = 16_384;

/// Bytes of the request (line) kept with a pending request.
pub const REQUEST_CAPTURE: usize = 64;
/// Bytes of the response (status line) copied into an event.
pub const RESPONSE_CAPTURE: usize = 64;

/// Latencies are counted in units of 2^10 ns (1.024 µs).
pub const LATENCY_UNIT_SHIFT: u32 = 10;
/// Linear sub-buckets per power of two (log-linear buckets, as
/// HdrHistogram and Prometheus native histograms keep them).
pub const LATENCY_SUB_BUCKETS: usize = 32;
const SUB_BITS: u32 = 5;
/// Powers of two above the linear start: up to 2^26 units (68.7 s).
const LATENCY_OCTAVES: usize = 21;
/// Log-linear latency buckets. Below 32 units each bucket is one unit
/// wide; above, each power of two `[2^k, 2^(k+1))` units is split into 32
/// equal buckets, so a bucket is at most 1/32 of its lower bound wide and
/// its midpoint is within 1/64 (1.6 %) of any latency it holds. The last
/// bucket also takes everything beyond 68.7 s.
pub const LATENCY_BUCKETS: usize = LATENCY_SUB_BUCKETS * (LATENCY_OCTAVES + 1);
/// Status classes: index 0 is "other" (unparsable), 1..=5 are 1xx..5xx.
pub const STATUS_CLASSES: usize = 6;

/// A TCP connection as (client, server); IPv4 is IPv4-mapped.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub client: [u8; 16],
    pub server: [u8; 16],
    pub client_port: u16,
    pub server_port: u16,
}

/// A request waiting for its response.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingRequest {
    /// `bpf_ktime_get_ns` when the request arrived.
    pub ts_ns: u64,
    pub ifindex: u32,
    /// Valid bytes of `request`.
    pub request_len: u16,
    pub _pad: u16,
    pub request: [u8; REQUEST_CAPTURE],
}

/// Indexes into [`MAP_HTTP_COUNTERS`].
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpCounter {
    /// Requests recorded (inserted or replaced) in the pending table.
    RequestsRecorded = 0,
    /// Requests that replaced an unanswered one of the same connection
    /// (pipelining, or a response the egress program did not see).
    RequestsReplaced = 1,
    /// Requests the table refused.
    RequestInsertFailed = 2,
    /// Responses matched to a pending request (timed).
    ResponsesMatched = 3,
    /// Responses with no pending request (started before the monitor, or
    /// the request was evicted or expired).
    ResponsesUnmatched = 4,
    /// Response events written to the ring buffer.
    EventSubmitted = 5,
    /// Response events not emitted because the budget was spent.
    EventSuppressed = 6,
    /// Response events lost because the ring buffer was full.
    EventRingFull = 7,
    /// Internal: suppressed events since the last emitted one on this CPU.
    PendingWeight = 8,
    /// Sum of the latencies of matched responses, in nanoseconds.
    LatencySumNs = 9,
}

pub const HTTP_COUNTER_COUNT: u32 = 10;

/// Set by the daemon once the egress program is attached somewhere: until
/// then the XDP program records no requests.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HttpTimingConfig {
    pub enabled: u32,
    pub _pad: u32,
}

/// One timed response.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpResponseEvent {
    /// `bpf_ktime_get_ns` when the response left.
    pub timestamp_ns: u64,
    /// Response time: first response packet out minus request packet in.
    pub latency_ns: u64,
    pub client: [u8; 16],
    pub server: [u8; 16],
    /// Interface the response left by.
    pub ifindex: u32,
    /// Responses this event stands for (1 plus those suppressed before it).
    pub weight: u32,
    pub client_port: u16,
    pub server_port: u16,
    /// 4 or 6.
    pub ip_version: u8,
    /// See [`status_class`].
    pub status_class: u8,
    pub request_len: u16,
    pub response_len: u16,
    pub _pad: [u8; 6],
    pub request: [u8; REQUEST_CAPTURE],
    pub response: [u8; RESPONSE_CAPTURE],
}

impl HttpResponseEvent {
    pub const fn zeroed() -> Self {
        HttpResponseEvent {
            timestamp_ns: 0,
            latency_ns: 0,
            client: [0; 16],
            server: [0; 16],
            ifindex: 0,
            weight: 0,
            client_port: 0,
            server_port: 0,
            ip_version: 0,
            status_class: 0,
            request_len: 0,
            response_len: 0,
            _pad: [0; 6],
            request: [0; REQUEST_CAPTURE],
            response: [0; RESPONSE_CAPTURE],
        }
    }

    pub fn request(&self) -> &[u8] {
        &self.request[..(self.request_len as usize).min(REQUEST_CAPTURE)]
    }

    pub fn response(&self) -> &[u8] {
        &self.response[..(self.response_len as usize).min(RESPONSE_CAPTURE)]
    }

    /// Reads an event from ring-buffer bytes; `None` if the record is short.
    pub fn from_bytes(bytes: &[u8]) -> Option<HttpResponseEvent> {
        if bytes.len() < core::mem::size_of::<HttpResponseEvent>() {
            return None;
        }
        // SAFETY: length checked; repr(C) plain data valid for any bit
        // pattern; read_unaligned copes with alignment.
        Some(unsafe { core::ptr::read_unaligned(bytes.as_ptr().cast::<HttpResponseEvent>()) })
    }
}

/// Kernel prefilter for a request: an upper-case token of 3 to 7 letters and
/// a space ("GET ", "OPTIONS "). Longer methods are not timed.
#[inline(always)]
pub const fn looks_like_request(b: &[u8; 8]) -> bool {
    let mut i = 0;
    while i < 8 {
        let c = b[i];
        if c == b' ' {
            return i >= 3;
        }
        if c < b'A' || c > b'Z' {
            return false;
        }
        i += 1;
    }
    false
}

/// Kernel prefilter for a response: it starts with "HTTP/1.".
#[inline(always)]
pub const fn looks_like_response(b: &[u8; 8]) -> bool {
    b[0] == b'H' && b[1] == b'T' && b[2] == b'T' && b[3] == b'P' && b[4] == b'/' && b[5] == b'1' && b[6] == b'.'
}

/// Status class of "HTTP/1.x NNN": 1..=5 for 1xx..5xx, 0 for anything else.
#[inline(always)]
pub const fn status_class(b: &[u8; 12]) -> u8 {
    let d = b[9];
    if b[8] == b' ' && d >= b'1' && d <= b'5' && b[10].is_ascii_digit() && b[11].is_ascii_digit() {
        d - b'0'
    } else {
        0
    }
}

/// The bucket of a latency (see [`LATENCY_BUCKETS`]); no loops, so the
/// verifier sees a straight line.
#[inline(always)]
pub const fn latency_bucket(latency_ns: u64) -> u32 {
    let units = latency_ns >> LATENCY_UNIT_SHIFT;
    if units < LATENCY_SUB_BUCKETS as u64 {
        return units as u32;
    }
    let k = log2(units);
    let octave = k - SUB_BITS; // 0 for [32, 64) units
    if octave as usize >= LATENCY_OCTAVES {
        return LATENCY_BUCKETS as u32 - 1;
    }
    let sub = ((units >> octave) & (LATENCY_SUB_BUCKETS as u64 - 1)) as u32;
    (octave + 1) * LATENCY_SUB_BUCKETS as u32 + sub
}

/// floor(log2(v)) for v > 0, by halving the range: straight-line code.
#[inline(always)]
const fn log2(mut v: u64) -> u32 {
    let mut b = 0u32;
    if v >= 1 << 32 {
        v >>= 32;
        b += 32;
    }
    if v >= 1 << 16 {
        v >>= 16;
        b += 16;
    }
    if v >= 1 << 8 {
        v >>= 8;
        b += 8;
    }
    if v >= 1 << 4 {
        v >>= 4;
        b += 4;
    }
    if v >= 1 << 2 {
        v >>= 2;
        b += 2;
    }
    if v >= 1 << 1 {
        b += 1;
    }
    b
}

/// Lower bound of bucket `b` in nanoseconds.
pub const fn bucket_lower_ns(b: usize) -> u64 {
    bucket_edge_units(b) << LATENCY_UNIT_SHIFT
}

/// Upper bound (exclusive) of bucket `b` in nanoseconds; `None` for the
/// last, which has none.
pub const fn bucket_upper_ns(b: usize) -> Option<u64> {
    if b + 1 >= LATENCY_BUCKETS {
        None
    } else {
        Some(bucket_edge_units(b + 1) << LATENCY_UNIT_SHIFT)
    }
}

/// The middle of bucket `b` in nanoseconds (its lower bound for the last):
/// what percentiles report, within 1.6 % of the latencies the bucket holds.
pub const fn bucket_mid_ns(b: usize) -> u64 {
    match bucket_upper_ns(b) {
        Some(upper) => (bucket_lower_ns(b) + upper) / 2,
        None => bucket_lower_ns(b),
    }
}

/// Where bucket `b` starts, in units (`b` may be one past the last).
const fn bucket_edge_units(b: usize) -> u64 {
    if b < LATENCY_SUB_BUCKETS {
        return b as u64;
    }
    let octave = b / LATENCY_SUB_BUCKETS - 1;
    let sub = (b % LATENCY_SUB_BUCKETS) as u64;
    (LATENCY_SUB_BUCKETS as u64 + sub) << octave
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: repr(C) structs of integers with explicit padding.
    unsafe impl aya::Pod for super::FlowKey {}
    unsafe impl aya::Pod for super::PendingRequest {}
    unsafe impl aya::Pod for super::HttpTimingConfig {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b8(s: &[u8]) -> [u8; 8] {
        let mut out = [0u8; 8];
        out[..s.len().min(8)].copy_from_slice(&s[..s.len().min(8)]);
        out
    }

    fn b12(s: &[u8]) -> [u8; 12] {
        let mut out = [0u8; 12];
        out[..s.len().min(12)].copy_from_slice(&s[..s.len().min(12)]);
        out
    }

    #[test]
    fn layouts_have_no_hidden_padding() {
        assert_eq!(core::mem::size_of::<FlowKey>(), 36);
        assert_eq!(core::mem::size_of::<PendingRequest>(), 16 + REQUEST_CAPTURE);
        assert_eq!(
            core::mem::size_of::<HttpResponseEvent>(),
            8 + 8 + 32 + 4 + 4 + 4 + 1 + 1 + 2 + 2 + 6 + REQUEST_CAPTURE + RESPONSE_CAPTURE
        );
    }

    #[test]
    fn request_prefilter() {
        for ok in ["GET /", "POST /x", "HEAD / H", "OPTIONS *", "PUT /", "DELETE /", "PATCH /", "CONNECT h"] {
            assert!(looks_like_request(&b8(ok.as_bytes())), "{ok}");
        }
        for bad in ["get /", "GE /", "PROPFIND", "HTTP/1.1", "\x16\x03\x01\x02", "", "GET", "G-T /", "        "] {
            assert!(!looks_like_request(&b8(bad.as_bytes())), "{bad:?}");
        }
    }

    #[test]
    fn request_prefilter_admits_what_the_parser_accepts_first() {
        // Every method the kernel lets through is a token the parser can accept.
        let req = b"PATCH /a HTTP/1.1\r\nHost: x\r\n\r\n";
        assert!(looks_like_request(&b8(req)));
        assert!(crate::http::parse_request_line(req).is_some());
    }

    #[test]
    fn response_prefilter_and_status_class() {
        assert!(looks_like_response(&b8(b"HTTP/1.1 200 OK")));
        assert!(looks_like_response(&b8(b"HTTP/1.0 404 ")));
        assert!(!looks_like_response(&b8(b"HTTP/2 200")));
        assert!(!looks_like_response(&b8(b"http/1.1")));
        assert!(!looks_like_response(&b8(b"GET / HT")));
        assert_eq!(status_class(&b12(b"HTTP/1.1 200 OK")), 2);
        assert_eq!(status_class(&b12(b"HTTP/1.1 101")), 1);
        assert_eq!(status_class(&b12(b"HTTP/1.0 404")), 4);
        assert_eq!(status_class(&b12(b"HTTP/1.1 503")), 5);
        assert_eq!(status_class(&b12(b"HTTP/1.1 302")), 3);
        assert_eq!(status_class(&b12(b"HTTP/1.1 600")), 0);
        assert_eq!(status_class(&b12(b"HTTP/1.1 099")), 0);
        assert_eq!(status_class(&b12(b"HTTP/1.1 2x0")), 0);
        assert_eq!(status_class(&b12(b"HTTP/1.1  20")), 0);
    }

    #[test]
    fn latency_buckets_are_log_linear() {
        assert_eq!(latency_bucket(0), 0);
        assert_eq!(latency_bucket(1_023), 0);
        assert_eq!(latency_bucket(1_024), 1);
        assert_eq!(latency_bucket(31 * 1024), 31);
        assert_eq!(latency_bucket(32 * 1024), 32); // the first split power of two
        assert_eq!(latency_bucket(64 * 1024), 64);
        assert_eq!(latency_bucket(u64::MAX), LATENCY_BUCKETS as u32 - 1);
        for b in 0..LATENCY_BUCKETS - 1 {
            let upper = bucket_upper_ns(b).expect("upper bound");
            assert_eq!(latency_bucket(bucket_lower_ns(b)) as usize, b);
            assert_eq!(latency_bucket(upper - 1) as usize, b);
            assert_eq!(bucket_lower_ns(b + 1), upper, "buckets are contiguous");
        }
        assert_eq!(bucket_upper_ns(LATENCY_BUCKETS - 1), None);
        // The range reaches a minute.
        assert!(bucket_lower_ns(LATENCY_BUCKETS - 1) > 60_000_000_000);
    }

    proptest::proptest! {
        #[test]
        fn bucket_contains_its_latency(ns in 0u64..u64::MAX) {
            let b = latency_bucket(ns) as usize;
            proptest::prop_assert!(ns >= bucket_lower_ns(b));
            proptest::prop_assert!(bucket_upper_ns(b).is_none_or(|upper| ns < upper));
        }

        /// What percentiles report is within 1.6 % of the true latency from
        /// 32 units (33 µs) on, and within half a unit below that.
        #[test]
        fn bucket_middle_is_within_the_stated_bound(ns in 0u64..60_000_000_000) {
            let mid = bucket_mid_ns(latency_bucket(ns) as usize) as f64;
            let error = (mid - ns as f64).abs();
            proptest::prop_assert!(error <= (ns as f64 / 64.0).max(512.0) + 1.0, "{ns} ns reported as {mid}");
        }

        #[test]
        fn prefilters_never_panic(bytes in proptest::array::uniform12(0u8..)) {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[..8]);
            let _ = looks_like_request(&b);
            let _ = looks_like_response(&b);
            proptest::prop_assert!(status_class(&bytes) <= 5);
        }
    }

    #[test]
    fn event_from_bytes() {
        assert!(HttpResponseEvent::from_bytes(&[0u8; 8]).is_none());
        let mut ev = HttpResponseEvent::zeroed();
        ev.request_len = 9999;
        ev.response_len = 3;
        ev.response[..3].copy_from_slice(b"HTT");
        // SAFETY: plain data viewed as bytes.
        let bytes = unsafe {
            core::slice::from_raw_parts(
                (&ev as *const HttpResponseEvent).cast::<u8>(),
                core::mem::size_of::<HttpResponseEvent>(),
            )
        };
        let back = HttpResponseEvent::from_bytes(bytes).expect("full record");
        assert_eq!(back.request().len(), REQUEST_CAPTURE);
        assert_eq!(back.response(), b"HTT");
    }
}
