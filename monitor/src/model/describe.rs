//! What an event says in one line, and what its captured payload is.

use std::fmt::Write as _;

use monitor_common::{event::tcp_flags, http, icmp, tls, Class};

use super::event::{Event, HttpInfo, TlsInfo};

/// Fills the HTTP or TLS fields from the captured start of the payload.
pub fn describe_payload(event: &mut Event, payload: &[u8]) {
    if payload.is_empty() {
        return;
    }
    if let Some(req) = http::parse_request_line(payload) {
        event.http = Some(HttpInfo::from(&req));
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

impl From<&http::RequestLine<'_>> for HttpInfo {
    fn from(req: &http::RequestLine<'_>) -> Self {
        HttpInfo { method: req.method.to_owned(), target: req.target.to_owned(), host: req.host.map(str::to_owned) }
    }
}
