//! Errors a sysadmin can act on, one variant per cause.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum KernelError {
    #[error(
        "permission denied loading eBPF: run as root, or grant CAP_BPF, CAP_NET_ADMIN and \
         CAP_PERFMON (e.g. `setcap cap_bpf,cap_net_admin,cap_perfmon+ep monitor`); \
         use --no-xdp for syslog ingestion only"
    )]
    PermissionDenied(#[source] aya::EbpfError),

    #[error(
        "Linux {kernel} refused the eBPF program {program}: {reason}. {hint} The full verifier log is in {log_place}. \
         Monitor's kernel programs need Linux 5.10 or newer; --no-xdp runs the syslog path alone"
    )]
    VerifierRejected { program: String, kernel: String, reason: String, hint: &'static str, log_place: String },

    #[error("unknown interface {0:?} (see `ip link`)")]
    UnknownInterface(String),

    #[error(
        "interface {iface:?} already carries another XDP program; detach it first \
         (`ip link set dev {iface} xdp off`) or choose another interface"
    )]
    InterfaceBusy { iface: String },

    #[error("attaching XDP to {iface:?} in {mode} mode failed: {cause}")]
    Attach { iface: String, mode: &'static str, cause: aya::programs::ProgramError },

    #[error("cannot enter network namespace {netns:?}: {cause} (see `ip netns list`)")]
    Netns { netns: String, cause: std::io::Error },

    #[error("configuration out of range: {0}")]
    Config(String),

    #[error("no interface to observe: no IPv4 default route found; pass --iface")]
    NoDefaultRoute,

    #[error("eBPF: {0}")]
    Ebpf(#[from] aya::EbpfError),

    #[error("eBPF program: {0}")]
    Program(#[from] aya::programs::ProgramError),

    #[error("eBPF map: {0}")]
    Map(#[from] aya::maps::MapError),
}

/// Whether an I/O error with one of `errnos` is anywhere in `error`'s
/// source chain (aya wraps syscall and netlink errors a level or two deep).
pub(super) fn has_errno(error: &(dyn std::error::Error + 'static), errnos: &[i32]) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        let code = e.downcast_ref::<std::io::Error>().and_then(std::io::Error::raw_os_error);
        if code.is_some_and(|c| errnos.contains(&c)) {
            return true;
        }
        next = e.source();
    }
    false
}
