//! Per-CPU scratch in map memory: the packet's summary (which the later
//! stages read), blurred offsets, and a new source's entry. Map memory is
//! what the stack (512 bytes) cannot hold, and the verifier does not track
//! values through it.

use monitor_common::maps::SourceStats;

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
    /// A new source's first statistics, before they are inserted.
    pub fresh: SourceStats,
}

/// This CPU's space for a new source entry.
#[inline(always)]
pub fn fresh_source() -> Option<*mut SourceStats> {
    // SAFETY: this CPU's stash value; only the field's address is taken.
    get().map(|stash| unsafe { &raw mut (*stash).fresh })
}

/// This CPU's stash.
#[inline(always)]
pub fn get() -> Option<*mut Stash> {
    STASH.get_ptr_mut(0)
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
