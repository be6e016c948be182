//! The agent's wire format (docs/agent.md): what `monitor --forward` sends
//! to a central monitor, and how the central reads it back.
//!
//! Each message is one RFC 5424 syslog message (`APP-NAME` "monitor", MSGID
//! "event" or "counters", no structured data) whose text is netfilter-style
//! `KEY=value` words after a tag, so grep, fail2ban filters and SIEM parsers
//! that know iptables LOG lines still read it. The standard netfilter keys
//! (IN, SRC, DST, LEN, PROTO, SPT, DPT, TYPE, CODE, ID, SEQ, TCP flag
//! words) mean what they mean there; the extension keys are upper case and
//! their values are percent-encoded (a space, `%`, control and non-ASCII
//! bytes as `%XX`), so a value never splits into two words.
//!
//! The central recognises the messages by their tag alone (a relay that
//! rewrites the header into RFC 3164 loses APP-NAME and MSGID, not the tag).
//! Unknown keys are ignored, so agents may add keys without breaking older
//! centrals.

use std::{fmt::Write as _, net::IpAddr, sync::Arc};

use monitor_common::{class::CLASS_COUNT, event::tcp_flags, Class};
use thiserror::Error;

use super::{
    clock::rfc3339,
    event::{Event, HttpInfo, IcmpInfo, Origin, ResponseInfo, TlsInfo, STATUS_CLASS_NAMES},
};

/// The syslog APP-NAME of every agent message.
pub const APP_NAME: &str = "monitor";
/// First word of an event message.
pub const EVENT_TAG: &str = "MONITOR_EVENT";
/// First word of a counters message.
pub const COUNTERS_TAG: &str = "MONITOR_COUNTERS";
/// PRI of agent messages: facility local0, severity info.
const PRI: u8 = 16 * 8 + 6;
/// Most words a message may have; a longer one is hostile or broken.
const MAX_WORDS: usize = 96;
/// Most interfaces a counters message lists.
pub const MAX_INTERFACES: usize = 32;

/// Why an agent message did not parse. Each has a stable `reason()` for
/// counters ("agent_" + reason).
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum WireError {
    #[error("not an agent message")]
    NotAgent,
    #[error("too many words")]
    TooManyWords,
    #[error("a required key is missing: {0}")]
    Missing(&'static str),
    #[error("a value does not parse: {0}")]
    BadValue(&'static str),
    #[error("bad percent-encoding")]
    BadEncoding,
}

impl WireError {
    pub const fn reason(&self) -> &'static str {
        match self {
            WireError::NotAgent => "not_agent",
            WireError::TooManyWords => "too_many_words",
            WireError::Missing(_) => "missing_key",
            WireError::BadValue(_) => "bad_value",
            WireError::BadEncoding => "bad_encoding",
        }
    }
}

/// Which kind of agent message a syslog MSG is, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Event,
    Counters,
}

pub fn kind(msg: &str) -> Option<Kind> {
    let first = msg.trim_start().split_ascii_whitespace().next()?;
    match first {
        EVENT_TAG => Some(Kind::Event),
        COUNTERS_TAG => Some(Kind::Counters),
        _ => None,
    }
}

/// The whole syslog message (without framing): RFC 5424 header, no
/// structured data, then `msg`.
pub fn syslog_message(hostname: &str, ts_ms: u64, pid: u32, kind: Kind, msg: &str) -> String {
    let msgid = match kind {
        Kind::Event => "event",
        Kind::Counters => "counters",
    };
    // RFC 5424 HOSTNAME is 1*255 PRINTUSASCII: anything else becomes '_'.
    let host: String = hostname.chars().take(255).map(|c| if c.is_ascii_graphic() { c } else { '_' }).collect();
    let host = if host.is_empty() { "-".to_owned() } else { host };
    format!("<{PRI}>1 {} {host} {APP_NAME} {pid} {msgid} - {msg}", rfc3339(ts_ms))
}

/// RFC 6587 octet counting: "LEN SP MSG".
pub fn octet_counted(message: &str) -> String {
    format!("{} {message}", message.len())
}

