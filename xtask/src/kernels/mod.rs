//! The kernel matrix (`cargo xtask kernels`): boots each Debian kernel of
//! [`debian::MATRIX`] in QEMU and runs inside it the BPF_PROG_TEST_RUN
//! suites, `monitor --check-kernel` and an end-to-end check of the daemon on
//! a veth pair; prints a per-kernel table and writes it to
//! target/kernel-matrix.md.
//!
//! - debian.rs: which package, download, SHA256, unpack (target/kernels/)
//! - initramfs.rs: the guest's files (busybox, binaries, libraries, modules)
//! - guest/: the guest's scripts: init.sh (PID 1: the steps and their
//!   console markers), suite.sh (one test_run suite), e2e.sh
//! - qemu.rs: the boot, with a deadline
//! - report.rs: the console parsed, the checks, the table

mod debian;
mod initramfs;
mod qemu;
mod report;

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _};

#[derive(clap::Args, Clone)]
pub(crate) struct Options {
    /// Only this kernel series (repeatable): 5.10 (bullseye) or 6.1 (bookworm).
    #[arg(long = "kernel", value_name = "SERIES")]
    pub kernels: Vec<String>,
    /// Virtual CPUs per guest (QEMU multi-threaded TCG).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub cpus: u32,
    /// Guest memory in MiB.
    #[arg(long, default_value_t = 1536, value_parser = clap::value_parser!(u32).range(512..=65536))]
    pub memory: u32,
    /// Deadline for one guest, boot to power-off, in seconds.
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(10..))]
    pub timeout: u64,
    /// Deadline for one step inside the guest, in seconds.
    #[arg(long, default_value_t = 240, value_parser = clap::value_parser!(u64).range(5..))]
    pub step_timeout: u64,
    /// Echo the whole serial console, not just the step markers.
    #[arg(long, short)]
    pub verbose: bool,
    /// One guest after the other (default: all at once).
    #[arg(long)]
    pub sequential: bool,
    /// Do not run cargo: use the newest test binaries and daemon already
    /// in target/debug.
    #[arg(long)]
    pub no_build: bool,
}

impl Default for Options {
    /// The defaults of the command line (what `cargo xtask test` runs).
    fn default() -> Self {
        #[derive(clap::Parser)]
        struct Defaults {
            #[command(flatten)]
            options: Options,
        }
        <Defaults as clap::Parser>::parse_from(["kernels"]).options
    }
}

/// What the guests run, built on the host.
struct Artefacts {
    suites: Vec<(String, PathBuf)>,
    daemon: PathBuf,
}

const SUITES: &[&str] = &["xdp_test_run", "tc_test_run"];

/// Builds the test binaries and the daemon (debug, as `cargo test` does)
/// and finds them in cargo's JSON messages.
fn build(root: &Path) -> anyhow::Result<Artefacts> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut args = vec!["test", "--no-run", "--message-format=json", "-p", "monitor"];
    for s in SUITES {
        args.extend(["--test", s]);
    }
    let out = Command::new(&cargo)
        .current_dir(root)
        .args(&args)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run {cargo} {}", args.join(" ")))?;
    if !out.status.success() {
        bail!("{cargo} {} failed: {}", args.join(" "), out.status);
    }
    let mut suites = Vec::new();
    let mut daemon = None;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        let Some(exe) = msg["executable"].as_str() else { continue };
        let name = msg["target"]["name"].as_str().unwrap_or("");
        let kinds = msg["target"]["kind"].as_array().cloned().unwrap_or_default();
        if kinds.iter().any(|k| k == "test") && SUITES.contains(&name) {
            suites.push((name.to_owned(), PathBuf::from(exe)));
        } else if kinds.iter().any(|k| k == "bin") && name == "monitor" {
            daemon = Some(PathBuf::from(exe));
        }
    }
    suites.sort_by_key(|(name, _)| SUITES.iter().position(|s| s == name));
    if suites.len() != SUITES.len() {
        bail!("cargo built {:?}, expected the test binaries {SUITES:?}", suites);
    }
    // Integration tests build the daemon too; it is reported as fresh only
    // when it was rebuilt, so fall back to where cargo puts it.
    let daemon = daemon.unwrap_or_else(|| root.join("target/debug/monitor"));
    if !daemon.exists() {
        bail!("the daemon binary {} does not exist", daemon.display());
    }
    Ok(Artefacts { suites, daemon })
}

