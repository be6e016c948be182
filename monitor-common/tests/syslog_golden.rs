//! Golden tests: real lines, captured verbatim on a Debian 12 host (kernel
//! 6.18, iptables 1.8.9 nf_tables, rsyslog 8.2302, util-linux logger 2.38).
//!
//! Traffic ran between two network namespaces joined by a veth pair
//! (10.213.0.1/24 + fd13::1/64 in `gold-a`, .2 / ::2 in `gold-b`), with
//! `net.netfilter.nf_log_all_netns=1` and LOG rules in `gold-a`:
//! `IPT_ICMP ` (icmp, INPUT), `IPT_ICMP6 ` (ipv6-icmp, INPUT), `IPT_HTTP `
//! (tcp dport 80 INPUT; tcp sport 80 OUTPUT with `--log-uid
//! --log-tcp-sequence --log-tcp-options`), `IPT_DROP ` (udp dport 9999),
//! `IPT_DROP:` (tcp dport 8080, `--log-level warning --log-macdecode
//! --log-ip-options`, packets marked 0x2a) and `IPT_FRAG `/`IPT_FRAG6 `
//! (fragments, raw PREROUTING). Traffic: pings v4/v6 (also 3000-byte ones
//! that fragment), curl to closed and open port 80, curl to 8080, UDP to
//! 9999, UDP to a closed port on gold-b (port unreachable with the quoted
//! packet), pings to absent neighbours (host/address unreachable quoting
//! the echo request), and the neighbour discovery all that caused.
//!
//! - `kernel_dmesg.txt`: `dmesg | grep IPT_` (no journald in the container).
//! - `rsyslog_3164.txt`, `rsyslog_5424.txt`: `rsyslogd -n` with `imklog` at
//!   its defaults, forwarding with `omfwd` over UDP using
//!   `RSYSLOG_TraditionalForwardFormat` and `RSYSLOG_SyslogProtocol23Format`;
//!   one datagram per line (the 5424 template ends each datagram with LF).
//!   imklog worked in the container and kept the `[ uptime]` stamp.
//! - `rsyslog_3164_nostamp.txt`, `rsyslog_5424_nostamp.txt`: the same with
//!   `imklog ParseKernelTimestamp="on" KeepKernelTimestamp="off"`, which
//!   strips the stamp but leaves the kernel's space: 5424 MSG is ` IPT_..`.
//! - `rsyslog_file.txt`: the same rsyslogd's `omfile` (`RSYSLOG_FileFormat`,
//!   no PRI, RFC 3339 timestamp), both runs.
//! - `logger_3164.txt`, `logger_5424.txt`: `logger -n 127.0.0.1 -d
//!   --rfc3164|--rfc5424 -t kernel -p kern.info -- "<dmesg text>"`, plus a
//!   `local3.warning` one with `-i --msgid --sd-id --sd-param`. logger
//!   refuses the kern facility and sends user (PRI 14 / 12) instead.
//! - `logger_tcp.txt`: the raw TCP byte stream of `logger -T` with and
//!   without `--octet-count` (RFC 6587 non-transparent and octet counting).

use std::net::IpAddr;

use monitor_common::netfilter::{self, LogLine, Proto, TcpFlags};
use monitor_common::syslog::{self, Format, Message};

const PREFIXES: &[&str] =
    &["IPT_ICMP ", "IPT_ICMP6 ", "IPT_HTTP ", "IPT_DROP ", "IPT_DROP:", "IPT_FRAG ", "IPT_FRAG6 "];

