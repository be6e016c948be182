//! The names this dashboard answers to. A request whose `Host` is not one of
//! them is refused before any handler or upgrade (DNS rebinding: a page on
//! an attacker's name that resolves to 127.0.0.1 sends its own name), and
//! the WebSocket's `Origin` must name one of them too (or be listed with
//! --allow-origin).
//!
//! Allowed: `localhost` and `*.localhost`, loopback addresses, the --listen
//! address, every address of a local interface when listening on 0.0.0.0 or
//! [::], and the names and addresses given with --public-name. The port is
//! not compared (behind a proxy it is the proxy's).

use std::{
    net::{IpAddr, SocketAddr},
    sync::{
        atomic::{AtomicU64, Ordering::Relaxed},
        Arc,
    },
    time::{Duration, Instant},
};

use axum::{
    extract::{Request, State},
    http::{header, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::ApiError;
use super::ServerState;
use crate::model::sample;

/// How often the local interface addresses are read again (only when a
/// Host is not found among the known ones).
const REFRESH_LOCAL: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct HostAllowlist {
    names: Vec<String>,
    addrs: Vec<IpAddr>,
    /// Listening on an unspecified address: local interface addresses count.
    local_addrs: Option<LocalAddrs>,
    /// Exact origins from --allow-origin (lower case, no trailing slash).
    origins: Vec<String>,
}

impl HostAllowlist {
    pub fn new(listen: SocketAddr, public_names: &[String], allow_origins: &[String]) -> Result<Self, String> {
        let mut names = Vec::new();
        let mut addrs = Vec::new();
        for raw in public_names {
            let name = raw.trim().trim_end_matches('.').to_ascii_lowercase();
            let bare = name.trim_start_matches('[').trim_end_matches(']');
            if let Ok(ip) = bare.parse::<IpAddr>() {
                addrs.push(ip);
            } else if valid_name(&name) {
                names.push(name);
            } else {
                return Err(format!(
                    "--public-name {raw:?} is not a host name or IP address (give the name alone, without scheme or port)"
                ));
            }
        }
        let local_addrs = if listen.ip().is_unspecified() {
            Some(LocalAddrs::new())
        } else {
            addrs.push(listen.ip());
            None
        };
        let origins = allow_origins.iter().map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase()).collect();
        Ok(HostAllowlist { names, addrs, local_addrs, origins })
    }

    /// `authority` as in a Host header: `name`, `name:port`, `1.2.3.4:port`, `[::1]:port`.
    pub fn allows_host(&self, authority: &str) -> bool {
        host_of(authority).is_some_and(|host| self.allows(&host))
    }

    /// A browser's Origin: `scheme://host[:port]`. Listed with
    /// --allow-origin, or an http(s) origin on an allowed host.
    pub fn allows_origin(&self, origin: &str) -> bool {
        let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
        if self.origins.contains(&origin) {
            return true;
        }
        let Some(authority) = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")) else {
            return false;
        };
        self.allows_host(authority)
    }

    fn allows(&self, host: &str) -> bool {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return ip.to_canonical().is_loopback() || self.addrs.contains(&ip) || self.is_local(ip);
        }
        host == "localhost" || host.ends_with(".localhost") || self.names.iter().any(|n| n == host)
    }

    fn is_local(&self, ip: IpAddr) -> bool {
        self.local_addrs.as_ref().is_some_and(|local| local.contains(ip.to_canonical()))
    }
}

/// The host's own addresses (for a dashboard listening on all of them),
/// read again when an unknown address is asked about and the last read is
/// older than REFRESH_LOCAL. Readers never wait: they load the current list
/// (a new one replaces it whole).
struct LocalAddrs {
    addrs: arc_swap::ArcSwap<Vec<IpAddr>>,
    /// When `addrs` was read, in ms since `epoch`.
    read_ms: AtomicU64,
    epoch: Instant,
}

impl std::fmt::Debug for LocalAddrs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.addrs.load().iter()).finish()
    }
}

