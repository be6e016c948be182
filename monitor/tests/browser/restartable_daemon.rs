//! The real daemon, restarted on the same ports whenever it exits: the
//! browser test stops it with SIGTERM (`restart_command`) and checks that the
//! page reconnects by itself to the new process.

use std::{
    fs::OpenOptions,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{
        atomic::{AtomicBool, AtomicU32, Ordering},
        Arc,
    },
    thread::JoinHandle,
    time::Duration,
};

use crate::support::{free_tcp_port, free_udp_port, poll};

/// More starts than this means the daemon keeps crashing: stop trying.
const MAX_STARTS: u32 = 5;

pub struct RestartableDaemon {
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
    pub fn start(args: &[&str], work_dir: &Path) -> Self {
        let port = free_tcp_port();
        let syslog = free_udp_port();
        let log = work_dir.join("daemon.log");
        let pid_file = work_dir.join("daemon.pid");
        let mut full: Vec<String> = vec![
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            "--syslog-udp".into(),
            format!("127.0.0.1:{syslog}"),
            "--log".into(),
            "info,monitor=debug".into(),
        ];
        full.extend(args.iter().map(|a| a.to_string()));
        let stop = Arc::new(AtomicBool::new(false));
        let starts = Arc::new(AtomicU32::new(0));
        let thread = {
            let (stop, starts, log, pid_file) = (stop.clone(), starts.clone(), log.clone(), pid_file.clone());
            std::thread::spawn(move || supervise(&full, &log, &pid_file, &stop, &starts))
        };
        let daemon = RestartableDaemon {
            api: format!("http://127.0.0.1:{port}"),
            syslog: format!("127.0.0.1:{syslog}"),
            log,
            pid_file,
            stop,
            starts,
            thread: Some(thread),
        };
        daemon.wait_healthy();
        daemon
    }

    pub fn wait_healthy(&self) {
        let health = format!("{}/healthz", self.api);
        poll("the daemon to answer /healthz", Duration::from_secs(60), || {
            assert!(
                self.starts.load(Ordering::Relaxed) <= MAX_STARTS,
                "the daemon keeps exiting:\n{}",
                self.log_text()
            );
            ureq::get(&health).call().ok().map(|_| ())
        });
    }

    /// A shell command that stops the running daemon; the supervisor starts a new one.
    pub fn restart_command(&self) -> String {
        format!("kill -TERM \"$(cat '{}')\"", self.pid_file.display())
    }

    pub fn starts(&self) -> u32 {
        self.starts.load(Ordering::Relaxed)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn get_json(&self, path: &str) -> serde_json::Value {
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

fn supervise(args: &[String], log: &Path, pid_file: &Path, stop: &AtomicBool, starts: &AtomicU32) {
    while !stop.load(Ordering::Relaxed) && starts.load(Ordering::Relaxed) < MAX_STARTS {
        starts.fetch_add(1, Ordering::Relaxed);
        let file = OpenOptions::new().create(true).append(true).open(log).expect("daemon log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_monitor"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawn monitor");
        std::fs::write(pid_file, child.id().to_string()).expect("pid file");
        loop {
            if stop.load(Ordering::Relaxed) {
                // SAFETY: kill with our child's pid and a valid signal.
                unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
                let _ = poll("the daemon to exit after SIGTERM", Duration::from_secs(20), || {
                    child.try_wait().ok().flatten()
                });
                return;
            }
            if let Ok(Some(_)) = child.try_wait() {
                break; // stopped from outside: start the next one
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
