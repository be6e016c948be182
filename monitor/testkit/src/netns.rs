//! Network namespaces a harness creates and owns. The guard deletes its
//! namespace when dropped, which also happens while a failed test's panic
//! unwinds; deleting a namespace destroys the veth ends inside it, and so
//! the pairs they belong to. What a process killed outright (SIGKILL, a
//! crash) leaves behind is removed by the next run: see [`remove_orphans`].

use std::{
    path::Path,
    process::{Command, Output},
};

use anyhow::bail;

use crate::{cmd, link::Link};

/// A network namespace (a name under /run/netns), deleted on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates namespace `name` with its loopback up. It has no other
    /// interface and no route until the caller adds them.
    ///
    /// Interfaces made in it skip IPv6 duplicate address detection: their
    /// link-local address is there as soon as they are up, not about 1.5 s
    /// later, when its arrival would tell a program already running here
    /// (Chromium aborts a page load with ERR_NETWORK_CHANGED) that the
    /// network changed under it. Every link here is the harness's own, so
    /// there is no one to collide with.
    pub fn create(name: impl Into<String>) -> anyhow::Result<Netns> {
        let name = name.into();
        cmd::run("ip", &["netns", "add", &name])?;
        // The guard exists from here on: a failure below still removes it.
        let ns = Netns { name };
        ns.exec(&["sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"])?;
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Interface `name` inside this namespace (see [`Link`]).
    pub fn link(&self, name: &str) -> Link {
        Link::new(Some(&self.name), name)
    }

    /// `ip -n NAME args...`: iproute2 acting inside the namespace.
    pub fn ip(&self, args: &[&str]) -> anyhow::Result<String> {
        cmd::run("ip", &[&["-n", self.name.as_str()], args].concat())
    }

    /// Runs `args` (program first) inside the namespace and returns its
    /// stdout; fails with its output if it does not succeed.
    pub fn exec(&self, args: &[&str]) -> anyhow::Result<String> {
        cmd::run("ip", &self.exec_args(args))
    }

    /// Runs `args` inside the namespace and returns its output whatever its
    /// exit status.
    pub fn output(&self, args: &[&str]) -> anyhow::Result<Output> {
        cmd::output("ip", &self.exec_args(args))
    }

    /// A command that runs `program` inside the namespace (`ip netns exec`
    /// execs it: the child's pid is the program's).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// True if the namespace has a default route (IPv4 or IPv6).
    pub fn has_default_route(&self) -> anyhow::Result<bool> {
        let v4 = self.ip(&["route", "show", "default"])?;
        let v6 = self.ip(&["-6", "route", "show", "default"])?;
        Ok(!v4.trim().is_empty() || !v6.trim().is_empty())
    }

    /// Fails if the namespace has a default route: call it before sending
    /// from synthetic public addresses, whose replies must die here.
    pub fn ensure_no_default_route(&self) -> anyhow::Result<()> {
        if self.has_default_route()? {
            bail!("namespace {} has a default route; refusing to send from public addresses", self.name);
        }
        Ok(())
    }

    fn exec_args<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        [&["netns", "exec", self.name.as_str()], args].concat()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        delete(&self.name);
    }
}

/// The names of all namespaces under /run/netns.
pub fn list() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/run/netns") else { return Vec::new() };
    dir.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect()
}

/// True if namespace `name` exists.
pub fn exists(name: &str) -> bool {
    Path::new("/run/netns").join(name).exists()
}

/// Deletes namespace `name`, ignoring failure (it may be gone already).
pub fn delete(name: &str) {
    cmd::run_quiet("ip", &["netns", "del", name]);
}

/// Deletes the namespaces named `prefix...` whose creating process is gone:
/// `owner` reads that process's pid from the rest of the name (None: not
/// one of ours, kept). A leftover pair would hold the subnet, and the
/// interface names, a later run wants.
pub fn remove_orphans(prefix: &str, owner: impl Fn(&str) -> Option<u32>) {
    for name in list() {
        let Some(rest) = name.strip_prefix(prefix) else { continue };
        let Some(pid) = owner(rest) else { continue };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            delete(&name);
        }
    }
}
