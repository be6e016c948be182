//! The classic path: iptables LOG lines forwarded by rsyslog (or any syslog
//! sender) over UDP or TCP, turned into the same events as the XDP path.

mod allowlist;
mod ingest;
mod tcp;
mod udp;

pub use allowlist::{local_interface_nets, local_subnets, Allowlist};
pub use ingest::{Ingest, IngestConfig, RejectReason, SyslogCounters};
pub use tcp::spawn_tcp_listener;
pub use udp::spawn_udp_listener;
