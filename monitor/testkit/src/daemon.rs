//! The real `monitor` binary as a child process, the way every harness
//! runs it: API and syslog listeners on loopback ports (free ones unless
//! given), its log (stdout and stderr: a file, not a terminal, so plain
//! lines) in a file, and "started" meaning `/healthz` answers, so a test
//! never races the daemon's start-up. When it exits or never answers, the
//! error carries its log: the reason is almost always there.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::{Command, ExitStatus},
    time::Duration,
};

use anyhow::bail;

use crate::{
    http,
    poll::try_poll,
    ports,
    process::{Log, OnDrop, Process, STOP_GRACE},
};

/// How long [`DaemonBuilder::start`] waits for `/healthz` (a debug build
/// loading the GeoIP files on a busy machine is slow).
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(60);

/// Log lines shown when the daemon fails to start.
const LOG_EXCERPT_LINES: usize = 80;

/// How to run the daemon; [`DaemonBuilder::spawn`] can be called again for
/// a restart on the same ports (set them with [`DaemonBuilder::pin_ports`]).
#[derive(Clone, Debug)]
pub struct DaemonBuilder {
    binary: PathBuf,
    listen_ip: IpAddr,
    port: Option<u16>,
    syslog_udp: Option<String>,
    args: Vec<String>,
    log: Option<PathBuf>,
    append_log: bool,
    nofile: Option<u64>,
    own_process_group: bool,
    on_drop: OnDrop,
}

impl DaemonBuilder {
    /// `--listen IP:PORT` on this address (default 127.0.0.1).
    pub fn listen_ip(mut self, ip: IpAddr) -> Self {
        self.listen_ip = ip;
        self
    }

    /// The API port (default: a free one, picked at each spawn).
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// `--syslog-udp` (default: 127.0.0.1 on a free port, picked at each spawn).
    pub fn syslog_udp(mut self, addr: impl Into<String>) -> Self {
        self.syslog_udp = Some(addr.into());
        self
    }

    /// Picks the free ports now, so every spawn uses the same ones (a
    /// restarted daemon is found where the old one was).
    pub fn pin_ports(mut self) -> anyhow::Result<Self> {
        if self.port.is_none() {
            self.port = Some(ports::free_tcp_port()?);
        }
        if self.syslog_udp.is_none() {
            self.syslog_udp = Some(format!("127.0.0.1:{}", ports::free_udp_port()?));
        }
        Ok(self)
    }

    /// The API's base URL, known once the port is set (or pinned).
    pub fn api(&self) -> Option<String> {
        self.port.map(|p| format!("http://{}", SocketAddr::new(self.listen_ip, p)))
    }

    /// The --syslog-udp address, known once set (or pinned).
    pub fn syslog_addr(&self) -> Option<&str> {
        self.syslog_udp.as_deref()
    }

    /// More arguments, after --listen and --syslog-udp.
    pub fn args<S: AsRef<str>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// The log file (default: monitor-test-PID-PORT.log in the temporary
    /// directory).
    pub fn log(mut self, path: impl Into<PathBuf>) -> Self {
        self.log = Some(path.into());
        self
    }

    /// Append to the log file instead of starting it afresh.
    pub fn append_log(mut self) -> Self {
        self.append_log = true;
        self
    }

    /// RLIMIT_NOFILE (soft and hard) of the daemon, as `ulimit -n` would set it.
    pub fn nofile(mut self, limit: u64) -> Self {
        self.nofile = Some(limit);
        self
    }

    /// Runs it in a process group of its own: a Ctrl-C on the terminal then
    /// reaches only the harness, which stops its children in order.
    pub fn own_process_group(mut self) -> Self {
        self.own_process_group = true;
        self
    }

    /// How it is stopped when dropped (default: SIGTERM, then SIGKILL
    /// after 10 s).
    pub fn on_drop(mut self, on_drop: OnDrop) -> Self {
        self.on_drop = on_drop;
        self
    }

    /// Starts the daemon and returns at once (for start-ups a test watches
    /// itself); see [`DaemonBuilder::start`].
    pub fn spawn(&self) -> anyhow::Result<Daemon> {
        let port = match self.port {
            Some(p) => p,
            None => ports::free_tcp_port()?,
        };
        let syslog = match &self.syslog_udp {
            Some(s) => s.clone(),
            None => format!("127.0.0.1:{}", ports::free_udp_port()?),
        };
        let addr = SocketAddr::new(self.listen_ip, port);
        let log = self
            .log
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join(format!("monitor-test-{}-{port}.log", std::process::id())));
        let mut cmd = Command::new(&self.binary);
        cmd.args(["--listen", &addr.to_string(), "--syslog-udp", &syslog]).args(&self.args);
        // A harness never writes the system's history (/var/lib/monitor):
        // off unless it names a database of its own.
        if !self.args.iter().any(|a| a == "--history-path" || a == "--no-history") {
            cmd.arg("--no-history");
        }
        if self.own_process_group {
            cmd.process_group(0);
        }
        if let Some(limit) = self.nofile {
            // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    let rlim = libc::rlimit { rlim_cur: limit, rlim_max: limit };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &rlim) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        let log_spec = if self.append_log { Log::Append(log.clone()) } else { Log::Create(log.clone()) };
        let process = Process::spawn("monitor", &mut cmd, log_spec)?.on_drop(self.on_drop);
        let syslog_port = syslog.rsplit_once(':').and_then(|(_, p)| p.parse().ok()).unwrap_or(0);
        Ok(Daemon { process, api: format!("http://{addr}"), addr, syslog_port, log, command: format!("{cmd:?}") })
    }

