//! Section 8: issue 14's load case. Two agent daemons, each with XDP on its
//! own veth pair in bench namespaces (one event per packet), forward through
//! a real rsyslogd relay (imtcp -> omfwd TCP, octet-counted) to a central
//! daemon (`--no-xdp --syslog-tcp`): what each agent sent and the central
//! received, the CPU per event of the central, the agents and the relay,
//! and whether the central's per-host totals equal the agents' counters.

use std::{path::PathBuf, process::Command, time::Duration};

use anyhow::{bail, Context as _};
use monitor_testkit::ports::free_tcp_port;
use serde_json::Value;

use super::{
    guarded, needs_root,
    net::{self, Daemon, GenSpec, Window, XdpNet},
    report::{fix, int, si, Section, Table},
    sys::{self, num, Proc},
    Ctx,
};

const SOURCES: u64 = 4096;
/// Namespace pairs of this section (the pipeline section uses 0-3).
const NETS: [u32; 2] = [8, 9];
const HOSTS: [&str; 2] = ["bench-agent-a", "bench-agent-b"];
const CLASSES: [&str; 8] = ["icmp", "icmpv6", "http", "https", "other_ipv4", "other_ipv6", "non_ip", "malformed"];

/// rsyslogd as the agents' relay: imtcp on `listen`, omfwd over TCP
/// (octet-counted, RFC 5424) to the central, as docs/rsyslog/agent-relay.conf
/// ships it (without the disk queue), with impstats every second.
struct Relay {
    proc: Proc,
    stats_file: PathBuf,
}

impl Relay {
    fn start(ctx: &Ctx, listen: u16, central: u16) -> anyhow::Result<Relay> {
        let dir = ctx.out_dir.join("agents-relay");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let stats_file = dir.join("impstats.json");
        let conf = dir.join("relay.conf");
        std::fs::write(
            &conf,
            format!(
                r#"# Written by cargo xtask bench (section agents): the agents' relay.
global(workDirectory="{dir}")
module(load="impstats" interval="1" format="json" log.syslog="off" log.file="{stats}" resetCounters="off")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="{listen}" ruleset="monitor-agent-relay")
ruleset(name="monitor-agent-relay") {{
    action(type="omfwd" name="fwd_central" target="127.0.0.1" port="{central}" protocol="tcp"
           TCP_Framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format"
           queue.type="LinkedList" action.resumeRetryCount="-1" action.resumeInterval="1")
    stop
}}
stop
"#,
                dir = dir.display(),
                stats = stats_file.display(),
            ),
        )?;
        sys::run("rsyslogd", &["-N1", "-f", &conf.to_string_lossy()]).context("rsyslogd rejected the relay config")?;
        let pid_file = dir.join("rsyslogd.pid");
        let mut cmd = Command::new("rsyslogd");
        cmd.args(["-n", "-f", &conf.to_string_lossy(), "-i", &pid_file.to_string_lossy()]);
        let proc = Proc::spawn("rsyslogd (relay)", &mut cmd, Some(&dir.join("rsyslogd.log")))?;
        let r = Relay { proc, stats_file };
        if monitor_testkit::try_poll(Duration::from_secs(15), || r.forwarded().ok()).is_none() {
            bail!("the relay rsyslogd wrote no impstats:\n{}", r.proc.log_tail());
        }
        Ok(r)
    }

    /// Messages the forwarding action processed (sent to the central) so far.
    fn forwarded(&self) -> anyhow::Result<f64> {
        let text = std::fs::read_to_string(&self.stats_file)?;
        for line in text.lines().rev() {
            let Some(start) = line.find('{') else { continue };
            let Ok(v) = serde_json::from_str::<Value>(&line[start..]) else { continue };
            if v["name"].as_str() == Some("fwd_central") {
                return Ok(num(&v, "processed"));
            }
        }
        bail!("no impstats yet")
    }
}

