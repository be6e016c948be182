//! Project tasks: `cargo xtask build | run | test | bench | fuzz | demo`.

mod bench;
mod demo;
mod fuzz;
mod kernels;
mod userlands;

use std::{
    path::{Path, PathBuf},
    process::{Command, ExitCode},
};

use anyhow::{bail, Context as _};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Monitor project tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Build the daemon (and, through its build script, the eBPF programs) in release mode.
    Build,
    /// Build, then run the daemon as root with the given arguments
    /// (defaults: XDP on the default-route interface, syslog on UDP 5514,
    /// dashboard on http://127.0.0.1:8080).
    Run {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Fuzz the network-facing parsers (syslog line, TLS ClientHello, HTTP
    /// request line, netfilter fields; cargo-fuzz on nightly), each for a while.
    Fuzz {
        #[arg(long, default_value_t = 300)]
        seconds: u32,
    },
    /// Run every test: host unit and property tests, BPF_PROG_TEST_RUN tests
    /// of the real XDP program, end-to-end tests in network namespaces and a
    /// real browser, the demo's check (`demo --check`), a bounded fuzz run
    /// and the benchmark smoke run. Needs root.
    Test {
        /// Extra arguments for `cargo test` (e.g. a test name filter).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Benchmarks (BENCHMARKS.md): kernel cost per packet, LOG vs XDP
    /// pipelines, syslog ingestion, GeoIP, WebSocket fan-out, memory.
    /// Needs root for most sections. `--quick` is the CI smoke run.
    Bench(bench::Options),
    /// The live dashboard with synthetic traffic from a few hundred public
    /// addresses and a small HTTP responder, in namespaces of its own (needs
    /// root). Ctrl-C stops it; `--check` stops once the API shows traffic.
    Demo(demo::Options),
    /// setup.sh in fresh Debian 11 and 12 chroots (debootstrap --variant=minbase;
    /// everything but the Rust toolchain), run twice (part of `test`). Needs root.
    Userlands,
    /// The kernel matrix: the BPF_PROG_TEST_RUN suites, `monitor
    /// --check-kernel` and an end-to-end check inside QEMU guests running
    /// Debian's 5.10 and 6.1 cloud kernels (part of `test`).
    Kernels(kernels::Options),
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let root = workspace_root();
    match cli.task {
        Task::Build => cargo(&root, &["build", "--release", "-p", "monitor"]),
        Task::Run { args } => {
            cargo(&root, &["build", "--release", "-p", "monitor"])?;
            let binary = root.join("target/release/monitor");
            let mut cmd = if args.iter().any(|a| a == "--no-xdp") { Command::new(&binary) } else { as_root(&binary)? };
            cmd.args(&args);
            status(&mut cmd)
        }
        Task::Test { args } => {
            if !is_root() {
                bail!("the tests load XDP programs and create network namespaces: run as root");
            }
            let mut test = vec!["test", "--workspace", "--exclude", "monitor-ebpf"];
            test.extend(args.iter().map(String::as_str));
            cargo(&root, &test)?;
            if args.is_empty() {
                // The demo's smoke run (about 15 s once built): every part of
                // it starts and the API shows traffic and timed HTTP responses.
                demo::run(&root, &demo::Options::check()?)?;
                fuzz::run(&root, 30)?;
                userlands::run(&root)?;
                kernels::run(&root, &kernels::Options::default())?;
            }
            // The benchmark's smoke run, so the bench cannot rot (skipped
            // when the tests were filtered).
            if args.is_empty() {
                bench::run(&root, bench::Options::smoke())?;
            }
            Ok(())
        }
        Task::Bench(opts) => bench::run(&root, opts),
        Task::Fuzz { seconds } => fuzz::run(&root, seconds),
        Task::Demo(opts) => demo::run(&root, &opts),
        Task::Userlands => userlands::run(&root),
        Task::Kernels(opts) => kernels::run(&root, &opts),
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

fn cargo(root: &Path, args: &[&str]) -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    status(Command::new(cargo).current_dir(root).args(args))
}

fn status(cmd: &mut Command) -> anyhow::Result<()> {
    let status = cmd.status().with_context(|| format!("cannot run {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}

fn is_root() -> bool {
    // Avoids a libc dependency: the effective uid is in /proc/self/status.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("Uid:")).and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// The daemon needs root (or CAP_BPF and CAP_NET_ADMIN): use sudo when we
/// are not root and sudo exists.
fn as_root(binary: &Path) -> anyhow::Result<Command> {
    if is_root() {
        return Ok(Command::new(binary));
    }
    if Command::new("sudo").arg("-V").output().is_ok_and(|o| o.status.success()) {
        let mut cmd = Command::new("sudo");
        cmd.arg(binary);
        return Ok(cmd);
    }
    bail!("the monitor needs root for XDP; run as root (or pass --no-xdp for syslog only)")
}
