//! The daemon's event model: one shape for kernel and syslog events alike.
//!
//! JSON schema version [`SCHEMA_VERSION`] (documented in the README): every
//! API response and WebSocket frame that carries events says which version
//! it uses, so consumers can tell when a field changes meaning.

use std::{
    collections::HashMap,
    fmt::Write as _,
    net::{IpAddr, Ipv6Addr},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{SystemTime, UNIX_EPOCH},
};

use monitor_common::{event::tcp_flags, http, icmp, timing::HttpResponseEvent, tls, Class, PacketEvent};
use serde::{Serialize, Serializer};
use tokio::sync::mpsc;

use crate::geo::GeoInfo;

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Clone, Debug, Serialize)]
pub struct Event {
    /// Sequence number the daemon assigns when it records the event.
    pub id: u64,
    /// Wall-clock time in milliseconds since the Unix epoch.
    pub ts_ms: u64,
    #[serde(serialize_with = "serialize_class")]
    pub class: Class,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub origin: Origin,
    /// How many observed packets this event stands for (1 plus those whose
    /// events were suppressed by sampling since the previous one).
    pub weight: u32,
    /// Packet length in bytes (frame length for XDP, IP length for syslog).
    pub len: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icmp: Option<IcmpInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_flags: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsInfo>,
    /// Set on HTTP response events (the TC egress program timed a response):
    /// then `src` is the client that asked, `dst` the server that answered,
    /// and `http` is the request as far as it was captured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<ResponseInfo>,
    /// A short human description: "echo request id 4 seq 17", "GET /x".
    pub detail: String,
    /// Geolocation of `src`, added by the pipeline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub geo: Option<Arc<GeoInfo>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Origin {
    /// Seen by the XDP observer on this interface.
    Xdp { iface: Arc<str> },
    /// Reported by an iptables LOG line from this syslog sender.
    Syslog { sender: IpAddr, hostname: Option<String>, prefix: String },
}

