//! The hand-over from the first stage to the later ones.

use crate::{
    maps::STASH,
    parse::{Summary, MAX_OFFSET},
};

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
        let mut back = core::ptr::read_volatile(slot);
        back.payload_offset &= MAX_OFFSET;
        back
    }
}

/// Returns packet offset `offset` by way of map memory, so the verifier
/// knows no more of it than `0..=MAX_OFFSET`: the paths that computed
/// different offsets meet in one state. The mask is what tells old
/// verifiers (5.10, 6.1) the bound: they lose a comparison's bound on the
/// way to a pointer addition. The parser's offsets stay far below it.
#[inline(always)]
pub fn blur(stash: *mut Stash, offset: usize) -> usize {
    // SAFETY: `stash` is this CPU's stash value.
    unsafe {
        let slot = &raw mut (*stash).blurred;
        core::ptr::write_volatile(slot, offset as u64);
        core::ptr::read_volatile(slot) as usize & MAX_OFFSET
    }
}
