//! Boots a kernel and initramfs in QEMU (TCG: /dev/kvm guests die with an
//! emulation failure on the CI machines) with no network device, the serial
//! console on stdio, and a deadline.

use std::{
    fs,
    io::{BufRead as _, BufReader, Write as _},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use anyhow::Context as _;

pub(super) struct Boot<'a> {
    pub vmlinuz: &'a Path,
    pub initramfs: &'a Path,
    pub cpus: u32,
    pub memory_mib: u32,
    /// The whole run, boot to power-off.
    pub timeout: Duration,
    /// Per guest step (the guest kills a step that takes longer).
    pub step_timeout: Duration,
    /// The console is copied here as it arrives.
    pub console_log: PathBuf,
    /// Prefix for lines echoed to stderr; every line when `verbose`, else
    /// only the guest's markers.
    pub label: String,
    pub verbose: bool,
}

pub(super) struct Outcome {
    /// The serial console, lines without their line ends.
    pub console: Vec<String>,
    /// From QEMU's start to the guest's first marker line.
    pub boot: Option<Duration>,
    pub elapsed: Duration,
    pub timed_out: bool,
    /// QEMU's exit status (None when it was killed at the deadline).
    pub status: Option<std::process::ExitStatus>,
}

pub(super) fn qemu_binary() -> anyhow::Result<PathBuf> {
    ["/usr/bin/qemu-system-x86_64", "/usr/local/bin/qemu-system-x86_64"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .context("qemu-system-x86_64 not found: ./setup.sh --tests (apt install qemu-system-x86)")
}

pub(super) fn run(boot: &Boot) -> anyhow::Result<Outcome> {
    let qemu = qemu_binary()?;
    let append = format!(
        "console=ttyS0 panic=-1 quiet loglevel=3 rdinit=/init kmx.step_timeout={}",
        boot.step_timeout.as_secs()
    );
    let mut cmd = Command::new(&qemu);
    cmd.args(["-accel", "tcg,thread=multi", "-cpu", "max"])
        .args(["-smp", &boot.cpus.to_string(), "-m", &boot.memory_mib.to_string()])
        // No default devices, and no network device at all: the guest's
        // traffic stays on its own veth pair.
        .args(["-nodefaults", "-no-user-config", "-nic", "none", "-display", "none", "-serial", "stdio"])
        .arg("-no-reboot")
        .arg("-kernel")
        .arg(boot.vmlinuz)
        .arg("-initrd")
        .arg(boot.initramfs)
        .args(["-append", &append])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().with_context(|| format!("cannot start {}", qemu.display()))?;
    let stdout = child.stdout.take().context("qemu stdout")?;
    let stderr = child.stderr.take().context("qemu stderr")?;
    let (tx, rx) = mpsc::channel::<(Instant, String)>();
    let tx_err = tx.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).split(b'\n').map_while(Result::ok) {
            let text = String::from_utf8_lossy(&line).trim_end_matches('\r').to_owned();
            if tx.send((Instant::now(), text)).is_err() {
                break;
            }
        }
    });
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx_err.send((Instant::now(), format!("qemu: {line}"))).is_err() {
                break;
            }
        }
    });

    let mut log =
        fs::File::create(&boot.console_log).with_context(|| format!("cannot create {}", boot.console_log.display()))?;
    let mut console = Vec::new();
    let mut first_marker = None;
    let mut timed_out = false;
    let deadline = start + boot.timeout;
    let status = loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok((at, line)) => {
                let _ = writeln!(log, "{line}");
                if line.starts_with("@@kmx ") && first_marker.is_none() {
                    first_marker = Some(at - start);
                }
                if boot.verbose || line.starts_with("@@kmx ") && !line.starts_with("@@kmx json ") {
                    eprintln!("[{}] {line}", boot.label);
                }
                console.push(line);
                continue;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // Both pipes closed: QEMU has exited (or is about to).
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                break child.wait().ok();
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            // Drain what the readers still hold.
            while let Ok((_, line)) = rx.recv_timeout(Duration::from_millis(200)) {
                let _ = writeln!(log, "{line}");
                console.push(line);
            }
            break Some(status);
        }
        if Instant::now() >= deadline {
            timed_out = true;
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
    };
    Ok(Outcome { console, boot: first_marker, elapsed: start.elapsed(), timed_out, status })
}
