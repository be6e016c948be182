//! What the pipeline sections run on: the bench's network layouts (built
//! from the test kit's namespaces and veth pairs, which it creates and
//! removes), the daemon (the kit's), rsyslogd, the generator.
//!
//! Network safety: every interface touched here is one this module created
//! (names `mb<tag>..`, namespaces `monbench-<tag>..`); traffic is only ever
//! sent by the generator inside a bench namespace on its own veth end. The
//! root-side end of the XDP pair has no address and IPv6 off, and frames on
//! it carry a destination MAC that is not its own, so the root stack drops
//! them (PACKET_OTHERHOST) right after XDP has seen them: nothing is
//! answered or routed. The LOG pair lives entirely in two namespaces with
//! no default route. Addresses are 198.18.0.0/15 (RFC 2544) and a ULA prefix.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::{bail, Context as _};
use monitor_testkit::{netns, Netns, Veth, VethEnd};
use serde_json::Value;

use super::{
    sys::{self, Proc},
    Ctx,
};

pub(super) const GEN_MAC: &str = "02:6d:62:00:00:01";
pub(super) const HOST_MAC: &str = "02:6d:62:00:01:02";
pub(super) const RECV_MAC: &str = "02:6d:62:00:02:02";
/// Destination MAC of frames on the XDP pair: nobody's, so the root stack
/// drops them as PACKET_OTHERHOST after XDP.
pub(super) const OTHER_MAC: &str = "02:6d:62:00:00:ff";
pub(super) const RECV_V4: &str = "198.19.0.1";
pub(super) const SRC_V4: &str = "198.18.0.10";
pub(super) const SRC_V6: &str = "fd6d:6f6e:6265:6e63::1:0";
pub(super) const DST_V6: &str = "fd6d:6f6e:6265:6e63::1";
const NS_PREFIX: &str = "monbench-";

/// The LOG prefix of the bench's iptables rule: unique to the run, so lines
/// other users of the kernel log write (e.g. tests with "IPT_ICMP ") are
/// neither forwarded nor counted.
pub(super) fn log_prefix(ctx: &Ctx) -> String {
    format!("MB{}ICMP ", ctx.tag)
}

/// Removes what an earlier run that was killed left behind: its processes
/// (recorded pid files), namespaces (whose creating process is gone), and
/// a sysctl it changed. With `own`, this run's leftovers instead (on an
/// interrupt).
pub(super) fn cleanup(out_dir: &Path, own: Option<&str>) {
    sys::kill_recorded(out_dir, own.is_some());
    // monbench-<role><tag>-<n>: the tag is the creating process's pid.
    let pid_of = |rest: &str| -> String { rest.chars().skip(1).take_while(char::is_ascii_digit).collect() };
    match own {
        Some(tag) => {
            for ns in netns::list() {
                if ns.strip_prefix(NS_PREFIX).is_some_and(|rest| pid_of(rest) == tag) {
                    netns::delete(&ns);
                }
            }
        }
        None => netns::remove_orphans(NS_PREFIX, |rest| pid_of(rest).parse().ok()),
    }
    sys::restore_saved_sysctls(out_dir);
}

/// A bench namespace: the kit's, with IPv6 off (no ND/MLD noise in the counts).
fn bench_netns(name: String) -> anyhow::Result<Netns> {
    let ns = Netns::create(name)?;
    ns.exec(&["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"])?;
    Ok(ns)
}

/// Generator namespace -> observed namespace, where the daemon attaches
/// XDP (`--netns NAME --iface IF`; its sockets stay in the root namespace).
/// Both veth ends live in bench namespaces without addresses or routes.
pub(super) struct XdpNet {
    // Drop order: the namespaces go, and the veth pair with them.
    pub gen: Netns,
    pub obs: Netns,
    pub gen_if: String,
    pub obs_if: String,
    _veth: Veth,
}

impl XdpNet {
    pub(super) fn new(ctx: &Ctx, n: u32) -> anyhow::Result<XdpNet> {
        let tag = format!("{}{}", ctx.tag, n);
        let gen = bench_netns(format!("{NS_PREFIX}g{}-{n}", ctx.tag))?;
        let obs = bench_netns(format!("{NS_PREFIX}o{}-{n}", ctx.tag))?;
        let (gen_if, obs_if) = (format!("mbg{tag}"), format!("mbo{tag}"));
        let veth =
            Veth::create(VethEnd::inside(&gen, &gen_if).mac(GEN_MAC), VethEnd::inside(&obs, &obs_if).mac(HOST_MAC))?;
        veth.b.up()?;
        veth.a.up()?;
        Ok(XdpNet { gen, obs, gen_if, obs_if, _veth: veth })
    }