fn host<'a>(hosts: &'a Value, name: &str) -> Option<&'a Value> {
    hosts["hosts"].as_array()?.iter().find(|h| h["host"] == name)
}

/// Packets and bytes per class: the agent's kernel counters (its /api/stats).
fn agent_classes(stats: &Value) -> Vec<(f64, f64)> {
    CLASSES
        .iter()
        .map(|c| (num(stats, &format!("kernel/classes/{c}/packets")), num(stats, &format!("kernel/classes/{c}/bytes"))))
        .collect()
}

/// The same at the central (/api/hosts), when it has the host's counters.
fn central_classes(hosts: &Value, name: &str) -> Option<Vec<(f64, f64)>> {
    let h = host(hosts, name)?;
    h["classes"]
        .is_object()
        .then(|| CLASSES.iter().map(|c| (num(&h["classes"][c], "packets"), num(&h["classes"][c], "bytes"))).collect())
}

/// (events received, queued by the agent, dropped by the agent, lost in transit) of a host.
fn host_counts(hosts: &Value, name: &str) -> (f64, f64, f64, f64) {
    host(hosts, name)
        .map_or((0.0, 0.0, 0.0, 0.0), |h| (num(h, "events"), num(h, "agent_events"), num(h, "dropped"), num(h, "lost")))
}

/// Every host's totals at the central equal its agent's counters, and its
/// latest counters message accounts for every event it queued.
fn in_step(hosts: &Value, agents: &[Value]) -> bool {
    HOSTS.iter().zip(agents).all(|(name, stats)| {
        let (events, queued, dropped, lost) = host_counts(hosts, name);
        central_classes(hosts, name).is_some_and(|c| c == agent_classes(stats)) && events + dropped + lost == queued
    })
}

fn us_per(cpu_s: f64, n: f64) -> String {
    if n > 0.0 {
        fix(cpu_s / n * 1e6, 2)
    } else {
        "-".into()
    }
}