/// The newest `<suite>-<hash>` executables in target/debug/deps and
/// target/debug/monitor.
fn prebuilt(root: &Path) -> anyhow::Result<Artefacts> {
    let deps = root.join("target/debug/deps");
    let mut suites = Vec::new();
    for suite in SUITES {
        let newest = fs::read_dir(&deps)
            .with_context(|| format!("cannot list {}", deps.display()))?
            .flatten()
            .filter(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_prefix(suite)
                    .and_then(|r| r.strip_prefix('-'))
                    .is_some_and(|h| h.chars().all(|c| c.is_ascii_hexdigit()))
            })
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .max()
            .with_context(|| format!("no {suite} test binary in {} (build without --no-build)", deps.display()))?;
        suites.push(((*suite).to_owned(), newest.1));
    }
    let daemon = root.join("target/debug/monitor");
    if !daemon.exists() {
        bail!("{} does not exist (build without --no-build)", daemon.display());
    }
    Ok(Artefacts { suites, daemon })
}

/// Holds target/kernels/.lock: the guests' work directories are shared, and
/// two matrices at once would also halve each other's CPU.
fn lock(cache: &Path) -> anyhow::Result<fs::File> {
    use std::os::fd::AsRawFd as _;
    fs::create_dir_all(cache).with_context(|| format!("cannot create {}", cache.display()))?;
    let path = cache.join(".lock");
    let file = fs::File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
    // SAFETY: flock on a file descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        eprintln!("kernels: waiting for another `cargo xtask kernels` run ({} is locked)", path.display());
        // SAFETY: as above.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            bail!("cannot lock {}: {}", path.display(), std::io::Error::last_os_error());
        }
    }
    Ok(file)
}

pub(crate) fn run(root: &Path, opts: &Options) -> anyhow::Result<()> {
    let started = Instant::now();
    let series: Vec<&debian::Series> = if opts.kernels.is_empty() {
        debian::MATRIX.iter().collect()
    } else {
        opts.kernels
            .iter()
            .map(|k| {
                debian::MATRIX.iter().find(|s| s.name == k).with_context(|| {
                    let known: Vec<&str> = debian::MATRIX.iter().map(|s| s.name).collect();
                    format!("unknown kernel {k:?}: the matrix has {known:?}")
                })
            })
            .collect::<anyhow::Result<_>>()?
    };
    qemu::qemu_binary()?;
    let cache = root.join("target/kernels");
    let artefacts = if opts.no_build { prebuilt(root)? } else { build(root)? };
    let build_time = started.elapsed();
    let _lock = lock(&cache)?;
    let guests_started = Instant::now();
    let lock_wait = guests_started - started - build_time;

    // The guests run at the same time (QEMU's TCG threads share the CPUs):
    // the matrix takes as long as its slowest kernel.
    let one = |s: &debian::Series| {
        run_one(s, &cache, &artefacts, opts)
            .with_context(|| format!("kernel {} ({})", s.name, s.release))
            .unwrap_or_else(|e| report::Summary {
                series: s.release.to_owned(),
                package: "-".into(),
                kernel: s.name.to_owned(),
                boot: None,
                kernel_boot_ms: None,
                total: Duration::ZERO,
                steps: Vec::new(),
                programs: Vec::new(),
                check_kernel_note: Some("not run".into()),
                budget: None,
                failures: vec![format!("{e:#}")],
            })
    };
    let summaries: Vec<report::Summary> = if opts.sequential {
        series.iter().map(|s| one(s)).collect()
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = series.iter().map(|s| scope.spawn(|| one(s))).collect();
            handles.into_iter().map(|h| h.join()).collect::<Result<Vec<_>, _>>()
        })
        .map_err(|_| anyhow::anyhow!("a kernel's thread panicked"))?
    };
    let failed: Vec<&str> = summaries.iter().filter(|k| !k.failures.is_empty()).map(|k| k.kernel.as_str()).collect();

    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let setup = format!(
        "QEMU TCG, {} vCPU(s) and {} MiB per guest, {}, on a host with {} CPUs",
        opts.cpus,
        opts.memory,
        if opts.sequential { "one guest at a time" } else { "the guests at the same time" },
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let table = report::markdown(&summaries, &date, &setup);
    let md = root.join("target/kernel-matrix.md");
    fs::write(&md, &table).with_context(|| format!("cannot write {}", md.display()))?;
    eprintln!("\n{table}");
    eprintln!(
        "kernels: the guests took {:.0} s (after {:.0} s of building{}); table in {}",
        guests_started.elapsed().as_secs_f64(),
        build_time.as_secs_f64(),
        if lock_wait.as_secs() > 0 {
            format!(" and {:.0} s waiting for another run", lock_wait.as_secs_f64())
        } else {
            String::new()
        },
        md.display()
    );
    for k in &summaries {
        if !k.failures.is_empty() {
            eprintln!("\n=== {} failures:", k.kernel);
            for f in &k.failures {
                eprintln!("{f}\n");
            }
        }
    }
    if !failed.is_empty() {
        bail!("the kernel matrix failed on {} (details above; consoles in {})", failed.join(", "), cache.display());
    }
    Ok(())
}

