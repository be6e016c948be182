//! Attaching the XDP program to interfaces, with the driver-to-SKB fallback.

use std::{fs, io};

use aya::{
    programs::{tc, ProgramError, SchedClassifier, TcAttachType, Xdp, XdpMode},
    util::KernelVersion,
};
use monitor_common::timing::PROGRAM_TC_HTTP;
use serde::Serialize;

use super::{error::has_errno, KernelError};
use crate::config::XdpModeArg;

/// The mode an interface ended up in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum XdpModeUsed {
    Driver,
    Skb,
}

impl XdpModeUsed {
    pub fn as_str(self) -> &'static str {
        match self {
            XdpModeUsed::Driver => "driver",
            XdpModeUsed::Skb => "skb",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct AttachedInterface {
    pub name: String,
    pub ifindex: u32,
    pub mode: XdpModeUsed,
}

/// Attaches to each interface in turn, stopping at the first error; returns
/// what was attached either way, so the caller can report it.
pub(super) fn attach_all(
    program: &mut Xdp,
    ifaces: &[String],
    mode: XdpModeArg,
) -> (Vec<AttachedInterface>, Result<(), KernelError>) {
    let mut attached = Vec::new();
    for iface in ifaces {
        match attach(program, iface, mode) {
            Ok(a) => attached.push(a),
            Err(e) => return (attached, Err(e)),
        }
    }
    (attached, Ok(()))
}

/// [`attach_all`] from a thread that has joined network namespace `netns`.
/// setns(2) moves only the calling thread, and an XDP link stays bound to its
/// interface whatever namespace the daemon's other threads are in.
pub(super) fn attach_all_in_netns(
    program: &mut Xdp,
    ifaces: &[String],
    mode: XdpModeArg,
    netns: &str,
) -> (Vec<AttachedInterface>, Result<(), KernelError>) {
    match in_netns(netns, || attach_all(program, ifaces, mode)) {
        Ok(result) => result,
        Err(e) => (Vec::new(), Err(e)),
    }
}

/// Runs `f` on a short-lived thread that has joined network namespace
/// `netns` (a name under /run/netns or a path); `None` runs it here.
pub(super) fn in_netns<T: Send>(netns: &str, f: impl FnOnce() -> T + Send) -> Result<T, KernelError> {
    let path = if netns.contains('/') { netns.to_owned() } else { format!("/run/netns/{netns}") };
    let ns = match fs::File::open(&path) {
        Ok(f) => f,
        Err(cause) => return Err(KernelError::Netns { netns: path, cause }),
    };
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                use std::os::fd::AsRawFd as _;
                // SAFETY: a valid namespace fd; only this short-lived thread moves.
                if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    let cause = io::Error::last_os_error();
                    return Err(KernelError::Netns { netns: path.clone(), cause });
                }
                Ok(f())
            })
            .join()
            .unwrap_or_else(|_| Err(KernelError::Config("attach thread panicked".into())))
    })
}

/// Attaches the HTTP timing classifier to the egress of each interface;
/// returns one result per interface (a failure on one does not stop the
/// others, nor the XDP path). Call from the interfaces' namespace.
pub(super) fn attach_tc_egress_all(
    program: &mut SchedClassifier,
    ifaces: &[String],
) -> Vec<(String, Result<(), String>)> {
    ifaces.iter().map(|iface| (iface.clone(), attach_tc_egress(program, iface))).collect()
}

