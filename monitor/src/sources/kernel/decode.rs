//! Kernel records (`PacketEvent`, `HttpResponseEvent`) into [`Event`]s.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv6Addr},
    sync::Arc,
};

use monitor_common::{http, icmp, timing::HttpResponseEvent, Class, PacketEvent};

use crate::model::{describe_payload, Event, HttpInfo, IcmpInfo, Origin, ResponseInfo, WallClock, STATUS_CLASS_NAMES};

/// IPv4-mapped addresses (how the kernel side stores IPv4) back to IPv4.
pub fn ip_from_kernel(bytes: [u8; 16]) -> IpAddr {
    let v6 = Ipv6Addr::from(bytes);
    match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    }
}

/// What turning a kernel record into an [`Event`] needs to know.
pub struct KernelEventContext {
    iface_names: HashMap<u32, Arc<str>>,
    clock: WallClock,
}

impl KernelEventContext {
    pub fn new(ifaces: impl IntoIterator<Item = (u32, String)>) -> Self {
        KernelEventContext {
            iface_names: ifaces.into_iter().map(|(i, n)| (i, Arc::from(n))).collect(),
            clock: WallClock::new(),
        }
    }

    /// The name of the interface a kernel record came from.
    fn iface(&self, ifindex: u32) -> Arc<str> {
        self.iface_names.get(&ifindex).cloned().unwrap_or_else(|| Arc::from(format!("if{ifindex}")))
    }

    fn event(&self, class: Class, raw: (u64, [u8; 16], [u8; 16], u32, u32, u32)) -> Event {
        let (timestamp_ns, src, dst, ifindex, weight, len) = raw;
        let origin = Origin::Xdp { iface: self.iface(ifindex) };
        // A weight of 0 still stands for the packet itself.
        let ts_ms = self.clock.wall_ms(timestamp_ns);
        Event::new(ts_ms, class, ip_from_kernel(src), ip_from_kernel(dst), origin, weight.max(1), len)
    }

    pub fn event_from_kernel(&self, raw: &PacketEvent) -> Event {
        let class = Class::from_u8(raw.class).unwrap_or(Class::Malformed);
        let mut event =
            self.event(class, (raw.timestamp_ns, raw.src, raw.dst, raw.ifindex, raw.weight, raw.packet_len));
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
        event.described()
    }

    /// A timed response as an event of class `http`: `src` is the client
    /// that asked, `dst` the server that answered.
    pub fn event_from_response(&self, raw: &HttpResponseEvent) -> Event {
        let status = http::parse_status_line(raw.response());
        let class_index = match status {
            Some(s) => usize::from(s.code / 100),
            None => usize::from(raw.status_class),
        };
        let mut event = self.event(Class::Http, (raw.timestamp_ns, raw.client, raw.server, raw.ifindex, raw.weight, 0));
        event.src_port = Some(raw.client_port);
        event.dst_port = Some(raw.server_port);
        event.http = http::parse_request_line(raw.request()).as_ref().map(HttpInfo::from);
        event.response = Some(ResponseInfo {
            status: status.map(|s| s.code),
            status_class: STATUS_CLASS_NAMES.get(class_index).copied().unwrap_or("other"),
            reason: status.map(|s| s.reason.to_owned()).unwrap_or_default(),
            latency_ms: raw.latency_ns as f64 / 1e6,
        });
        event.described()
    }
}

/// Events for unit tests, made by the daemon's own constructor
/// ([`KernelEventContext::event_from_kernel`]) from a kernel record.
#[cfg(test)]
pub(crate) mod testing {
    use std::net::IpAddr;

    use monitor_common::{Class, PacketEvent};

    use super::{Event, KernelEventContext};

    pub(crate) const IFINDEX: u32 = 7;
    pub(crate) const IFACE: &str = "test0";

    /// A kernel record of `class` from `src` to 192.0.2.1, `weight` packets
    /// of `len` bytes; IPv4 sources are stored IPv4-mapped, as the kernel does.
    pub(crate) fn raw(class: Class, src: IpAddr, weight: u32, len: u32) -> PacketEvent {
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
    pub(crate) fn event(raw: &PacketEvent) -> Event {
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
    use monitor_common::event::{tcp_flags, PAYLOAD_CAPTURE};

    use super::{
        testing::{event, raw, IFACE},
        *,
    };
    use crate::model::{describe, TlsInfo};

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