/// An event as the message text.
pub fn event_message(e: &Event) -> String {
    let mut m = String::with_capacity(256);
    m.push_str(EVENT_TAG);
    let iface = match &e.origin {
        Origin::Xdp { iface } => iface.as_ref(),
        Origin::Agent { iface, .. } => iface.as_str(),
        Origin::Syslog { .. } => "",
    };
    let _ = write!(m, " IN={} OUT= SRC={} DST={} LEN={}", encode(iface), e.src, e.dst, e.len);
    let proto = match (e.class, e.icmp, e.tcp_flags, e.dst_port) {
        (Class::Icmp, ..) => Some("ICMP"),
        (Class::Icmpv6, ..) => Some("ICMPv6"),
        (_, _, Some(_), _) => Some("TCP"),
        (_, _, None, Some(_)) => Some("UDP"),
        _ => None,
    };
    if let Some(proto) = proto {
        let _ = write!(m, " PROTO={proto}");
    }
    if let Some(icmp) = e.icmp {
        let _ = write!(m, " TYPE={} CODE={}", icmp.type_, icmp.code);
        if let Some(id) = icmp.id {
            let _ = write!(m, " ID={id}");
        }
        if let Some(seq) = icmp.seq {
            let _ = write!(m, " SEQ={seq}");
        }
    }
    if let Some(p) = e.src_port {
        let _ = write!(m, " SPT={p}");
    }
    if let Some(p) = e.dst_port {
        let _ = write!(m, " DPT={p}");
    }
    if let Some(flags) = e.tcp_flags {
        for (bit, word) in FLAG_WORDS {
            if flags & bit != 0 {
                let _ = write!(m, " {word}");
            }
        }
    }
    let _ = write!(m, " CLASS={} WEIGHT={} TS={}", e.class.name(), e.weight, e.ts_ms);
    if let Some(http) = &e.http {
        let _ = write!(m, " METHOD={} TARGET={}", encode(&http.method), encode(&http.target));
        if let Some(host) = &http.host {
            let _ = write!(m, " HTTPHOST={}", encode(host));
        }
    }
    if let Some(tls) = &e.tls {
        if let Some(sni) = &tls.sni {
            let _ = write!(m, " SNI={}", encode(sni));
        }
        if let Some(version) = tls.version {
            let _ = write!(m, " TLSVER={}", encode(version));
        }
    }
    if let Some(r) = &e.response {
        if let Some(status) = r.status {
            let _ = write!(m, " STATUS={status}");
        }
        let _ = write!(m, " STATUSCLASS={} LATENCY_MS={}", r.status_class, r.latency_ms);
        if !r.reason.is_empty() {
            let _ = write!(m, " REASON={}", encode(&r.reason));
        }
    }
    m
}

/// TCP flags as netfilter prints them; URG has no constant in the common crate.
const FLAG_WORDS: [(u8, &str); 6] = [
    (0x20, "URG"),
    (tcp_flags::ACK, "ACK"),
    (tcp_flags::PSH, "PSH"),
    (tcp_flags::RST, "RST"),
    (tcp_flags::SYN, "SYN"),
    (tcp_flags::FIN, "FIN"),
];

const TLS_VERSIONS: [&str; 6] = ["SSL 3.0", "TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3", "unknown"];

/// The words of a message after its tag: `KEY=value` pairs and bare words.
struct Words<'a> {
    pairs: Vec<(&'a str, &'a str)>,
    bare: Vec<&'a str>,
}

impl<'a> Words<'a> {
    fn parse(msg: &'a str, tag: &str) -> Result<Self, WireError> {
        let mut words = msg.split_ascii_whitespace();
        if words.next() != Some(tag) {
            return Err(WireError::NotAgent);
        }
        let (mut pairs, mut bare) = (Vec::new(), Vec::new());
        for (n, word) in words.enumerate() {
            if n >= MAX_WORDS {
                return Err(WireError::TooManyWords);
            }
            match word.split_once('=') {
                Some(pair) => pairs.push(pair),
                None => bare.push(word),
            }
        }
        Ok(Words { pairs, bare })
    }

