//! The compiled kernel programs, built by build.rs from monitor-ebpf.

/// The observer's programs and maps.
pub fn ebpf_object() -> &'static [u8] {
    static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/monitor"));
    OBJECT
}

/// The trivial XDP_PASS program the benchmark and `--check-kernel` compare against.
pub fn baseline_object() -> &'static [u8] {
    static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/baseline"));
    OBJECT
}
