//! The real daemon (the kit's), restarted on the same ports whenever it
//! exits: the browser test stops it with SIGTERM (`restart_command`) and
//! checks that the page reconnects by itself to the new process.

use std::{
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, AtomicU32, Ordering},
        Arc,
    },
    thread::JoinHandle,
    time::Duration,
};

use monitor_testkit::{Daemon, DaemonBuilder};

use crate::support::poll;

/// More starts than this means the daemon keeps crashing: stop trying.
const MAX_STARTS: u32 = 5;

pub(crate) struct RestartableDaemon {
    pub api: String,
    /// The daemon's UDP syslog address (127.0.0.1:PORT).
    pub syslog: String,
    pub log: PathBuf,
    pid_file: PathBuf,
    stop: Arc<AtomicBool>,
    starts: Arc<AtomicU32>,
    thread: Option<JoinHandle<()>>,
}

impl RestartableDaemon {
    /// Starts the daemon with `args` (plus --listen and --syslog-udp on
    /// fixed free loopback ports) and waits until it answers /healthz.
    pub(crate) fn start(args: &[&str], work_dir: &Path) -> Self {
        let log = work_dir.join("daemon.log");
        let pid_file = work_dir.join("daemon.pid");
        let builder = Daemon::builder(env!("CARGO_BIN_EXE_monitor"))
            .args(["--log", "info,monitor=debug"])
            .args(args)
            .log(&log)
            .append_log()
            .pin_ports()
            .expect("free ports");
        let api = builder.api().expect("a pinned port");
        let syslog = builder.syslog_addr().expect("a pinned port").to_owned();
        let stop = Arc::new(AtomicBool::new(false));
        let starts = Arc::new(AtomicU32::new(0));
        let thread = {
            let (stop, starts, pid_file) = (Arc::clone(&stop), Arc::clone(&starts), pid_file.clone());
            std::thread::spawn(move || supervise(&builder, &pid_file, &stop, &starts))
        };
        let daemon = RestartableDaemon { api, syslog, log, pid_file, stop, starts, thread: Some(thread) };
        daemon.wait_healthy();
        daemon
    }

    pub(crate) fn wait_healthy(&self) {
        let health = format!("{}/healthz", self.api);
        poll("the daemon to answer /healthz", Duration::from_secs(60), || {
            assert!(
                self.starts.load(Ordering::Relaxed) <= MAX_STARTS,
                "the daemon keeps exiting:\n{}",
                self.log_text()
            );
            monitor_testkit::http::is_ok(&health).then_some(())
        });
    }

    /// A shell command that stops the running daemon; the supervisor starts a new one.
    pub(crate) fn restart_command(&self) -> String {
        format!("kill -TERM \"$(cat '{}')\"", self.pid_file.display())
    }

    pub(crate) fn starts(&self) -> u32 {
        self.starts.load(Ordering::Relaxed)
    }

    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub(crate) fn get_json(&self, path: &str) -> serde_json::Value {
        crate::support::get_json(&self.api, path)
    }
}

impl Drop for RestartableDaemon {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts the daemon again each time it exits, until told to stop (then
/// stops the running one with SIGTERM) or it has started MAX_STARTS times.
fn supervise(builder: &DaemonBuilder, pid_file: &Path, stop: &AtomicBool, starts: &AtomicU32) {
    while !stop.load(Ordering::Relaxed) && starts.load(Ordering::Relaxed) < MAX_STARTS {
        starts.fetch_add(1, Ordering::Relaxed);
        let mut daemon = builder.spawn().expect("spawn monitor");
        std::fs::write(pid_file, daemon.pid().to_string()).expect("pid file");
        loop {
            if stop.load(Ordering::Relaxed) {
                daemon.stop_within(Duration::from_secs(20)).expect("the daemon to exit after SIGTERM");
                return;
            }
            if daemon.exited().is_some() {
                break; // stopped from outside: start the next one
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
