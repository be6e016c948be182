//! `cargo xtask demo`: the whole dashboard alive in one command. Creates two
//! network namespaces joined by a veth pair, runs the daemon with XDP on the
//! receiving end (--netns) and the dashboard on 127.0.0.1, and runs
//! `monitor-bench demo` to send a traffic mix from a few hundred located
//! public addresses plus syslog lines, and real HTTP requests to a small
//! responder in the receiving namespace (timed by the TC egress program).
//! Ctrl-C (or SIGTERM) stops everything and removes the namespaces; a new run
//! first cleans up after a crashed one. `--check` stops as soon as the API
//! shows traffic and timed HTTP responses (the test suite's smoke run).
//!
//! Network safety: the public source addresses exist only as bytes in
//! frames sent on the sender's veth end inside the demo namespace, and (for
//! the HTTP clients) as /32 addresses on that veth end, with /32 routes back
//! to them in the receiving namespace. Neither namespace has a default route
//! and the veth pair is their only link, so nothing leaves the pair; nothing
//! touches ens3 or any interface the demo did not create. The syslog lines go
//! to the daemon on 127.0.0.1.

use std::{
    net::SocketAddr,
    os::unix::process::CommandExt as _,
    path::Path,
    process::{Child, Command},
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _};

use crate::bench::sys;

const RX_NS: &str = "mondemo-rx";
const TX_NS: &str = "mondemo-tx";
const RX_IF: &str = "mdrx";
const TX_IF: &str = "mdtx";
const RX_V4: &str = "198.18.200.1";
const TX_V4: &str = "198.18.200.2";
const RX_V6: &str = "fd6d:6f6e:64::1";
const TX_V6: &str = "fd6d:6f6e:64::2";
/// Pids of the demo (this xtask first, then its children), so the next run
/// can stop a demo still running (it then cleans up itself) or what a
/// crashed one left.
const PID_FILE: &str = "/run/monitor-demo.pids";
/// How long `--check` waits for traffic and timed HTTP responses.
const CHECK_LIMIT: Duration = Duration::from_secs(60);

#[derive(clap::Args)]
pub struct Options {
    /// Dashboard port on 127.0.0.1.
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Syslog UDP port on 127.0.0.1.
    #[arg(long, default_value_t = 5514)]
    syslog_port: u16,
    /// Frames per second of the traffic mix (bursts come on top).
    #[arg(long, default_value_t = 200)]
    rate: u64,
    /// Build and run the release binaries (slower first build).
    #[arg(long)]
    release: bool,
    /// Stop after this many seconds (0 = until Ctrl-C).
    #[arg(long, default_value_t = 0)]
    seconds: u64,
    /// Smoke test: stop with success as soon as /api/stats shows traffic and
    /// /api/http timed responses; fail if that takes over 60 s.
    #[arg(long)]
    check: bool,
}

impl Options {
    /// The run `cargo xtask test` makes, on free ports (a demo may be open).
    pub fn check() -> anyhow::Result<Self> {
        Ok(Options {
            port: sys::free_tcp_port()?,
            syslog_port: sys::free_udp_port()?,
            rate: 200,
            release: false,
            seconds: 0,
            check: true,
        })
    }
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed); // async-signal-safe: an atomic store only
}