impl LocalAddrs {
    fn new() -> Self {
        LocalAddrs {
            addrs: arc_swap::ArcSwap::from_pointee(local_addresses()),
            read_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    fn contains(&self, ip: IpAddr) -> bool {
        if self.addrs.load().contains(&ip) {
            return true;
        }
        let now = self.epoch.elapsed().as_millis() as u64;
        let read = self.read_ms.load(Relaxed);
        // One reader refreshes; the others go on with the current list.
        if now.saturating_sub(read) < REFRESH_LOCAL.as_millis() as u64
            || self.read_ms.compare_exchange(read, now, Relaxed, Relaxed).is_err()
        {
            return false;
        }
        self.addrs.store(Arc::new(local_addresses()));
        self.addrs.load().contains(&ip)
    }
}

fn local_addresses() -> Vec<IpAddr> {
    crate::sources::syslog::local_interface_nets().iter().map(|net| net.addr()).collect()
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// The host of an authority, lower case, without port, brackets or a
/// trailing dot; None when it is malformed.
fn host_of(authority: &str) -> Option<String> {
    let authority = authority.trim();
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        v6.parse::<std::net::Ipv6Addr>().ok()?;
        (v6, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if port.is_some_and(|p| p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    (host.parse::<IpAddr>().is_ok() || valid_name(&host)).then_some(host)
}

/// Middleware: refuses a request whose Host is not an allowed name.
pub async fn require(State(state): State<Arc<ServerState>>, request: Request, next: Next) -> Response {
    let authority = match request.uri().authority() {
        Some(a) => Some(a.as_str().to_owned()),
        None => request.headers().get(header::HOST).map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned()),
    };
    let Some(authority) = authority else {
        return ApiError::bad_request("missing Host header").into_response();
    };
    if !state.hosts.allows_host(&authority) {
        return ApiError(
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "Host {:?} is not a name of this dashboard; an operator can add it with --public-name",
                sample(&authority, 64)
            ),
        )
        .into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(listen: &str, names: &[&str]) -> HostAllowlist {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        HostAllowlist::new(listen.parse().expect("addr"), &names, &["https://Proxy.example:8443/".into()])
            .expect("valid")
    }

    #[test]
    fn loopback_names_and_addresses_by_default() {
        let l = list("127.0.0.1:8080", &[]);
        for ok in [
            "localhost",
            "LOCALHOST:8080",
            "localhost.",
            "app.localhost:1",
            "127.0.0.1",
            "127.0.0.2:80",
            "[::1]:8080",
            "[::ffff:127.0.0.1]",
        ] {
            assert!(l.allows_host(ok), "{ok}");
        }
        for bad in [
            "rebind.evil.example.com:8080",
            "evil.example",
            "10.0.0.1",
            "localhost.evil.example",
            "",
            "[::1",
            "127.0.0.1:80:80",
            "a b",
            "localhost:http",
            "[zz]:80",
        ] {
            assert!(!l.allows_host(bad), "{bad}");
        }
    }

    #[test]
    fn public_names_and_the_listen_address() {
        let l = list("198.51.100.7:8080", &["Monitor.Example.com", "203.0.113.9", "[2001:db8::1]"]);
        assert!(l.allows_host("monitor.example.com"));
        assert!(l.allows_host("monitor.example.com.:443"));
        assert!(l.allows_host("198.51.100.7:8080"));
        assert!(l.allows_host("203.0.113.9"));
        assert!(l.allows_host("[2001:db8::1]:8080"));
        assert!(!l.allows_host("other.example.com"));
        assert!(!l.allows_host("198.51.100.8"));
        let names = ["https://x.example".to_string()];
        assert!(HostAllowlist::new("127.0.0.1:1".parse().expect("addr"), &names, &[]).is_err());
    }

    #[test]
    fn origins_use_the_same_list() {
        let l = list("127.0.0.1:8080", &["monitor.example.com"]);
        assert!(l.allows_origin("http://127.0.0.1:8080"));
        assert!(l.allows_origin("http://localhost:3000"));
        assert!(l.allows_origin("https://monitor.example.com"));
        assert!(l.allows_origin("https://proxy.example:8443"), "--allow-origin");
        assert!(!l.allows_origin("https://proxy.example"), "--allow-origin is exact");
        assert!(!l.allows_origin("http://rebind.evil.example.com:8080"));
        assert!(!l.allows_origin("null"));
        assert!(!l.allows_origin("file://localhost"));
        assert!(!l.allows_origin("http://203.0.113.9"));
    }
}