fn run_one(
    series: &debian::Series,
    cache: &Path,
    artefacts: &Artefacts,
    opts: &Options,
) -> anyhow::Result<report::Summary> {
    let package = debian::resolve(series, cache)?;
    eprintln!("kernels: {} -> {} {}", series.name, package.name, package.version);
    let kernel = debian::fetch(&package, cache)?;
    let work = cache.join(format!("run-{}", series.name));
    fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;
    let initrd = work.join("initramfs.cpio");
    let payload = initramfs::Payload { suites: artefacts.suites.clone(), daemon: artefacts.daemon.clone() };
    let size = initramfs::build(&kernel, &payload, &work, &initrd)?;
    eprintln!(
        "kernels: {} initramfs {} MB; booting {} in QEMU (TCG, {} CPUs)",
        series.name,
        size / 1_000_000,
        kernel.release,
        opts.cpus
    );

    let outcome = qemu::run(&qemu::Boot {
        vmlinuz: &kernel.vmlinuz,
        initramfs: &initrd,
        cpus: opts.cpus,
        memory_mib: opts.memory,
        timeout: Duration::from_secs(opts.timeout),
        step_timeout: Duration::from_secs(opts.step_timeout),
        console_log: work.join("console.log"),
        label: series.name.to_owned(),
        verbose: opts.verbose,
    })?;
    let run = report::parse(&outcome.console);
    let mut failures = Vec::new();
    let console_tail = || report::excerpt(&outcome.console, 60).join("\n");
    if outcome.timed_out {
        failures.push(format!("the guest did not power off within {} s; console:\n{}", opts.timeout, console_tail()));
    } else if run.init_uptime_ms.is_none() {
        failures.push(format!(
            "the guest never reached init (QEMU {:?}); console:\n{}",
            outcome.status,
            console_tail()
        ));
    } else if run.done_uptime_ms.is_none() {
        failures.push(format!("the guest stopped before its last step; console:\n{}", console_tail()));
    }
    let mut expected: Vec<String> = vec!["modules".into()];
    expected.extend(artefacts.suites.iter().map(|(n, _)| n.clone()));
    expected.extend(["check_kernel".into(), "e2e".into()]);
    let check_kernel_missing = run.check_kernel_missing();
    for name in &expected {
        let Some(step) = run.step(name) else {
            if run.init_uptime_ms.is_some() && !outcome.timed_out {
                failures.push(format!("step {name}: did not run"));
            }
            continue;
        };
        if name == "check_kernel" && check_kernel_missing {
            continue;
        }
        if step.rc != Some(0) {
            let how = match step.rc {
                None => "did not finish".to_owned(),
                // SIGKILL: from `timeout -s KILL`, or the guest's OOM killer.
                Some(137) if step.ms.unwrap_or(0) + 1000 >= opts.step_timeout * 1000 => {
                    format!("killed at the step timeout ({} s)", opts.step_timeout)
                }
                Some(137) => "killed (SIGKILL before the step timeout: out of memory?)".to_owned(),
                Some(rc) => format!("exit status {rc}"),
            };
            failures.push(format!(
                "step {name} on {}: {how}; output:\n{}",
                run.kernel,
                report::excerpt(&step.output, 40).join("\n")
            ));
        }
    }
    // A failed e2e step is reported above with its output.
    if run.step("e2e").is_some_and(|s| s.rc == Some(0)) {
        let problems = report::check_e2e(&run);
        if !problems.is_empty() {
            let output = run.step("e2e").map(|s| report::excerpt(&s.output, 40).join("\n")).unwrap_or_default();
            failures.push(format!("e2e on {}: {}\noutput:\n{output}", run.kernel, problems.join("; ")));
        }
    }
    let note = check_kernel_missing.then(|| "monitor has no --check-kernel yet".to_owned());
    if let Some(n) = &note {
        eprintln!("kernels: {}: {n} (not counted as a failure)", series.name);
    }
    Ok(report::Summary {
        series: series.release.to_owned(),
        package: format!("{} {}", package.name, package.version),
        kernel: if run.kernel.is_empty() { kernel.release.clone() } else { run.kernel.clone() },
        boot: outcome.boot,
        kernel_boot_ms: run.init_uptime_ms,
        total: outcome.elapsed,
        steps: run.steps.iter().map(|s| (s.name.clone(), s.rc, s.ms)).collect(),
        programs: run.program_checks(),
        check_kernel_note: note,
        budget: run.insn_budget(),
        failures,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn defaults_are_the_command_line_defaults() {
        let o = super::Options::default();
        assert_eq!((o.cpus, o.memory, o.timeout, o.step_timeout), (2, 1536, 600, 240));
        assert!(o.kernels.is_empty() && !o.sequential && !o.no_build && !o.verbose);
    }
}
