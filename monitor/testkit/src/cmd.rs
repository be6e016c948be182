//! Running the system tools the harnesses drive (iproute2, sysctl, ping,
//! iptables): a failure is an error that carries the command and its
//! output, so a broken set-up says why instead of failing later.

use std::process::{Command, Output, Stdio};

use anyhow::{bail, Context as _};

/// Runs `program` with `args` and returns its stdout; fails with the
/// command line, its exit status, stdout and stderr if it does not succeed.
pub fn run(program: &str, args: &[&str]) -> anyhow::Result<String> {
    check(program, args, output(program, args)?)
}

/// Runs `program` and returns its output whatever its exit status (for
/// callers that look at a failure themselves); fails only if it cannot run.
pub fn output(program: &str, args: &[&str]) -> anyhow::Result<Output> {
    Command::new(program).args(args).output().with_context(|| format!("cannot run {program}"))
}

/// Runs `program` and ignores how it went: for clean-up, where the thing
/// removed may already be gone.
pub fn run_quiet(program: &str, args: &[&str]) {
    let _ = Command::new(program).args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).status();
}

/// `out` as a result: stdout on success, an error with everything otherwise.
pub fn check(program: &str, args: &[&str], out: Output) -> anyhow::Result<String> {
    if !out.status.success() {
        bail!(
            "{program} {} failed ({}): {}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// True when this process runs as root (effective uid 0): namespaces, veth
/// pairs and XDP all need it.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Fails, saying how to run instead, unless this process is root.
pub fn require_root() -> anyhow::Result<()> {
    if !is_root() {
        bail!("this needs root (network namespaces, veth pairs, XDP): run `cargo xtask test` as root");
    }
    Ok(())
}
