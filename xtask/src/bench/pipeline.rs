//! Section 2: pipeline capacity, iptables LOG + rsyslog vs XDP + ring
//! buffer, at rising offered rates, in namespaces (see `net` for the
//! topology and its network-safety rules).

use std::{collections::BTreeMap, time::Duration};

use serde_json::Value;

mod event_cost;

use super::{
    guarded, needs_root,
    net::{self, Daemon, GenSpec, LogNet, Rsyslog, Window, XdpNet},
    report::{fix, int, pct, si, Section, Table},
    sys::{self, num, Proc, SysctlGuard},
    Ctx,
};

const SOURCES: u64 = 4096;
const EVENTS_PER_SEC: u64 = 20_000;
const RATIO_TARGET: f64 = 20.0;

fn rate_label(rate: u64) -> String {
    if rate == 0 {
        "max".into()
    } else {
        si(rate as f64)
    }
}

/// The generator's traffic for the XDP path: frames to a MAC that is not the
/// observed end's, dropped by its stack after XDP.
fn xdp_spec(net: &XdpNet, rate: u64, seconds: f64) -> GenSpec<'_> {
    GenSpec {
        ns: &net.gen,
        iface: &net.gen_if,
        dst_mac: net::OTHER_MAC,
        src: net::SRC_V4,
        dst: "198.19.255.254",
        sources: SOURCES,
        rate,
        seconds,
        count: 0,
    }
}

/// The LOG path's moving parts: iptables LOG in the receiving namespace,
/// rsyslogd forwarding its lines over UDP to a `--no-xdp` daemon. Fields
/// drop in order: rsyslogd, the daemon, the sysctl, the namespaces.
struct LogRig {
    rsyslog: Rsyslog,
    daemon: Daemon,
    prefix: String,
    _nf_log: SysctlGuard,
    net: LogNet,
}

impl LogRig {
    /// Sets the rig up on namespace pair `n` and lets rsyslogd drain the
    /// kernel log's backlog; `None` (and a note) when a tool is missing.
    fn start(ctx: &Ctx, s: &mut Section, n: u32) -> anyhow::Result<Option<LogRig>> {
        for tool in ["rsyslogd", "iptables"] {
            if !sys::have(tool) {
                s.note(format!("LOG path skipped: {tool} is not installed (setup.sh installs it)"));
                return Ok(None);
            }
        }
        let net = LogNet::new(ctx, n)?;
        let nf_log = SysctlGuard::set("net.netfilter.nf_log_all_netns", "1")?;
        let prefix = net::log_prefix(ctx);
        let daemon = Daemon::start(ctx, "log", &["--no-xdp", "--syslog-prefix", &prefix])?;
        if !ctx.quick {
            daemon.wait_geo(Duration::from_secs(30));
        }
        let rsyslog = Rsyslog::start(ctx, daemon.syslog_port, &prefix)?;
        let others = net::other_kernel_log_readers(rsyslog.pid());
        if !others.is_empty() {
            s.note(format!(
                "Other kernel log readers were running and may have taken lines from rsyslogd: {}",
                others.join(", ")
            ));
        }
        // rsyslogd first forwards the kernel log's backlog: let it drain.
        rsyslog.settle(Duration::from_secs(60));
        Ok(Some(LogRig { rsyslog, daemon, prefix, _nf_log: nf_log, net }))
    }

    /// The generator's echo requests to the receiving namespace.
    fn spec(&self, rate: u64, seconds: f64) -> GenSpec<'_> {
        GenSpec {
            ns: &self.net.gen,
            iface: &self.net.gen_if,
            dst_mac: net::RECV_MAC,
            src: net::SRC_V4,
            dst: net::RECV_V4,
            sources: SOURCES,
            rate,
            seconds,
            count: 0,
        }
    }
}

/// Kernel CPU per packet of the topology without any observer.
type Baseline = BTreeMap<u64, f64>;

