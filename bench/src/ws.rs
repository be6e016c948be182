//! WebSocket fan-out clients of the daemon's `/ws`, one thread each.
//!
//! * probe clients parse every `update` frame and measure each event's
//!   delivery latency from the send stamp in its ICMP id/seq;
//! * passive clients read and de-frame everything but parse nothing (so a
//!   thousand of them do not need a thousand JSON parsers' worth of CPU);
//! * slow clients complete the handshake and then never read.
//!
//! Without `/ws` (a daemon that predates it), `--poll` measures the same
//! latency by polling `/api/events` every 50 ms instead.
//!
//! Prints `ready {...}` once every client is connected, then one JSON line
//! with the results when the run ends (after `--seconds`, or when stdin
//! closes, with `--stdin-stop`).

use std::{
    io::{self, Read as _, Write as _},
    net::{SocketAddr, TcpStream},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _};
use serde_json::{json, Value};

use crate::frames::stamp_age_us;

pub(crate) struct Args {
    pub addr: SocketAddr,
    pub path: String,
    pub clients: usize,
    pub probes: usize,
    pub slow: usize,
    pub duration: Duration,
    pub poll: bool,
    pub stdin_stop: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Probe,
    Passive,
    Slow,
}

#[derive(Default)]
struct Shared {
    latencies_us: Mutex<Vec<u32>>,
    probe_events: AtomicU64,
    frames: AtomicU64,
    bytes: AtomicU64,
    skipped: AtomicU64,
    /// Clients (not slow ones) the server closed or that failed mid-run.
    disconnected: AtomicU64,
    slow_disconnected: AtomicU64,
    errors: Mutex<Vec<String>>,
}

/// Is this one of the bench's own sources?
fn bench_source(src: &str) -> bool {
    src.starts_with("198.18.") || src.starts_with("198.19.") || src.starts_with("fd6d:6f6e:6265:6e63")
}

fn record_events(events: &[Value], shared: &Shared, seen_max_id: Option<&mut u64>) {
    let mut lat = Vec::with_capacity(events.len());
    let mut max_id = 0u64;
    let floor = seen_max_id.as_ref().map_or(0, |m| **m);
    for e in events {
        let id = e["id"].as_u64().unwrap_or(0);
        if id <= floor && floor != 0 {
            continue;
        }
        max_id = max_id.max(id);
        if !e["src"].as_str().is_some_and(bench_source) {
            continue;
        }
        let icmp = &e["icmp"];
        let (Some(i), Some(s)) = (icmp["id"].as_u64(), icmp["seq"].as_u64()) else { continue };
        if let Some(age) = stamp_age_us(i as u16, s as u16) {
            lat.push(age);
        }
    }
    if let Some(m) = seen_max_id {
        *m = (*m).max(max_id);
    }
    shared.probe_events.fetch_add(lat.len() as u64, Relaxed);
    shared.latencies_us.lock().unwrap_or_else(|e| e.into_inner()).extend(lat);
}

fn handshake(addr: SocketAddr, path: &str) -> anyhow::Result<(TcpStream, Vec<u8>)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    s.set_nodelay(true)?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            bail!("connection closed during the handshake");
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let status = head.lines().next().unwrap_or_default().to_owned();
            if !status.contains(" 101") {
                bail!("no WebSocket upgrade: {status}");
            }
            return Ok((s, buf[end + 4..].to_vec()));
        }
        if buf.len() > 65_536 {
            bail!("handshake response too long");
        }
    }
}

/// Checks that the endpoint upgrades (used to pick WebSocket or polling).
pub(crate) fn probe_ws(addr: SocketAddr, path: &str) -> bool {
    handshake(addr, path).is_ok()
}

/// Reads frames until `stop`; returns whether the server closed the connection.
fn client(mut s: TcpStream, mut buf: Vec<u8>, role: Role, stop: &AtomicBool, shared: &Shared) -> io::Result<bool> {
    s.set_read_timeout(Some(Duration::from_millis(200)))?;
    let mut message: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        // Parse every complete frame in the buffer.
        let mut consumed = 0;
        loop {
            let b = &buf[consumed..];
            if b.len() < 2 {
                break;
            }
            let (fin, opcode) = (b[0] & 0x80 != 0, b[0] & 0x0f);
            let masked = b[1] & 0x80 != 0;
            let (len, mut hdr) = match b[1] & 0x7f {
                126 if b.len() >= 4 => (u64::from(u16::from_be_bytes([b[2], b[3]])), 4),
                127 if b.len() >= 10 => (u64::from_be_bytes(b[2..10].try_into().unwrap_or_default()), 10),
                126 | 127 => break,
                n => (u64::from(n), 2),
            };
            if masked {
                hdr += 4;
            }
            let total = hdr + len as usize;
            if b.len() < total {
                break;
            }
            let payload = &b[hdr..total];
            shared.frames.fetch_add(1, Relaxed);
            shared.bytes.fetch_add(total as u64, Relaxed);
            match opcode {
                0x8 => return Ok(true),
                0x9 => {
                    // Pong with the same (short) payload, masked as clients must.
                    let mut pong = vec![0x8a, 0x80 | payload.len().min(125) as u8, 0, 0, 0, 0];
                    pong.extend_from_slice(&payload[..payload.len().min(125)]);
                    s.write_all(&pong)?;
                }
                0x0..=0x2 if role == Role::Probe => {
                    message.extend_from_slice(payload);
                    if fin {
                        if let Ok(v) = serde_json::from_slice::<Value>(&message) {
                            if v["type"] == "update" {
                                shared.skipped.fetch_add(v["skipped"].as_u64().unwrap_or(0), Relaxed);
                                if let Some(events) = v["events"].as_array() {
                                    record_events(events, shared, None);
                                }
                            }
                        }
                        message.clear();
                    }
                }
                _ => {}
            }
            consumed += total;
        }
        buf.drain(..consumed);
        if stop.load(Relaxed) {
            return Ok(false);
        }
        match s.read(&mut chunk) {
            Ok(0) => return Ok(true),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
            Err(e) => return Err(e),
        }
    }
}