fn attach_tc_egress(program: &mut SchedClassifier, iface: &str) -> Result<(), String> {
    // Kernels >= 6.6 get a TCX bpf_link (gone with the process); older ones a
    // netlink tc filter, which outlives a killed daemon: remove the one a
    // previous monitor left before adding ours.
    let tcx = KernelVersion::current().is_ok_and(|v| v >= KernelVersion::new(6, 6, 0));
    if let Err(e) = tc::qdisc_add_clsact(iface) {
        let exists = matches!(&e, tc::TcError::AlreadyAttached) || has_errno(&e, &[libc::EEXIST]);
        if !exists && !tcx {
            return Err(format!("adding the clsact qdisc to {iface}: {e}"));
        }
    }
    if !tcx {
        match tc::qdisc_detach_program(iface, TcAttachType::Egress, PROGRAM_TC_HTTP) {
            Ok(()) => tracing::warn!(iface, "removed a stale HTTP timing tc filter left by a previous monitor"),
            Err(e) => tracing::debug!(iface, error = %e, "no stale HTTP timing tc filter"),
        }
    }
    program
        .attach(iface, TcAttachType::Egress)
        .map(|_| ())
        .map_err(|e| format!("attaching the HTTP timing program to the egress of {iface}: {e}"))
}

/// Attaches `program` to `iface`. The link is owned by the program: it is
/// detached when the daemon exits, however it exits (bpf_link semantics).
pub(super) fn attach(program: &mut Xdp, iface: &str, mode: XdpModeArg) -> Result<AttachedInterface, KernelError> {
    let ifindex = ifindex(iface)?;
    let tries: &[XdpModeUsed] = match mode {
        XdpModeArg::Auto => &[XdpModeUsed::Driver, XdpModeUsed::Skb],
        XdpModeArg::Driver => &[XdpModeUsed::Driver],
        XdpModeArg::Skb => &[XdpModeUsed::Skb],
    };
    let mut last = None;
    for &used in tries {
        let flags = match used {
            XdpModeUsed::Driver => XdpMode::Driver,
            XdpModeUsed::Skb => XdpMode::Skb,
        };
        match program.attach_to_if_index(ifindex, flags) {
            Ok(_) => return Ok(AttachedInterface { name: iface.to_owned(), ifindex, mode: used }),
            Err(e) if is_busy(&e) => return Err(KernelError::InterfaceBusy { iface: iface.to_owned() }),
            Err(e) => {
                tracing::debug!(iface, mode = used.as_str(), error = %e, "XDP attach failed");
                last = Some((used, e));
            }
        }
    }
    let (used, cause) = last.expect("at least one mode was tried");
    Err(KernelError::Attach { iface: iface.to_owned(), mode: used.as_str(), cause })
}

fn ifindex(iface: &str) -> Result<u32, KernelError> {
    let unknown = || KernelError::UnknownInterface(iface.to_owned());
    let name = std::ffi::CString::new(iface).map_err(|_| unknown())?;
    // SAFETY: `name` is a valid NUL-terminated string.
    match unsafe { libc::if_nametoindex(name.as_ptr()) } {
        0 => Err(unknown()),
        index => Ok(index),
    }
}

/// Another program already holds the interface's XDP hook.
fn is_busy(error: &ProgramError) -> bool {
    has_errno(error, &[libc::EBUSY, libc::EEXIST])
}

/// The interface of the IPv4 default route, from /proc/net/route.
pub fn default_route_interface() -> Result<String, KernelError> {
    let table = fs::read_to_string("/proc/net/route").map_err(|_| KernelError::NoDefaultRoute)?;
    parse_default_route(&table).ok_or(KernelError::NoDefaultRoute)
}

fn parse_default_route(table: &str) -> Option<String> {
    table.lines().skip(1).find_map(|line| {
        let mut cols = line.split_whitespace();
        let iface = cols.next()?;
        let destination = cols.next()?;
        let _gateway = cols.next()?;
        let flags = u32::from_str_radix(cols.next()?, 16).ok()?;
        const RTF_UP: u32 = 0x1;
        (destination == "00000000" && flags & RTF_UP != 0).then(|| iface.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_default_route() {
        let table = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\n\
                     ens3\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\n\
                     ens4\t00000000\t0100A8C0\t0003\t0\t0\t0\t00000000\n";
        assert_eq!(parse_default_route(table).as_deref(), Some("ens4"));
        assert_eq!(parse_default_route("Iface\tDestination\n"), None);
    }
}