pub fn run(root: &Path, opts: &Options) -> anyhow::Result<()> {
    if !super::is_root() {
        bail!("the demo creates network namespaces and loads XDP: run as root");
    }
    let mut build = vec!["build", "-p", "monitor", "-p", "monitor-bench"];
    if opts.release {
        build.push("--release");
    }
    super::cargo(root, &build)?;
    let bin = root.join(if opts.release { "target/release" } else { "target/debug" });
    // SAFETY: installing a handler that only stores to an atomic.
    unsafe {
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::signal(sig, on_signal as *const () as libc::sighandler_t);
        }
    }
    clean_leftovers();
    let logs = root.join("target/demo");
    std::fs::create_dir_all(&logs)?;
    let mut demo = Demo { children: Vec::new() };
    demo.create_network()?;

    let api = SocketAddr::from(([127, 0, 0, 1], opts.port));
    let syslog = format!("127.0.0.1:{}", opts.syslog_port);
    let started = Instant::now();
    let daemon = Command::new(bin.join("monitor"))
        .args(["--netns", RX_NS, "--iface", RX_IF, "--listen", &api.to_string(), "--syslog-udp", &syslog])
        .stdout(log_file(&logs, "daemon.log")?) // the daemon logs to stdout
        .stderr(log_file(&logs, "daemon.log")?)
        .process_group(0) // Ctrl-C reaches only us; we stop the children in order
        .spawn()
        .context("starting the monitor")?;
    demo.adopt("monitor", daemon);
    demo.wait_healthy(api, &logs)?;

    let mac = rx_mac()?;
    let mut gen = Command::new(bin.join("monitor-bench"));
    gen.args(["demo", "--netns", TX_NS, "--iface", TX_IF, "--dst-mac", &mac, "--dst4", RX_V4, "--dst6", RX_V6])
        .args(["--syslog", &syslog, "--rate", &opts.rate.to_string()])
        .args(["--http-netns", RX_NS, "--http-via", TX_V4])
        .stdout(log_file(&logs, "traffic.log")?)
        .stderr(log_file(&logs, "traffic.log")?)
        .process_group(0);
    demo.adopt("monitor-bench demo", gen.spawn().context("starting the traffic generator")?);

    println!();
    println!("  Monitor demo: open http://{api}/");
    println!("  XDP on {RX_IF} in namespace {RX_NS}; traffic from {TX_NS}; syslog lines to {syslog}");
    println!("  logs: {}", logs.display());
    println!("  Ctrl-C stops the demo and removes its namespaces.");
    println!();
    let start = Instant::now();
    let mut seen = Seen::default();
    let mut last_poll = Instant::now() - Duration::from_secs(1);
    let result = loop {
        if STOP.load(Ordering::Relaxed) || (opts.seconds > 0 && start.elapsed().as_secs() >= opts.seconds) {
            break Ok(());
        }
        if let Some(name) = demo.exited() {
            break Err(anyhow::anyhow!("{name} exited; see the logs in {}", logs.display()));
        }
        if !seen.all() && last_poll.elapsed() >= Duration::from_millis(500) {
            last_poll = Instant::now();
            seen.poll(api, started);
        }
        if opts.check && seen.all() {
            break Ok(());
        }
        if opts.check && start.elapsed() >= CHECK_LIMIT {
            break Err(anyhow::anyhow!(
                "no {} on http://{api}/ after {} s; see the logs in {}",
                if seen.traffic.is_none() { "traffic" } else { "timed HTTP responses" },
                CHECK_LIMIT.as_secs(),
                logs.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    println!("stopping the demo…");
    drop(demo);
    result
}

fn log_file(dir: &Path, name: &str) -> anyhow::Result<std::fs::File> {
    let path = dir.join(name);
    std::fs::OpenOptions::new().create(true).append(true).open(&path).with_context(|| format!("{}", path.display()))
}

fn ip(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("ip").args(args).output().context("running ip (iproute2)")?;
    if !out.status.success() {
        bail!("ip {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn namespace_exists(name: &str) -> bool {
    ip(&["netns", "list"]).is_ok_and(|l| l.lines().any(|line| line.split_whitespace().next() == Some(name)))
}

/// Stops processes and removes namespaces a crashed run left behind.
fn clean_leftovers() {
    if let Ok(text) = std::fs::read_to_string(PID_FILE) {
        for pid in text.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            // Only our own binaries: the pid may have been reused since.
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
            // A rebuilt binary reads as "monitor (deleted)".
            let name = exe.file_name().and_then(|n| n.to_str()).unwrap_or("").trim_end_matches(" (deleted)");
            if name == "xtask" && pid != std::process::id() as i32 {
                println!("stopping the demo running as pid {pid}");
                stop_pid(pid, None);
            } else if name == "monitor" || name == "monitor-bench" {
                println!("stopping {name} (pid {pid}) left by an earlier demo");
                stop_pid(pid, None);
            }
        }
        let _ = std::fs::remove_file(PID_FILE);
    }
    for ns in [TX_NS, RX_NS] {
        if namespace_exists(ns) {
            println!("removing namespace {ns} left by an earlier demo");
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

/// SIGTERM, then SIGKILL after 10 s.
fn stop_pid(pid: i32, child: Option<&mut Child>) {
    // SAFETY: signalling a pid we started (or checked in /proc).
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    let gone = |child: &mut Option<&mut Child>| match child {
        Some(c) => c.try_wait().ok().flatten().is_some(),
        None => !Path::new(&format!("/proc/{pid}")).exists(),
    };
    let mut child = child;
    while Instant::now() < deadline {
        if gone(&mut child) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    if let Some(c) = child {
        let _ = c.wait();
    }
}

fn rx_mac() -> anyhow::Result<String> {
    let out = ip(&["-n", RX_NS, "-o", "link", "show", "dev", RX_IF])?;
    out.split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .map(str::to_owned)
        .context("no MAC address on the demo veth")
}

/// What the demo created; dropping it undoes everything, on any exit path.
struct Demo {
    children: Vec<(&'static str, Child)>,
}

impl Demo {
    fn create_network(&mut self) -> anyhow::Result<()> {
        ip(&["netns", "add", RX_NS])?;
        ip(&["netns", "add", TX_NS])?;
        // Made inside the namespaces: neither end ever exists in the root namespace.
        ip(&["-n", RX_NS, "link", "add", RX_IF, "type", "veth", "peer", "name", TX_IF, "netns", TX_NS])?;
        for (ns, dev, v4, v6) in [(RX_NS, RX_IF, RX_V4, RX_V6), (TX_NS, TX_IF, TX_V4, TX_V6)] {
            ip(&["-n", ns, "addr", "add", &format!("{v4}/24"), "dev", dev])?;
            ip(&["-n", ns, "-6", "addr", "add", &format!("{v6}/64"), "dev", dev, "nodad"])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
            // No default route may exist: a reply to a public address must die here.
            if !ip(&["-n", ns, "route", "show", "default"])?.trim().is_empty() {
                bail!("namespace {ns} has a default route; refusing to send from public addresses");
            }
        }
        Ok(())
    }

    fn adopt(&mut self, name: &'static str, child: Child) {
        self.children.push((name, child));
        let pids: String = std::iter::once(std::process::id())
            .chain(self.children.iter().map(|(_, c)| c.id()))
            .map(|pid| format!("{pid}\n"))
            .collect();
        let _ = std::fs::write(PID_FILE, pids);
    }

    fn exited(&mut self) -> Option<&'static str> {
        self.children.iter_mut().find_map(|(n, c)| c.try_wait().ok().flatten().map(|_| *n))
    }

    fn wait_healthy(&mut self, api: SocketAddr, logs: &Path) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline && !STOP.load(Ordering::Relaxed) {
            if let Some(name) = self.exited() {
                bail!("{name} exited at start-up; see {}", logs.join("daemon.log").display());
            }
            if sys::http_ok(api, "/healthz") {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        bail!("the monitor did not answer on http://{api}/healthz; see {}", logs.join("daemon.log").display())
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        // The generator first, so the daemon sees no traffic while it stops.
        while let Some((_, mut child)) = self.children.pop() {
            stop_pid(child.id() as i32, Some(&mut child));
        }
        let _ = std::fs::remove_file(PID_FILE);
        for ns in [TX_NS, RX_NS] {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

/// When the dashboard first showed what the demo sends, counted from the
/// daemon's start (printed, so the README's figure can be re-measured).
#[derive(Default)]
struct Seen {
    traffic: Option<Duration>,
    timed_http: Option<Duration>,
}

impl Seen {
    fn all(&self) -> bool {
        self.traffic.is_some() && self.timed_http.is_some()
    }

    fn poll(&mut self, api: SocketAddr, started: Instant) {
        if self.traffic.is_none() {
            let stats = sys::get_json(api, "/api/stats").unwrap_or_default();
            if sys::num(&stats, "events/accepted") > 0.0 && sys::num(&stats, "kernel/classes/icmp/packets") > 0.0 {
                self.traffic = Some(started.elapsed());
                println!(
                    "  traffic on the dashboard {:.1} s after the daemon started",
                    started.elapsed().as_secs_f64()
                );
            }
        }
        if self.timed_http.is_none() {
            let http = sys::get_json(api, "/api/http").unwrap_or_default();
            if sys::num(&http, "since_start/responses") > 0.0 {
                self.timed_http = Some(started.elapsed());
                println!("  timed HTTP responses {:.1} s after the daemon started", started.elapsed().as_secs_f64());
            }
        }
    }
}