/// The transport part of an expectation.
enum L4 {
    /// No transport details: a non-first fragment.
    None,
    /// ICMP(v6) type and code, no echo fields.
    Icmp(u8, u8),
    /// Echo type, id, seq (code 0).
    Echo(u8, u16, u16),
    /// Error type and code, and the quoted packet's src, dst, proto, ports.
    IcmpError(u8, u8, (&'static str, &'static str, &'static str, Option<(u16, u16)>)),
    /// Ports and flags as the kernel lists them.
    Tcp(u16, u16, &'static str),
    /// Ports and the UDP length.
    Udp(u16, u16, u16),
}

/// Kernel uptime stamp, prefix, src, dst, PROTO=, fragment offset, transport.
type Row = (&'static str, &'static str, &'static str, &'static str, &'static str, Option<u16>, L4);

/// Every line of `kernel_dmesg.txt`, by its uptime stamp. Written from the
/// kernel text by hand (addresses compressed, so they are checked as
/// addresses, not strings).
#[rustfmt::skip]
const KERNEL_LINES: &[Row] = &[
    ("9340.263393", "IPT_ICMP", "10.213.0.2", "10.213.0.1", "ICMP", None, L4::Echo(8, 10671, 1)),
    ("9340.463590", "IPT_ICMP", "10.213.0.2", "10.213.0.1", "ICMP", None, L4::Echo(8, 10671, 2)),
    ("9340.666631", "IPT_ICMP", "10.213.0.2", "10.213.0.1", "ICMP", None, L4::Echo(8, 10671, 3)),
    ("9340.671091", "IPT_ICMP6", "fd13::2", "ff02::1:ff00:1", "ICMPv6", None, L4::Icmp(135, 0)),
    ("9340.671125", "IPT_ICMP6", "fd13::2", "fd13::1", "ICMPv6", None, L4::Echo(128, 10673, 1)),
    ("9340.874619", "IPT_ICMP6", "fd13::2", "fd13::1", "ICMPv6", None, L4::Echo(128, 10673, 2)),
    ("9341.078634", "IPT_ICMP6", "fd13::2", "fd13::1", "ICMPv6", None, L4::Echo(128, 10673, 3)),
    ("9341.095632", "IPT_HTTP", "10.213.0.2", "10.213.0.1", "TCP", None, L4::Tcp(51200, 80, "SYN")),
    ("9341.101264", "IPT_DROP", "10.213.0.2", "10.213.0.1", "UDP", None, L4::Udp(43929, 9999, 10)),
    ("9341.104558", "IPT_ICMP", "10.213.0.2", "10.213.0.1", "ICMP", None,
        L4::IcmpError(3, 3, ("10.213.0.1", "10.213.0.2", "UDP", Some((35935, 33434))))),
    ("9341.203292", "IPT_ICMP6", "fd13::2", "fd13::1", "ICMPv6", None,
        L4::IcmpError(1, 4, ("fd13::1", "fd13::2", "UDP", Some((43330, 33434))))),
    ("9345.746639", "IPT_ICMP6", "fd13::2", "fe80::422:6bff:feae:2523", "ICMPv6", None, L4::Icmp(136, 0)),
    ("9350.866585", "IPT_ICMP6", "fe80::54b4:2eff:febe:4746", "fe80::422:6bff:feae:2523", "ICMPv6", None, L4::Icmp(135, 0)),
    ("9355.986591", "IPT_ICMP6", "fe80::54b4:2eff:febe:4746", "fe80::422:6bff:feae:2523", "ICMPv6", None, L4::Icmp(136, 0)),
    ("9482.101310", "IPT_HTTP", "10.213.0.2", "10.213.0.1", "TCP", None, L4::Tcp(50132, 80, "SYN")),
    ("9482.101327", "IPT_HTTP", "10.213.0.1", "10.213.0.2", "TCP", None, L4::Tcp(80, 50132, "ACK RST")),
    ("9482.113058", "IPT_DROP:", "10.213.0.2", "10.213.0.1", "TCP", None, L4::Tcp(50740, 8080, "SYN")),
    ("9482.119344", "IPT_FRAG", "10.213.0.2", "10.213.0.1", "ICMP", Some(185), L4::None),
    ("9482.119404", "IPT_FRAG", "10.213.0.2", "10.213.0.1", "ICMP", Some(370), L4::None),
    ("9482.119414", "IPT_ICMP", "10.213.0.2", "10.213.0.1", "ICMP", None, L4::Echo(8, 11366, 1)),
    ("9482.124061", "IPT_FRAG6", "fd13::2", "fd13::1", "ICMPv6", Some(0), L4::Echo(128, 11368, 1)),
    ("9482.124075", "IPT_ICMP6", "fd13::2", "fd13::1", "ICMPv6", Some(0), L4::Echo(128, 11368, 1)),
    ("9482.124122", "IPT_FRAG6", "fd13::2", "fd13::1", "ICMPv6", Some(1448), L4::None),
    ("9482.124129", "IPT_ICMP6", "fd13::2", "fd13::1", "ICMPv6", Some(1448), L4::None),
    ("9482.124137", "IPT_ICMP6", "fd13::2", "fd13::1", "ICMPv6", Some(2896), L4::None),
    ("9485.203190", "IPT_ICMP", "10.213.0.1", "10.213.0.1", "ICMP", None,
        L4::IcmpError(3, 1, ("10.213.0.1", "10.213.0.9", "ICMP", None))),
    ("9487.314548", "IPT_ICMP6", "fe80::54b4:2eff:febe:4746", "fd13::1", "ICMPv6", None, L4::Icmp(135, 0)),
    ("9487.314572", "IPT_ICMP6", "fd13::2", "fe80::422:6bff:feae:2523", "ICMPv6", None, L4::Icmp(136, 0)),
    ("9488.274542", "IPT_ICMP6", "fd13::1", "fd13::1", "ICMPv6", None,
        L4::IcmpError(1, 3, ("fd13::1", "fd13::9", "ICMPv6", None))),
    ("9492.435424", "IPT_ICMP6", "fe80::54b4:2eff:febe:4746", "fe80::422:6bff:feae:2523", "ICMPv6", None, L4::Icmp(135, 0)),
    ("9492.435436", "IPT_ICMP6", "fe80::54b4:2eff:febe:4746", "fe80::422:6bff:feae:2523", "ICMPv6", None, L4::Icmp(136, 0)),
    ("9496.851921", "IPT_HTTP", "10.213.0.2", "10.213.0.1", "TCP", None, L4::Tcp(42494, 80, "SYN")),
    ("9496.851942", "IPT_HTTP", "10.213.0.1", "10.213.0.2", "TCP", None, L4::Tcp(80, 42494, "ACK SYN")),
    ("9496.852010", "IPT_HTTP", "10.213.0.2", "10.213.0.1", "TCP", None, L4::Tcp(42494, 80, "ACK")),
    ("9496.852260", "IPT_HTTP", "10.213.0.2", "10.213.0.1", "TCP", None, L4::Tcp(42494, 80, "ACK PSH")),
    ("9496.852271", "IPT_HTTP", "10.213.0.1", "10.213.0.2", "TCP", None, L4::Tcp(80, 42494, "ACK")),
    ("9496.852297", "IPT_HTTP", "10.213.0.1", "10.213.0.2", "TCP", None, L4::Tcp(80, 42494, "ACK PSH")),
    ("9496.852307", "IPT_HTTP", "10.213.0.2", "10.213.0.1", "TCP", None, L4::Tcp(42494, 80, "ACK")),
    ("9496.852347", "IPT_HTTP", "10.213.0.2", "10.213.0.1", "TCP", None, L4::Tcp(42494, 80, "ACK FIN")),
    ("9496.852554", "IPT_HTTP", "10.213.0.1", "10.213.0.2", "TCP", None, L4::Tcp(80, 42494, "ACK FIN")),
    ("9496.852585", "IPT_HTTP", "10.213.0.2", "10.213.0.1", "TCP", None, L4::Tcp(42494, 80, "ACK")),
    ("9534.789325", "IPT_ICMP", "10.213.0.2", "10.213.0.1", "ICMP", None, L4::Echo(8, 11809, 1)),
    ("9534.990531", "IPT_ICMP", "10.213.0.2", "10.213.0.1", "ICMP", None, L4::Echo(8, 11809, 2)),
    ("9534.994218", "IPT_ICMP6", "fd13::2", "fd13::1", "ICMPv6", None, L4::Echo(128, 11812, 1)),
    ("9535.194562", "IPT_ICMP6", "fd13::2", "fd13::1", "ICMPv6", None, L4::Echo(128, 11812, 2)),
    ("9535.197956", "IPT_DROP", "10.213.0.2", "10.213.0.1", "UDP", None, L4::Udp(50697, 9999, 10)),
    ("9535.200655", "IPT_ICMP", "10.213.0.2", "10.213.0.1", "ICMP", None,
        L4::IcmpError(3, 3, ("10.213.0.1", "10.213.0.2", "UDP", Some((32918, 33435))))),
    ("9540.050527", "IPT_ICMP6", "fd13::2", "fe80::422:6bff:feae:2523", "ICMPv6", None, L4::Icmp(136, 0)),
    ("9545.174480", "IPT_ICMP6", "fe80::54b4:2eff:febe:4746", "fe80::422:6bff:feae:2523", "ICMPv6", None, L4::Icmp(135, 0)),
];

const KERNEL_DMESG: &str = include_str!("golden/kernel_dmesg.txt");

fn ip(text: &str) -> Option<IpAddr> {
    Some(text.parse().unwrap_or_else(|e| panic!("bad address {text:?} in the table: {e}")))
}

fn lines(golden: &str) -> impl Iterator<Item = &str> {
    golden.split_inclusive('\n')
}

fn syslog_ok(line: &str) -> Message<'_> {
    syslog::parse(line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
}

fn netfilter_ok<'a>(message: &Message<'a>) -> LogLine<'a> {
    netfilter::parse(message.msg, PREFIXES).unwrap_or_else(|e| panic!("{:?}: {e}", message.msg))
}

/// Asserts that `line` is what `row` says, field by field.
fn assert_row(line: &LogLine<'_>, row: &Row) {
    let (uptime, prefix, src, dst, proto, frag, l4) = row;
    let context = format!("line {uptime}: {line:?}");
    assert_eq!(line.prefix, *prefix, "{context}");
    assert_eq!((line.src, line.dst), (ip(src), ip(dst)), "{context}");
    assert_eq!(line.proto.map(|p| p.name()), Some(*proto), "{context}");
    assert_eq!(line.frag, *frag, "{context}");
    let v6 = line.src.is_some_and(|a| a.is_ipv6());
    assert_eq!(line.hop_limit.is_some(), v6, "{context}");
    assert_eq!(line.ttl.is_some(), !v6, "{context}");
    let (mut icmp, mut echo, mut ports, mut flags, mut udp_len) = (None, None, None, TcpFlags::empty(), None);
    match l4 {
        L4::None => {}
        L4::Icmp(kind, code) => icmp = Some((*kind, *code)),
        L4::Echo(kind, id, seq) => {
            icmp = Some((*kind, 0));
            echo = Some((*id, *seq));
        }
        L4::IcmpError(kind, code, (inner_src, inner_dst, inner_proto, inner_ports)) => {
            icmp = Some((*kind, *code));
            let inner = match line.inner_packet() {
                Some(Ok(inner)) => inner,
                other => panic!("{context}: inner packet {other:?}"),
            };
            assert_eq!((inner.src, inner.dst), (ip(inner_src), ip(inner_dst)), "{context}");
            assert_eq!(inner.proto.map(|p| p.name()), Some(*inner_proto), "{context}");
            assert_eq!(inner.src_port.zip(inner.dst_port), *inner_ports, "{context}");
        }
        L4::Tcp(spt, dpt, names) => {
            ports = Some((*spt, *dpt));
            for name in names.split(' ') {
                flags |= TcpFlags::from_name(name).unwrap_or_else(|| panic!("flag {name}"));
            }
            assert!(line.window.is_some(), "{context}");
        }
        L4::Udp(spt, dpt, len) => {
            ports = Some((*spt, *dpt));
            udp_len = Some(*len);
        }
    }
    assert_eq!(line.icmp_type.zip(line.icmp_code), icmp, "{context}");
    assert_eq!(line.icmp_id.zip(line.icmp_seq), echo, "{context}");
    assert_eq!(line.src_port.zip(line.dst_port), ports, "{context}");
    assert_eq!(line.tcp_flags, flags, "{context}");
    assert_eq!(line.udp_len, udp_len, "{context}");
    assert_eq!(line.inner.is_some(), matches!(l4, L4::IcmpError(..)), "{context}");
}

/// Kernel lines from dmesg, parsed, with their uptime stamp and message.
struct Kernel<'a> {
    uptime: &'a str,
    msg: &'a str,
    line: LogLine<'a>,
    row: &'static Row,
}

fn kernel_lines() -> Vec<Kernel<'static>> {
    lines(KERNEL_DMESG)
        .map(|text| {
            let message = syslog_ok(text);
            assert_eq!(message.format, Format::Bare, "{text:?}");
            let uptime = message.kernel_uptime.unwrap_or_else(|| panic!("no uptime: {text:?}"));
            let row = KERNEL_LINES
                .iter()
                .find(|row| row.0 == uptime)
                .unwrap_or_else(|| panic!("no expectation for {uptime}"));
            Kernel { uptime, msg: message.msg, line: netfilter_ok(&message), row }
        })
        .collect()
}

