//! Section 1: kernel cost per packet (BPF_PROG_TEST_RUN).

use std::process::Command;

use serde_json::Value;

use super::{
    guarded, needs_root,
    report::{fix, int, Section, Table},
    sys::{self, Proc},
    Ctx,
};

const COUNTING_BUDGET_NS: f64 = 30.0;
const EVENT_BUDGET_NS: f64 = 100.0;

pub(super) fn run(ctx: &Ctx) -> Section {
    let section = Section::new(1, "Kernel cost per packet (BPF_PROG_TEST_RUN)", ctx.command_for("kernel"));
    guarded(section, |s| {
        if !needs_root(ctx, s) {
            return Ok(());
        }
        let (repeat, rounds) = if ctx.quick { (10_000u32, 1u32) } else { (1_000_000, 3) };
        let mut cmd = Command::new(&ctx.bin_bench);
        cmd.args(["kernel", "--repeat", &repeat.to_string(), "--rounds", &rounds.to_string()]);
        let out =
            Proc::spawn("monitor-bench kernel", &mut cmd, Some(&ctx.out_dir.join("kernel.log")))?.wait_output()?;
        let rows: Vec<Value> = out.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        let ns = |config: &str, class: &str| -> f64 {
            rows.iter().find(|r| r["config"] == config && r["class"] == class).map_or(f64::NAN, |r| sys::num(r, "ns"))
        };
        let mut classes: Vec<String> = Vec::new();
        for r in &rows {
            if let Some(c) = r["class"].as_str() {
                if !classes.iter().any(|x| x == c) {
                    classes.push(c.to_owned());
                }
            }
        }
        let mut t = Table::new(
            &format!(
                "ns per packet, median of {rounds} run(s) of {} repeats (overhead over the baseline in brackets)",
                int(f64::from(repeat))
            ),
            &[
                "packet class",
                "baseline",
                "counting only",
                "events, unlimited",
                "events, sampled (defaults)",
                "events emitted (unlimited / sampled)",
            ],
        );
        let (mut worst_count, mut worst_event) = (f64::MIN, f64::MIN);
        for class in &classes {
            let base = ns("baseline", class);
            let cell = |config: &str| {
                let v = ns(config, class);
                format!("{} (+{})", fix(v, 0), fix(v - base, 0))
            };
            let emitted = |config: &str| {
                rows.iter()
                    .find(|r| r["config"] == config && r["class"] == class.as_str())
                    .map(|r| {
                        let p = &r["pipeline"];
                        format!("{}/{}", int(sys::num(p, "submitted")), int(sys::num(p, "counted")))
                    })
                    .unwrap_or_default()
            };
            worst_count = worst_count.max(ns("counting", class) - base);
            worst_event = worst_event.max(ns("events_unlimited", class) - base).max(ns("events_sampled", class) - base);
            t.row(vec![
                class.clone(),
                fix(base, 0),
                cell("counting"),
                cell("events_unlimited"),
                cell("events_sampled"),
                format!("{} / {}", emitted("events_unlimited"), emitted("events_sampled")),
            ]);
        }
        s.tables.push(t);
        s.perf_target(
            ctx.quick,
            format!(
                "counting path within {COUNTING_BUDGET_NS:.0} ns of the baseline (worst class: +{worst_count:.0} ns)"
            ),
            Some(worst_count <= COUNTING_BUDGET_NS),
        );
        s.perf_target(
            ctx.quick,
            format!("event path within {EVENT_BUDGET_NS:.0} ns of the baseline (worst class and mode: +{worst_event:.0} ns)"),
            Some(worst_event <= EVENT_BUDGET_NS),
        );
        s.note(
            "`duration` of BPF_PROG_TEST_RUN is the kernel's own average per run (integer ns) over `repeat` runs of the \
             program on the same frame; it excludes the driver and the stack. baseline = `baseline_xdp` (returns XDP_PASS).",
        );
        s.note(
            "counting only = `KernelConfig { events_enabled: false }`; events, unlimited = no sampling limits and a 64 MiB \
             ring buffer drained between chunks of 99,864 runs (so it never fills); events, sampled = the daemon's defaults \
             (100 events/s per source, 20,000/s in total): the same source repeated, so nearly every event is suppressed. \
             'events emitted' = events submitted / packets counted in the measured runs.",
        );
        Ok(())
    })
}
