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
    process::Command,
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _};
use monitor_testkit::{
    daemon::HEALTH_TIMEOUT,
    http, netns, ports,
    process::{terminate_pid, Log},
    Daemon, Netns, Process, Veth, VethEnd,
};

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
pub(crate) struct Options {
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
    pub(crate) fn check() -> anyhow::Result<Self> {
        Ok(Options {
            port: ports::free_tcp_port()?,
            syslog_port: ports::free_udp_port()?,
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

pub(crate) fn run(root: &Path, opts: &Options) -> anyhow::Result<()> {
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
    let mut demo = Demo { gen: None, daemon: None, net: DemoNet::create()? };

    let api = SocketAddr::from(([127, 0, 0, 1], opts.port));
    let syslog = format!("127.0.0.1:{}", opts.syslog_port);
    let started = Instant::now();
    let daemon = demo.daemon.insert(
        Daemon::builder(bin.join("monitor"))
            .port(opts.port)
            .syslog_udp(&syslog)
            .args(["--netns", RX_NS, "--iface", RX_IF])
            // History of its own (kept across demos), never the system's.
            .args(["--history-path", &logs.join("history.db").display().to_string()])
            .log(logs.join("daemon.log")) // the daemon logs to stdout
            .append_log()
            .own_process_group() // Ctrl-C reaches only us; we stop the children in order
            .spawn()
            .context("starting the monitor")?,
    );
    record_pids(&[daemon.pid()]);
    daemon.wait_healthy_unless(HEALTH_TIMEOUT, || STOP.load(Ordering::Relaxed))?;
    let daemon_pid = daemon.pid();

    let mac = demo.net.veth.a.mac().context("the demo veth's MAC address")?;
    let mut gen = Command::new(bin.join("monitor-bench"));
    gen.args(["demo", "--netns", TX_NS, "--iface", TX_IF, "--dst-mac", &mac, "--dst4", RX_V4, "--dst6", RX_V6])
        .args(["--syslog", &syslog, "--rate", &opts.rate.to_string()])
        .args(["--http-netns", RX_NS, "--http-via", TX_V4])
        .process_group(0);
    let gen = demo.gen.insert(
        Process::spawn("monitor-bench demo", &mut gen, Log::Append(logs.join("traffic.log")))
            .context("starting the traffic generator")?,
    );
    record_pids(&[daemon_pid, gen.pid()]);

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
                terminate_pid(pid, STOP_GRACE);
            } else if name == "monitor" || name == "monitor-bench" {
                println!("stopping {name} (pid {pid}) left by an earlier demo");
                terminate_pid(pid, STOP_GRACE);
            }
        }
        let _ = std::fs::remove_file(PID_FILE);
    }
    for ns in [TX_NS, RX_NS] {
        if netns::exists(ns) {
            println!("removing namespace {ns} left by an earlier demo");
            netns::delete(ns);
        }
    }
}

/// How long a demo process gets to exit after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Writes the pid file: this xtask first, then its children.
fn record_pids(children: &[u32]) {
    let pids: String =
        std::iter::once(std::process::id()).chain(children.iter().copied()).map(|pid| format!("{pid}\n")).collect();
    let _ = std::fs::write(PID_FILE, pids);
}

/// The demo's two namespaces and the pair between them (the test kit's):
/// removed when dropped, on any exit path.
struct DemoNet {
    // Drop order: the sender's namespace, the receiver's (each takes its end
    // of the pair along), then the pair, found gone.
    _tx: Netns,
    _rx: Netns,
    veth: Veth,
}

impl DemoNet {
    fn create() -> anyhow::Result<DemoNet> {
        let rx = Netns::create(RX_NS)?;
        let tx = Netns::create(TX_NS)?;
        // Made inside the namespaces: neither end ever exists in the root namespace.
        let veth = Veth::create(VethEnd::inside(&rx, RX_IF), VethEnd::inside(&tx, TX_IF))?;
        for (ns, end, v4, v6) in [(&rx, &veth.a, RX_V4, RX_V6), (&tx, &veth.b, TX_V4, TX_V6)] {
            end.add_addr(&format!("{v4}/24"))?;
            end.add_addr(&format!("{v6}/64"))?;
            end.up()?;
            // No default route may exist: a reply to a public address must die here.
            ns.ensure_no_default_route()?;
        }
        Ok(DemoNet { _tx: tx, _rx: rx, veth })
    }
}

/// What the demo runs; dropping it undoes everything, on any exit path.
struct Demo {
    // Drop order: the generator first, so the daemon sees no traffic while
    // it stops; then the daemon; then the namespaces.
    gen: Option<Process>,
    daemon: Option<Daemon>,
    net: DemoNet,
}

impl Demo {
    fn exited(&mut self) -> Option<&'static str> {
        if self.gen.as_mut().is_some_and(|g| g.exited().is_some()) {
            return Some("monitor-bench demo");
        }
        if self.daemon.as_mut().is_some_and(|d| d.exited().is_some()) {
            return Some("monitor");
        }
        None
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        // The kit's guards: SIGTERM, then SIGKILL after 10 s.
        drop(self.gen.take());
        drop(self.daemon.take());
        let _ = std::fs::remove_file(PID_FILE);
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
            let stats = http::get_json(&format!("http://{api}/api/stats")).unwrap_or_default();
            if sys::num(&stats, "events/accepted") > 0.0 && sys::num(&stats, "kernel/classes/icmp/packets") > 0.0 {
                self.traffic = Some(started.elapsed());
                println!(
                    "  traffic on the dashboard {:.1} s after the daemon started",
                    started.elapsed().as_secs_f64()
                );
            }
        }
        if self.timed_http.is_none() {
            let http = http::get_json(&format!("http://{api}/api/http")).unwrap_or_default();
            if sys::num(&http, "since_start/responses") > 0.0 {
                self.timed_http = Some(started.elapsed());
                println!("  timed HTTP responses {:.1} s after the daemon started", started.elapsed().as_secs_f64());
            }
        }
    }
}
