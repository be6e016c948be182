//! Processes, /proc readings and sysctls for the benchmark (namespaces,
//! the daemon, polling and HTTP are the test kit's: `monitor-testkit`).

use std::{
    io::{BufRead as _, BufReader, Read as _},
    path::{Path, PathBuf},
    process::{Child, ChildStdout, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _};
use serde_json::Value;

/// Runs a command; fails with its output if it fails.
pub(crate) fn run(cmd: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(cmd).args(args).output().with_context(|| format!("cannot run {cmd}"))?;
    if !out.status.success() {
        bail!(
            "{cmd} {} failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub(crate) fn have(cmd: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
                .any(|d| d.join(cmd).is_file())
        })
        .unwrap_or(false)
}

pub(crate) fn sleep(secs: f64) {
    std::thread::sleep(Duration::from_secs_f64(secs));
}

pub(crate) fn signal(pid: u32, sig: i32) {
    // SAFETY: kill with a pid we started and a valid signal number.
    unsafe { libc::kill(pid as i32, sig) };
}

// ---------------------------------------------------------------- leftovers

/// Where spawned processes and changed sysctls are recorded, so a later
/// run (or this run's interrupt handler) can undo them.
static STATE_DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

pub(crate) fn set_state_dir(dir: &Path) {
    let _ = std::fs::create_dir_all(dir.join("pids"));
    let _ = std::fs::create_dir_all(dir.join("sysctl"));
    let _ = STATE_DIR.set(dir.to_owned());
}

/// A process's start time (field 22 of /proc/PID/stat): with the pid, it
/// identifies the process (pids are reused), and survives exec.
fn start_time(pid: u32) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    text.rsplit_once(')').and_then(|(_, r)| r.split_whitespace().nth(19)).unwrap_or_default().to_owned()
}

pub(crate) fn record_pid(pid: u32) {
    if let Some(dir) = STATE_DIR.get() {
        let _ = std::fs::write(
            dir.join("pids").join(pid.to_string()),
            format!("{}\n{}", std::process::id(), start_time(pid)),
        );
    }
}

pub(crate) fn forget_pid(pid: u32) {
    if let Some(dir) = STATE_DIR.get() {
        let _ = std::fs::remove_file(dir.join("pids").join(pid.to_string()));
    }
}

/// Kills processes recorded by a run that is gone (or, with `own`, by this
/// run), if they are still the same processes.
pub(crate) fn kill_recorded(dir: &Path, own: bool) {
    let Ok(entries) = std::fs::read_dir(dir.join("pids")) else { return };
    for e in entries.filter_map(Result::ok) {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        let (owner, started) = text.split_once('\n').unwrap_or(("", ""));
        let owner_alive = owner.parse::<u32>().is_ok_and(|o| Path::new(&format!("/proc/{o}")).exists());
        let mine = owner == std::process::id().to_string();
        if (own && !mine) || (!own && owner_alive) {
            continue;
        }
        if !started.is_empty() && start_time(pid) == started {
            signal(pid, libc::SIGKILL);
        }
        let _ = std::fs::remove_file(e.path());
    }
}

/// Restores sysctls a run changed and did not restore (it was killed).
pub(crate) fn restore_saved_sysctls(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir.join("sysctl")) else { return };
    for e in entries.filter_map(Result::ok) {
        let key = e.file_name().to_string_lossy().into_owned();
        if let Ok(v) = std::fs::read_to_string(e.path()) {
            let _ = sysctl_set(&key, v.trim());
        }
        let _ = std::fs::remove_file(e.path());
    }
}

static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// On SIGINT/SIGTERM/SIGHUP: run `cleanup` on a watcher thread and exit
/// (Drop impls do not run when a signal ends the process).
pub(crate) fn on_interrupt(cleanup: impl Fn() + Send + 'static) {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic (async-signal-safe).
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
    std::thread::spawn(move || loop {
        if INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
            eprintln!("xtask bench: interrupted, cleaning up");
            cleanup();
            std::process::exit(130);
        }
        std::thread::sleep(Duration::from_millis(100));
    });
}

/// A child process that is stopped (SIGTERM, then SIGKILL) when dropped.
pub(crate) struct Proc {
    pub name: String,
    child: Option<Child>,
    pub log: Option<PathBuf>,
}

