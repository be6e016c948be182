//! The daemon's event model: one shape for kernel and syslog events alike.
//!
//! JSON schema version [`SCHEMA_VERSION`] (docs/API.md): every API response
//! and WebSocket frame says which version it uses, so consumers can tell
//! when a field changes meaning.

use std::{net::IpAddr, sync::Arc};

use monitor_common::Class;
use serde::{Serialize, Serializer};

use super::{describe::describe, geo::GeoInfo};

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
    /// The host that saw the packet: an agent's hostname, a syslog line's
    /// HOSTNAME (or its sender), or this host's name (set by the pipeline).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<Arc<str>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Origin {
    /// Seen by the XDP observer on this interface.
    Xdp { iface: Arc<str> },
    /// Reported by an iptables LOG line from this syslog sender.
    /// (Shared strings: every line from a sender has the same ones.)
    Syslog { sender: IpAddr, hostname: Option<Arc<str>>, prefix: Arc<str> },
    /// Seen by an agent's XDP observer on its interface `iface`, forwarded
    /// over syslog by `sender` (the agent or its relay).
    Agent { sender: IpAddr, iface: String },
}

impl Origin {
    /// A stable label: "xdp:eth1" or "syslog:10.0.0.5".
    pub fn label(&self) -> String {
        match self {
            Origin::Xdp { iface } => format!("xdp:{iface}"),
            Origin::Syslog { sender, .. } => format!("syslog:{sender}"),
            Origin::Agent { iface, .. } => format!("agent:{iface}"),
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

impl Event {
    /// The one constructor: what every event has. The optional parts are
    /// set by the source that knows them, then [`Event::described`] writes
    /// the feed's line.
    pub fn new(ts_ms: u64, class: Class, src: IpAddr, dst: IpAddr, origin: Origin, weight: u32, len: u32) -> Self {
        Event {
            id: 0,
            ts_ms,
            class,
            src,
            dst,
            origin,
            weight,
            len,
            icmp: None,
            src_port: None,
            dst_port: None,
            tcp_flags: None,
            http: None,
            tls: None,
            response: None,
            detail: String::new(),
            geo: None,
            host: None,
        }
    }

    /// The event with its one-line description filled in.
    pub fn described(mut self) -> Self {
        self.detail = describe(&self);
        self
    }
}