    /// The first value of `key`: netfilter lines repeat some keys, and the
    /// first is the packet's own.
    fn get(&self, key: &'static str) -> Option<&'a str> {
        self.pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    fn require(&self, key: &'static str) -> Result<&'a str, WireError> {
        self.get(key).ok_or(WireError::Missing(key))
    }

    fn number<T: std::str::FromStr>(&self, key: &'static str) -> Result<Option<T>, WireError> {
        self.get(key).filter(|v| !v.is_empty()).map(|v| v.parse().map_err(|_| WireError::BadValue(key))).transpose()
    }

    fn text(&self, key: &'static str) -> Result<Option<String>, WireError> {
        self.get(key).map(decode).transpose()
    }
}

/// An event message back into an event from `sender`, seen by `host`.
pub fn parse_event(msg: &str, sender: IpAddr, host: &str) -> Result<Event, WireError> {
    let w = Words::parse(msg.trim_start(), EVENT_TAG)?;
    let addr = |key: &'static str| -> Result<IpAddr, WireError> {
        w.require(key)?.parse().map_err(|_| WireError::BadValue(key))
    };
    let (src, dst) = (addr("SRC")?, addr("DST")?);
    let class = Class::from_name(w.require("CLASS")?).ok_or(WireError::BadValue("CLASS"))?;
    let weight = w.number("WEIGHT")?.unwrap_or(1);
    let ts_ms = w.number("TS")?.ok_or(WireError::Missing("TS"))?;
    let len = w.number("LEN")?.unwrap_or(0);
    let iface = w.text("IN")?.unwrap_or_default();
    let origin = Origin::Agent { sender, iface };
    let mut e = Event::new(ts_ms, class, src, dst, origin, weight, len);
    e.host = Some(Arc::from(host));
    if let (Some(type_), Some(code)) = (w.number("TYPE")?, w.number("CODE")?) {
        e.icmp = Some(IcmpInfo { type_, code, id: w.number("ID")?, seq: w.number("SEQ")? });
    }
    e.src_port = w.number("SPT")?;
    e.dst_port = w.number("DPT")?;
    if w.get("PROTO") == Some("TCP") {
        let flags = FLAG_WORDS.iter().filter(|(_, word)| w.bare.contains(word)).fold(0u8, |acc, (bit, _)| acc | bit);
        e.tcp_flags = Some(flags);
    }
    if let Some(method) = w.text("METHOD")? {
        let target = w.text("TARGET")?.unwrap_or_default();
        e.http = Some(HttpInfo { method, target, host: w.text("HTTPHOST")? });
    }
    let sni = w.text("SNI")?;
    let version = match w.text("TLSVER")? {
        Some(v) => Some(TLS_VERSIONS.into_iter().find(|k| *k == v).ok_or(WireError::BadValue("TLSVER"))?),
        None => None,
    };
    if sni.is_some() || version.is_some() {
        e.tls = Some(TlsInfo { sni, version });
    }
    if let Some(class) = w.get("STATUSCLASS") {
        let status_class =
            STATUS_CLASS_NAMES.into_iter().find(|k| *k == class).ok_or(WireError::BadValue("STATUSCLASS"))?;
        let latency_ms: f64 = w.number("LATENCY_MS")?.unwrap_or(0.0);
        if !latency_ms.is_finite() || latency_ms < 0.0 {
            return Err(WireError::BadValue("LATENCY_MS"));
        }
        e.response = Some(ResponseInfo {
            status: w.number("STATUS")?,
            status_class,
            reason: w.text("REASON")?.unwrap_or_default(),
            latency_ms,
        });
    }
    Ok(e.described())
}

/// Packets and bytes of one class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClassTotal {
    pub packets: u64,
    pub bytes: u64,
}

/// An agent's cumulative counters since it started.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// 1, 2, 3, ... per agent run: a gap means counters messages were lost.
    pub seq: u64,
    /// When the agent started (ms since the epoch): a new value is a restart.
    pub start_ms: u64,
    /// When this message was made (ms since the epoch).
    pub ts_ms: u64,
    /// The kernel's counters, by class (`Class as usize`).
    pub classes: [ClassTotal; CLASS_COUNT],
    /// Events the kernel did not emit (sampling): counted, not sent.
    pub suppressed: u64,
    /// Events lost because the kernel's ring buffer was full.
    pub ring_full: u64,
    /// Events the agent handed to its forward queue.
    pub events: u64,
    /// Messages the agent dropped before they left (queue full, a
    /// connection that failed under them, a slow reader).
    pub dropped: u64,
    /// Attached interfaces and their XDP mode.
    pub interfaces: Vec<(String, String)>,
}

