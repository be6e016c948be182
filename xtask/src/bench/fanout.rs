//! Section 5: WebSocket fan-out. A steady event stream (syslog datagrams
//! at a fixed rate, each one event) and 1 to 1000 `/ws` clients, one of
//! them deliberately slow (it never reads): delivery latency from the
//! sender's stamp to a probe client's receipt, daemon CPU, what the slow
//! client did to the others.

use std::{process::Command, time::Duration};

use super::{
    guarded,
    net::{self, Daemon, Window},
    report::{fix, int, pct, si, Section, Table},
    sys::{self, num, Proc},
    Ctx,
};

const EVENTS_PER_SEC: u64 = 10_000;
const P99_TARGET_MS: f64 = 250.0;
/// Clients that parse every frame and measure latency (the rest only read).
const PROBES: usize = 4;

struct Run {
    clients: usize,
    slow: usize,
    p50: f64,
    p99: f64,
    max: f64,
}

pub(super) fn run(ctx: &Ctx) -> Section {
    let section = Section::new(5, "WebSocket fan-out", ctx.command_for("fanout"));
    guarded(section, |s| {
        // (clients that read, slow clients)
        let configs: Vec<(usize, usize)> =
            if ctx.quick { vec![(1, 1), (10, 1)] } else { vec![(1, 1), (10, 1), (100, 0), (100, 1), (1000, 1)] };
        let secs = if ctx.quick { 2.0 } else { 8.0 };
        let daemon = Daemon::start(ctx, "fanout", &["--no-xdp"])?;
        if !ctx.quick {
            daemon.wait_geo(Duration::from_secs(30));
        }
        if !daemon.has_ws(ctx) {
            anyhow::bail!("the daemon has no /ws endpoint");
        }
        let mut t = Table::new(
            &format!("{} events/s (syslog datagrams from `monitor-bench syslog-send`, one event each) for {secs} s; \
                      latency = sender's stamp to a probe client's receipt of the update frame; up to {PROBES} probe clients parse \
                      every frame, the others read and discard",
                     si(EVENTS_PER_SEC as f64)),
            &["clients (+slow)", "connected", "events sent", "probe got", "skipped", "latency p50 / p99 / max ms",
              "daemon CPU (cores)", "clients' CPU (cores)", "frames/client", "MB/s per client", "dropped by server", "slow one closed"],
        );
        let mut runs = Vec::new();
        for &(clients, slow) in &configs {
            let label = format!("{clients}{}", if slow > 0 { format!(" (+{slow})") } else { String::new() });
            match one(ctx, &daemon, clients, slow, secs, &mut t, &label) {
                Ok(run) => runs.push(run),
                Err(e) => {
                    let mut row = vec![label, format!("failed: {e:#}")];
                    row.resize(t.headers.len(), "-".into());
                    t.row(row);
                    s.note(format!("{clients} clients: the run failed: {e:#}"));
                }
            }
        }
        s.tables.push(t);
        let find = |c: usize, slow: usize| runs.iter().find(|r| r.clients == c && r.slow == slow);
        if let Some(r) = find(100, 1) {
            s.target(
                format!("p99 < {P99_TARGET_MS:.0} ms at 100 clients with a slow one (p99 {} ms)", fix(r.p99, 1)),
                Some(r.p99 < P99_TARGET_MS),
            );
            if let Some(base) = find(100, 0) {
                s.target(
                    format!(
                        "the slow client does not affect the others (p99 at 100 clients: {} ms with it, {} ms without)",
                        fix(r.p99, 1),
                        fix(base.p99, 1)
                    ),
                    Some(r.p99 <= base.p99 * 1.5 + 20.0),
                );
            }
        } else {
            s.target(format!("p99 < {P99_TARGET_MS:.0} ms at 100 clients"), None);
        }
        s.note(
            "The slow client completes the handshake and never reads; the daemon gives up on a client whose sends \
             block for 5 s or that falls behind for 50 update frames (10 s). Clients, sender and daemon share the machine: \
             the clients' CPU column is the bench's own WebSocket readers (one thread per client).",
        );
        s.note("Update frames go out every 200 ms, so latency includes up to 200 ms of batching by design (p50 about 100 ms).");
        Ok(())
    })
}

fn one(
    ctx: &Ctx,
    daemon: &Daemon,
    clients: usize,
    slow: usize,
    secs: f64,
    t: &mut Table,
    label: &str,
) -> anyhow::Result<Run> {
    let probes = PROBES.min(clients);
    let ws = net::ws_clients(ctx, daemon, clients + slow, probes, slow, secs + 120.0, false)?;
    let connected = num(&ws.info, "connected");
    // Let the snapshots (up to 500 recent events each) go out first.
    sys::sleep(1.0 + clients as f64 / 250.0);
    let mut w = Window::start(&[daemon.pid(), ws.proc.pid()]);
    let mut cmd = Command::new(&ctx.bin_bench);
    cmd.args(["syslog-send", "--target", &format!("127.0.0.1:{}", daemon.syslog_port)]).args([
        "--rate",
        &EVENTS_PER_SEC.to_string(),
        "--seconds",
        &secs.to_string(),
        "--sources",
        "4096",
    ]);
    let p = Proc::spawn("monitor-bench syslog-send", &mut cmd, Some(&ctx.out_dir.join("syslog-send.log")))?;
    let sender = p.pid();
    w.watch(sender);
    let (_, out) = p.wait_output_with(|| sys::proc_cpu(sender))?;
    let g = sys::last_json(&out)?;
    // The daemon may be too busy to answer (1000 clients): best effort.
    let _ = daemon.settle(|v| num(v, "events/received"), Duration::from_millis(1000), Duration::from_secs(20));
    // Updates go out every 200 ms: let the last ones arrive.
    sys::sleep(0.6);
    let d = w.end();
    let r = ws.finish()?;
    let sent = num(&g, "sent");
    let (du, ds) = d.procs[0];
    let (cu, cs) = d.procs[1];
    let lat = &r["latency_ms"];
    let probe_got = num(&r, "probe_events");
    let per_probe = probe_got / probes.max(1) as f64;
    let frames_per_client = num(&r, "frames") / (clients.max(1)) as f64;
    let run = Run { clients, slow, p50: num(lat, "p50"), p99: num(lat, "p99"), max: num(lat, "max") };
    t.row(vec![
        label.to_owned(),
        int(connected),
        int(sent),
        format!("{} ({})", int(per_probe), pct(per_probe, sent)),
        int(num(&r, "skipped")),
        format!("{} / {} / {}", fix(run.p50, 1), fix(run.p99, 1), fix(run.max, 1)),
        fix((du + ds) / d.seconds, 2),
        fix((cu + cs) / d.seconds, 2),
        int(frames_per_client),
        fix(num(&r, "bytes_per_client") / d.seconds / 1e6, 2),
        int(num(&r, "disconnected")),
        if slow > 0 { (if num(&r, "slow_disconnected") > 0.0 { "yes" } else { "no" }).into() } else { "-".into() },
    ]);
    Ok(run)
}
