//! A child process a harness starts (the daemon, a traffic generator, a
//! ping in a namespace), with stdout and stderr in a log file, so what it
//! said is there to show when it fails, and stopped when its guard drops,
//! so a failed test leaves nothing running.

use std::{
    fs::{File, OpenOptions},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _};

/// How a [`Process`] is stopped when dropped.
#[derive(Clone, Copy, Debug)]
pub enum OnDrop {
    /// SIGTERM, then SIGKILL if it has not exited after this long.
    Terminate(Duration),
    /// SIGKILL at once (fast; the process gets no chance to clean up).
    Kill,
}

/// Where a [`Process`]'s stdout and stderr go.
#[derive(Clone, Debug)]
pub enum Log {
    /// Discarded.
    None,
    /// Into this file, truncated first.
    Create(PathBuf),
    /// Appended to this file (a process restarted under the same log).
    Append(PathBuf),
}

impl Log {
    fn path(&self) -> Option<&Path> {
        match self {
            Log::None => None,
            Log::Create(p) | Log::Append(p) => Some(p),
        }
    }

    fn file(&self) -> anyhow::Result<Option<File>> {
        let file = match self {
            Log::None => return Ok(None),
            Log::Create(p) => File::create(p),
            Log::Append(p) => OpenOptions::new().create(true).append(true).open(p),
        };
        let path = self.path().unwrap_or(Path::new(""));
        Ok(Some(file.with_context(|| format!("log file {}", path.display()))?))
    }
}

/// A running child process, stopped (see [`OnDrop`]) when dropped.
#[derive(Debug)]
pub struct Process {
    name: String,
    child: Option<Child>,
    log: Option<PathBuf>,
    on_drop: OnDrop,
}

/// The grace period of [`Process::stop`] and of the default [`OnDrop`].
pub const STOP_GRACE: Duration = Duration::from_secs(10);

impl Process {
    /// Spawns `cmd` (named `name` in messages) with stdin closed and its
    /// stdout and stderr to `log`.
    pub fn spawn(name: &str, cmd: &mut Command, log: Log) -> anyhow::Result<Process> {
        let (stdout, stderr) = match log.file()? {
            Some(f) => (Stdio::from(f.try_clone()?), Stdio::from(f)),
            None => (Stdio::null(), Stdio::null()),
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("cannot start {name} ({cmd:?})"))?;
        Ok(Process {
            name: name.to_owned(),
            child: Some(child),
            log: log.path().map(Path::to_path_buf),
            on_drop: OnDrop::Terminate(STOP_GRACE),
        })
    }

    /// How it is stopped when dropped (default: SIGTERM, SIGKILL after [`STOP_GRACE`]).
    pub fn on_drop(mut self, on_drop: OnDrop) -> Self {
        self.on_drop = on_drop;
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its pid; 0 once it was stopped or killed.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Its exit status if it has exited (it is reaped then).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }

    pub fn log_path(&self) -> Option<&Path> {
        self.log.as_deref()
    }

    /// Everything it logged so far ("" without a log file).
    pub fn log_text(&self) -> String {
        self.log.as_ref().and_then(|p| std::fs::read_to_string(p).ok()).unwrap_or_default()
    }

    /// Its last `lines` log lines.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = self.log_text();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Sends `signal` (SIGHUP, SIGSTOP, SIGCONT, ...).
    pub fn signal(&self, signal: i32) -> anyhow::Result<()> {
        let child = self.child.as_ref().with_context(|| format!("{} is not running", self.name))?;
        // SAFETY: kill with our child's pid and a signal number.
        if unsafe { libc::kill(child.id() as i32, signal) } != 0 {
            bail!("signal {signal} to {}: {}", self.name, std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// SIGTERM, then waits for it to exit within [`STOP_GRACE`].
    pub fn stop(&mut self) -> anyhow::Result<ExitStatus> {
        self.stop_within(STOP_GRACE)
    }

    /// SIGTERM, then waits up to `grace` for it to exit. If it has not, it
    /// is killed (SIGKILL) and that is an error, with its log's tail.
    pub fn stop_within(&mut self, grace: Duration) -> anyhow::Result<ExitStatus> {
        let mut child = self.child.take().with_context(|| format!("{} is not running", self.name))?;
        if let Some(status) = terminate(&mut child, grace) {
            return Ok(status);
        }
        bail!(
            "{} did not exit within {:.0} s of SIGTERM and was killed; its log ends:\n{}",
            self.name,
            grace.as_secs_f64(),
            self.log_tail(30)
        )
    }

    /// SIGKILL and reap: no chance to clean up.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        match self.on_drop {
            OnDrop::Kill => self.kill(),
            OnDrop::Terminate(grace) => {
                if let Some(mut child) = self.child.take() {
                    terminate(&mut child, grace);
                }
            }
        }
    }
}

/// SIGTERM `child`, wait up to `grace`; then SIGKILL. The exit status if it
/// exited by itself in time.
fn terminate(child: &mut Child, grace: Duration) -> Option<ExitStatus> {
    // SAFETY: kill with our child's pid and a valid signal.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + grace;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Stops a process that is not our child (one a crashed run left behind):
/// SIGTERM, then SIGKILL if it is still there after `grace`. The caller
/// checks first that `pid` is still the process it means.
pub fn terminate_pid(pid: i32, grace: Duration) {
    // SAFETY: signalling a pid the caller checked.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if !Path::new(&format!("/proc/{pid}")).exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}
