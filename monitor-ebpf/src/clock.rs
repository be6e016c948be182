//! Time for counters and windows, chosen by the daemon before load.

use aya_ebpf::helpers::{bpf_ktime_get_coarse_ns, bpf_ktime_get_ns};

/// Set by the daemon (`EbpfLoader::set_global`) to 1 on kernels that have
/// `bpf_ktime_get_coarse_ns` (5.11+). Read-only data: the verifier knows
/// its value and never walks the other branch, so 5.10 loads the program.
#[unsafe(no_mangle)]
static COARSE_CLOCK: u32 = 0;

/// CLOCK_MONOTONIC, at one tick's resolution where the kernel offers that
/// cheaper read: ample for rate windows and first/last seen.
#[inline(always)]
pub fn coarse_now() -> u64 {
    // SAFETY: a plain read of a read-only global; the helpers have no preconditions.
    unsafe {
        if core::ptr::read_volatile(&COARSE_CLOCK) != 0 {
            bpf_ktime_get_coarse_ns()
        } else {
            bpf_ktime_get_ns()
        }
    }
}

/// CLOCK_MONOTONIC at full resolution (HTTP request and response times).
#[inline(always)]
pub fn precise_now() -> u64 {
    // SAFETY: the helper has no preconditions.
    unsafe { bpf_ktime_get_ns() }
}
