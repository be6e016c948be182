//! The kernel side as the daemon sees it: load and attach the XDP observer,
//! own it in one task that reports its counters, and stream its events.

mod attach;
mod check;
mod counters;
mod decode;
mod error;
mod loader;
mod log;
mod objects;
mod owner;
mod ring;
mod tls_hello;
mod verifier;

pub use attach::{default_route_interface, AttachedInterface, XdpModeUsed};
pub use check::{KernelCheck, ProgramCheck};
pub use counters::{HttpKernelCounters, KernelCounters, PipelineCounts};
#[cfg(test)]
pub(crate) use decode::testing;
pub use decode::{ip_from_kernel, KernelEventContext};
pub use error::KernelError;
pub use loader::{HttpTimingStatus, KernelConfig, Observer};
pub use log::spawn_kernel_log;
pub use objects::{baseline_object, ebpf_object};
pub use owner::{spawn_owner, HttpReport, KernelHandle, KernelReport};
pub use ring::{spawn_ring_reader, RingKind};
pub use tls_hello::{spawn_packet_reader, TlsHelloCounts};
pub use verifier::{VerifierStats, INSN_BUDGET};
