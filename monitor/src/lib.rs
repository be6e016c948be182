//! Monitor daemon library: the parts the binary wires together, public so
//! the integration tests can drive the real XDP program and the real parsers.

pub mod cli;
pub mod config_file;
pub mod event;
pub mod geo;
pub mod headline;
pub mod history;
pub mod http_timing;
pub mod kernel;
pub mod ports;

/// The compiled XDP programs (built by build.rs from monitor-ebpf).
pub fn ebpf_object() -> &'static [u8] {
    static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/monitor"));
    OBJECT
}

/// The trivial XDP_PASS program the benchmark compares against.
pub fn baseline_object() -> &'static [u8] {
    static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/baseline"));
    OBJECT
}
pub mod aggregate;
pub mod app;
pub mod server;
pub mod syslog;