/// Checks a forwarded message against the kernel line it carries, found by
/// uptime stamp if it kept one and by text otherwise; returns that line's
/// uptime.
fn assert_forwarded(kernel: &[Kernel<'_>], message: &Message<'_>) -> &'static str {
    let text = message.msg.trim_end();
    let original = kernel
        .iter()
        .find(|k| match message.kernel_uptime {
            Some(uptime) => k.uptime == uptime,
            None => k.msg.trim_end() == text,
        })
        .unwrap_or_else(|| panic!("no kernel line for {message:?}"));
    assert_eq!(original.msg.trim_end(), text);
    let line = netfilter_ok(message);
    assert_eq!(line, original.line, "forwarding changed the parse of {text:?}");
    assert_row(&line, original.row);
    original.row.0
}

/// Severity the LOG rules were configured with.
fn severity_of(line: &LogLine<'_>) -> u8 {
    if line.prefix == "IPT_DROP:" {
        4
    } else {
        6
    }
}

fn is_rfc3339_utc(timestamp: Option<&str>) -> bool {
    timestamp.is_some_and(|ts| ts.starts_with("2026-11-24T") && ts.ends_with("+00:00") && ts.len() == 32)
}

fn is_bsd(timestamp: Option<&str>) -> bool {
    timestamp.is_some_and(|ts| ts.starts_with("Nov 24 ") && ts.len() == 15)
}