pub fn counters_message(c: &Counters) -> String {
    let mut m = String::with_capacity(512);
    let _ = write!(m, "{COUNTERS_TAG} SEQ={} START={} TS={}", c.seq, c.start_ms, c.ts_ms);
    for (class, total) in Class::ALL.iter().zip(&c.classes) {
        let name = class.name().to_ascii_uppercase();
        let _ = write!(m, " PKTS_{name}={} BYTES_{name}={}", total.packets, total.bytes);
    }
    let _ =
        write!(m, " SUPPRESSED={} RING_FULL={} EVENTS={} DROPPED={}", c.suppressed, c.ring_full, c.events, c.dropped);
    let ifaces: Vec<String> =
        c.interfaces.iter().take(MAX_INTERFACES).map(|(n, mode)| format!("{}:{}", encode(n), encode(mode))).collect();
    let _ = write!(m, " IF={}", ifaces.join(","));
    m
}

pub fn parse_counters(msg: &str) -> Result<Counters, WireError> {
    let w = Words::parse(msg.trim_start(), COUNTERS_TAG)?;
    let required = |key: &'static str| -> Result<u64, WireError> { w.number(key)?.ok_or(WireError::Missing(key)) };
    let mut classes = [ClassTotal::default(); CLASS_COUNT];
    for (class, total) in Class::ALL.iter().zip(&mut classes) {
        // The keys of a class, looked up by building them: no 'static
        // names are needed beyond the error's.
        let name = class.name().to_ascii_uppercase();
        let value = |prefix: &str| -> Result<u64, WireError> {
            let key = format!("{prefix}{name}");
            let v =
                w.pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v).ok_or(WireError::Missing("PKTS_/BYTES_"))?;
            v.parse().map_err(|_| WireError::BadValue("PKTS_/BYTES_"))
        };
        *total = ClassTotal { packets: value("PKTS_")?, bytes: value("BYTES_")? };
    }
    let mut interfaces = Vec::new();
    for item in w.get("IF").unwrap_or("").split(',').filter(|s| !s.is_empty()).take(MAX_INTERFACES) {
        let (name, mode) = item.split_once(':').ok_or(WireError::BadValue("IF"))?;
        interfaces.push((decode(name)?, decode(mode)?));
    }
    Ok(Counters {
        seq: required("SEQ")?,
        start_ms: required("START")?,
        ts_ms: required("TS")?,
        classes,
        suppressed: required("SUPPRESSED")?,
        ring_full: required("RING_FULL")?,
        events: required("EVENTS")?,
        dropped: required("DROPPED")?,
        interfaces,
    })
}

/// Percent-encodes what would break a word: space, '%', ',', ':', '=',
/// controls, non-ASCII.
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for &b in value.as_bytes() {
        if b.is_ascii_graphic() && !matches!(b, b'%' | b',' | b':' | b'=') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn decode(value: &str) -> Result<String, WireError> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(WireError::BadEncoding)?;
            let hex = std::str::from_utf8(hex).map_err(|_| WireError::BadEncoding)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| WireError::BadEncoding)?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| WireError::BadEncoding)
}