/// One measured step of either path.
#[derive(Default, Clone)]
struct Step {
    sent: f64,
    pps: f64,
    /// Packets the daemon knows of (XDP counters / LOG lines received).
    counted: f64,
    /// Observer CPU per counted packet, µs (baseline subtracted).
    us_per_pkt: f64,
    /// XDP path: the observer's own CPU per packet, µs (XDP program run
    /// time from the kernel's BPF stats + daemon), without the veth's
    /// XDP overhead and without baseline subtraction.
    us_own: Option<f64>,
    /// XDP path: the event budget was exceeded (events sampled, not one per packet).
    sampled: bool,
    lat: Option<(f64, f64, usize)>,
    lat_mode: String,
    ok_counted: bool,
}

fn latency(v: &Value) -> Option<(f64, f64, usize)> {
    let l = &v["latency_ms"];
    let n = l["n"].as_u64().unwrap_or(0) as usize;
    (n > 0).then(|| (num(l, "p50"), num(l, "p99"), n))
}

fn lat_cell(s: &Step) -> String {
    match s.lat {
        Some((p50, p99, n)) => format!(
            "{} / {} (n={}{})",
            fix(p50, 1),
            fix(p99, 1),
            si(n as f64),
            if s.lat_mode == "poll" { ", polled" } else { "" }
        ),
        None => "-".into(),
    }
}

pub(super) fn run(ctx: &Ctx) -> Section {
    let section =
        Section::new(2, "Pipeline capacity: iptables LOG + rsyslog vs XDP + ring buffer", ctx.command_for("pipeline"));
    guarded(section, |s| {
        if !needs_root(ctx, s) {
            return Ok(());
        }
        let rates: Vec<u64> = if ctx.quick { vec![10_000] } else { vec![10_000, 50_000, 100_000, 200_000, 0] };
        let secs = if ctx.quick { 1.0 } else { 5.0 };
        let xdp = xdp_path(ctx, s, &rates, secs)?;
        let log = log_path(ctx, s, &rates, secs)?;

        let mut t = Table::new(
            "CPU per observed packet, side by side (observer cost = generator + ksoftirqd CPU above the no-observer baseline at \
             the same rate + daemon and rsyslogd CPU; observed = packets the daemon knows of: XDP counters, LOG lines received)",
            &["offered", "LOG: sent pps", "LOG: observed", "LOG µs/pkt", "XDP: sent pps", "XDP: observed", "XDP own µs/pkt",
              "XDP µs/pkt incl. veth XDP", "LOG ÷ XDP own", "LOG ÷ XDP incl. veth"],
        );
        let mut ratios = Vec::new();
        for (i, rate) in rates.iter().enumerate() {
            let (l, x) = (log.get(i), xdp.get(i));
            let ratio = match (l, x) {
                (Some(l), Some(Step { us_own: Some(own), .. })) if *own > 0.0 => l.us_per_pkt / own,
                _ => f64::NAN,
            };
            let ratio_veth = match (l, x) {
                (Some(l), Some(x)) if x.us_per_pkt > 0.0 => l.us_per_pkt / x.us_per_pkt,
                _ => f64::NAN,
            };
            if ratio.is_finite() {
                ratios.push((x.is_some_and(|x| x.sampled), ratio));
            }
            let observed = |st: &Step| format!("{} ({})", int(st.counted), pct(st.counted, st.sent));
            t.row(vec![
                rate_label(*rate),
                l.map_or("-".into(), |l| int(l.pps)),
                l.map_or("-".into(), observed),
                l.map_or("-".into(), |l| fix(l.us_per_pkt, 2)),
                x.map_or("-".into(), |x| int(x.pps)),
                x.map_or("-".into(), observed),
                x.and_then(|x| x.us_own).map_or("-".into(), |v| fix(v, 3)),
                x.map_or("-".into(), |x| fix(x.us_per_pkt, 3)),
                if ratio.is_finite() { format!("{ratio:.1}x") } else { "-".into() },
                if ratio_veth.is_finite() { format!("{ratio_veth:.1}x") } else { "-".into() },
            ]);
        }
        s.tables.push(t);
        // Under the event budget every packet is also an event, and the
        // daemon's per-event work dominates both paths; above it, events
        // are sampled and the kernel counts the rest.
        for (sampled, label) in [
            (true, "rates above the event budget (events sampled)"),
            (false, "rates within the event budget (one event per packet)"),
        ] {
            let min = ratios.iter().filter(|r| r.0 == sampled).map(|r| r.1).fold(f64::INFINITY, f64::min);
            s.perf_target(
                ctx.quick,
                format!("XDP path ≥ {RATIO_TARGET:.0}x less CPU per observed packet than the LOG path, {label}: lowest ratio {}",
                        if min.is_finite() { format!("{min:.1}x") } else { "n/a".into() }),
                min.is_finite().then_some(min >= RATIO_TARGET),
            );
        }
        if let Some(top) = xdp.iter().max_by(|a, b| a.pps.total_cmp(&b.pps)) {
            s.target(
                format!(
                    "XDP path counts every packet at the highest rate the generator reached ({} pps: {} of {} counted)",
                    int(top.pps),
                    int(top.counted),
                    int(top.sent)
                ),
                Some(top.ok_counted),
            );
        }
        Ok(())
    })
}