#[test]
fn kernel_dmesg() {
    let kernel = kernel_lines();
    assert_eq!(kernel.len(), KERNEL_LINES.len());
    for k in &kernel {
        assert_row(&k.line, k.row);
    }
    // Every expectation used exactly once.
    for row in KERNEL_LINES {
        assert_eq!(kernel.iter().filter(|k| k.uptime == row.0).count(), 1, "{}", row.0);
    }
    // Known extras on these real lines.
    let by_uptime = |uptime: &str| kernel.iter().find(|k| k.uptime == uptime).map(|k| k.line);
    let Some(rst) = by_uptime("9482.101327") else { panic!("RST line") };
    assert_eq!((rst.in_iface, rst.out_iface, rst.mac), (None, Some("gold0"), None));
    let Some(marked) = by_uptime("9482.113058") else { panic!("marked line") };
    assert_eq!((marked.mac, marked.unknown_fields), (None, 4)); // MACSRC MACDST MACPROTO MARK
    let Some(with_uid) = by_uptime("9496.852271") else { panic!("uid line") };
    assert_eq!(with_uid.unknown_fields, 4); // OPT (..) UID GID
    let Some(first_fragment) = by_uptime("9482.119344") else { panic!("fragment") };
    assert!(first_fragment.more_fragments && !first_fragment.dont_fragment);
    let Some(v6_fragment) = by_uptime("9482.124122") else { panic!("v6 fragment") };
    assert_eq!(v6_fragment.ip_id, Some(0x5222_19fa));
    let Some(unreachable) = by_uptime("9341.104558") else { panic!("unreachable") };
    assert_eq!((unreachable.prec, unreachable.ip_id, unreachable.len), (Some(0xc0), Some(25750), Some(62)));
    let Some(echo6) = by_uptime("9340.671125") else { panic!("echo6") };
    assert_eq!((echo6.len, echo6.tc, echo6.hop_limit, echo6.flow_label), (Some(104), Some(0), Some(64), Some(54982)));
}

