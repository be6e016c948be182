//! The kernel side as the daemon sees it: load and attach the XDP observer,
//! read its counters, and stream its events.

mod attach;
mod check;
mod counters;
mod error;
mod loader;
mod log;
mod ring;
mod tls_hello;
mod verifier;

pub use check::{KernelCheck, ProgramCheck};
pub use verifier::{VerifierStats, INSN_BUDGET};
pub use attach::{default_route_interface, AttachedInterface, XdpModeUsed};
pub use counters::{HttpKernelCounters, KernelCounters, PipelineCounts};
pub use error::KernelError;
pub use log::spawn_kernel_log;
pub use loader::{HttpTimingStatus, KernelConfig, Observer};
pub use ring::{spawn_ring_reader, RingKind};
pub use tls_hello::{spawn_packet_reader, TlsHelloCounts};
