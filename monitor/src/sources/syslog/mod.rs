//! The classic path: iptables LOG lines forwarded by rsyslog (or any syslog
//! sender) over UDP or TCP, turned into the same events as the XDP path.

mod allowlist;
mod hosts;
mod ingest;
mod tcp;
mod tls;
mod udp;

pub use allowlist::{local_interface_nets, local_subnets, Allowlist};
pub use hosts::{HostRecord, HostTable, RunTotals, MAX_HOSTS};
pub use ingest::{HostCheck, Ingest, IngestConfig, RejectReason, SyslogCounters};
pub use tcp::spawn_tcp_listener;
pub use tls::{read_certs, server_config, spawn_tls_listener, SyslogTlsError};
pub use udp::spawn_udp_listener;