/// After the run: did the server give up on a client that never read?
fn slow_was_closed(mut s: TcpStream) -> bool {
    if s.set_nonblocking(true).is_err() {
        return false;
    }
    let mut chunk = vec![0u8; 1 << 20];
    let mut drained = 0usize;
    loop {
        match s.read(&mut chunk) {
            Ok(0) => return true,
            Ok(n) => drained += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
        if drained > 256 << 20 {
            return false;
        }
    }
}

fn http_get(addr: SocketAddr, path: &str) -> anyhow::Result<Value> {
    let agent =
        ureq::AgentBuilder::new().timeout_connect(Duration::from_secs(5)).timeout_read(Duration::from_secs(10)).build();
    Ok(agent.get(&format!("http://{addr}{path}")).call().with_context(|| format!("GET {path}"))?.into_json()?)
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

pub(crate) fn run(args: &Args) -> anyhow::Result<()> {
    let shared = Arc::new(Shared::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    let mut slow_streams = Vec::new();
    let mut connected = 0usize;
    let mut failed = 0usize;
    let start;
    if args.poll {
        let (shared2, stop2, addr) = (Arc::clone(&shared), Arc::clone(&stop), args.addr);
        println!("ready {}", json!({"mode": "poll"}));
        start = Instant::now();
        handles.push(std::thread::spawn(move || {
            let mut max_id = 0u64;
            // The events already there before the run are not measured.
            if let Ok(v) = http_get(addr, "/api/events?limit=2000") {
                let events = v["events"].as_array().cloned().unwrap_or_default();
                max_id = events.iter().filter_map(|e| e["id"].as_u64()).max().unwrap_or(0);
            }
            while !stop2.load(Relaxed) {
                match http_get(addr, "/api/events?limit=2000") {
                    Ok(v) => {
                        let events = v["events"].as_array().cloned().unwrap_or_default();
                        record_events(&events, &shared2, Some(&mut max_id));
                    }
                    Err(e) => shared2.errors.lock().unwrap_or_else(|e| e.into_inner()).push(e.to_string()),
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }));
        connected = 1;
    } else {
        for i in 0..args.clients {
            let role = if i < args.probes {
                Role::Probe
            } else if i < args.probes + args.slow {
                Role::Slow
            } else {
                Role::Passive
            };
            match handshake(args.addr, &args.path) {
                Ok((s, leftover)) => {
                    connected += 1;
                    if role == Role::Slow {
                        slow_streams.push(s);
                        continue;
                    }
                    let (shared, stop) = (Arc::clone(&shared), Arc::clone(&stop));
                    let h = std::thread::Builder::new().stack_size(256 * 1024).spawn(move || {
                        match client(s, leftover, role, &stop, &shared) {
                            Ok(true) => {
                                shared.disconnected.fetch_add(1, Relaxed);
                            }
                            Ok(false) => {}
                            Err(e) => {
                                shared.disconnected.fetch_add(1, Relaxed);
                                shared.errors.lock().unwrap_or_else(|e| e.into_inner()).push(e.to_string());
                            }
                        }
                    })?;
                    handles.push(h);
                }
                Err(e) => {
                    failed += 1;
                    shared.errors.lock().unwrap_or_else(|e| e.into_inner()).push(e.to_string());
                }
            }
        }
        println!("ready {}", json!({"mode": "ws", "connected": connected, "failed": failed}));
        start = Instant::now();
    }
    io::stdout().flush()?;
    // The driver closes our stdin to end the run early.
    let eof = Arc::new(AtomicBool::new(false));
    if args.stdin_stop {
        let eof = Arc::clone(&eof);
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = io::stdin().read_to_end(&mut sink);
            eof.store(true, Relaxed);
        });
    }
    while start.elapsed() < args.duration && !eof.load(Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Relaxed);
    for h in handles {
        let _ = h.join();
    }
    for s in slow_streams {
        if slow_was_closed(s) {
            shared.slow_disconnected.fetch_add(1, Relaxed);
        }
    }
    let mut lat = std::mem::take(&mut *shared.latencies_us.lock().unwrap_or_else(|e| e.into_inner()));
    lat.sort_unstable();
    let errors = shared.errors.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let passive = args.clients.saturating_sub(args.probes + args.slow).max(1) as f64;
    println!(
        "{}",
        json!({
            "mode": if args.poll { "poll" } else { "ws" },
            "clients": args.clients, "connected": connected, "failed": failed,
            "probes": args.probes, "slow": args.slow,
            "latency_ms": {"n": lat.len(), "p50": percentile(&lat, 0.5), "p90": percentile(&lat, 0.9),
                           "p99": percentile(&lat, 0.99), "max": percentile(&lat, 1.0)},
            "probe_events": shared.probe_events.load(Relaxed),
            "frames": shared.frames.load(Relaxed),
            "bytes_per_client": shared.bytes.load(Relaxed) as f64 / (passive + args.probes as f64),
            "skipped": shared.skipped.load(Relaxed),
            "disconnected": shared.disconnected.load(Relaxed),
            "slow_disconnected": shared.slow_disconnected.load(Relaxed),
            "errors": errors.iter().take(5).collect::<Vec<_>>(),
            "seconds": start.elapsed().as_secs_f64(),
        })
    );
    Ok(())
}
