//! `cargo xtask bench`: the benchmark suite. Builds the daemon and the bench
//! tools (crate `monitor-bench`), runs each section, prints its tables as it
//! goes and writes the whole report as markdown (for BENCHMARKS.md).
//!
//! Sections: 1 kernel (BPF_PROG_TEST_RUN), 2 pipeline (iptables LOG +
//! rsyslog vs XDP + ring buffer, in namespaces), 3 ingest (syslog parsers,
//! UDP ingest), 4 geo (GeoIP lookups), 5 fanout (WebSocket clients),
//! 6 memory (daemon RSS), 7 history (the SQLite store), 8 agents (two agents
//! through an rsyslog relay to a central), 9 event-cost (daemon CPU per
//! event next to rsyslogd's per line). `--quick` runs all of them at tiny
//! sizes (CI).

mod agents;
mod fanout;
mod geo;
mod history;
mod ingest;
mod kernel;
mod memory;
mod net;
mod pipeline;
mod report;
pub(crate) mod sys;

use std::{
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::{bail, Context as _};

use report::Section;

#[derive(clap::Args)]
pub(crate) struct Options {
    /// Smoke run: every section at tiny sizes (for CI; figures are not meaningful).
    #[arg(long)]
    quick: bool,
    /// Run only these sections (comma separated): kernel, pipeline, ingest,
    /// geo, fanout, memory, history, agents, event-cost (or their numbers 1-9).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Where to write the markdown report (default: target/bench/report.md,
    /// or report-quick.md with --quick).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Build in release mode even with --quick (a full run always does).
    #[arg(long)]
    release: bool,
}

impl Options {
    /// The smoke run `cargo xtask test` ends with.
    pub(crate) fn smoke() -> Options {
        Options { quick: true, only: Vec::new(), out: None, release: false }
    }
}

const SECTIONS: [(&str, u32); 9] = [
    ("kernel", 1),
    ("pipeline", 2),
    ("ingest", 3),
    ("geo", 4),
    ("fanout", 5),
    ("memory", 6),
    ("history", 7),
    ("agents", 8),
    ("event-cost", 9),
];

/// What every section gets.
pub(crate) struct Ctx {
    pub root: PathBuf,
    pub quick: bool,
    pub is_root: bool,
    pub bin_monitor: PathBuf,
    pub bin_bench: PathBuf,
    pub target_dir: PathBuf,
    pub out_dir: PathBuf,
    /// Unique per run, for interface and namespace names.
    pub tag: String,
    /// The command line that reproduces this run (`cargo xtask bench ...`).
    pub invocation: String,
}

impl Ctx {
    /// The command that reruns one section.
    pub(crate) fn command_for(&self, section: &str) -> String {
        format!("cargo xtask bench{} --only {section}", if self.quick { " --quick" } else { "" })
    }
}

fn selected(only: &[String]) -> anyhow::Result<Vec<u32>> {
    if only.is_empty() {
        return Ok(SECTIONS.iter().map(|s| s.1).collect());
    }
    let mut out = Vec::new();
    for o in only {
        let o = o.trim().to_ascii_lowercase();
        match SECTIONS.iter().find(|(name, n)| *name == o || n.to_string() == o) {
            Some((_, n)) => out.push(*n),
            None => bail!("unknown section {o:?}: use {}", SECTIONS.map(|s| s.0).join(", ")),
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => {
            let d = PathBuf::from(d);
            if d.is_absolute() {
                d
            } else {
                root.join(d)
            }
        }
        None => root.join("target"),
    }
}

fn uname_r() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| s.trim().to_owned()).unwrap_or_default()
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, m)| m.trim().to_owned()))
        .unwrap_or_else(|| "unknown CPU".into())
}

fn mem_total_gib() -> f64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:").and_then(|r| r.split_whitespace().next()?.parse::<f64>().ok()))
        .map_or(0.0, |kb| kb / 1024.0 / 1024.0)
}

fn now_utc() -> String {
    sys::run("date", &["-u", "+%Y-%m-%d %H:%M:%S UTC"]).map(|s| s.trim().to_owned()).unwrap_or_default()
}

/// Load average: a busy machine skews timing; the report says so.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

