//! Section 9, per-event cost: the daemon's CPU per event end to end
//! (decode, geo, aggregate, publish, fan-out to one WebSocket client that
//! reads every frame), for XDP and syslog events at the same rates, one
//! event per packet, next to rsyslogd's CPU per line it forwarded on the
//! LOG path of the same run.

use std::time::Duration;

use serde_json::Value;

use super::{xdp_spec, LogRig, SOURCES};
use crate::bench::{
    net::{self, Daemon, GenSpec, Window, XdpNet},
    report::{fix, int, si, Section, Table},
    sys::num,
    Ctx,
};

/// Namespace pairs of this sub-section (the capacity runs use 0 and 1).
const XDP_NET: u32 = 2;
const LOG_NET: u32 = 3;

/// One path at one rate.
struct Cost {
    /// Events the daemon took in (kernel records delivered / syslog lines accepted).
    events: f64,
    /// Events the WebSocket client received and parsed, and those the
    /// server skipped for it (a client too slow to keep up).
    ws_events: f64,
    ws_skipped: f64,
    daemon_cpu_s: f64,
    /// Packets that did not become an event (sampling, ring full, queue
    /// full, lines lost before the daemon): should be 0.
    missed: f64,
    /// rsyslogd: lines forwarded and its CPU seconds (LOG path only).
    rsyslog: Option<(f64, f64)>,
}

impl Cost {
    fn daemon_us(&self) -> f64 {
        per_unit_us(self.daemon_cpu_s, self.events)
    }

    fn rsyslog_us(&self) -> Option<f64> {
        self.rsyslog.map(|(lines, cpu)| per_unit_us(cpu, lines))
    }
}

fn per_unit_us(cpu_s: f64, n: f64) -> f64 {
    if n > 0.0 {
        cpu_s / n * 1e6
    } else {
        f64::NAN
    }
}

fn us_cell(v: f64) -> String {
    if v.is_finite() {
        fix(v, 2)
    } else {
        "-".into()
    }
}

/// Measures both paths and adds the table to `s`.
pub(super) fn run(ctx: &Ctx, s: &mut Section) -> anyhow::Result<()> {
    let rates: Vec<u64> = if ctx.quick { vec![2_000] } else { vec![10_000, 20_000] };
    let secs = if ctx.quick { 1.0 } else { 5.0 };
    let xdp = xdp_costs(ctx, &rates, secs)?;
    let log = log_costs(ctx, s, &rates, secs)?;

    let mut t = Table::new(
        &format!(
            "Daemon CPU per event, end to end (decode, geo, aggregate, publish, fan-out to one WebSocket client \
             reading every frame), one event per packet ({SOURCES} sources, {secs} s per rate), next to rsyslogd's CPU \
             per line it forwarded on the LOG path at the same rate"
        ),
        &[
            "events/s offered",
            "path",
            "events",
            "missed",
            "WS client got",
            "WS skipped",
            "daemon CPU s",
            "daemon µs/event",
            "rsyslogd µs/line (LOG path)",
            "daemon ÷ rsyslogd",
        ],
    );
    for (i, &rate) in rates.iter().enumerate() {
        let rsyslog_us = log.get(i).and_then(Cost::rsyslog_us).unwrap_or(f64::NAN);
        for (path, cost) in [("XDP", xdp.get(i)), ("syslog", log.get(i))] {
            let Some(c) = cost else { continue };
            let ratio = c.daemon_us() / rsyslog_us;
            t.row(vec![
                si(rate as f64),
                path.into(),
                int(c.events),
                int(c.missed),
                int(c.ws_events),
                int(c.ws_skipped),
                fix(c.daemon_cpu_s, 2),
                us_cell(c.daemon_us()),
                us_cell(rsyslog_us),
                if ratio.is_finite() { format!("{ratio:.2}x") } else { "-".into() },
            ]);
        }
    }
    s.tables.push(t);
    if xdp.iter().chain(&log).any(|c| c.ws_skipped > 0.0) {
        s.note(
            "Per-event cost: the daemon sends a WebSocket client at most a fixed number of events per update frame \
             (MAX_EVENTS_PER_FRAME in monitor/src/sinks/server/ws.rs) and counts the rest as skipped; where 'WS skipped' is \
             not 0, the fan-out part of the daemon's figure covers only the events the client got.",
        );
    }
    s.note(
        "Per-event cost: the XDP daemon runs with `--events-per-sec 0 --events-per-source 0` (no sampling) on its own \
         namespace pair, the LOG path with its own iptables LOG rule, rsyslogd and `--no-xdp` daemon. Daemon and \
         rsyslogd CPU are utime + stime from /proc/PID/stat (clock ticks) over each rate's window: traffic, then until \
         the counters stop moving (about 1.5 s, with /api/stats polled every 200 ms), so a little idle and polling \
         time is included. XDP program time runs in the kernel's receive path and is not in the daemon's figure (see \
         'XDP prog ns/pkt' above). 'missed' = packets that did not become a daemon event (sampling, ring or queue \
         full, lines lost before the daemon); 'rsyslogd µs/line' = rsyslogd CPU / lines its omfwd action processed.",
    );
    Ok(())
}

