//! Section 3: syslog ingestion. (a) The parsers alone, with criterion, on
//! the real line formats (monitor-common's golden captures); (b) the
//! daemon's UDP listener at rising datagram rates, for the highest rate it
//! takes without losing a datagram.

use std::{path::Path, process::Command, time::Duration};

use serde_json::Value;

use super::{
    guarded,
    net::{Daemon, Window},
    report::{fix, int, pct, si, Section, Table},
    sys::{self, num, Proc},
    Ctx,
};

const PARSE_TARGET: f64 = 1_000_000.0;
const UDP_TARGET: u64 = 200_000;

pub(super) fn run(ctx: &Ctx) -> Section {
    let section = Section::new(3, "Syslog ingestion", ctx.command_for("ingest"));
    guarded(section, |s| {
        parsers(ctx, s)?;
        udp(ctx, s)
    })
}

/// Every `benchmark.json` criterion wrote under `dir`.
fn criterion_results(dir: &Path, out: &mut Vec<(String, String, f64, f64)>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.filter_map(Result::ok) {
        let path = e.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "new") {
                let bench: Option<Value> =
                    std::fs::read(path.join("benchmark.json")).ok().and_then(|b| serde_json::from_slice(&b).ok());
                let est: Option<Value> =
                    std::fs::read(path.join("estimates.json")).ok().and_then(|b| serde_json::from_slice(&b).ok());
                if let (Some(b), Some(est)) = (bench, est) {
                    let elements = num(&b, "throughput/Elements");
                    let mean_ns = num(&est, "mean/point_estimate");
                    out.push((
                        b["group_id"].as_str().unwrap_or("").to_owned(),
                        b["function_id"].as_str().unwrap_or("").to_owned(),
                        elements,
                        mean_ns,
                    ));
                }
            } else {
                criterion_results(&path, out);
            }
        }
    }
}

fn parsers(ctx: &Ctx, s: &mut Section) -> anyhow::Result<()> {
    let crit_dir = ctx.target_dir.join("criterion");
    for group in ["syslog+netfilter", "syslog_header"] {
        let _ = std::fs::remove_dir_all(crit_dir.join(group));
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&ctx.root).args(["bench", "-p", "monitor-bench", "--bench", "syslog_parse"]);
    if ctx.quick {
        // The smoke run: the test profile's build, a few samples.
        cmd.args([
            "--profile",
            "dev",
            "--",
            "--warm-up-time",
            "0.2",
            "--measurement-time",
            "0.5",
            "--sample-size",
            "10",
        ]);
    } else {
        cmd.args(["--", "--warm-up-time", "1", "--measurement-time", "3"]);
    }
    eprintln!("    {cmd:?}");
    Proc::spawn("cargo bench", &mut cmd, Some(&ctx.out_dir.join("criterion.log")))?.wait_output()?;
    let mut results = Vec::new();
    criterion_results(&crit_dir, &mut results);
    results.sort_by(|a, b| (a.0.as_str(), a.1 != "all", a.1.as_str()).cmp(&(b.0.as_str(), b.1 != "all", b.1.as_str())));
    let mut t = Table::new(
        &format!(
            "Parser throughput, one core (criterion mean; `cargo bench -p monitor-bench --bench syslog_parse`{})",
            if ctx.quick { " in the dev profile" } else { "" }
        ),
        &["what", "line set", "lines", "ns/line", "lines/s"],
    );
    let mut all_rate = f64::NAN;
    for (group, function, elements, mean_ns) in &results {
        let per_line = mean_ns / elements.max(1.0);
        let rate = 1e9 / per_line;
        if group == "syslog+netfilter" && function == "all" {
            all_rate = rate;
        }
        let what = if group == "syslog_header" { "syslog header only" } else { "header + iptables LOG fields" };
        t.row(vec![what.into(), function.clone(), int(*elements), fix(per_line, 0), si(rate)]);
    }
    if results.is_empty() {
        anyhow::bail!("criterion wrote no results under {}", crit_dir.display());
    }
    s.tables.push(t);
    s.perf_target(
        ctx.quick,
        format!(
            "parser ≥ {} lines/s per core on the real line formats (all golden lines, header + LOG fields: {})",
            si(PARSE_TARGET),
            si(all_rate)
        ),
        all_rate.is_finite().then_some(all_rate >= PARSE_TARGET),
    );
    s.note(
        "Line sets are monitor-common/tests/golden/*.txt: captures of rsyslog's forward formats (RFC 3164 traditional, \
         RFC 5424) and journald/kern.log text of real iptables LOG lines; 'all' mixes every line of every capture.",
    );
    Ok(())
}