    /// Starts the daemon and waits (up to [`HEALTH_TIMEOUT`]) until it
    /// answers /healthz; fails with its log if it exits or never answers.
    pub fn start(&self) -> anyhow::Result<Daemon> {
        let mut daemon = self.spawn()?;
        daemon.wait_healthy(HEALTH_TIMEOUT)?;
        Ok(daemon)
    }
}

/// The daemon, running. Dropping it stops it (see [`DaemonBuilder::on_drop`]).
#[derive(Debug)]
pub struct Daemon {
    process: Process,
    /// The API's base URL: `http://127.0.0.1:PORT` (`http://[::1]:PORT`).
    pub api: String,
    /// The API's address.
    pub addr: SocketAddr,
    /// The UDP syslog port (0 if --syslog-udp was not an address).
    pub syslog_port: u16,
    pub log: PathBuf,
    command: String,
}

impl Daemon {
    /// How to run `binary` (the `monitor` executable: in an integration
    /// test, `env!("CARGO_BIN_EXE_monitor")`).
    pub fn builder(binary: impl AsRef<Path>) -> DaemonBuilder {
        DaemonBuilder {
            binary: binary.as_ref().to_path_buf(),
            listen_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: None,
            syslog_udp: None,
            args: Vec::new(),
            log: None,
            append_log: false,
            nofile: None,
            own_process_group: false,
            on_drop: OnDrop::Terminate(STOP_GRACE),
        }
    }

    /// Waits until /healthz answers; fails with the log if the daemon
    /// exits first or `timeout` passes.
    pub fn wait_healthy(&mut self, timeout: Duration) -> anyhow::Result<()> {
        self.wait_healthy_unless(timeout, || false)
    }

    /// Like [`Daemon::wait_healthy`], giving up early (Ok) once `give_up`
    /// returns true (a Ctrl-C during start-up).
    pub fn wait_healthy_unless(&mut self, timeout: Duration, give_up: impl Fn() -> bool) -> anyhow::Result<()> {
        let health = format!("{}/healthz", self.api);
        let mut exited = None;
        let healthy = try_poll(timeout, || {
            if give_up() {
                return Some(());
            }
            if let Some(status) = self.process.exited() {
                exited = Some(status);
                return Some(());
            }
            http::is_ok(&health).then_some(())
        });
        if let Some(status) = exited {
            bail!("the daemon exited at start-up ({status}): {}\n{}", self.command, self.log_excerpt());
        }
        if healthy.is_none() {
            bail!(
                "the daemon did not answer {health} within {:.0} s: {}\n{}",
                timeout.as_secs_f64(),
                self.command,
                self.log_excerpt()
            );
        }
        Ok(())
    }

    /// The end of its log, for an error message (a log appended to across
    /// restarts can be long; the reason for a failure is at its end).
    fn log_excerpt(&self) -> String {
        format!("its log ({}) ends:\n{}", self.log.display(), self.log_tail(LOG_EXCERPT_LINES))
    }

    /// The API's address as host:port.
    pub fn addr_string(&self) -> String {
        self.addr.to_string()
    }

    /// Its pid (0 once stopped).
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Its exit status if it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.process.exited()
    }

    /// Everything it logged so far.
    pub fn log_text(&self) -> String {
        self.process.log_text()
    }

    /// Its last `lines` log lines.
    pub fn log_tail(&self, lines: usize) -> String {
        self.process.log_tail(lines)
    }

    /// GET `path` ("/api/stats") of its API as JSON.
    pub fn get_json(&self, path: &str) -> anyhow::Result<serde_json::Value> {
        http::get_json(&format!("{}{path}", self.api))
    }

    pub fn signal(&self, signal: i32) -> anyhow::Result<()> {
        self.process.signal(signal)
    }

    /// SIGTERM and wait for its exit (an error, after SIGKILL, if it takes
    /// over `grace`).
    pub fn stop_within(&mut self, grace: Duration) -> anyhow::Result<ExitStatus> {
        self.process.stop_within(grace)
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill(&mut self) {
        self.process.kill();
    }
}
