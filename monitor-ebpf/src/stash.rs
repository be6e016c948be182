//! The hand-over from the first stage to the later ones.

use crate::{maps::STASH, parse::Summary};

/// One packet's summary and sampling decision, per CPU.
pub struct Stash {
    pub summary: Summary,
    pub packet_len: u64,
    /// Coarse time the packet was counted at.
    pub now: u64,
    /// The event's weight (itself plus the suppressed packets before it);
    /// 0 when the packet is not sampled.
    pub weight: u64,
    /// Scratch for [`blur`].
    pub blurred: u64,
}

/// This CPU's stash.
#[inline(always)]
pub fn get() -> Option<*mut Stash> {
    STASH.get_ptr_mut(0)
}

/// Puts `summary` into the stash and reads it back as the verifier sees
/// map memory: values it knows nothing of. Every header path the parser
/// took then meets in one state, so what follows is verified once instead
/// of once per path (the volatile accesses keep LLVM from reusing the
/// values it still holds in registers).
#[inline(always)]
pub fn forget(stash: *mut Stash, summary: Summary) -> Summary {
    // SAFETY: `stash` is this CPU's stash value; Summary is plain data.
    unsafe {
        let slot = &raw mut (*stash).summary;
        core::ptr::write_volatile(slot, summary);
        core::ptr::read_volatile(slot)
    }
}

/// Returns `value` by way of map memory, so the verifier knows no more of
/// it than its type: the paths that computed different values meet in one
/// state. For offsets, whose readers check them against a bound anyway.
#[inline(always)]
pub fn blur(stash: *mut Stash, value: usize) -> usize {
    // SAFETY: `stash` is this CPU's stash value.
    unsafe {
        let slot = &raw mut (*stash).blurred;
        core::ptr::write_volatile(slot, value as u64);
        core::ptr::read_volatile(slot) as usize
    }
}