/// Section 9: the daemon's CPU per event next to rsyslogd's per line.
pub(super) fn event_cost(ctx: &Ctx) -> Section {
    let section = Section::new(9, "Daemon CPU per event, next to rsyslogd's per line", ctx.command_for("event-cost"));
    guarded(section, |s| {
        if !needs_root(ctx, s) {
            return Ok(());
        }
        event_cost::run(ctx, s)
    })
}

/// Kernel CPU seconds per packet for the topology without an observer.
fn baseline_run(ctx: &Ctx, spec: &GenSpec) -> anyhow::Result<(f64, net::GenResult)> {
    let w = Window::start(&[]);
    let g = net::generate(ctx, spec)?;
    sys::sleep(0.3);
    let d = w.end();
    Ok(((g.cpu.0 + g.cpu.1 + d.ksoftirqd) / g.sent.max(1.0), g))
}

fn xdp_path(ctx: &Ctx, s: &mut Section, rates: &[u64], secs: f64) -> anyhow::Result<Vec<Step>> {
    let net = XdpNet::new(ctx, 0)?;
    let spec = |rate: u64| xdp_spec(&net, rate, secs);
    let mut base = Baseline::new();
    let mut base_prog = Baseline::new();
    let mut t_base = Table::new(
        "XDP path baselines: CPU per packet of the generator + veth + stack drop (generator + ksoftirqd runtime), without an observer and with the trivial XDP_PASS program attached",
        &["offered", "sent pps (no XDP)", "µs/pkt no XDP", "sent pps (trivial XDP)", "µs/pkt trivial XDP"],
    );
    for &rate in rates {
        let (cpu, g) = baseline_run(ctx, &spec(rate))?;
        base.insert(rate, cpu);
        let mut row = vec![rate_label(rate), int(g.pps), fix(cpu * 1e6, 3)];
        if !ctx.quick {
            let mut cmd = net.obs.command(&ctx.bin_bench);
            cmd.args(["xdp-hold", "--iface", &net.obs_if]);
            let mut hold = Proc::spawn("monitor-bench xdp-hold", &mut cmd, Some(&ctx.out_dir.join("xdp-hold.log")))?;
            let mut line = String::new();
            if let Some(out) = hold.stdout() {
                std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line)?;
            }
            let (cpu2, g2) = baseline_run(ctx, &spec(rate))?;
            drop(hold);
            base_prog.insert(rate, cpu2);
            row.extend([int(g2.pps), fix(cpu2 * 1e6, 3)]);
        } else {
            row.extend(["-".into(), "-".into()]);
        }
        t_base.row(row);
    }

    // Per-program run time and count (a little overhead per run: two clock reads).
    let _stats = SysctlGuard::set("kernel.bpf_stats_enabled", "1")?;
    let mut args = net.daemon_args();
    args.extend(["--events-per-sec".into(), EVENTS_PER_SEC.to_string()]);
    let daemon = Daemon::start(ctx, "xdp", &args.iter().map(String::as_str).collect::<Vec<_>>())?;
    if !ctx.quick {
        daemon.wait_geo(Duration::from_secs(30));
    }
    let poll = !daemon.has_ws(ctx);
    let mode = daemon.stats()?["interfaces"][0]["mode"].as_str().unwrap_or("?").to_owned();
    let mut t = Table::new(
        &format!("XDP path: daemon `--netns {} --iface {}` (XDP mode {mode}), `--events-per-sec {EVENTS_PER_SEC}`, `--events-per-source 100`; {SOURCES} sources, {secs} s per rate",
                 net.obs.name(), net.obs_if),
        &["offered", "sent pps", "counted (XDP)", "eligible", "submitted", "suppressed", "ring full", "events/s",
          "delivered", "queue drops", "accounted", "XDP prog ns/pkt", "daemon CPU s", "own µs/pkt", "generator + ksoftirqd CPU s", "/proc/stat kernel CPU s", "µs/pkt incl. veth XDP", "latency p50/p99 ms"],
    );
    let mut steps = Vec::new();
    let mut all_accounted = true;
    let mut within_budget = true;
    let key = |v: &Value| num(v, "kernel/classes/icmp/packets") + num(v, "events/received");
    for &rate in rates {
        let before = daemon.settle(key, Duration::from_millis(1200), Duration::from_secs(10))?;
        let mut w = Window::start(&[daemon.pid()]);
        let p0 = net::xdp_prog_stats(daemon.pid());
        let ws = net::ws_clients(ctx, &daemon, 1, 1, 0, secs + 60.0, poll)?;
        w.watch(ws.proc.pid());
        let g = net::generate(ctx, &spec(rate))?;
        let after = daemon.settle(key, Duration::from_millis(1500), Duration::from_secs(20))?;
        let d = w.end();
        let p1 = net::xdp_prog_stats(daemon.pid());
        let (prog_s, prog_runs) = ((p1.0 - p0.0) * 1e-9, p1.1 - p0.1);
        let wsr = ws.finish()?;
        let delta = |k: &str| num(&after, k) - num(&before, k);
        let counted = delta("kernel/classes/icmp/packets");
        let eligible = delta("kernel/pipeline/event_eligible");
        let submitted = delta("kernel/pipeline/event_submitted");
        let suppressed = delta("kernel/pipeline/suppressed_source") + delta("kernel/pipeline/suppressed_global");
        let ring_full = delta("kernel/pipeline/ring_full");
        let delivered = delta("events/received");
        let qdrops = delta("events/dropped_queue_full");
        let malformed = delta("events/malformed_records");
        let accounted = eligible == submitted + suppressed + ring_full && submitted == delivered + qdrops + malformed;
        all_accounted &= accounted;
        let ev_rate = submitted / g.seconds.max(1e-9);
        within_budget &= ev_rate <= EVENTS_PER_SEC as f64 * (1.0 + 1.0 / g.seconds.max(1.0)) + 1.0;
        let (du, ds) = d.procs[0];
        // Packet work: the generator's CPU (its sends, and the receive side
        // that runs inline in its context: no IRQ time accounting here) and
        // ksoftirqd's, both exact runtimes.
        let kernel = g.cpu.0 + g.cpu.1 + d.ksoftirqd;
        let observer = (kernel - base[&rate] * g.sent).max(0.0) + du + ds;
        let own = if prog_runs > 0.0 { Some((prog_s + du + ds) / counted.max(1.0) * 1e6) } else { None };
        let step = Step {
            sent: g.sent,
            pps: g.pps,
            counted,
            us_per_pkt: observer / counted.max(1.0) * 1e6,
            us_own: own,
            sampled: suppressed + ring_full > 0.1 * eligible,
            lat: latency(&wsr),
            lat_mode: wsr["mode"].as_str().unwrap_or("").to_owned(),
            ok_counted: counted >= g.sent,
        };
        t.row(vec![
            rate_label(rate),
            int(g.pps),
            int(counted),
            int(eligible),
            int(submitted),
            int(suppressed),
            int(ring_full),
            int(ev_rate),
            int(delivered),
            int(qdrops),
            if accounted { "yes".into() } else { "NO".into() },
            if prog_runs > 0.0 { fix(prog_s * 1e9 / prog_runs, 0) } else { "-".into() },
            fix(du + ds, 2),
            own.map_or("-".into(), |v| fix(v, 3)),
            fix(kernel, 2),
            fix(d.machine_kernel, 2),
            fix(step.us_per_pkt, 3),
            lat_cell(&step),
        ]);
        if g.errors > 0.0 {
            s.note(format!("XDP path at {}: the generator saw {} send errors", rate_label(rate), int(g.errors)));
        }
        steps.push(step);
    }
    s.tables.push(t_base);
    s.tables.push(t);
    s.target("XDP path: every eligible packet accounted (submitted + suppressed + ring full = eligible; submitted = delivered + queue drops)", Some(all_accounted));
    s.target(format!("XDP path: event stream within --events-per-sec {EVENTS_PER_SEC}"), Some(within_budget));
    if poll {
        s.note("The daemon has no /ws yet: XDP-path latency was measured by polling /api/events every 50 ms (adds up to 50 ms).");
    }
    s.note(format!(
        "XDP path topology: generator in namespace {} sends on {} with AF_PACKET (PACKET_QDISC_BYPASS, sendmmsg); the daemon \
         (in the root namespace, API and syslog on 127.0.0.1) attaches XDP with `--netns {}` to the peer {} in a second bench \
         namespace. Neither namespace has addresses on the veth or any route; the frames are addressed to a MAC that is not \
         {}'s, so its stack drops them as PACKET_OTHERHOST after XDP (nothing answered, nothing routed). The global event \
         budget is split per CPU ({} per CPU here) and all of the generator's packets are processed on the CPU it runs on, \
         so the stream tops out at about half the budget.",
        net.gen.name(), net.gen_if, net.obs.name(), net.obs_if, net.obs_if,
        EVENTS_PER_SEC.div_ceil(std::thread::available_parallelism().map_or(1, |n| n.get()) as u64)
    ));
    if !base_prog.is_empty() {
        let extra: Vec<String> = rates
            .iter()
            .filter_map(|r| Some(format!("{}: +{:.3} µs", rate_label(*r), (base_prog.get(r)? - base.get(r)?) * 1e6)))
            .collect();
        s.note(format!(
            "Any XDP program on a veth costs the conversion to an xdp_buff (veth has no headroom for it: an skb copy). \
             The trivial XDP_PASS program's extra kernel CPU per packet over no XDP: {}. That is a veth artefact, \
             included in the XDP path's figures.",
            extra.join(", ")
        ));
    }
    Ok(steps)
}

