//! The demo's HTTP responder and its clients, so the dashboard's HTTP panel
//! (response times the TC egress program measures) has data: a small
//! HTTP/1.1 server on the receiving namespace's address, port 80, answering
//! after a delay that depends on the path, and real TCP connections to it
//! from a few of the demo's public source addresses.
//!
//! Network safety: each source address is added as a /32 to the sending
//! veth end inside the sending namespace, and the receiving namespace gets a
//! /32 route back to it through the veth peer. Neither namespace has a
//! default route, and the veth pair is their only link: the connections
//! stay between the two namespaces.

use std::{
    io::{self, Read as _, Write as _},
    net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream},
    os::fd::FromRawFd as _,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _};

use monitor_testkit::{enter, Link};

use crate::demo_sources::Rng;

pub(crate) struct Config {
    /// Namespace of the responder (the one the monitor watches).
    pub server_netns: String,
    pub listen: SocketAddrV4,
    /// Namespace and veth end the clients connect from.
    pub client_netns: String,
    pub client_iface: String,
    /// The client namespace's own address on the veth: the way back.
    pub via: Ipv4Addr,
    pub sources: Vec<Ipv4Addr>,
    pub paths: &'static [&'static str],
    pub hosts: &'static [&'static str],
    /// Requests per second, all clients together.
    pub rate: f64,
}

/// Requests answered and failed, for the generator's summary.
#[derive(Default)]
pub(crate) struct Counters {
    pub answered: AtomicU64,
    pub failed: AtomicU64,
}

const CLIENTS: usize = 3;
const TIMEOUT: Duration = Duration::from_secs(5);

/// Configures the addresses and routes, starts the responder and the
/// clients; they run until the process exits.
pub(crate) fn start(cfg: Config) -> anyhow::Result<Arc<Counters>> {
    if cfg.sources.is_empty() {
        bail!("no source addresses for the HTTP clients");
    }
    for src in &cfg.sources {
        Link::new(Some(&cfg.client_netns), &cfg.client_iface).add_addr(&format!("{src}/32"))?;
        // No device named: the server's veth end is the one on the way to `via`.
        monitor_testkit::cmd::run(
            "ip",
            &["-n", &cfg.server_netns, "route", "add", &format!("{src}/32"), "via", &cfg.via.to_string()],
        )?;
    }
    let listen = cfg.listen;
    let listener = enter::run_in(Some(&cfg.server_netns), move || {
        TcpListener::bind(listen).with_context(|| format!("HTTP responder on {listen}"))
    })?;
    std::thread::spawn(move || serve(&listener));

    let counters = Arc::new(Counters::default());
    let cfg = Arc::new(cfg);
    for n in 0..CLIENTS {
        let (cfg, counters) = (Arc::clone(&cfg), Arc::clone(&counters));
        let netns = cfg.client_netns.clone();
        enter::spawn_in(Some(&netns), move || {
            client(&cfg, &counters, n);
            Ok(())
        });
    }
    Ok(counters)
}

fn serve(listener: &TcpListener) {
    let mut seed = 0x4854_5450u64;
    for stream in listener.incoming().flatten() {
        seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        std::thread::spawn(move || {
            let _ = respond(stream, &mut Rng::new(seed));
        });
    }
}

/// Reads one request and answers it like a small web application would:
/// quick static files, slower API calls, 404s for what scanners probe.
fn respond(mut stream: TcpStream, rng: &mut Rng) -> io::Result<()> {
    stream.set_read_timeout(Some(TIMEOUT))?;
    let mut request = Vec::new();
    let mut buf = [0u8; 2048];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 8192 {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        request.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&request);
    let path = line.split_whitespace().nth(1).unwrap_or("/");
    let (delay_ms, status) = match path {
        "/wp-login.php" | "/.env" => (1 + rng.below(3), 404),
        "/login" => (20 + rng.below(40), 302),
        "/api/users?page=2" => (40 + rng.below(120), 200),
        "/api/v1/status" if rng.chance(0.05) => (200 + rng.below(300), 503),
        "/api/v1/status" => (5 + rng.below(10), 200),
        _ => (1 + rng.below(8), 200),
    };
    std::thread::sleep(Duration::from_millis(delay_ms as u64));
    let reason = match status {
        200 => "OK",
        302 => "Found",
        404 => "Not Found",
        _ => "Service Unavailable",
    };
    let body = format!("{status} {reason}\n");
    // One write, so the status line is in the first segment the monitor sees
    // (write! would send each piece as it is formatted).
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nServer: monitor-demo\r\nContent-Type: text/plain\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes())
}

fn client(cfg: &Config, counters: &Counters, n: usize) {
    let mut rng = Rng::new(0x636c_6965_6e74 + n as u64);
    let interval = Duration::from_secs_f64(CLIENTS as f64 / cfg.rate.max(0.1));
    let mut next = Instant::now();
    loop {
        let src = cfg.sources[rng.below(cfg.sources.len())];
        let request = format!(
            "{} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: Mozilla/5.0 (demo)\r\nAccept: */*\r\nConnection: close\r\n\r\n",
            if rng.chance(0.15) { "POST" } else { "GET" },
            cfg.paths[rng.below(cfg.paths.len())],
            cfg.hosts[rng.below(cfg.hosts.len())]
        );
        match fetch(src, cfg.listen, request.as_bytes()) {
            Ok(()) => counters.answered.fetch_add(1, Ordering::Relaxed),
            Err(_) => counters.failed.fetch_add(1, Ordering::Relaxed),
        };
        next += interval;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            next = now;
        }
    }
}

/// One request on a new connection from `src`, read to the end.
fn fetch(src: Ipv4Addr, dst: SocketAddrV4, request: &[u8]) -> io::Result<()> {
    let mut stream = connect_from(src, dst)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.write_all(request)?;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply)?;
    if !reply.starts_with(b"HTTP/1.1 ") {
        return Err(io::Error::other("not an HTTP response"));
    }
    Ok(())
}

/// A TCP connection from a chosen local address (std binds only after connect).
fn connect_from(src: Ipv4Addr, dst: SocketAddrV4) -> io::Result<TcpStream> {
    let sockaddr = |a: SocketAddrV4| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from(*a.ip()).to_be() },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: plain syscalls with valid arguments; the fd is owned by the
    // TcpStream right after it is created.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let stream = TcpStream::from_raw_fd(fd);
        let local = sockaddr(SocketAddrV4::new(src, 0));
        if libc::bind(fd, (&local as *const libc::sockaddr_in).cast(), len) != 0 {
            return Err(io::Error::last_os_error());
        }
        let remote = sockaddr(dst);
        if libc::connect(fd, (&remote as *const libc::sockaddr_in).cast(), len) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(stream)
    }
}