fn udp(ctx: &Ctx, s: &mut Section) -> anyhow::Result<()> {
    let rates: Vec<u64> = if ctx.quick { vec![10_000] } else { vec![50_000, 100_000, 200_000, 300_000, 400_000, 0] };
    let secs = if ctx.quick { 1.0 } else { 4.0 };
    let daemon = Daemon::start(ctx, "ingest", &["--no-xdp"])?;
    if !ctx.quick {
        daemon.wait_geo(Duration::from_secs(30));
    }
    let public = !ctx.quick;
    let mut t = Table::new(
        &format!("UDP ingest: `monitor-bench syslog-send` (sendmmsg batches, {}) -> daemon `--no-xdp` on 127.0.0.1, {secs} s per rate",
                 if public { "4,096 public sources, so every event is geolocated (cache warm after the first pass)" } else { "4,096 sources" }),
        &["offered", "sent/s", "received", "lost", "socket drops", "drops the daemon reported", "queue drops", "events", "daemon CPU s", "daemon CPU µs/line", "sender CPU s"],
    );
    let mut zero_loss_max = 0.0f64;
    let mut at_target: Option<bool> = None;
    let mut drops_reported_exactly = true;
    for &rate in &rates {
        let before =
            daemon.settle(|v| num(v, "syslog/received"), Duration::from_millis(800), Duration::from_secs(10))?;
        let drops0 = sys::udp_socket_drops(daemon.syslog_port);
        let w = Window::start(&[daemon.pid()]);
        let mut cmd = Command::new(&ctx.bin_bench);
        cmd.args(["syslog-send", "--target", &format!("127.0.0.1:{}", daemon.syslog_port)]).args([
            "--rate",
            &rate.to_string(),
            "--seconds",
            &secs.to_string(),
            "--sources",
            "4096",
        ]);
        if public {
            cmd.arg("--public");
        }
        let p = Proc::spawn("monitor-bench syslog-send", &mut cmd, Some(&ctx.out_dir.join("syslog-send.log")))?;
        let sender_pid = p.pid();
        let mut w = w;
        w.watch(sender_pid);
        // The sender's CPU must be read before it is reaped.
        let out = p.wait_output_with(|| sys::proc_cpu(sender_pid))?;
        let (sender_cpu, out) = out;
        let g = sys::last_json(&out)?;
        let after =
            daemon.settle(|v| num(v, "syslog/received"), Duration::from_millis(1000), Duration::from_secs(20))?;
        let d = w.end();
        let delta = |k: &str| num(&after, k) - num(&before, k);
        let sent = num(&g, "sent");
        let received = delta("syslog/received");
        let lost = sent - received;
        let sock = sys::udp_socket_drops(daemon.syslog_port).saturating_sub(drops0) as f64;
        let reported = delta("syslog/socket_drops");
        drops_reported_exactly &= reported == sock;
        let (du, ds) = d.procs[0];
        let sent_rate = sent / num(&g, "elapsed_s").max(1e-9);
        if lost <= 0.0 {
            zero_loss_max = zero_loss_max.max(sent_rate);
        }
        if rate == UDP_TARGET {
            at_target = Some(lost <= 0.0 && sent_rate >= UDP_TARGET as f64 * 0.98);
        }
        t.row(vec![
            if rate == 0 { "max".into() } else { si(rate as f64) },
            int(sent_rate),
            int(received),
            format!("{} ({})", int(lost), pct(lost, sent)),
            int(sock),
            int(reported),
            int(delta("events/dropped_queue_full")),
            int(delta("events/received")),
            fix(du + ds, 2),
            fix((du + ds) / received.max(1.0) * 1e6, 2),
            fix(sender_cpu.0 + sender_cpu.1, 2),
        ]);
    }
    s.tables.push(t);
    s.note(format!(
        "Highest offered rate with zero loss (every datagram received and parsed): {} datagrams/s. 'socket drops' is the \
         drops column of /proc/net/udp for the daemon's socket (its 32 MiB receive buffer overflowed: the daemon did not \
         read fast enough); 'drops the daemon reported' is its own syslog.socket_drops (SO_MEMINFO). Sender and daemon \
         share the machine's {} cores.",
        int(zero_loss_max),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    ));
    s.note(
        "The daemon's UDP listener (monitor/src/sources/syslog/udp.rs) is a thread of its own per socket that takes up to 64 \
         datagrams per recvmmsg call.",
    );
    s.target("the daemon reports exactly the datagrams the kernel dropped on its socket", Some(drops_reported_exactly));
    s.target(
        format!("zero userspace loss at {} datagrams/s", si(UDP_TARGET as f64)),
        if ctx.quick { None } else { at_target },
    );
    Ok(())
}
