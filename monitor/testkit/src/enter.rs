//! Work inside a network namespace without moving the whole process: a
//! thread joins the namespace (its own network context; sockets it opens
//! belong there, and threads it starts inherit it) and runs the work. The
//! rest of the process, and the sockets it opens, stay where they were.

use std::{fs::File, io, os::fd::AsRawFd as _, thread::JoinHandle};

use anyhow::{bail, Context as _};

/// Runs `work` on a new thread inside namespace `netns` (a name under
/// /run/netns, or a path; None: this namespace).
pub fn spawn_in<T: Send + 'static>(
    netns: Option<&str>,
    work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> JoinHandle<anyhow::Result<T>> {
    let netns = netns.map(str::to_owned);
    std::thread::spawn(move || {
        if let Some(ns) = netns {
            let path = if ns.contains('/') { ns.clone() } else { format!("/run/netns/{ns}") };
            let file = File::open(&path).with_context(|| format!("opening namespace {path}"))?;
            // SAFETY: a valid namespace fd; only this thread moves.
            if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                bail!("setns {path}: {}", io::Error::last_os_error());
            }
        }
        work()
    })
}

/// Runs `work` inside `netns` and waits for it.
pub fn run_in<T: Send + 'static>(
    netns: Option<&str>,
    work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    spawn_in(netns, work).join().map_err(|_| anyhow::anyhow!("the namespace thread panicked"))?
}