impl Origin {
    /// A stable label: "xdp:eth1" or "syslog:10.0.0.5".
    pub fn label(&self) -> String {
        match self {
            Origin::Xdp { iface } => format!("xdp:{iface}"),
            Origin::Syslog { sender, .. } => format!("syslog:{sender}"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct IcmpInfo {
    #[serde(rename = "type")]
    pub type_: u8,
    pub code: u8,
    /// Echo identifier and sequence: present for the messages that have
    /// them (echo request and reply), absent otherwise, never a made-up 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u16>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HttpInfo {
    pub method: String,
    pub target: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// A timed HTTP response.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ResponseInfo {
    /// The status code, if the captured status line parsed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// "1xx".."5xx", or "other" when the status line did not parse.
    pub status_class: &'static str,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Request packet in to first response packet out, in milliseconds.
    pub latency_ms: f64,
}

/// Names of the kernel's status classes, by index.
pub const STATUS_CLASS_NAMES: [&str; 6] = ["other", "1xx", "2xx", "3xx", "4xx", "5xx"];

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TlsInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<&'static str>,
}

fn serialize_class<S: Serializer>(class: &Class, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(class.name())
}

/// IPv4-mapped addresses (how the kernel side stores IPv4) back to IPv4.
pub fn ip_from_kernel(bytes: [u8; 16]) -> IpAddr {
    let v6 = Ipv6Addr::from(bytes);
    match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// What turning a kernel record into an [`Event`] needs to know.
pub struct KernelEventContext {
    iface_names: HashMap<u32, Arc<str>>,
    /// CLOCK_REALTIME minus CLOCK_MONOTONIC, in ns, taken at start-up.
    realtime_offset_ns: i128,
}

impl KernelEventContext {
    pub fn new(ifaces: impl IntoIterator<Item = (u32, String)>) -> Self {
        KernelEventContext {
            iface_names: ifaces.into_iter().map(|(i, n)| (i, Arc::from(n))).collect(),
            realtime_offset_ns: realtime_offset_ns(),
        }
    }

    /// The name of the interface a kernel record came from.
    fn iface(&self, ifindex: u32) -> Arc<str> {
        self.iface_names.get(&ifindex).cloned().unwrap_or_else(|| Arc::from(format!("if{ifindex}")))
    }

    /// A kernel monotonic timestamp as wall-clock milliseconds.
    fn wall_ms(&self, monotonic_ns: u64) -> u64 {
        u64::try_from((i128::from(monotonic_ns) + self.realtime_offset_ns) / 1_000_000).unwrap_or(0)
    }

    pub fn event_from_kernel(&self, raw: &PacketEvent) -> Event {
        let class = Class::from_u8(raw.class).unwrap_or(Class::Malformed);
        let iface = self.iface(raw.ifindex);
        let mut event = Event {
            id: 0,
            ts_ms: self.wall_ms(raw.timestamp_ns),
            class,
            src: ip_from_kernel(raw.src),
            dst: ip_from_kernel(raw.dst),
            origin: Origin::Xdp { iface },
            weight: raw.weight.max(1),
            len: raw.packet_len,
            icmp: None,
            src_port: None,
            dst_port: None,
            tcp_flags: None,
            http: None,
            tls: None,
            response: None,
            detail: String::new(),
            geo: None,
        };
        match class {
            Class::Icmp | Class::Icmpv6 => {
                // The kernel program fills id and seq for echo messages only
                // and leaves 0 otherwise: the type says which it is.
                let echo = icmp::is_echo(class == Class::Icmpv6, raw.icmp_type);
                event.icmp = Some(IcmpInfo {
                    type_: raw.icmp_type,
                    code: raw.icmp_code,
                    id: echo.then_some(raw.icmp_id),
                    seq: echo.then_some(raw.icmp_seq),
                });
            }
            _ => {
                event.src_port = Some(raw.src_port);
                event.dst_port = Some(raw.dst_port);
                if raw.protocol == 6 {
                    event.tcp_flags = Some(raw.tcp_flags);
                }
                describe_payload(&mut event, raw.payload());
            }
        }
        event.detail = describe(&event);
        event
    }
}

impl KernelEventContext {
    /// A timed response as an event of class `http`.
    pub fn event_from_response(&self, raw: &HttpResponseEvent) -> Event {
        let iface = self.iface(raw.ifindex);
        let status = http::parse_status_line(raw.response());
        let class_index = match status {
            Some(s) => usize::from(s.code / 100),
            None => usize::from(raw.status_class),
        };
        let http = http::parse_request_line(raw.request()).map(|req| HttpInfo {
            method: req.method.to_owned(),
            target: req.target.to_owned(),
            host: req.host.map(str::to_owned),
        });
        let mut event = Event {
            id: 0,
            ts_ms: self.wall_ms(raw.timestamp_ns),
            class: Class::Http,
            src: ip_from_kernel(raw.client),
            dst: ip_from_kernel(raw.server),
            origin: Origin::Xdp { iface },
            weight: raw.weight.max(1),
            len: 0,
            icmp: None,
            src_port: Some(raw.client_port),
            dst_port: Some(raw.server_port),
            tcp_flags: None,
            http,
            tls: None,
            response: Some(ResponseInfo {
                status: status.map(|s| s.code),
                status_class: STATUS_CLASS_NAMES.get(class_index).copied().unwrap_or("other"),
                reason: status.map(|s| s.reason.to_owned()).unwrap_or_default(),
                latency_ms: raw.latency_ns as f64 / 1e6,
            }),
            detail: String::new(),
            geo: None,
        };
        event.detail = describe(&event);
        event
    }
}

/// CLOCK_REALTIME minus CLOCK_MONOTONIC (the kernel's bpf_ktime_get_ns).
fn realtime_offset_ns() -> i128 {
    clock_ns(libc::CLOCK_REALTIME) - clock_ns(libc::CLOCK_MONOTONIC)
}

/// A kernel timestamp as wall-clock milliseconds; 0 stays 0 ("never").
pub fn wall_ms_from_monotonic_ns(ns: u64) -> u64 {
    if ns == 0 {
        return 0;
    }
    u64::try_from((ns as i128 + realtime_offset_ns()) / 1_000_000).unwrap_or(0)
}

fn clock_ns(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: valid clock id and a valid out pointer.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128
}

/// Fills the HTTP or TLS fields from the captured start of the payload.
fn describe_payload(event: &mut Event, payload: &[u8]) {
    if payload.is_empty() {
        return;
    }
    if let Some(req) = http::parse_request_line(payload) {
        event.http = Some(HttpInfo {
            method: req.method.to_owned(),
            target: req.target.to_owned(),
            host: req.host.map(str::to_owned),
        });
    } else if let Ok(hello) = tls::parse_client_hello(payload) {
        let version = hello.supported_versions_max.unwrap_or(hello.legacy_version);
        event.tls =
            Some(TlsInfo { sni: hello.server_name.map(str::to_owned), version: Some(tls::version_name(version)) });
    }
}

/// The one-line human description shown in the feed.
pub fn describe(event: &Event) -> String {
    let mut out = String::new();
    if let Some(r) = &event.response {
        match r.status {
            Some(code) => {
                let _ = write!(out, "{code}");
                if !r.reason.is_empty() {
                    let _ = write!(out, " {}", r.reason);
                }
            }
            None => out.push_str("response"),
        }
        let _ = write!(out, " in {:.1} ms", r.latency_ms);
        if let Some(h) = &event.http {
            let _ = write!(out, " ({} {})", h.method, h.target);
        }
    } else if let Some(i) = &event.icmp {
        let v6 = event.class == Class::Icmpv6;
        let _ = icmp::describe(v6, i.type_, i.code, i.id, i.seq, &mut out);
    } else if let Some(h) = &event.http {
        let _ = write!(out, "{} {}", h.method, h.target);
        if let Some(host) = &h.host {
            let _ = write!(out, " (host {host})");
        }
    } else if let Some(t) = &event.tls {
        match &t.sni {
            Some(sni) => {
                let _ = write!(out, "TLS {sni}");
            }
            None => out.push_str("TLS ClientHello"),
        }
    } else if let Some(flags) = event.tcp_flags {
        let port = event.dst_port.unwrap_or(0);
        if flags & tcp_flags::SYN != 0 && flags & tcp_flags::ACK == 0 {
            let _ = write!(out, "connection to port {port}");
        } else {
            let _ = write!(out, "TCP to port {port}");
        }
    } else if let Some(port) = event.dst_port {
        let _ = write!(out, "UDP to port {port}");
    }
    out
}

/// Counts of what happened to events on their way into the pipeline.
#[derive(Debug, Default)]
pub struct SinkCounters {
    pub accepted: AtomicU64,
    /// The pipeline queue was full: the daemon could not keep up.
    pub dropped_queue_full: AtomicU64,
    /// Ring-buffer records too short to be an event (a kernel/daemon mismatch).
    pub malformed_records: AtomicU64,
}

/// The entry into the pipeline. The kernel ring readers never wait: an
/// event that does not fit is dropped and counted. Syslog receivers wait
/// instead, so a backlog stays in the socket (UDP: counted drops when its
/// buffer is full; TCP: flow control slows the sender).
#[derive(Clone)]
pub struct EventSink {
    tx: mpsc::Sender<Event>,
    counters: Arc<SinkCounters>,
}

impl EventSink {
    pub fn new(capacity: usize) -> (EventSink, mpsc::Receiver<Event>, Arc<SinkCounters>) {
        let (tx, rx) = mpsc::channel(capacity);
        let counters = Arc::new(SinkCounters::default());
        (EventSink { tx, counters: counters.clone() }, rx, counters)
    }

    pub fn offer(&self, event: Event) {
        match self.tx.try_send(event) {
            Ok(()) => self.counters.accepted.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.counters.dropped_queue_full.fetch_add(1, Ordering::Relaxed),
        };
    }

    /// Waits while the queue is full (only from a thread outside the async
    /// runtime); false once the pipeline has shut down.
    pub fn offer_waiting(&self, event: Event) -> bool {
        let sent = self.tx.blocking_send(event).is_ok();
        if sent {
            self.counters.accepted.fetch_add(1, Ordering::Relaxed);
        }
        sent
    }

    /// Waits while the queue is full; false once the pipeline has shut down.
    pub async fn send(&self, event: Event) -> bool {
        let sent = self.tx.send(event).await.is_ok();
        if sent {
            self.counters.accepted.fetch_add(1, Ordering::Relaxed);
        }
        sent
    }

    pub fn count_malformed_record(&self) {
        self.counters.malformed_records.fetch_add(1, Ordering::Relaxed);
    }
}

/// An event as the live streams send it: serialized once, shared by every
/// WebSocket client and NDJSON reader, however many there are.
#[derive(Debug)]
pub struct Published {
    pub event: Arc<Event>,
    pub json: Box<serde_json::value::RawValue>,
}

impl Published {
    pub fn new(event: Arc<Event>) -> Option<Self> {
        let json = serde_json::value::to_raw_value(&*event).ok()?;
        Some(Published { event, json })
    }
}

/// Events for unit tests, made by the daemon's own constructor
/// ([`KernelEventContext::event_from_kernel`]) from a kernel record.
#[cfg(test)]
pub(crate) mod testing {
    use std::net::IpAddr;

    use monitor_common::{Class, PacketEvent};

    use super::{Event, KernelEventContext};

    pub const IFINDEX: u32 = 7;
    pub const IFACE: &str = "test0";

    /// A kernel record of `class` from `src` to 192.0.2.1, `weight` packets
    /// of `len` bytes; IPv4 sources are stored IPv4-mapped, as the kernel does.
    pub fn raw(class: Class, src: IpAddr, weight: u32, len: u32) -> PacketEvent {
        let mut raw = PacketEvent::zeroed();
        raw.class = class as u8;
        raw.src = to_kernel(src);
        raw.dst = to_kernel("192.0.2.1".parse().expect("literal address"));
        raw.ifindex = IFINDEX;
        raw.weight = weight;
        raw.packet_len = len;
        raw.ip_version = if src.is_ipv4() { 4 } else { 6 };
        raw
    }

    /// The event the daemon makes of `raw`.
    pub fn event(raw: &PacketEvent) -> Event {
        KernelEventContext::new([(IFINDEX, IFACE.to_owned())]).event_from_kernel(raw)
    }

    fn to_kernel(ip: IpAddr) -> [u8; 16] {
        match ip {
            IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            IpAddr::V6(v6) => v6.octets(),
        }
    }
}

#[cfg(test)]
mod tests {
    use monitor_common::event::PAYLOAD_CAPTURE;

    use super::{
        testing::{event, raw, IFACE},
        *,
    };

    /// A TLS 1.2 ClientHello record whose only extension is SNI `a.test`:
    /// record and handshake headers, legacy version, a zero random, no
    /// session id, one cipher suite, null compression, server_name.
    const CLIENT_HELLO_A_TEST: &[u8] = b"\x16\x03\x01\x00\x3e\x01\x00\x00\x3a\x03\x03\
        \0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\
        \x00\x00\x02\x13\x01\x01\x00\x00\x0f\x00\x00\x00\x0b\x00\x09\x00\x00\x06a.test";

    fn v4(s: &str) -> IpAddr {
        s.parse().expect("literal address")
    }

    fn with_payload(mut raw: PacketEvent, payload: &[u8]) -> PacketEvent {
        raw.payload[..payload.len()].copy_from_slice(payload);
        raw.payload_len = payload.len() as u16;
        raw
    }

    fn icmp(v6: bool, type_: u8, code: u8, id: u16, seq: u16) -> Event {
        let (class, src) = if v6 {
            (Class::Icmpv6, "2001:db8::7".parse().expect("literal"))
        } else {
            (Class::Icmp, v4("203.0.113.7"))
        };
        let mut r = raw(class, src, 1, 98);
        (r.icmp_type, r.icmp_code, r.icmp_id, r.icmp_seq) = (type_, code, id, seq);
        event(&r)
    }

    fn tcp(class: Class, dst_port: u16, flags: u8, payload: &[u8]) -> Event {
        let mut r = with_payload(raw(class, v4("203.0.113.7"), 1, 400), payload);
        (r.protocol, r.src_port, r.dst_port, r.tcp_flags) = (6, 40_000, dst_port, flags);
        event(&r)
    }

    #[test]
    fn kernel_record_fields_carry_over() {
        let mut r = raw(Class::Icmp, v4("203.0.113.7"), 0, 98);
        r.ifindex = 99;
        let e = event(&r);
        assert_eq!(e.src, v4("203.0.113.7"), "IPv4-mapped source back to IPv4");
        assert_eq!(e.dst, v4("192.0.2.1"));
        assert_eq!(e.weight, 1, "a weight of 0 still stands for the packet itself");
        assert_eq!(e.len, 98);
        assert_eq!(e.origin.label(), "xdp:if99", "an unknown ifindex is named by number");
        assert_eq!(e.src_port, None, "ICMP has no ports");
        let r = raw(Class::Icmp, v4("203.0.113.7"), 5, 98);
        assert_eq!(event(&r).origin, Origin::Xdp { iface: Arc::from(IFACE) });
        assert_eq!(event(&r).weight, 5);
        let v6 = raw(Class::Icmpv6, "2001:db8::1".parse().expect("literal"), 1, 70);
        assert_eq!(event(&v6).src, "2001:db8::1".parse::<IpAddr>().expect("literal"));
    }

    #[test]
    fn describe_icmp_types() {
        let cases: &[(bool, u8, u8, &str)] = &[
            (false, 8, 0, "echo request id 4 seq 17"),
            (false, 0, 0, "echo reply id 4 seq 17"),
            (false, 3, 3, "port unreachable"),
            (false, 11, 0, "time exceeded: TTL exceeded in transit"),
            (false, 99, 5, "type 99 code 5"),
            (true, 128, 0, "echo request id 4 seq 17"),
            (true, 129, 0, "echo reply id 4 seq 17"),
            (true, 1, 4, "port unreachable"),
        ];
        for &(v6, type_, code, text) in cases {
            let e = icmp(v6, type_, code, 4, 17);
            assert_eq!(e.detail, text, "v6={v6} type {type_} code {code}");
            assert_eq!(describe(&e), e.detail);
        }
    }

    /// Echo messages carry their id and seq, 0 included; every other type
    /// has none, whatever the record's (unused) fields hold.
    #[test]
    fn icmp_id_and_seq_only_for_echo() {
        let echoes: &[(bool, u8)] = &[(false, 8), (false, 0), (true, 128), (true, 129)];
        for &(v6, type_) in echoes {
            let e = icmp(v6, type_, 0, 4, 17);
            assert_eq!(e.icmp, Some(IcmpInfo { type_, code: 0, id: Some(4), seq: Some(17) }), "v6={v6} {type_}");
            let json = serde_json::to_value(&e).expect("serializes");
            assert_eq!(json["icmp"], serde_json::json!({"type": type_, "code": 0, "id": 4, "seq": 17}));
            let zero = icmp(v6, type_, 0, 0, 0);
            assert_eq!(zero.icmp.map(|i| (i.id, i.seq)), Some((Some(0), Some(0))), "an echo's 0 is real");
        }
        let others: &[(bool, u8, u8, &str)] = &[
            (true, 135, 0, "neighbor solicitation"),
            (true, 134, 0, "router advertisement"),
            (true, 1, 4, "port unreachable"),
            (false, 3, 3, "port unreachable"),
            (false, 13, 0, "timestamp request"),
            (false, 9, 0, "router advertisement"),
        ];
        for &(v6, type_, code, text) in others {
            for (id, seq) in [(0, 0), (4, 17)] {
                let e = icmp(v6, type_, code, id, seq);
                assert_eq!(e.icmp, Some(IcmpInfo { type_, code, id: None, seq: None }), "v6={v6} {type_}");
                assert_eq!(e.detail, text);
                let json = serde_json::to_value(&e).expect("serializes");
                assert_eq!(json["icmp"], serde_json::json!({"type": type_, "code": code}), "no id/seq keys");
            }
        }
    }

    #[test]
    fn describe_http_request_line() {
        let e =
            tcp(Class::Http, 80, tcp_flags::PSH | tcp_flags::ACK, b"GET /x?y=1 HTTP/1.1\r\nHost: example.test\r\n\r\n");
        let http = e.http.as_ref().expect("request line parsed");
        assert_eq!((http.method.as_str(), http.target.as_str()), ("GET", "/x?y=1"));
        assert_eq!(http.host.as_deref(), Some("example.test"));
        assert_eq!(e.detail, "GET /x?y=1 (host example.test)");
        assert_eq!(e.tcp_flags, Some(tcp_flags::PSH | tcp_flags::ACK));

        let no_host = tcp(Class::Http, 8080, tcp_flags::ACK, b"POST /api HTTP/1.1\r\n");
        assert_eq!(no_host.detail, "POST /api");
    }

    #[test]
    fn describe_tls_client_hello() {
        let e = tcp(Class::Https, 443, tcp_flags::ACK, CLIENT_HELLO_A_TEST);
        assert_eq!(e.tls, Some(TlsInfo { sni: Some("a.test".into()), version: Some("TLS 1.2") }));
        assert_eq!(e.detail, "TLS a.test");
        assert!(e.http.is_none());

        let mut anonymous = e.clone();
        anonymous.tls = Some(TlsInfo { sni: None, version: None });
        assert_eq!(describe(&anonymous), "TLS ClientHello");
    }

    #[test]
    fn describe_unparsed_payloads_by_transport() {
        assert_eq!(tcp(Class::OtherIpv4, 22, tcp_flags::SYN, b"").detail, "connection to port 22");
        assert_eq!(tcp(Class::OtherIpv4, 22, tcp_flags::SYN | tcp_flags::ACK, b"").detail, "TCP to port 22");
        let ssh = tcp(Class::OtherIpv4, 22, tcp_flags::PSH | tcp_flags::ACK, b"SSH-2.0-x\r\n");
        assert!(ssh.http.is_none() && ssh.tls.is_none());
        assert_eq!(ssh.detail, "TCP to port 22");
        // A truncated ClientHello is neither HTTP nor TLS.
        let cut = tcp(Class::Https, 443, tcp_flags::ACK, &CLIENT_HELLO_A_TEST[..20]);
        assert!(cut.tls.is_none());
        assert_eq!(cut.detail, "TCP to port 443");

        let mut udp = with_payload(raw(Class::OtherIpv4, v4("203.0.113.7"), 1, 60), &[0; 20]);
        (udp.protocol, udp.src_port, udp.dst_port) = (17, 5353, 53);
        let udp = event(&udp);
        assert_eq!(udp.tcp_flags, None);
        assert_eq!(udp.detail, "UDP to port 53");
    }

    #[test]
    fn payload_length_is_clamped_to_the_capture() {
        let mut r = with_payload(raw(Class::Http, v4("203.0.113.7"), 1, 1500), b"GET / HTTP/1.1\r\n");
        r.protocol = 6;
        r.payload_len = u16::MAX;
        let e = event(&r);
        assert_eq!(r.payload().len(), PAYLOAD_CAPTURE);
        assert_eq!(e.detail, "GET /");
    }

    #[test]
    fn describe_timed_response() {
        let mut e = tcp(Class::Http, 80, tcp_flags::ACK, b"GET /slow HTTP/1.1\r\n");
        e.response =
            Some(ResponseInfo { status: Some(503), status_class: "5xx", reason: "Busy".into(), latency_ms: 12.34 });
        assert_eq!(describe(&e), "503 Busy in 12.3 ms (GET /slow)");
        e.response = Some(ResponseInfo { status: None, status_class: "other", reason: String::new(), latency_ms: 0.5 });
        e.http = None;
        assert_eq!(describe(&e), "response in 0.5 ms");
    }
}
