//! One syslog line in, one event (or a counted rejection) out.

use std::{
    collections::{HashMap, VecDeque},
    net::IpAddr,
    sync::Mutex,
};

use monitor_common::{
    netfilter::{self, LogLine, Proto},
    syslog, Class,
};
use serde::Serialize;

use super::Allowlist;
use crate::{
    app::lock,
    event::{describe, now_ms, Event, IcmpInfo, Origin},
    ports::PortList,
};

/// A LOG prefix and the class its lines count as; `None` derives the class
/// from the logged packet (protocol and ports).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrefixRule {
    pub prefix: String,
    pub class: Option<Class>,
}

impl std::str::FromStr for PrefixRule {
    type Err = String;

    /// `PREFIX` or `PREFIX=class`, e.g. `IPT_HTTP =http`. The prefix is
    /// matched exactly as iptables' --log-prefix wrote it, trailing space
    /// included.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (prefix, class) = match s.rsplit_once('=') {
            Some((prefix, class)) => {
                let class = Class::from_name(class.trim())
                    .ok_or_else(|| format!("unknown class {class:?} in prefix rule {s:?}"))?;
                (prefix, Some(class))
            }
            None => (s, None),
        };
        if prefix.trim().is_empty() || prefix.len() > 29 {
            return Err(format!("LOG prefix {prefix:?} must be 1-29 characters (iptables' limit)"));
        }
        Ok(PrefixRule { prefix: prefix.to_owned(), class })
    }
}

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

/// Counters of the syslog path; all bounded.
#[derive(Debug, Default, Serialize)]
pub struct SyslogCounters {
    pub received: u64,
    pub accepted: u64,
    pub rejected: HashMap<String, u64>,
    /// Rejected senders (not in the allowlist) and how often; at most
    /// MAX_TRACKED_SENDERS, the rest under `rejected_senders_other`.
    pub rejected_senders: HashMap<IpAddr, u64>,
    pub rejected_senders_other: u64,
    /// Accepted lines per sender (for reconciling with XDP counts).
    pub accepted_by_sender: HashMap<IpAddr, u64>,
    pub last_rejected: VecDeque<Rejected>,
    /// Datagrams the kernel dropped before the daemon read them (a UDP
    /// receive buffer overflowed), over all UDP sockets. Not in `received`.
    pub socket_drops: u64,
}

pub struct Ingest {
    config: IngestConfig,
    prefixes: Vec<String>,
    pub counters: Mutex<SyslogCounters>,
}

/// Longest line we accept; longer lines are counted as oversized.
pub const MAX_LINE: usize = syslog::MAX_LINE;

impl Ingest {
    pub fn new(config: IngestConfig) -> Self {
        let prefixes = config.prefixes.iter().map(|p| p.prefix.clone()).collect();
        Ingest { config, prefixes, counters: Mutex::new(SyslogCounters::default()) }
    }

    pub fn allowlist(&self) -> &Allowlist {
        &self.config.allowlist
    }

    /// Handles one line (a UDP datagram or one TCP frame) from `sender`.
    pub fn handle(&self, sender: IpAddr, bytes: &[u8]) -> Option<Event> {
        let result = self.parse(sender, bytes);
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

    fn record(&self, sender: IpAddr, result: Result<Event, RejectReason>, bytes: &[u8]) -> Option<Event> {
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
                Some(event)
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

    fn parse(&self, sender: IpAddr, bytes: &[u8]) -> Result<Event, RejectReason> {
        if !self.config.allowlist.allows(sender) {
            return Err(RejectReason::SenderNotAllowed);
        }
        if bytes.len() > MAX_LINE {
            return Err(RejectReason::Oversized);
        }
        let text = std::str::from_utf8(bytes).map_err(|_| RejectReason::InvalidUtf8)?;
        let message = syslog::parse(text).map_err(|e| RejectReason::Syslog(e.reason()))?;
        let line = netfilter::parse(message.msg, &self.prefixes).map_err(|e| match e {
            netfilter::NetfilterError::NoPrefix => RejectReason::NoPrefix,
            other => RejectReason::Netfilter(other.reason()),
        })?;
        let rule = self.config.prefixes.iter().find(|r| r.prefix.trim_end() == line.prefix).and_then(|r| r.class);
        Ok(self.event(sender, message.hostname, &line, rule))
    }

    fn event(&self, sender: IpAddr, hostname: Option<&str>, line: &LogLine<'_>, class: Option<Class>) -> Event {
        let src = line.src.or(line.dst).unwrap_or(sender);
        let dst = line.dst.unwrap_or(src);
        let class = class.unwrap_or_else(|| self.classify(line, src));
        let icmp = match (line.icmp_type, line.icmp_code) {
            (Some(type_), Some(code)) => {
                Some(IcmpInfo { type_, code, id: line.icmp_id.unwrap_or(0), seq: line.icmp_seq.unwrap_or(0) })
            }
            _ => None,
        };
        let mut event = Event {
            id: 0,
            ts_ms: now_ms(),
            class,
            src,
            dst,
            origin: Origin::Syslog { sender, hostname: hostname.map(str::to_owned), prefix: line.prefix.to_owned() },
            weight: 1,
            len: line.len.unwrap_or(0),
            icmp,
            src_port: line.src_port,
            dst_port: line.dst_port,
            tcp_flags: matches!(line.proto, Some(Proto::Tcp)).then(|| (line.tcp_flags.bits() & 0xff) as u8),
            http: None,
            tls: None,
            response: None,
            detail: String::new(),
            geo: None,
        };
        event.detail = describe(&event);
        event
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