pub(crate) fn run(root: &Path, opts: Options) -> anyhow::Result<()> {
    let sections = selected(&opts.only)?;
    let is_root = super::is_root();
    let release = opts.release || !opts.quick;
    let profile = if release { "release" } else { "dev" };
    let target = target_dir(root);
    let bin_dir = target.join(if release { "release" } else { "debug" });

    eprintln!("==> building the daemon and the bench tools ({profile})");
    super::cargo(root, &["build", "--profile", profile, "-p", "monitor", "-p", "monitor-bench", "--bins"])?;

    let out_dir = target.join("bench");
    std::fs::create_dir_all(&out_dir)?;
    let out_file =
        opts.out.clone().unwrap_or_else(|| out_dir.join(if opts.quick { "report-quick.md" } else { "report.md" }));
    let mut invocation = String::from("cargo xtask bench");
    if opts.quick {
        invocation.push_str(" --quick");
    }
    if opts.release && opts.quick {
        invocation.push_str(" --release");
    }
    if !opts.only.is_empty() {
        invocation.push_str(&format!(" --only {}", opts.only.join(",")));
    }
    let ctx = Ctx {
        root: root.to_owned(),
        quick: opts.quick,
        is_root,
        bin_monitor: bin_dir.join("monitor"),
        bin_bench: bin_dir.join("monitor-bench"),
        target_dir: target.clone(),
        out_dir,
        tag: std::process::id().to_string(),
        invocation,
    };
    let state = ctx.out_dir.join("state");
    sys::set_state_dir(&state);
    if is_root {
        net::cleanup(&state, None);
        let (state, tag) = (state.clone(), ctx.tag.clone());
        sys::on_interrupt(move || net::cleanup(&state, Some(&tag)));
    }

    let nproc = std::thread::available_parallelism().map_or(1, |n| n.get());
    let started = now_utc();
    let mut header = format!(
        "# Monitor benchmark report{}\n\n\
         - Command: `{}`\n- Date: {started}\n- Machine: {nproc} CPUs ({}), {:.1} GiB RAM, kernel {} (`uname -r`)\n\
         - Load average at start: {}\n- Build profile: {profile}\n\n",
        if opts.quick { " (quick smoke run: sizes too small for meaningful figures)" } else { "" },
        ctx.invocation,
        cpu_model(),
        mem_total_gib(),
        uname_r(),
        loadavg(),
    );
    if !is_root {
        header.push_str(
            "Not running as root: the kernel, pipeline, fan-out, memory, agents and event-cost sections are skipped.\n\n",
        );
    }
    println!("{header}");

    let mut done: Vec<Section> = Vec::new();
    for n in sections {
        let (name, _) = SECTIONS[(n - 1) as usize];
        eprintln!("==> section {n}: {name}");
        let t = Instant::now();
        let mut section = match n {
            1 => kernel::run(&ctx),
            2 => pipeline::run(&ctx),
            3 => ingest::run(&ctx),
            4 => geo::run(&ctx),
            5 => fanout::run(&ctx),
            6 => memory::run(&ctx),
            7 => history::run(&ctx),
            8 => agents::run(&ctx),
            _ => pipeline::event_cost(&ctx),
        };
        section.seconds = t.elapsed().as_secs_f64();
        println!("{}", section.markdown());
        done.push(section);
    }

    let mut report = header;
    report.push_str(&format!("- Finished: {} (load average {})\n\n", now_utc(), loadavg()));
    let mut summary = report::Table::new("Targets", &["section", "target", "result"]);
    for s in &done {
        for (what, met) in &s.targets {
            let verdict = match met {
                Some(true) => "PASS",
                Some(false) => "MISS",
                None => "n/a",
            };
            summary.row(vec![format!("{}. {}", s.number, s.title), what.clone(), verdict.into()]);
        }
    }
    report.push_str(&summary.markdown());
    report.push('\n');
    for s in &done {
        report.push_str(&s.markdown());
    }
    std::fs::write(&out_file, &report).with_context(|| format!("writing {}", out_file.display()))?;
    println!("{}", summary.markdown());
    eprintln!("==> report written to {}", out_file.display());

    let failed: Vec<String> =
        done.iter().filter(|s| s.error.is_some()).map(|s| format!("{}. {}", s.number, s.title)).collect();
    if !failed.is_empty() {
        bail!("sections failed: {}", failed.join(", "));
    }
    Ok(())
}

/// Runs a section body, turning an error into the section's error.
pub(crate) fn guarded(mut section: Section, body: impl FnOnce(&mut Section) -> anyhow::Result<()>) -> Section {
    if let Err(e) = body(&mut section) {
        section.error = Some(format!("{e:#}"));
    }
    section
}

/// Skips a section that needs root when not root.
pub(crate) fn needs_root(ctx: &Ctx, section: &mut Section) -> bool {
    if !ctx.is_root {
        section.note("skipped: needs root (run as root / with sudo)");
        return false;
    }
    true
}