fn check_rsyslog(golden: &str, format: Format, expect_uptime: bool) -> usize {
    let kernel = kernel_lines();
    let mut count = 0;
    for text in lines(golden) {
        let message = syslog_ok(text);
        assert_eq!(message.format, format, "{text:?}");
        assert_eq!(message.hostname, Some("vm"), "{text:?}");
        assert_eq!(message.app_name, Some("kernel"), "{text:?}");
        assert_eq!((message.proc_id, message.msg_id, message.structured_data), (None, None, None));
        assert_eq!(message.kernel_uptime.is_some(), expect_uptime, "{text:?}");
        match format {
            Format::Rfc3164 => assert!(is_bsd(message.timestamp), "{text:?}"),
            _ => assert!(is_rfc3339_utc(message.timestamp), "{text:?}"),
        }
        assert_forwarded(&kernel, &message);
        let line = netfilter_ok(&message);
        assert_eq!((message.facility, message.severity), (Some(0), Some(severity_of(&line))));
        count += 1;
    }
    count
}

#[test]
fn rsyslog_3164() {
    assert_eq!(check_rsyslog(include_str!("golden/rsyslog_3164.txt"), Format::Rfc3164, true), 41);
}

#[test]
fn rsyslog_5424() {
    assert_eq!(check_rsyslog(include_str!("golden/rsyslog_5424.txt"), Format::Rfc5424, true), 41);
}