impl Proc {
    /// Spawns with stdout piped (for `read_line`) and stderr to `log`.
    pub(crate) fn spawn(name: &str, cmd: &mut Command, log: Option<&Path>) -> anyhow::Result<Proc> {
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
        match log {
            Some(path) => cmd.stderr(std::fs::File::create(path)?),
            None => cmd.stderr(Stdio::inherit()),
        };
        let child = cmd.spawn().with_context(|| format!("cannot start {name} ({cmd:?})"))?;
        // (`ip netns exec` execs the program: the pid stays the same.)
        record_pid(child.id());
        Ok(Proc { name: name.to_owned(), child: Some(child), log: log.map(Path::to_path_buf) })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    pub(crate) fn stdout(&mut self) -> Option<ChildStdout> {
        self.child.as_mut().and_then(|c| c.stdout.take())
    }

    pub(crate) fn log_tail(&self) -> String {
        let text = self.log.as_ref().and_then(|p| std::fs::read_to_string(p).ok()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// Waits for the process to end and returns its whole stdout.
    pub(crate) fn wait_output(mut self) -> anyhow::Result<String> {
        let mut child = self.child.take().context("no child")?;
        drop(child.stdin.take());
        let mut out = String::new();
        if let Some(mut s) = child.stdout.take() {
            s.read_to_string(&mut out)?;
        }
        let status = child.wait()?;
        forget_pid(child.id());
        if !status.success() {
            bail!("{} failed ({status}): {}\n{}", self.name, out.trim(), self.log_tail());
        }
        Ok(out)
    }

    /// Like `wait_output`, calling `before_reap` once the output has ended
    /// but before the process is reaped (its /proc entry still readable).
    pub(crate) fn wait_output_with<T>(mut self, before_reap: impl FnOnce() -> T) -> anyhow::Result<(T, String)> {
        let mut child = self.child.take().context("no child")?;
        drop(child.stdin.take());
        let mut out = String::new();
        if let Some(mut s) = child.stdout.take() {
            s.read_to_string(&mut out)?;
        }
        // Output closed: the process is exiting; give it a moment to become a zombie.
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            let state = std::fs::read_to_string(format!("/proc/{}/stat", child.id())).unwrap_or_default();
            if state.rsplit_once(')').is_none_or(|(_, r)| r.trim_start().starts_with('Z')) {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let value = before_reap();
        let status = child.wait()?;
        forget_pid(child.id());
        if !status.success() {
            bail!("{} failed ({status}): {}\n{}", self.name, out.trim(), self.log_tail());
        }
        Ok((value, out))
    }

    pub(crate) fn close_stdin(&mut self) {
        if let Some(c) = self.child.as_mut() {
            drop(c.stdin.take());
        }
    }

    pub(crate) fn wait(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        let mut child = self.child.take().context("no child")?;
        let status = child.wait()?;
        forget_pid(child.id());
        Ok(status)
    }

    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            forget_pid(child.id());
            drop(child.stdin.take());
            signal(child.id(), libc::SIGTERM);
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(10) {
                if child.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The last line of a tool's JSON output.
pub(crate) fn last_json(out: &str) -> anyhow::Result<Value> {
    let line = out.lines().rev().find(|l| l.trim_start().starts_with('{')).context("no JSON output")?;
    Ok(serde_json::from_str(line)?)
}

/// A tool that printed its `ready {...}` line and runs on until its stdin
/// closes (or its own time limit).
pub(crate) struct Ready {
    pub proc: Proc,
    reader: BufReader<ChildStdout>,
    pub info: Value,
}

impl Ready {
    pub(crate) fn start(mut proc: Proc) -> anyhow::Result<Ready> {
        let stdout = proc.stdout().context("stdout already taken")?;
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let json = line
            .strip_prefix("ready ")
            .with_context(|| format!("{}: unexpected output {line:?}\n{}", proc.name, proc.log_tail()))?;
        Ok(Ready { info: serde_json::from_str(json.trim())?, proc, reader })
    }

    /// Closes stdin (asking the tool to finish) and returns its result line.
    pub(crate) fn finish(mut self) -> anyhow::Result<Value> {
        self.proc.close_stdin();
        let mut out = String::new();
        self.reader.read_to_string(&mut out)?;
        let status = self.proc.wait()?;
        if !status.success() {
            bail!("{} failed ({status}):\n{}", self.proc.name, self.proc.log_tail());
        }
        last_json(&out)
    }
}

// ---------------------------------------------------------------- CPU, memory

pub(crate) fn clk_tck() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// Machine-wide CPU time in seconds, from the first line of /proc/stat.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct CpuTimes {
    pub user: f64,
    pub system: f64,
    pub irq: f64,
    pub softirq: f64,
    pub idle: f64,
}

impl CpuTimes {
    pub(crate) fn now() -> CpuTimes {
        let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let f: Vec<f64> = text
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .map(|x| x.parse().unwrap_or(0.0))
            .collect();
        let g = |i: usize| f.get(i).copied().unwrap_or(0.0) / clk_tck();
        CpuTimes { user: g(0) + g(1), system: g(2), idle: g(3) + g(4), irq: g(5), softirq: g(6) }
    }

    pub(crate) fn since(&self, before: &CpuTimes) -> CpuTimes {
        CpuTimes {
            user: self.user - before.user,
            system: self.system - before.system,
            irq: self.irq - before.irq,
            softirq: self.softirq - before.softirq,
            idle: self.idle - before.idle,
        }
    }
}

/// (utime, stime) of a process in seconds, all threads.
pub(crate) fn proc_cpu(pid: u32) -> (f64, f64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the ")" that ends the command name: state is field 3.
    let rest = text.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let get = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0) / clk_tck();
    // utime is field 14, stime 15: indexes 11 and 12 after the state (field 3).
    (get(11), get(12))
}

/// kB values of a process from /proc/PID/status.
pub(crate) fn proc_status_kb(pid: u32, key: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(':')))
        .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// Drops counted on the UDP socket bound to `port` (last column of /proc/net/udp).
pub(crate) fn udp_socket_drops(port: u16) -> u64 {
    let hex = format!(":{port:04X}");
    let mut total = 0;
    for file in ["/proc/net/udp", "/proc/net/udp6"] {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.get(1).is_some_and(|local| local.ends_with(&hex)) {
                total += f.last().and_then(|d| d.parse::<u64>().ok()).unwrap_or(0);
            }
        }
    }
    total
}

/// Packets dropped by the per-CPU input backlog (second column of softnet_stat), all CPUs.
pub(crate) fn softnet_drops() -> u64 {
    let text = std::fs::read_to_string("/proc/net/softnet_stat").unwrap_or_default();
    text.lines().filter_map(|l| l.split_whitespace().nth(1).and_then(|h| u64::from_str_radix(h, 16).ok())).sum()
}

/// A JSON number at a `/`-separated path, 0 when absent.
pub(crate) fn num(v: &Value, path: &str) -> f64 {
    let mut cur = v;
    for key in path.split('/') {
        cur = &cur[key];
    }
    cur.as_f64().unwrap_or(0.0)
}

// ---------------------------------------------------------------- sysctl

pub(crate) fn sysctl_path(key: &str) -> PathBuf {
    PathBuf::from("/proc/sys").join(key.replace('.', "/"))
}

pub(crate) fn sysctl_get(key: &str) -> Option<String> {
    std::fs::read_to_string(sysctl_path(key)).ok().map(|s| s.trim().to_owned())
}

pub(crate) fn sysctl_set(key: &str, value: &str) -> anyhow::Result<()> {
    std::fs::write(sysctl_path(key), value).with_context(|| format!("sysctl {key}={value}"))
}

/// Sets a sysctl and restores the previous value when dropped.
pub(crate) struct SysctlGuard {
    key: String,
    previous: Option<String>,
}

impl SysctlGuard {
    pub(crate) fn set(key: &str, value: &str) -> anyhow::Result<SysctlGuard> {
        let previous = sysctl_get(key);
        if let (Some(dir), Some(v)) = (STATE_DIR.get(), &previous) {
            // Kept until restored: a killed run's successor restores it.
            let _ = std::fs::write(dir.join("sysctl").join(key), v);
        }
        sysctl_set(key, value)?;
        Ok(SysctlGuard { key: key.to_owned(), previous })
    }
}

impl Drop for SysctlGuard {
    fn drop(&mut self) {
        if let Some(v) = &self.previous {
            let _ = sysctl_set(&self.key, v);
        }
        if let Some(dir) = STATE_DIR.get() {
            let _ = std::fs::remove_file(dir.join("sysctl").join(&self.key));
        }
    }
}