    /// The daemon's arguments to observe the observed end.
    pub(super) fn daemon_args(&self) -> Vec<String> {
        vec!["--netns".into(), self.obs.name().to_owned(), "--iface".into(), self.obs_if.clone()]
    }
}

/// Generator namespace -> receiver namespace (where iptables LOGs).
pub(super) struct LogNet {
    pub gen: Netns,
    pub recv: Netns,
    pub gen_if: String,
    _veth: Veth,
}

impl LogNet {
    pub(super) fn new(ctx: &Ctx, n: u32) -> anyhow::Result<LogNet> {
        let tag = format!("{}{}", ctx.tag, n);
        let gen = bench_netns(format!("{NS_PREFIX}g{}-{n}", ctx.tag))?;
        let recv = bench_netns(format!("{NS_PREFIX}r{}-{n}", ctx.tag))?;
        let (gen_if, recv_if) = (format!("mbl{tag}"), format!("mbr{tag}"));
        let veth =
            Veth::create(VethEnd::inside(&gen, &gen_if).mac(GEN_MAC), VethEnd::inside(&recv, &recv_if).mac(RECV_MAC))?;
        veth.b.add_addr(&format!("{RECV_V4}/16"))?;
        recv.exec(&["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0"])?;
        veth.b.up()?;
        veth.a.up()?;
        Ok(LogNet { gen, recv, gen_if, _veth: veth })
    }

    /// Replaces the INPUT rules with one echo-request rule: LOG, or count only.
    pub(super) fn set_rule(&self, log: Option<&str>) -> anyhow::Result<()> {
        self.recv.exec(&["iptables", "-F", "INPUT"])?;
        let mut rule = vec!["iptables", "-A", "INPUT", "-p", "icmp", "--icmp-type", "echo-request"];
        if let Some(prefix) = log {
            rule.extend(["-j", "LOG", "--log-prefix", prefix, "--log-level", "info"]);
        }
        self.recv.exec(&rule)?;
        Ok(())
    }

    /// Packets the INPUT rule matched so far.
    pub(super) fn rule_packets(&self) -> u64 {
        let out = self.recv.exec(&["iptables", "-L", "INPUT", "-v", "-x", "-n"]).unwrap_or_default();
        out.lines().nth(2).and_then(|l| l.split_whitespace().next()).and_then(|n| n.parse().ok()).unwrap_or(0)
    }
}

/// The generator's result line.
pub(super) struct GenResult {
    /// The generator's (utime, stime): its sends (and the receive work they
    /// trigger inline) are system time of the generator.
    pub cpu: (f64, f64),
    pub sent: f64,
    pub pps: f64,
    pub seconds: f64,
    pub errors: f64,
}

pub(super) struct GenSpec<'a> {
    pub ns: &'a Netns,
    pub iface: &'a str,
    pub dst_mac: &'a str,
    pub src: &'a str,
    pub dst: &'a str,
    pub sources: u64,
    pub rate: u64,
    pub seconds: f64,
    pub count: u64,
}

pub(super) fn generate(ctx: &Ctx, spec: &GenSpec) -> anyhow::Result<GenResult> {
    let mut cmd = spec.ns.command(&ctx.bin_bench);
    cmd.args(["gen", "--iface", spec.iface, "--dst-mac", spec.dst_mac, "--src-mac", GEN_MAC])
        .args(["--src", spec.src, "--dst", spec.dst])
        .args(["--sources", &spec.sources.to_string(), "--rate", &spec.rate.to_string()])
        .args(["--seconds", &spec.seconds.to_string(), "--count", &spec.count.to_string()]);
    let p = Proc::spawn("generator", &mut cmd, Some(&ctx.out_dir.join("gen.log")))?;
    let pid = p.pid();
    let (cpu, out) = p.wait_output_with(|| sys::proc_cpu(pid))?;
    let v = sys::last_json(&out)?;
    Ok(GenResult {
        cpu,
        sent: sys::num(&v, "sent"),
        pps: sys::num(&v, "pps"),
        seconds: sys::num(&v, "elapsed_s"),
        errors: sys::num(&v, "errors"),
    })
}