/// (events the WebSocket client received, events the server skipped for it).
fn ws_counts(report: &Value) -> (f64, f64) {
    (num(report, "probe_events"), num(report, "skipped"))
}

fn xdp_costs(ctx: &Ctx, rates: &[u64], secs: f64) -> anyhow::Result<Vec<Cost>> {
    let net = XdpNet::new(ctx, XDP_NET)?;
    let mut args = net.daemon_args();
    args.extend(["--events-per-sec", "0", "--events-per-source", "0"].map(String::from));
    let daemon = Daemon::start(ctx, "xdp-event-cost", &args.iter().map(String::as_str).collect::<Vec<_>>())?;
    if !ctx.quick {
        daemon.wait_geo(Duration::from_secs(30));
    }
    let key = |v: &Value| num(v, "kernel/classes/icmp/packets") + num(v, "events/received");
    let mut costs = Vec::new();
    for &rate in rates {
        let before = daemon.settle(key, Duration::from_millis(1200), Duration::from_secs(10))?;
        let (after, d, ws) = measured(ctx, &daemon, &[], &xdp_spec(&net, rate, secs), || {
            daemon.settle(key, Duration::from_millis(1500), Duration::from_secs(20))
        })?;
        let delta = |k: &str| num(&after, k) - num(&before, k);
        let events = delta("events/received");
        let (ws_events, ws_skipped) = ws_counts(&ws);
        costs.push(Cost {
            events,
            ws_events,
            ws_skipped,
            daemon_cpu_s: d.procs[0].0 + d.procs[0].1,
            missed: (delta("kernel/classes/icmp/packets") - events).max(0.0),
            rsyslog: None,
        });
    }
    Ok(costs)
}

fn log_costs(ctx: &Ctx, s: &mut Section, rates: &[u64], secs: f64) -> anyhow::Result<Vec<Cost>> {
    let Some(rig) = LogRig::start(ctx, s, LOG_NET)? else { return Ok(Vec::new()) };
    rig.net.set_rule(Some(&rig.prefix))?;
    let mut costs = Vec::new();
    for &rate in rates {
        let r0 = rig.rsyslog.stats()?;
        let d0 = rig.daemon.stats()?;
        let p0 = rig.net.rule_packets() as f64;
        let ((r1, d1), d, ws) = measured(ctx, &rig.daemon, &[rig.rsyslog.pid()], &rig.spec(rate, secs), || {
            let r1 = rig.rsyslog.settle(Duration::from_secs(60));
            let d1 = rig.daemon.settle(
                |v| num(v, "syslog/received"),
                Duration::from_millis(1500),
                Duration::from_secs(30),
            )?;
            Ok((r1, d1))
        })?;
        let events = num(&d1, "events/received") - num(&d0, "events/received");
        let logged = rig.net.rule_packets() as f64 - p0;
        let (ws_events, ws_skipped) = ws_counts(&ws);
        let (ru, rs) = d.procs[1];
        costs.push(Cost {
            events,
            ws_events,
            ws_skipped,
            daemon_cpu_s: d.procs[0].0 + d.procs[0].1,
            missed: (logged - events).max(0.0),
            rsyslog: Some((r1.forwarded - r0.forwarded, ru + rs)),
        });
    }
    Ok(costs)
}

/// One window: a WebSocket client connects to `daemon`, the generator
/// sends `spec`, `drain` waits for the pipeline to empty. Returns what
/// `drain` returned, the CPU of the daemon then `others`, and the client's report.
fn measured<T>(
    ctx: &Ctx,
    daemon: &Daemon,
    others: &[u32],
    spec: &GenSpec,
    drain: impl FnOnce() -> anyhow::Result<T>,
) -> anyhow::Result<(T, net::WindowDelta, Value)> {
    let poll = !daemon.has_ws(ctx);
    let pids: Vec<u32> = std::iter::once(daemon.pid()).chain(others.iter().copied()).collect();
    let w = Window::start(&pids);
    let ws = net::ws_clients(ctx, daemon, 1, 1, 0, spec.seconds + 120.0, poll)?;
    net::generate(ctx, spec)?;
    let drained = drain()?;
    let d = w.end();
    let report = ws.finish()?;
    Ok((drained, d, report))
}