#[test]
fn rsyslog_3164_nostamp() {
    assert_eq!(check_rsyslog(include_str!("golden/rsyslog_3164_nostamp.txt"), Format::Rfc3164, false), 7);
}

#[test]
fn rsyslog_5424_nostamp() {
    let golden = include_str!("golden/rsyslog_5424_nostamp.txt");
    // The MSG really starts with a space here; the parser drops it.
    assert!(lines(golden).all(|l| l.contains(" - - -  IPT_")));
    assert_eq!(check_rsyslog(golden, Format::Rfc5424, false), 7);
}

#[test]
fn rsyslog_file() {
    let kernel = kernel_lines();
    let mut stamped = 0;
    let all = lines(include_str!("golden/rsyslog_file.txt"))
        .map(|text| {
            let message = syslog_ok(text);
            assert_eq!(message.format, Format::Rfc3164, "{text:?}");
            assert_eq!((message.facility, message.severity), (None, None));
            assert!(is_rfc3339_utc(message.timestamp), "{text:?}");
            assert_eq!((message.hostname, message.app_name), (Some("vm"), Some("kernel")));
            stamped += usize::from(message.kernel_uptime.is_some());
            assert_forwarded(&kernel, &message)
        })
        .count();
    assert_eq!((all, stamped), (48, 41));
}