/// The daemon under test: the kit's, with the bench's settings, and its
/// pid recorded so a later run can stop it if this one is killed.
pub(super) struct Daemon {
    daemon: monitor_testkit::Daemon,
    pub api: SocketAddr,
    pub syslog_port: u16,
}

impl Daemon {
    /// Starts `monitor` with `args` plus --listen and --syslog-udp on free
    /// loopback ports, and waits for /healthz.
    pub(super) fn start(ctx: &Ctx, name: &str, args: &[&str]) -> anyhow::Result<Daemon> {
        let mut builder = monitor_testkit::Daemon::builder(&ctx.bin_monitor);
        if ctx.quick {
            // Smoke runs skip the database load (slow in a debug build).
            builder = builder.args(["--geo-city", "none", "--geo-asn", "none"]);
        }
        let daemon = builder
            .args(["--stats-interval", "3600s", "--log", "warn"])
            .args(args)
            .log(ctx.out_dir.join(format!("daemon-{name}.log")))
            .spawn()?;
        // Recorded before the wait: a run killed meanwhile leaves it to the next.
        sys::record_pid(daemon.pid());
        let mut daemon = Daemon { api: daemon.addr, syslog_port: daemon.syslog_port, daemon };
        daemon.daemon.wait_healthy(monitor_testkit::daemon::HEALTH_TIMEOUT)?;
        Ok(daemon)
    }

    pub(super) fn pid(&self) -> u32 {
        self.daemon.pid()
    }

    pub(super) fn stats(&self) -> anyhow::Result<Value> {
        self.daemon.get_json("/api/stats")
    }

    /// Any JSON document of the daemon's API (e.g. `/api/hosts`).
    pub(super) fn api_json(&self, path: &str) -> anyhow::Result<Value> {
        self.daemon.get_json(path)
    }

    /// Waits until the GeoIP databases are loaded (or `limit` passes).
    pub(super) fn wait_geo(&self, limit: Duration) {
        // Loading happens on a blocking thread after start-up: wait until
        // the daemon's CPU time stops growing.
        let mut last = -1.0;
        monitor_testkit::try_poll(limit, || {
            sys::sleep(0.4);
            let (u, s) = sys::proc_cpu(self.pid());
            let done = u + s - last < 0.02;
            last = u + s;
            done.then_some(())
        });
    }

