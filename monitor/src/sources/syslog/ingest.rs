//! One syslog line in, one event (or a counted rejection) out.

use std::{
    collections::{HashMap, VecDeque},
    net::IpAddr,
    sync::{Arc, Mutex},
};

use monitor_common::{
    netfilter::{self, LogLine, Proto},
    syslog, Class,
};
use serde::Serialize;

use super::{hosts::HostTable, Allowlist};
use crate::{
    config::{PortList, PrefixRule},
    lock::lock,
    model::{forward, now_ms, AddressMap, Event, IcmpInfo, Origin},
};

#[derive(Clone, Debug)]
pub struct IngestConfig {
    pub prefixes: Vec<PrefixRule>,
    pub allowlist: Allowlist,
    pub http_ports: PortList,
    pub https_ports: PortList,
    pub quic_ports: PortList,
}

/// Why a datagram or line did not become an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    SenderNotAllowed,
    Oversized,
    InvalidUtf8,
    Syslog(&'static str),
    /// A syslog line without one of our LOG prefixes: someone else's message.
    NoPrefix,
    Netfilter(&'static str),
    /// An agent message (docs/agent.md) that did not parse.
    Agent(&'static str),
    /// Client certificates are required and the HOSTNAME is not a name of
    /// the sender's certificate.
    HostNotInCertificate,
}

impl RejectReason {
    pub fn label(&self) -> String {
        match self {
            RejectReason::SenderNotAllowed => "sender_not_allowed".into(),
            RejectReason::Oversized => "oversized".into(),
            RejectReason::InvalidUtf8 => "invalid_utf8".into(),
            RejectReason::Syslog(r) => format!("syslog_{r}"),
            RejectReason::NoPrefix => "no_prefix".into(),
            RejectReason::Netfilter(r) => format!("netfilter_{r}"),
            RejectReason::Agent(r) => format!("agent_{r}"),
            RejectReason::HostNotInCertificate => "host_not_in_certificate".into(),
        }
    }
}

/// Kept for display: the last few rejected lines.
#[derive(Clone, Debug, Serialize)]
pub struct Rejected {
    pub ts_ms: u64,
    pub sender: IpAddr,
    pub reason: String,
    /// The start of the line, lossily decoded.
    pub sample: String,
}

const KEEP_REJECTED: usize = 20;
const MAX_TRACKED_SENDERS: usize = 1_000;
const SAMPLE_CHARS: usize = 200;
/// Oldest agent event time accepted as such; older ones are dated an hour back.
const MAX_EVENT_AGE_MS: u64 = 3_600_000;

/// Counters of the syslog path; all bounded.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SyslogCounters {
    pub received: u64,
    pub accepted: u64,
    pub rejected: HashMap<String, u64>,
    /// Rejected senders (not in the allowlist) and how often; at most
    /// MAX_TRACKED_SENDERS, the rest under `rejected_senders_other`.
    pub rejected_senders: AddressMap<u64>,
    pub rejected_senders_other: u64,
    /// Accepted lines per sender (for reconciling with XDP counts).
    pub accepted_by_sender: AddressMap<u64>,
    pub last_rejected: VecDeque<Rejected>,
    /// Datagrams the kernel dropped before the daemon read them (a UDP
    /// receive buffer overflowed), over all UDP sockets. Not in `received`.
    pub socket_drops: u64,
}

pub struct Ingest {
    config: IngestConfig,
    prefixes: Vec<String>,
    /// Each rule's prefix as events name it (trimmed, shared) and its class.
    rules: Vec<(Arc<str>, Option<Class>)>,
    pub counters: Mutex<SyslogCounters>,
    /// Every reporting host and, for agents, their counters.
    pub hosts: Mutex<HostTable>,
}

/// Whether a HOSTNAME is one the sender's client certificate was issued
/// for (TLS with --syslog-tls-client-ca).
pub type HostCheck<'a> = &'a (dyn Fn(&str) -> bool + Sync);

/// Longest line we accept; longer lines are counted as oversized.
pub(super) const MAX_LINE: usize = syslog::MAX_LINE;

impl Ingest {
    pub fn new(config: IngestConfig) -> Self {
        let prefixes = config.prefixes.iter().map(|p| p.prefix.clone()).collect();
        let rules = config.prefixes.iter().map(|p| (Arc::from(p.prefix.trim_end()), p.class)).collect();
        Ingest {
            config,
            prefixes,
            rules,
            counters: Mutex::new(SyslogCounters::default()),
            hosts: Mutex::new(HostTable::default()),
        }
    }

    pub fn allowlist(&self) -> &Allowlist {
        &self.config.allowlist
    }

    /// Handles one line (a UDP datagram or one TCP frame) from `sender`.
    pub fn handle(&self, sender: IpAddr, bytes: &[u8]) -> Option<Event> {
        self.handle_checked(sender, None, bytes)
    }

    /// As [`Ingest::handle`]; with `check`, the line's HOSTNAME must pass it.
    pub fn handle_checked(&self, sender: IpAddr, check: Option<HostCheck<'_>>, bytes: &[u8]) -> Option<Event> {
        let result = self.parse(sender, check, bytes);
        self.record(sender, result, bytes)
    }

    /// Counts a message longer than MAX_LINE that was not read whole;
    /// `start` is what was read of it (for display).
    pub fn handle_oversized(&self, sender: IpAddr, start: &[u8]) {
        let reason =
            if self.config.allowlist.allows(sender) { RejectReason::Oversized } else { RejectReason::SenderNotAllowed };
        self.record(sender, Err(reason), start);
    }

    pub fn count_socket_drops(&self, dropped: u64) {
        if dropped > 0 {
            lock(&self.counters).socket_drops += dropped;
        }
    }

    fn record(&self, sender: IpAddr, result: Result<Option<Event>, RejectReason>, bytes: &[u8]) -> Option<Event> {
        if let Ok(Some(event)) = &result {
            if let Some(host) = &event.host {
                lock(&self.hosts).event(host, now_ms());
            }
        }
        let mut counters = lock(&self.counters);
        counters.received += 1;
        match result {
            Ok(event) => {
                counters.accepted += 1;
                if counters.accepted_by_sender.len() < MAX_TRACKED_SENDERS
                    || counters.accepted_by_sender.contains_key(&sender)
                {
                    *counters.accepted_by_sender.entry(sender).or_default() += 1;
                }
                event
            }
            Err(reason) => {
                *counters.rejected.entry(reason.label()).or_default() += 1;
                if reason == RejectReason::SenderNotAllowed {
                    if counters.rejected_senders.len() < MAX_TRACKED_SENDERS
                        || counters.rejected_senders.contains_key(&sender)
                    {
                        *counters.rejected_senders.entry(sender).or_default() += 1;
                    } else {
                        counters.rejected_senders_other += 1;
                    }
                }
                if counters.last_rejected.len() == KEEP_REJECTED {
                    counters.last_rejected.pop_front();
                }
                let sample: String = String::from_utf8_lossy(&bytes[..bytes.len().min(SAMPLE_CHARS * 4)])
                    .chars()
                    .take(SAMPLE_CHARS)
                    .collect();
                counters.last_rejected.push_back(Rejected { ts_ms: now_ms(), sender, reason: reason.label(), sample });
                None
            }
        }
    }

    /// An event, or None for a message that is only counted (an agent's
    /// counters).
    fn parse(&self, sender: IpAddr, check: Option<HostCheck<'_>>, bytes: &[u8]) -> Result<Option<Event>, RejectReason> {
        if !self.config.allowlist.allows(sender) {
            return Err(RejectReason::SenderNotAllowed);
        }
        if bytes.len() > MAX_LINE {
            return Err(RejectReason::Oversized);
        }
        let text = std::str::from_utf8(bytes).map_err(|_| RejectReason::InvalidUtf8)?;
        let message = syslog::parse(text).map_err(|e| RejectReason::Syslog(e.reason()))?;
        if let Some(check) = check {
            if !message.hostname.is_some_and(check) {
                return Err(RejectReason::HostNotInCertificate);
            }
        }
        if let Some(kind) = forward::kind(message.msg) {
            return self.agent(sender, message.hostname, message.msg, kind);
        }
        let line = netfilter::parse(message.msg, &self.prefixes).map_err(|e| match e {
            netfilter::NetfilterError::NoPrefix => RejectReason::NoPrefix,
            other => RejectReason::Netfilter(other.reason()),
        })?;
        let (prefix, class) = match self.rules.iter().find(|(name, _)| **name == *line.prefix) {
            Some((name, class)) => (Arc::clone(name), *class),
            None => (Arc::from(line.prefix), None),
        };
        Ok(Some(self.event(sender, message.hostname, &line, prefix, class)))
    }

    /// An agent's message; its host is the HOSTNAME, else the sender.
    fn agent(
        &self,
        sender: IpAddr,
        hostname: Option<&str>,
        msg: &str,
        kind: forward::Kind,
    ) -> Result<Option<Event>, RejectReason> {
        let host = hostname.map_or_else(|| sender.to_string(), str::to_owned);
        let reject = |e: forward::WireError| RejectReason::Agent(e.reason());
        match kind {
            forward::Kind::Event => {
                let mut event = forward::parse_event(msg, sender, &host).map_err(reject)?;
                // The agent's clock says when the packet was seen (events
                // wait in its queue during an outage), but never later than
                // now nor older than an hour: time windows stay sane
                // whatever a skewed or hostile agent sends.
                let now = now_ms();
                event.ts_ms = event.ts_ms.clamp(now.saturating_sub(MAX_EVENT_AGE_MS), now);
                Ok(Some(event))
            }
            forward::Kind::Counters => {
                let counters = forward::parse_counters(msg).map_err(reject)?;
                lock(&self.hosts).counters(&host, counters, now_ms());
                Ok(None)
            }
        }
    }

    fn event(
        &self,
        sender: IpAddr,
        hostname: Option<&str>,
        line: &LogLine<'_>,
        prefix: Arc<str>,
        class: Option<Class>,
    ) -> Event {
        let src = line.src.or(line.dst).unwrap_or(sender);
        let dst = line.dst.unwrap_or(src);
        let class = class.unwrap_or_else(|| self.classify(line, src));
        // The LOG target prints ID= and SEQ= for the messages that have them
        // (echo): absent fields stay absent.
        let icmp = match (line.icmp_type, line.icmp_code) {
            (Some(type_), Some(code)) => Some(IcmpInfo { type_, code, id: line.icmp_id, seq: line.icmp_seq }),
            _ => None,
        };
        let hostname: Option<Arc<str>> = hostname.map(Arc::from);
        let host = hostname.clone().unwrap_or_else(|| Arc::from(sender.to_string()));
        let origin = Origin::Syslog { sender, hostname, prefix };
        let mut event = Event::new(now_ms(), class, src, dst, origin, 1, line.len.unwrap_or(0));
        event.host = Some(host);
        event.icmp = icmp;
        event.src_port = line.src_port;
        event.dst_port = line.dst_port;
        event.tcp_flags = matches!(line.proto, Some(Proto::Tcp)).then(|| (line.tcp_flags.bits() & 0xff) as u8);
        event.described()
    }

    fn classify(&self, line: &LogLine<'_>, src: IpAddr) -> Class {
        let dport = line.dst_port.unwrap_or(0);
        match line.proto {
            Some(Proto::Icmp) => Class::Icmp,
            Some(Proto::Icmpv6) => Class::Icmpv6,
            Some(Proto::Tcp) if self.config.http_ports.0.contains(&dport) => Class::Http,
            Some(Proto::Tcp) if self.config.https_ports.0.contains(&dport) => Class::Https,
            Some(Proto::Udp) if self.config.quic_ports.0.contains(&dport) => Class::Https,
            _ if src.is_ipv4() => Class::OtherIpv4,
            _ => Class::OtherIpv6,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use monitor_common::Class;

    use super::*;

    const ALLOWED: &str = "10.1.2.3";

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("literal address")
    }

    fn ingest() -> Ingest {
        let prefixes = ["IPT_ICMP ", "IPT_WEB =http"].map(|p| p.parse().expect("valid rule")).to_vec();
        let ports = |s: &str| s.parse::<PortList>().expect("valid ports");
        Ingest::new(IngestConfig {
            prefixes,
            allowlist: Allowlist::new(vec!["10.0.0.0/8".parse().expect("net"), "::1/128".parse().expect("net")]),
            http_ports: ports("80,8080"),
            https_ports: ports("443"),
            quic_ports: ports("443"),
        })
    }

    /// An RFC 3164 kernel line as rsyslog forwards it.
    fn line(netfilter: &str) -> Vec<u8> {
        format!("<4>Nov 24 12:00:00 fw1 kernel: {netfilter}").into_bytes()
    }

    fn tcp(prefix: &str, src: &str, dpt: u16, flags: &str) -> Vec<u8> {
        line(&format!(
            "{prefix}IN=ens3 OUT= SRC={src} DST=192.0.2.1 LEN=60 TTL=57 ID=1 DF PROTO=TCP SPT=40000 DPT={dpt} \
             WINDOW=64240 RES=0x00 {flags} URGP=0"
        ))
    }

    fn accepted(ingest: &Ingest, bytes: &[u8]) -> Event {
        ingest
            .handle(ip(ALLOWED), bytes)
            .unwrap_or_else(|| panic!("rejected: {:?}", lock(&ingest.counters).last_rejected))
    }

    fn rejected(ingest: &Ingest) -> HashMap<String, u64> {
        lock(&ingest.counters).rejected.clone()
    }

    #[test]
    fn icmp_line_becomes_an_event() {
        let ingest = ingest();
        let e = accepted(
            &ingest,
            &line(
                "IPT_ICMP IN=ens3 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 SRC=203.0.113.7 DST=192.0.2.1 \
                 LEN=84 TOS=0x00 PREC=0x00 TTL=57 ID=4242 DF PROTO=ICMP TYPE=8 CODE=0 ID=42 SEQ=7",
            ),
        );
        assert_eq!(e.class, Class::Icmp);
        assert_eq!((e.src, e.dst), (ip("203.0.113.7"), ip("192.0.2.1")));
        assert_eq!((e.weight, e.len), (1, 84));
        assert_eq!(e.icmp, Some(IcmpInfo { type_: 8, code: 0, id: Some(42), seq: Some(7) }));
        assert_eq!(e.tcp_flags, None);
        assert_eq!(
            e.origin,
            Origin::Syslog { sender: ip(ALLOWED), hostname: Some("fw1".into()), prefix: "IPT_ICMP".into() }
        );
        assert_eq!(e.detail, "echo request id 42 seq 7");
        let c = lock(&ingest.counters).clone();
        assert_eq!((c.received, c.accepted), (1, 1));
        assert_eq!(c.accepted_by_sender.get(&ip(ALLOWED)), Some(&1));
        assert!(c.rejected.is_empty());
    }

    /// ID= and SEQ= become the event's id and seq when the line has them
    /// (echo, v4 and v6); a type without them has none, not 0.
    #[test]
    fn icmp_id_and_seq_only_when_logged() {
        let ingest = ingest();
        let v6_echo = accepted(
            &ingest,
            &line(
                "IPT_ICMP IN=ens3 OUT= SRC=2001:db8::7 DST=2001:db8::1 LEN=104 TC=0 HOPLIMIT=64 FLOWLBL=1 \
                 PROTO=ICMPv6 TYPE=129 CODE=0 ID=0 SEQ=3",
            ),
        );
        assert_eq!(v6_echo.class, Class::Icmpv6);
        assert_eq!(v6_echo.icmp, Some(IcmpInfo { type_: 129, code: 0, id: Some(0), seq: Some(3) }));
        assert_eq!(v6_echo.detail, "echo reply id 0 seq 3");

        let cases: &[(&str, Class, u8, u8, &str)] = &[
            (
                "SRC=fe80::1 DST=ff02::1 LEN=72 TC=0 HOPLIMIT=255 FLOWLBL=0 PROTO=ICMPv6 TYPE=135 CODE=0",
                Class::Icmpv6,
                135,
                0,
                "neighbor solicitation",
            ),
            (
                "SRC=fe80::1 DST=ff02::1 LEN=120 TC=0 HOPLIMIT=255 FLOWLBL=0 PROTO=ICMPv6 TYPE=134 CODE=0",
                Class::Icmpv6,
                134,
                0,
                "router advertisement",
            ),
            (
                "SRC=203.0.113.7 DST=192.0.2.1 LEN=56 TOS=0x00 PREC=0xC0 TTL=64 ID=25750 PROTO=ICMP TYPE=3 CODE=3 \
                 [SRC=192.0.2.1 DST=203.0.113.7 LEN=28 PROTO=UDP SPT=1 DPT=2 LEN=8 ]",
                Class::Icmp,
                3,
                3,
                "port unreachable",
            ),
            (
                "SRC=203.0.113.7 DST=192.0.2.1 LEN=40 TOS=0x00 PREC=0x00 TTL=64 ID=1 PROTO=ICMP TYPE=13 CODE=0",
                Class::Icmp,
                13,
                0,
                "timestamp request",
            ),
        ];
        for &(fields, class, type_, code, detail) in cases {
            let e = accepted(&ingest, &line(&format!("IPT_ICMP {fields}")));
            assert_eq!(e.class, class, "{fields}");
            assert_eq!(e.icmp, Some(IcmpInfo { type_, code, id: None, seq: None }), "{fields}");
            assert_eq!(e.detail, detail);
            let json = serde_json::to_value(&e).expect("serializes");
            assert_eq!(json["icmp"], serde_json::json!({"type": type_, "code": code}), "no id/seq keys: {fields}");
        }
    }

    /// `TOS=00` (UniFi) and other spellings of the hex bytes are accepted;
    /// garbage there still rejects the line.
    #[test]
    fn firmware_spellings_of_hex_fields_are_accepted() {
        let ingest = ingest();
        for tos in ["TOS=00 PREC=0x00", "TOS=0x0 PREC=00", "TOS=10 PREC=C0"] {
            let e = accepted(
                &ingest,
                &line(&format!(
                    "IPT_ICMP IN=eth8 OUT= SRC=203.0.113.7 DST=192.0.2.1 LEN=84 {tos} TTL=53 ID=0 DF PROTO=ICMP \
                     TYPE=8 CODE=0 ID=3 SEQ=9"
                )),
            );
            assert_eq!(e.detail, "echo request id 3 seq 9", "{tos}");
        }
        let garbage = line("IPT_ICMP SRC=203.0.113.7 DST=192.0.2.1 LEN=84 TOS=0xZZ PROTO=ICMP TYPE=8 CODE=0");
        assert!(ingest.handle(ip(ALLOWED), &garbage).is_none());
        assert_eq!(rejected(&ingest).get("netfilter_bad_field"), Some(&1));
        assert_eq!(lock(&ingest.counters).accepted, 3);
    }

    #[test]
    fn class_from_ports_unless_the_prefix_names_one() {
        let ingest = ingest();
        let cases: &[(&str, &str, u16, Class)] = &[
            ("IPT_ICMP ", "203.0.113.7", 80, Class::Http),
            ("IPT_ICMP ", "203.0.113.7", 8080, Class::Http),
            ("IPT_ICMP ", "203.0.113.7", 443, Class::Https),
            ("IPT_ICMP ", "203.0.113.7", 22, Class::OtherIpv4),
            ("IPT_ICMP ", "2001:db8::7", 22, Class::OtherIpv6),
            ("IPT_WEB ", "203.0.113.7", 22, Class::Http), // the rule's class wins
        ];
        for &(prefix, src, dpt, class) in cases {
            let e = accepted(&ingest, &tcp(prefix, src, dpt, "SYN"));
            assert_eq!(e.class, class, "{prefix:?} {src} port {dpt}");
            assert_eq!((e.src_port, e.dst_port), (Some(40000), Some(dpt)));
            assert_eq!(e.tcp_flags, Some(0x02));
            assert_eq!(e.detail, format!("connection to port {dpt}"));
        }
        let ack = accepted(&ingest, &tcp("IPT_ICMP ", "203.0.113.7", 22, "ACK PSH"));
        assert_eq!((ack.tcp_flags, ack.detail.as_str()), (Some(0x18), "TCP to port 22"));

        let quic = accepted(
            &ingest,
            &line("IPT_ICMP SRC=203.0.113.7 DST=192.0.2.1 LEN=1200 PROTO=UDP SPT=50000 DPT=443 LEN=1180"),
        );
        assert_eq!((quic.class, quic.detail.as_str()), (Class::Https, "UDP to port 443"));
        let dns =
            accepted(&ingest, &line("IPT_ICMP SRC=203.0.113.7 DST=192.0.2.1 LEN=60 PROTO=UDP SPT=5353 DPT=53 LEN=40"));
        assert_eq!(dns.class, Class::OtherIpv4);
        assert_eq!(lock(&ingest.counters).accepted, 9);
    }

    #[test]
    fn a_line_without_source_uses_the_destination_then_the_sender() {
        let ingest = ingest();
        let e = accepted(&ingest, &line("IPT_ICMP DST=192.0.2.1 LEN=84 PROTO=ICMP TYPE=0 CODE=0 ID=1 SEQ=2"));
        assert_eq!((e.src, e.dst), (ip("192.0.2.1"), ip("192.0.2.1")));
    }

    #[test]
    fn rejections_are_counted_by_reason() {
        let ingest = ingest();
        let good = line("IPT_ICMP SRC=203.0.113.7 DST=192.0.2.1 LEN=84 PROTO=ICMP TYPE=8 CODE=0 ID=1 SEQ=1");
        let mut invalid_utf8 = good.clone();
        invalid_utf8[40] = 0xff;
        let mut oversized = good.clone();
        oversized.resize(MAX_LINE + 1, b' ');
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("192.0.2.9", good.clone(), "sender_not_allowed"),
            (ALLOWED, oversized, "oversized"),
            (ALLOWED, invalid_utf8, "invalid_utf8"),
            (ALLOWED, Vec::new(), "syslog_empty"),
            (ALLOWED, b"<999>Nov 24 12:00:00 fw1 kernel: x".to_vec(), "syslog_bad_priority"),
            (ALLOWED, line("IPT_DROP SRC=203.0.113.7 DST=192.0.2.1 PROTO=ICMP"), "no_prefix"),
            (ALLOWED, line("IPT_ICMP IN=ens3 LEN=84 PROTO=ICMP"), "netfilter_missing_address"),
        ];
        for (sender, bytes, reason) in &cases {
            assert!(ingest.handle(ip(sender), bytes).is_none(), "{reason} must be rejected");
            assert_eq!(rejected(&ingest).get(*reason), Some(&1), "{reason}: {:?}", rejected(&ingest));
        }
        // A good line from the same sender still goes through.
        accepted(&ingest, &good);

        let c = lock(&ingest.counters).clone();
        assert_eq!((c.received, c.accepted), (cases.len() as u64 + 1, 1));
        assert_eq!(c.rejected.values().sum::<u64>(), cases.len() as u64);
        assert_eq!(c.rejected_senders.get(&ip("192.0.2.9")), Some(&1));
        assert_eq!(c.rejected_senders.len(), 1, "only senders outside the allowlist are tracked");
        let last = c.last_rejected.back().expect("kept for display");
        assert_eq!((last.reason.as_str(), last.sender), ("netfilter_missing_address", ip(ALLOWED)));
        assert!(last.sample.contains("IPT_ICMP IN=ens3"), "{}", last.sample);
        let utf8 = c.last_rejected.iter().find(|r| r.reason == "invalid_utf8").expect("kept");
        assert!(utf8.sample.contains('\u{fffd}'), "decoded lossily: {}", utf8.sample);
    }

    /// Agent messages (docs/agent.md) next to LOG lines: events keyed by the
    /// HOSTNAME, counters into the host table, broken ones counted.
    #[test]
    fn agent_messages_become_events_and_host_counters() {
        let ingest = ingest();
        let now = now_ms();
        let event = format!(
            "<134>1 2026-11-30T23:00:00.000Z web-1 monitor 7 event - MONITOR_EVENT IN=ens9 OUT= SRC=203.0.113.7 \
             DST=192.0.2.1 LEN=98 PROTO=ICMP TYPE=8 CODE=0 ID=4 SEQ=1 CLASS=icmp WEIGHT=2 TS={now}"
        );
        let e = accepted(&ingest, event.as_bytes());
        assert_eq!((e.host.as_deref(), e.weight, e.ts_ms), (Some("web-1"), 2, now));
        assert_eq!(e.origin, Origin::Agent { sender: ip(ALLOWED), iface: "ens9".into() });
        // A timestamp from the far future is dated now.
        let future = event.replace(&format!("TS={now}"), "TS=99999999999999");
        assert!(accepted(&ingest, future.as_bytes()).ts_ms <= now_ms());
        let counters = "<134>1 2026-11-30T23:00:00.000Z web-1 monitor 7 counters - MONITOR_COUNTERS SEQ=1 START=5 \
             TS=6 PKTS_ICMP=9 BYTES_ICMP=882 PKTS_ICMPV6=0 BYTES_ICMPV6=0 PKTS_HTTP=0 BYTES_HTTP=0 PKTS_HTTPS=0 \
             BYTES_HTTPS=0 PKTS_OTHER_IPV4=0 BYTES_OTHER_IPV4=0 PKTS_OTHER_IPV6=0 BYTES_OTHER_IPV6=0 PKTS_NON_IP=0 \
             BYTES_NON_IP=0 PKTS_MALFORMED=0 BYTES_MALFORMED=0 SUPPRESSED=0 RING_FULL=0 EVENTS=2 DROPPED=0 IF=ens9:skb";
        assert!(ingest.handle(ip(ALLOWED), counters.as_bytes()).is_none(), "counters are no event");
        let broken = "<134>1 2026-11-30T23:00:00.000Z web-1 monitor 7 event - MONITOR_EVENT SRC=x";
        assert!(ingest.handle(ip(ALLOWED), broken.as_bytes()).is_none());
        assert_eq!(rejected(&ingest).get("agent_bad_value"), Some(&1));
        // Only a HOSTNAME the check accepts (a TLS client certificate's names).
        let only_db = |h: &str| h == "db-1";
        assert!(ingest.handle_checked(ip(ALLOWED), Some(&only_db), event.as_bytes()).is_none());
        assert_eq!(rejected(&ingest).get("host_not_in_certificate"), Some(&1));
        let hosts = lock(&ingest.hosts).clone();
        let web = &hosts.hosts["web-1"];
        assert_eq!(
            (web.events, web.totals().classes[0].packets, web.counters.as_ref().map(|c| c.seq)),
            (2, 9, Some(1))
        );
        assert_eq!(lock(&ingest.counters).accepted, 3);
    }

    #[test]
    fn oversized_messages_read_in_part() {
        let ingest = ingest();
        ingest.handle_oversized(ip(ALLOWED), b"<4>Nov 24 12:00:00 fw1 kernel: IPT_ICMP ...");
        ingest.handle_oversized(ip("192.0.2.9"), b"<4>...");
        let counted = rejected(&ingest);
        assert_eq!((counted.get("oversized"), counted.get("sender_not_allowed")), (Some(&1), Some(&1)));
        assert_eq!(lock(&ingest.counters).received, 2);
    }

    #[test]
    fn kept_rejections_and_their_samples_are_bounded() {
        let ingest = ingest();
        let long = vec![b'x'; MAX_LINE];
        for _ in 0..KEEP_REJECTED + 5 {
            assert!(ingest.handle(ip(ALLOWED), &long).is_none());
        }
        let c = lock(&ingest.counters).clone();
        assert_eq!(c.last_rejected.len(), KEEP_REJECTED);
        assert!(c.last_rejected.iter().all(|r| r.sample.chars().count() == SAMPLE_CHARS));
        assert_eq!(c.rejected.values().sum::<u64>(), KEEP_REJECTED as u64 + 5);
    }

    #[test]
    fn rejected_senders_beyond_the_tracked_number_are_summed() {
        let ingest = ingest();
        for n in 0..=MAX_TRACKED_SENDERS as u32 {
            let sender = IpAddr::V4((0xc000_0000 + n).into()); // 192.0.0.0/8, outside the allowlist
            ingest.handle(sender, b"x");
        }
        let c = lock(&ingest.counters).clone();
        assert_eq!(c.rejected_senders.len(), MAX_TRACKED_SENDERS);
        assert_eq!(c.rejected_senders_other, 1);
    }
}