#[test]
fn logger_3164() {
    let kernel = kernel_lines();
    let mut uptimes = Vec::new();
    for text in lines(include_str!("golden/logger_3164.txt")) {
        let message = syslog_ok(text);
        assert_eq!(message.format, Format::Rfc3164);
        assert!(is_bsd(message.timestamp), "{text:?}");
        assert_eq!(message.hostname, Some("vm"));
        // logger turns kern.* into user.*: facility 1.
        match message.app_name {
            Some("kernel") => {
                assert_eq!(message.facility, Some(1));
                assert_eq!(message.proc_id, None);
            }
            Some("monitor-test") => {
                assert_eq!((message.facility, message.severity), (Some(19), Some(4)));
                assert_eq!(message.proc_id, Some("11627"));
            }
            other => panic!("app {other:?}"),
        }
        uptimes.push(assert_forwarded(&kernel, &message));
    }
    assert_eq!(
        uptimes,
        [
            "9340.263393",
            "9340.671125",
            "9341.095632",
            "9341.101264",
            "9341.104558",
            "9341.203292",
            "9340.671125",
            "9340.263393"
        ]
    );
}

#[test]
fn logger_5424() {
    let kernel = kernel_lines();
    let mut uptimes = Vec::new();
    for text in lines(include_str!("golden/logger_5424.txt")) {
        let message = syslog_ok(text);
        assert_eq!(message.format, Format::Rfc5424);
        assert!(is_rfc3339_utc(message.timestamp), "{text:?}");
        assert_eq!(message.hostname, Some("vm"));
        assert!(message.structured_data.is_some_and(|sd| sd.starts_with("[timeQuality tzKnown=\"1\" ")));
        match message.app_name {
            Some("kernel") => {
                assert_eq!((message.facility, message.severity), (Some(1), Some(6)));
                assert_eq!((message.proc_id, message.msg_id), (None, None));
            }
            Some("monitor-test") => {
                assert_eq!((message.facility, message.severity), (Some(19), Some(4)));
                assert_eq!((message.proc_id, message.msg_id), (Some("11626"), Some("NFLOG")));
                let sd = message.structured_data.unwrap_or_default();
                assert!(sd.ends_with(r#"][nf@32473 rule="in \"x\" [a\]" chain="INPUT"]"#), "{sd}");
            }
            other => panic!("app {other:?}"),
        }
        uptimes.push(assert_forwarded(&kernel, &message));
    }
    assert_eq!(
        uptimes,
        ["9340.263393", "9340.671125", "9341.095632", "9341.101264", "9341.104558", "9341.203292", "9340.263393"]
    );
}

/// Splits an RFC 6587 TCP stream: octet-counted (`LEN SP MSG`) when a frame
/// starts with a digit, LF-terminated otherwise.
fn frames(mut stream: &str) -> Vec<(bool, &str)> {
    let mut frames = Vec::new();
    while !stream.is_empty() {
        let counted = stream.starts_with(|c: char| c.is_ascii_digit());
        let (frame, rest) = if counted {
            let (len, rest) = stream.split_once(' ').expect("octet count");
            let len: usize = len.parse().expect("octet count");
            rest.split_at(len)
        } else {
            stream.split_once('\n').unwrap_or((stream, ""))
        };
        frames.push((counted, frame));
        stream = rest;
    }
    frames
}

#[test]
fn logger_tcp() {
    let kernel = kernel_lines();
    let frames = frames(include_str!("golden/logger_tcp.txt"));
    let summary: Vec<(bool, Format, &str)> = frames
        .iter()
        .map(|(counted, frame)| {
            let message = syslog_ok(frame);
            assert_eq!((message.hostname, message.app_name), (Some("vm"), Some("kernel")));
            (*counted, message.format, assert_forwarded(&kernel, &message))
        })
        .collect();
    assert_eq!(
        summary,
        [
            (false, Format::Rfc3164, "9341.095632"),
            (false, Format::Rfc5424, "9341.101264"),
            (true, Format::Rfc5424, "9341.104558"),
            (true, Format::Rfc3164, "9340.671125"),
        ]
    );
}

#[test]
fn netfilter_proto_names_round_trip() {
    for k in kernel_lines() {
        let proto = k.line.proto.unwrap_or(Proto::Other(""));
        assert_eq!(Proto::from_name(proto.name()), proto);
    }
}