pub(super) fn run(ctx: &Ctx) -> Section {
    let section = Section::new(
        8,
        "Agents: two agents through an rsyslog relay to a central (issue 14)",
        ctx.command_for("agents"),
    );
    guarded(section, |s| {
        if !needs_root(ctx, s) {
            return Ok(());
        }
        if !sys::have("rsyslogd") {
            s.note("skipped: rsyslogd is not installed (setup.sh installs it)");
            return Ok(());
        }
        let rate: u64 = if ctx.quick { 2_000 } else { 20_000 };
        let secs = if ctx.quick { 1.0 } else { 5.0 };
        // Drop order (reverse of creation, all through guards): agents,
        // relay, central, namespaces; also on an error.
        let nets = [XdpNet::new(ctx, NETS[0])?, XdpNet::new(ctx, NETS[1])?];
        let (central_port, relay_port) = (free_tcp_port()?, free_tcp_port()?);
        let central_listen = format!("127.0.0.1:{central_port}");
        let central = Daemon::start(
            ctx,
            "agents-central",
            &[
                "--no-xdp",
                "--no-history",
                "--hostname",
                "bench-central",
                "--syslog-tcp",
                &central_listen,
                "--syslog-allow",
                "127.0.0.0/8",
            ],
        )?;
        let relay = Relay::start(ctx, relay_port, central_port)?;
        let forward = format!("tcp://127.0.0.1:{relay_port}");
        let mut agents = Vec::new();
        for (net, name) in nets.iter().zip(HOSTS) {
            let mut args = net.daemon_args();
            args.extend(
                [
                    "--events-per-sec",
                    "0",
                    "--events-per-source",
                    "0",
                    "--no-history",
                    "--hostname",
                    name,
                    "--forward",
                    &forward,
                    "--forward-interval",
                    "1s",
                ]
                .map(String::from),
            );
            agents.push(Daemon::start(ctx, name, &args.iter().map(String::as_str).collect::<Vec<_>>())?);
        }
        if !ctx.quick {
            for d in agents.iter().chain([&central]) {
                d.wait_geo(Duration::from_secs(30));
            }
        }
        let hosts_doc = || central.api_json("/api/hosts");
        let agent_stats = || agents.iter().map(Daemon::stats).collect::<anyhow::Result<Vec<_>>>();
        // Both agents heard of (their first counters message) and idle.
        let ready = monitor_testkit::try_poll(Duration::from_secs(30), || {
            sys::sleep(0.3);
            let (hosts, stats) = (hosts_doc().ok()?, agent_stats().ok()?);
            in_step(&hosts, &stats).then_some(())
        });
        if ready.is_none() {
            bail!(
                "the central did not hear from both agents through the relay within 30 s: {}\nrelay log:\n{}",
                hosts_doc().map(|h| h.to_string()).unwrap_or_default(),
                relay.proc.log_tail()
            );
        }
        let (h0, a0, r0) = (hosts_doc()?, agent_stats()?, relay.forwarded()?);

        let pids: Vec<u32> =
            [central.pid(), relay.proc.pid()].into_iter().chain(agents.iter().map(Daemon::pid)).collect();
        let w = Window::start(&pids);
        let gens = std::thread::scope(|scope| {
            let handles: Vec<_> = nets
                .iter()
                .map(|n| {
                    let spec = GenSpec {
                        ns: &n.gen,
                        iface: &n.gen_if,
                        dst_mac: net::OTHER_MAC,
                        src: net::SRC_V4,
                        dst: "198.19.255.254",
                        sources: SOURCES,
                        rate,
                        seconds: secs,
                        count: 0,
                    };
                    scope.spawn(move || net::generate(ctx, &spec))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().map_err(|_| anyhow::anyhow!("generator thread panicked"))?)
                .collect::<anyhow::Result<Vec<_>>>()
        })?;
        // Drain: until the central's totals equal the agents' counters and
        // its event counts stop moving.
        let limit = Duration::from_secs(if ctx.quick { 20 } else { 60 });
        let start = std::time::Instant::now();
        let mut last = (f64::NAN, std::time::Instant::now());
        let (h1, a1, settled) = loop {
            let (hosts, stats) = (hosts_doc()?, agent_stats()?);
            let key: f64 = HOSTS.iter().map(|n| host_counts(&hosts, n).0).sum();
            if key != last.0 {
                last = (key, std::time::Instant::now());
            }
            let quiet = last.1.elapsed() >= Duration::from_millis(1500);
            let step = in_step(&hosts, &stats);
            if (quiet && step) || start.elapsed() >= limit {
                break (hosts, stats, step);
            }
            sys::sleep(0.25);
        };
        let d = w.end();
        let r1 = relay.forwarded()?;

        let mut t = Table::new(
            &format!(
                "Per agent: {} events/s offered ({SOURCES} sources, {secs} s), one event per packet \
                 (`--events-per-sec 0 --events-per-source 0`), forwarded through rsyslogd to the central",
                si(rate as f64)
            ),
            &[
                "host",
                "offered events/s",
                "sent pps",
                "packets (agent kernel)",
                "events (agent)",
                "queued (central's view)",
                "received at central",
                "queued − received",
                "dropped by agent",
                "lost in transit",
                "agent CPU s",
                "agent µs/event",
                "totals = agent counters",
            ],
        );
        let (mut received_all, mut all_equal, mut none_lost, mut one_per_packet) = (0.0, settled, true, true);
        for (i, name) in HOSTS.iter().enumerate() {
            let (e0, q0, dr0, l0) = host_counts(&h0, name);
            let (e1, q1, dr1, l1) = host_counts(&h1, name);
            let (received, queued) = (e1 - e0, q1 - q0);
            received_all += received;
            let delta = |k: &str| num(&a1[i], k) - num(&a0[i], k);
            let packets = delta("kernel/classes/icmp/packets");
            let events = delta("events/received");
            let equal = central_classes(&h1, name).is_some_and(|c| c == agent_classes(&a1[i]));
            all_equal &= equal;
            none_lost &= queued - received == 0.0 && dr1 - dr0 == 0.0 && l1 - l0 == 0.0;
            one_per_packet &= events == packets && packets >= gens[i].sent;
            let (au, as_) = d.procs[2 + i];
            t.row(vec![
                (*name).into(),
                int(rate as f64),
                int(gens[i].pps),
                int(packets),
                int(events),
                int(queued),
                int(received),
                int(queued - received),
                int(dr1 - dr0),
                int(l1 - l0),
                fix(au + as_, 2),
                us_per(au + as_, events),
                if equal { "yes".into() } else { "NO".into() },
            ]);
            if gens[i].errors > 0.0 {
                s.note(format!("{name}: the generator saw {} send errors", int(gens[i].errors)));
            }
        }
        s.tables.push(t);
        let (cu, cs) = d.procs[0];
        let (ru, rs) = d.procs[1];
        let forwarded = r1 - r0;
        let mut t = Table::new(
            &format!(
                "The central and the relay over the window ({} s: traffic, then until the totals settled)",
                fix(d.seconds, 1)
            ),
            &["process", "messages / events", "CPU s", "µs per message / event", "CPU % of one core"],
        );
        for (process, count, cpu) in [
            ("central (`--no-xdp --syslog-tcp`), events from both agents", received_all, cu + cs),
            ("rsyslogd relay (imtcp -> omfwd TCP), messages forwarded", forwarded, ru + rs),
        ] {
            t.row(vec![
                process.into(),
                int(count),
                fix(cpu, 2),
                us_per(cpu, count),
                fix(cpu / d.seconds.max(1e-9) * 100.0, 0),
            ]);
        }
        s.tables.push(t);

        s.target("The central's per-host totals equal each agent's kernel counters (its /api/stats), every class, packets and bytes", Some(all_equal));
        s.target(
            "Every event an agent queued reached the central (queued − received = 0, none dropped or lost)",
            Some(none_lost),
        );
        s.target("One event per packet at each agent (events = packets counted = packets sent)", Some(one_per_packet));
        let central_cpu = (cu + cs) / received_all.max(1.0) * 1e6;
        s.perf_target(
            ctx.quick,
            format!(
                "The central takes 2 × {} events/s on less than one core (CPU per event < {} µs): {} µs/event",
                si(rate as f64),
                fix(1e6 / (2.0 * rate as f64), 0),
                fix(central_cpu, 2)
            ),
            (received_all > 0.0).then_some(central_cpu < 1e6 / (2.0 * rate as f64)),
        );
        s.note(format!(
            "Agents: `--netns NS --iface IF --events-per-sec 0 --events-per-source 0 --no-history --hostname NAME \
             --forward {forward} --forward-interval 1s`, each observing its own veth pair (namespaces {}, {}: the \
             generator's frames go to a MAC that is not the observed end's, dropped by its stack after XDP). Relay: \
             rsyslogd with imtcp on 127.0.0.1:{relay_port} -> omfwd TCP octet-counted, RFC 5424, to the central \
             `--no-xdp --no-history --syslog-tcp {central_listen} --syslog-allow 127.0.0.0/8`. CPU is utime + stime \
             from /proc/PID/stat over the window; agents' figures exclude the XDP program's run time (kernel receive \
             path). 'queued' is the agents' EVENTS counter as the central last heard it; the rsyslogd figure counts \
             the agents' counters messages too (one a second each).",
            nets[0].obs.name(),
            nets[1].obs.name(),
        ));
        if !settled {
            s.note(format!("The totals had not settled after {} s.", limit.as_secs()));
        }
        drop(agents);
        drop(relay);
        drop(central);
        Ok(())
    })
}