    /// Polls `/api/stats` until `key(stats)` stays the same for `quiet`
    /// (the pipeline has drained), at most `limit`. Returns the last stats.
    pub(super) fn settle(
        &self,
        key: impl Fn(&Value) -> f64,
        quiet: Duration,
        limit: Duration,
    ) -> anyhow::Result<Value> {
        let start = std::time::Instant::now();
        let mut last = (f64::NAN, std::time::Instant::now());
        loop {
            let s = self.stats()?;
            let k = key(&s);
            if k != last.0 {
                last = (k, std::time::Instant::now());
            } else if last.1.elapsed() >= quiet {
                return Ok(s);
            }
            if start.elapsed() >= limit {
                return Ok(s);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub(super) fn has_ws(&self, ctx: &Ctx) -> bool {
        Command::new(&ctx.bin_bench)
            .args(["ws", "--check", "--addr", &self.api.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // Stopped by the kit's guard (SIGTERM, SIGKILL after 10 s) next.
        sys::forget_pid(self.daemon.pid());
    }
}

/// rsyslogd forwarding the bench's LOG lines (`log_prefix`) to the daemon over UDP, with
/// impstats counters written every second.
pub(super) struct Rsyslog {
    pub proc: Proc,
    stats_file: PathBuf,
}

#[derive(Clone, Copy, Debug, Default)]
pub(super) struct RsyslogStats {
    /// Messages that entered the main queue (from imklog).
    pub enqueued: f64,
    /// Kernel lines that were not the bench's (dropped, not forwarded).
    pub other: f64,
    pub discarded: f64,
    /// Messages the forwarding action handled (sent to the daemon).
    pub forwarded: f64,
    pub failed: f64,
}

impl Rsyslog {
    pub(super) fn start(ctx: &Ctx, port: u16, prefix: &str) -> anyhow::Result<Rsyslog> {
        let dir = ctx.out_dir.join("rsyslog");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let stats_file = dir.join("impstats.json");
        let conf = dir.join("rsyslog.conf");
        std::fs::write(
            &conf,
            format!(
                r#"# Written by cargo xtask bench: the iptables LOG -> rsyslog -> Monitor path.
global(workDirectory="{dir}")
module(load="imklog" permitnonkernelfacility="on")
module(load="impstats" interval="1" format="json" log.syslog="off" log.file="{stats}" resetCounters="off")
if ($programname == "kernel" and $msg contains "{prefix}") then {{
    action(type="omfwd" name="fwd_monitor" target="127.0.0.1" port="{port}" protocol="udp")
    stop
}}
# Everything else the kernel logs (counted apart, then dropped).
action(type="omfile" name="other_lines" file="/dev/null")
"#,
                dir = dir.display(),
                stats = stats_file.display(),
            ),
        )?;
        sys::run("rsyslogd", &["-N1", "-f", &conf.to_string_lossy()]).context("rsyslogd rejected the bench config")?;
        let pid_file = dir.join("rsyslogd.pid");
        let mut cmd = Command::new("rsyslogd");
        cmd.args(["-n", "-f", &conf.to_string_lossy(), "-i", &pid_file.to_string_lossy()]);
        let proc = Proc::spawn("rsyslogd", &mut cmd, Some(&dir.join("rsyslogd.log")))?;
        let r = Rsyslog { proc, stats_file };
        if monitor_testkit::try_poll(Duration::from_secs(15), || r.stats().ok()).is_none() {
            bail!("rsyslogd wrote no impstats:\n{}", r.proc.log_tail());
        }
        Ok(r)
    }

    pub(super) fn stats(&self) -> anyhow::Result<RsyslogStats> {
        let text = std::fs::read_to_string(&self.stats_file)?;
        let mut s = RsyslogStats::default();
        let (mut queue, mut action, mut other) = (false, false, false);
        for line in text.lines().rev() {
            let Some(start) = line.find('{') else { continue };
            let Ok(v) = serde_json::from_str::<Value>(&line[start..]) else { continue };
            match v["name"].as_str() {
                Some("main Q") if !queue => {
                    queue = true;
                    s.enqueued = sys::num(&v, "enqueued");
                    s.discarded = sys::num(&v, "discarded.full") + sys::num(&v, "discarded.nf");
                }
                Some("fwd_monitor") if !action => {
                    action = true;
                    s.forwarded = sys::num(&v, "processed");
                    s.failed = sys::num(&v, "failed");
                }
                Some("other_lines") if !other => {
                    other = true;
                    s.other = sys::num(&v, "processed");
                }
                _ => {}
            }
            if queue && action && other {
                return Ok(s);
            }
        }
        bail!("no impstats yet")
    }

    /// Waits until the counters stop moving (2 s without change).
    pub(super) fn settle(&self, limit: Duration) -> RsyslogStats {
        let mut last = (-1.0, std::time::Instant::now());
        let mut s = RsyslogStats::default();
        monitor_testkit::try_poll(limit, || {
            s = self.stats().unwrap_or_default();
            if s.enqueued != last.0 {
                last = (s.enqueued, std::time::Instant::now());
                None
            } else {
                (last.1.elapsed() >= Duration::from_secs(2)).then_some(())
            }
        });
        s
    }

    pub(super) fn pid(&self) -> u32 {
        self.proc.pid()
    }
}

/// Other processes reading the kernel log would steal lines from rsyslogd.
pub(super) fn other_kernel_log_readers(ours: u32) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else { return found };
    for e in dir.filter_map(Result::ok) {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        if pid == ours {
            continue;
        }
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let comm = comm.trim();
        if matches!(comm, "rsyslogd" | "systemd-journal" | "klogd" | "syslog-ng") {
            found.push(format!("{comm}[{pid}]"));
        }
    }
    found
}

/// Starts WebSocket clients (or the /api/events poller when `poll`) and
/// waits until they are connected. They run until `finish()` or `seconds`.
pub(super) fn ws_clients(
    ctx: &Ctx,
    daemon: &Daemon,
    clients: usize,
    probes: usize,
    slow: usize,
    seconds: f64,
    poll: bool,
) -> anyhow::Result<sys::Ready> {
    let mut cmd = Command::new(&ctx.bin_bench);
    cmd.args(["ws", "--stdin-stop", "--addr", &daemon.api.to_string()])
        .args(["--clients", &clients.to_string(), "--probes", &probes.to_string(), "--slow", &slow.to_string()])
        .args(["--seconds", &seconds.to_string()]);
    if poll {
        cmd.arg("--poll");
    }
    let p = Proc::spawn("monitor-bench ws", &mut cmd, Some(&ctx.out_dir.join("ws.log")))?;
    sys::Ready::start(p)
}

/// CPU accounting over a measurement window.
pub(super) struct Window {
    cpu: sys::CpuTimes,
    ksoftirqd: Vec<(u32, f64)>,
    procs: Vec<(u32, (f64, f64))>,
    softnet: u64,
    start: std::time::Instant,
}

pub(super) struct WindowDelta {
    /// CPU seconds of the ksoftirqd threads (exact: their runtime).
    pub ksoftirqd: f64,
    /// Machine-wide system + irq + softirq seconds from /proc/stat
    /// (tick-sampled, and includes whatever else runs: for reference).
    pub machine_kernel: f64,
    /// (utime, stime) seconds per watched pid, in the order given.
    pub procs: Vec<(f64, f64)>,
    pub softnet_drops: u64,
    pub seconds: f64,
}

impl Window {
    pub(super) fn start(pids: &[u32]) -> Window {
        Window {
            cpu: sys::CpuTimes::now(),
            ksoftirqd: ksoftirqd_pids()
                .into_iter()
                .map(|p| {
                    let (u, s) = sys::proc_cpu(p);
                    (p, u + s)
                })
                .collect(),
            procs: pids.iter().map(|&p| (p, sys::proc_cpu(p))).collect(),
            softnet: sys::softnet_drops(),
            start: std::time::Instant::now(),
        }
    }

    /// Adds a process started after the window opened (its CPU so far counts).
    pub(super) fn watch(&mut self, pid: u32) {
        self.procs.push((pid, (0.0, 0.0)));
    }

    pub(super) fn end(&self) -> WindowDelta {
        WindowDelta {
            machine_kernel: {
                let c = sys::CpuTimes::now().since(&self.cpu);
                c.system + c.irq + c.softirq
            },
            ksoftirqd: self
                .ksoftirqd
                .iter()
                .map(|&(p, c)| {
                    let (u, s) = sys::proc_cpu(p);
                    (u + s - c).max(0.0)
                })
                .sum(),
            procs: self
                .procs
                .iter()
                .map(|&(pid, (u, s))| {
                    let (u2, s2) = sys::proc_cpu(pid);
                    ((u2 - u).max(0.0), (s2 - s).max(0.0))
                })
                .collect(),
            softnet_drops: sys::softnet_drops().saturating_sub(self.softnet),
            seconds: self.start.elapsed().as_secs_f64(),
        }
    }
}

/// (run_time_ns, run_cnt) summed over the XDP programs a process holds
/// (from /proc/PID/fdinfo; counted only while kernel.bpf_stats_enabled=1).
pub(super) fn xdp_prog_stats(pid: u32) -> (f64, f64) {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fdinfo")) else { return (0.0, 0.0) };
    let mut seen = std::collections::HashSet::new();
    let (mut ns, mut cnt) = (0.0, 0.0);
    for e in dir.filter_map(Result::ok) {
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        let field = |k: &str| text.lines().find_map(|l| l.strip_prefix(k)).map(|v| v.trim().to_owned());
        // prog_type 6 = BPF_PROG_TYPE_XDP.
        if field("prog_type:").as_deref() != Some("6") {
            continue;
        }
        if let Some(id) = field("prog_id:") {
            if seen.insert(id) {
                ns += field("run_time_ns:").and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
                cnt += field("run_cnt:").and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            }
        }
    }
    (ns, cnt)
}

/// The per-CPU softirq threads (softirq work deferred out of the context that raised it).
fn ksoftirqd_pids() -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .filter(|p| std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.starts_with("ksoftirqd/")))
        .collect()
}