fn log_path(ctx: &Ctx, s: &mut Section, rates: &[u64], secs: f64) -> anyhow::Result<Vec<Step>> {
    let Some(rig) = LogRig::start(ctx, s, 1)? else { return Ok(Vec::new()) };
    let LogRig { rsyslog, daemon, prefix, net, .. } = &rig;
    let poll = !daemon.has_ws(ctx);
    let spec = |rate: u64| rig.spec(rate, secs);
    net.set_rule(None)?;
    let mut base = Baseline::new();
    let mut t_base = Table::new(
        "LOG path baseline: CPU per packet of the generator + veth + receiving namespace with a counting-only rule, no LOG (generator + ksoftirqd runtime)",
        &["offered", "sent pps", "reached INPUT", "µs/pkt"],
    );
    for &rate in rates {
        let p0 = net.rule_packets();
        let (cpu, g) = baseline_run(ctx, &spec(rate))?;
        base.insert(rate, cpu);
        t_base.row(vec![rate_label(rate), int(g.pps), int(net.rule_packets() as f64 - p0 as f64), fix(cpu * 1e6, 3)]);
    }

    net.set_rule(Some(prefix))?;
    let mut t = Table::new(
        &format!("LOG path: `iptables -A INPUT -p icmp --icmp-type echo-request -j LOG --log-prefix \"{}\" --log-level info` in namespace {}, rsyslogd (imklog -> omfwd UDP) -> daemon `--no-xdp --syslog-prefix \"{}\"`; {secs} s per rate",
                 prefix, net.recv.name(), prefix),
        &["offered", "sent pps", "logged", "rsyslog got", "lost in kernel log", "rsyslog sent", "lost in rsyslog",
          "UDP drops", "daemon got", "queue drops", "events", "generator + ksoftirqd CPU s", "/proc/stat kernel CPU s", "rsyslogd CPU s", "daemon CPU s", "observer µs/pkt",
          "latency p50/p99 ms"],
    );
    let mut steps = Vec::new();
    let mut lossless_max = 0.0f64;
    for &rate in rates {
        let r0 = rsyslog.stats()?;
        let d0 = daemon.stats()?;
        let p0 = net.rule_packets() as f64;
        let u0 = sys::udp_socket_drops(daemon.syslog_port);
        let mut w = Window::start(&[daemon.pid(), rsyslog.pid()]);
        let ws = net::ws_clients(ctx, daemon, 1, 1, 0, secs + 120.0, poll)?;
        w.watch(ws.proc.pid());
        let g = net::generate(ctx, &spec(rate))?;
        let r1 = rsyslog.settle(Duration::from_secs(60));
        let d1 = daemon.settle(|v| num(v, "syslog/received"), Duration::from_millis(1500), Duration::from_secs(30))?;
        let d = w.end();
        let wsr = ws.finish()?;
        let logged = net.rule_packets() as f64 - p0;
        let udp_drops = sys::udp_socket_drops(daemon.syslog_port).saturating_sub(u0) as f64;
        // Lines of the bench's prefix only (other kernel lines are counted apart).
        let got = (r1.enqueued - r0.enqueued) - (r1.other - r0.other);
        let fwd = r1.forwarded - r0.forwarded;
        let delta = |k: &str| num(&d1, k) - num(&d0, k);
        let received = delta("syslog/received");
        let qdrops = delta("events/dropped_queue_full");
        let events = delta("events/received");
        let (du, ds) = d.procs[0];
        let (ru, rs) = d.procs[1];
        let kernel = g.cpu.0 + g.cpu.1 + d.ksoftirqd;
        let observer = (kernel - base[&rate] * g.sent).max(0.0) + du + ds + ru + rs;
        let lost = logged - events;
        if lost <= 0.0 && logged >= g.sent * 0.999 {
            lossless_max = lossless_max.max(g.pps);
        }
        let step = Step {
            sent: g.sent,
            pps: g.pps,
            counted: events,
            us_per_pkt: observer / events.max(1.0) * 1e6,
            us_own: None,
            sampled: false,
            lat: latency(&wsr),
            lat_mode: wsr["mode"].as_str().unwrap_or("").to_owned(),
            ok_counted: events >= g.sent,
        };
        t.row(vec![
            rate_label(rate),
            int(g.pps),
            int(logged),
            int(got),
            format!("{} ({})", int(logged - got), pct(logged - got, logged)),
            int(fwd),
            format!("{} ({})", int(got - fwd), pct(got - fwd, got)),
            int(udp_drops),
            int(received),
            int(qdrops),
            int(events),
            fix(kernel, 2),
            fix(d.machine_kernel, 2),
            fix(ru + rs, 2),
            fix(du + ds, 2),
            fix(step.us_per_pkt, 2),
            lat_cell(&step),
        ]);
        if d.softnet_drops > 0 {
            s.note(format!(
                "LOG path at {}: {} packets dropped by the input backlog (softnet) before netfilter",
                rate_label(rate),
                d.softnet_drops
            ));
        }
        steps.push(step);
    }
    s.tables.push(t_base);
    s.tables.push(t);
    s.note(format!(
        "LOG path: highest offered rate delivered without loss end to end: {} pps. 'rsyslog got' is the main queue's \
         enqueued counter (impstats), 'rsyslog sent' the omfwd action's processed counter; 'lost in kernel log' = logged - \
         rsyslog got (the printk ring buffer overwritten before imklog read it); UDP drops from /proc/net/udp for the \
         daemon's socket. `net.netfilter.nf_log_all_netns` was set to 1 for the run and restored after.",
        int(lossless_max)
    ));
    if poll {
        s.note("The daemon has no /ws yet: LOG-path latency was measured by polling /api/events every 50 ms.");
    }
    Ok(steps)
}