#[cfg(test)]
mod tests {
    use monitor_common::syslog;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("literal address")
    }

    fn xdp_event(class: Class) -> Event {
        let origin = Origin::Xdp { iface: Arc::from("veth-a 1") };
        Event::new(1_796_000_000_123, class, ip("203.0.113.7"), ip("10.0.0.1"), origin, 3, 98)
    }

    fn round_trip(e: &Event) -> Event {
        let text = syslog_message("agent-1", e.ts_ms, 42, Kind::Event, &event_message(e));
        let parsed = syslog::parse(&text).expect("a syslog line");
        assert_eq!(parsed.format, syslog::Format::Rfc5424);
        assert_eq!(
            (parsed.hostname, parsed.app_name, parsed.msg_id),
            (Some("agent-1"), Some("monitor"), Some("event"))
        );
        assert_eq!(kind(parsed.msg), Some(Kind::Event));
        parse_event(parsed.msg, ip("127.0.0.1"), "agent-1").expect("parses back")
    }

    #[test]
    fn events_round_trip() {
        let mut ping = xdp_event(Class::Icmp);
        ping.icmp = Some(IcmpInfo { type_: 8, code: 0, id: Some(4), seq: Some(17) });
        let mut web = xdp_event(Class::Http);
        (web.src_port, web.dst_port, web.tcp_flags) = (Some(40_000), Some(80), Some(tcp_flags::ACK | tcp_flags::PSH));
        web.http =
            Some(HttpInfo { method: "GET".into(), target: "/a b%c=d,é".into(), host: Some("a.test:8080".into()) });
        web.response =
            Some(ResponseInfo { status: Some(404), status_class: "4xx", reason: "Not Found".into(), latency_ms: 1.25 });
        let mut hello = xdp_event(Class::Https);
        (hello.src_port, hello.dst_port, hello.tcp_flags) = (Some(40_001), Some(443), Some(tcp_flags::ACK));
        hello.tls = Some(TlsInfo { sni: Some("www.example.com".into()), version: Some("TLS 1.3") });
        let mut quic = xdp_event(Class::Https);
        (quic.src_port, quic.dst_port) = (Some(5000), Some(443));
        let v6 =
            Event::new(1, Class::Icmpv6, ip("2001:db8::7"), ip("2001:db8::1"), Origin::Xdp { iface: "e".into() }, 1, 0);
        for e in [ping, web, hello, quic, v6] {
            let e = e.described();
            let back = round_trip(&e);
            let fields = |e: &Event| {
                (e.ts_ms, e.class, e.src, e.dst, e.weight, e.len, e.icmp, e.src_port, e.dst_port, e.tcp_flags)
            };
            assert_eq!(fields(&back), fields(&e), "{}", event_message(&e));
            assert_eq!((&back.http, &back.tls, &back.response), (&e.http, &e.tls, &e.response));
            assert_eq!(back.detail, e.detail);
            assert_eq!(back.host.as_deref(), Some("agent-1"));
            let iface = match &e.origin {
                Origin::Xdp { iface } => iface.to_string(),
                _ => unreachable!("built as XDP events"),
            };
            assert_eq!(back.origin, Origin::Agent { sender: ip("127.0.0.1"), iface });
        }
    }

    /// The message reads like a netfilter LOG line for grep and fail2ban.
    #[test]
    fn event_text_is_netfilter_style() {
        let mut ping = xdp_event(Class::Icmp);
        ping.icmp = Some(IcmpInfo { type_: 8, code: 0, id: Some(4), seq: Some(17) });
        assert_eq!(
            event_message(&ping),
            "MONITOR_EVENT IN=veth-a%201 OUT= SRC=203.0.113.7 DST=10.0.0.1 LEN=98 PROTO=ICMP TYPE=8 CODE=0 ID=4 \
             SEQ=17 CLASS=icmp WEIGHT=3 TS=1796000000123"
        );
        let line = syslog_message("h", 0, 1, Kind::Event, "x");
        assert_eq!(line, "<134>1 1970-01-01T00:00:00.000Z h monitor 1 event - x");
        assert_eq!(octet_counted("abc"), "3 abc");
    }

    #[test]
    fn counters_round_trip() {
        let mut c = Counters {
            seq: 7,
            start_ms: 1_796_000_000_000,
            ts_ms: 1_796_000_005_000,
            suppressed: 11,
            ring_full: 2,
            events: 40,
            dropped: 3,
            interfaces: vec![("veth0".into(), "skb".into()), ("eth 1".into(), "driver".into())],
            ..Counters::default()
        };
        for (i, t) in c.classes.iter_mut().enumerate() {
            *t = ClassTotal { packets: i as u64 * 10 + 1, bytes: u64::MAX - i as u64 };
        }
        let text = syslog_message("agent-2", c.ts_ms, 1, Kind::Counters, &counters_message(&c));
        let parsed = syslog::parse(&text).expect("a syslog line");
        assert_eq!(kind(parsed.msg), Some(Kind::Counters));
        assert_eq!(parse_counters(parsed.msg), Ok(c));
    }

    /// Hostile or broken messages are errors, never panics.
    #[test]
    fn hostile_input_is_rejected() {
        let sender = ip("127.0.0.1");
        let good = "MONITOR_EVENT SRC=1.2.3.4 DST=5.6.7.8 CLASS=icmp TS=1";
        assert!(parse_event(good, sender, "h").is_ok());
        let cases: &[(&str, &str)] = &[
            ("IPT_ICMP SRC=1.2.3.4", "not_agent"),
            ("MONITOR_EVENT DST=5.6.7.8 CLASS=icmp TS=1", "missing_key"),
            ("MONITOR_EVENT SRC=1.2.3.999 DST=5.6.7.8 CLASS=icmp TS=1", "bad_value"),
            ("MONITOR_EVENT SRC=1.2.3.4 DST=5.6.7.8 CLASS=nope TS=1", "bad_value"),
            ("MONITOR_EVENT SRC=1.2.3.4 DST=5.6.7.8 CLASS=icmp TS=-1", "bad_value"),
            ("MONITOR_EVENT SRC=1.2.3.4 DST=5.6.7.8 CLASS=icmp TS=1 WEIGHT=99999999999", "bad_value"),
            ("MONITOR_EVENT SRC=1.2.3.4 DST=5.6.7.8 CLASS=icmp TS=1 METHOD=%4", "bad_encoding"),
            ("MONITOR_EVENT SRC=1.2.3.4 DST=5.6.7.8 CLASS=icmp TS=1 METHOD=%zz", "bad_encoding"),
            ("MONITOR_EVENT SRC=1.2.3.4 DST=5.6.7.8 CLASS=icmp TS=1 METHOD=%FF", "bad_encoding"),
            ("MONITOR_EVENT SRC=1.2.3.4 DST=5.6.7.8 CLASS=icmp TS=1 TLSVER=TLS9", "bad_value"),
            ("MONITOR_EVENT SRC=1.2.3.4 DST=5.6.7.8 CLASS=http TS=1 STATUSCLASS=2xx LATENCY_MS=NaN", "bad_value"),
            ("MONITOR_COUNTERS SEQ=1", "missing_key"),
        ];
        for (msg, reason) in cases {
            let err = if msg.starts_with(COUNTERS_TAG) {
                parse_counters(msg).expect_err(msg)
            } else {
                parse_event(msg, sender, "h").expect_err(msg)
            };
            assert_eq!(err.reason(), *reason, "{msg}");
        }
        let long = format!("{good}{}", " X".repeat(MAX_WORDS));
        assert_eq!(parse_event(&long, sender, "h").map(|_| ()), Err(WireError::TooManyWords));
        // Arbitrary bytes: no panic whatever comes.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2_000 {
            let mut text = String::from(if seed & 1 == 0 { "MONITOR_EVENT " } else { "MONITOR_COUNTERS " });
            for _ in 0..(seed % 40) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let alphabet = b"SRC=DST=CLASS=TS=%IF,:1.2 icmpPKTS_ICMP=\xc3\xa9";
                text.push(alphabet[(seed % alphabet.len() as u64) as usize] as char);
            }
            let _ = parse_event(&text, sender, "h");
            let _ = parse_counters(&text);
        }
    }

    #[test]
    fn hostnames_stay_one_word() {
        let line = syslog_message("a b\nc", 0, 1, Kind::Counters, "m");
        assert!(line.contains(" a_b_c monitor "), "{line}");
        assert!(syslog_message("", 0, 1, Kind::Counters, "m").contains(" - monitor "));
    }
}
