//! Copying packet bytes at an offset the verifier only knows a bound of.

use aya_ebpf::programs::XdpContext;

use crate::parse::{ptr_at, MAX_OFFSET};

/// Copies up to `N` bytes from `offset` into `out` and returns how many were
/// copied: 8-byte chunks, then one 4-byte and one 2-byte chunk, each read
/// bounds-checked. A packet's final odd byte is not captured: a one-byte
/// bounds check is a shape the verifier cannot follow (see parse.rs), and a
/// byte loop multiplies its states.
#[inline(always)]
pub fn packet_bytes<const N: usize>(ctx: &XdpContext, offset: usize, out: &mut [u8; N]) -> usize {
    // The stages read `offset` from the stash: the mask is the bound old
    // verifiers need (see stash::blur); parsed offsets are always below it.
    let offset = offset & MAX_OFFSET;
    let mut copied = chunks::<8, N>(ctx, offset, out, 0, N);
    copied = chunks::<4, N>(ctx, offset, out, copied, copied + 4);
    chunks::<2, N>(ctx, offset, out, copied, copied + 2)
}

/// Copies C-byte chunks from `offset + copied` while they fit in the packet
/// and below `limit` (at most N); returns the new `copied`.
#[inline(always)]
fn chunks<const C: usize, const N: usize>(
    ctx: &XdpContext,
    offset: usize,
    out: &mut [u8; N],
    mut copied: usize,
    limit: usize,
) -> usize {
    while copied + C <= limit && copied + C <= N {
        let Some(src) = ptr_at::<[u8; C]>(ctx, offset + copied) else {
            break;
        };
        // SAFETY: bounds checked by ptr_at; copied + C <= N.
        unsafe { out.as_mut_ptr().add(copied).cast::<[u8; C]>().write_unaligned(*src) };
        copied += C;
    }
    copied
}
