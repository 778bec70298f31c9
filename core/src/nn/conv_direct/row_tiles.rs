//! The forward kernel of maps at least 16 pixels wide: a tile of 8 output channels × 3 vectors of 16 pixels along
//! rows sums, over the input channels and the nine taps, one vector load of the padded input times one broadcast
//! weight (24 accumulators in registers).

use super::ROW_TILE_CHANNELS as TILE_CHANNELS;
use super::padded::{LANES, PixelVector};
use std::arch::x86_64::*;
use std::mem::MaybeUninit;

/// Pixel vectors of one tile.
const TILE_VECTORS: usize = 3;

/// One image: `to` output planes from `from` padded input planes.
///
/// # Safety
/// AVX-512F must be available; `padded` holds `from` planes of `plane` values with rows `pitch` apart and room for
/// a vector load at every tap of every vector in `vectors` (`Padded::for_row_vectors`), `packed` holds the weights
/// as `[from][9][to]`, `out` holds `to` planes of the vectors' pixels, and `to` is a multiple of [`TILE_CHANNELS`].
/// Every value of `out` is written, none read.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn image(
    padded: &[f32],
    plane: usize,
    pitch: usize,
    from: usize,
    packed: &[f32],
    to: usize,
    vectors: &[PixelVector],
    out: &mut [MaybeUninit<f32>],
) {
    debug_assert!(padded.len() >= from * plane && packed.len() >= from * 9 * to);
    let pixels = out.len() / to;
    let out = out.as_mut_ptr().cast::<f32>();
    let tile = Tile { padded: padded.as_ptr(), plane, pitch, from, packed: packed.as_ptr(), to, pixels };
    for group in vectors.chunks(TILE_VECTORS) {
        for first in (0..to).step_by(TILE_CHANNELS) {
            // SAFETY: as this function's contract.
            unsafe {
                match group.len() {
                    3 => tile.run::<3>(group, first, out),
                    2 => tile.run::<2>(group, first, out),
                    _ => tile.run::<1>(group, first, out),
                }
            }
        }
    }
}

/// What every tile of one image shares.
struct Tile {
    padded: *const f32,
    plane: usize,
    pitch: usize,
    from: usize,
    packed: *const f32,
    to: usize,
    pixels: usize,
}

impl Tile {
    /// Output channels `first..first + 8` at `V` pixel vectors.
    #[target_feature(enable = "avx512f")]
    unsafe fn run<const V: usize>(&self, group: &[PixelVector], first: usize, out: *mut f32) {
        let mut acc = [[_mm512_setzero_ps(); V]; TILE_CHANNELS];
        for c in 0..self.from {
            // SAFETY (every pointer below): inside `padded` and `packed` by `image`'s contract.
            let x = unsafe { self.padded.add(c * self.plane) };
            let w = unsafe { self.packed.add(c * 9 * self.to + first) };
            for ky in 0..3 {
                for kx in 0..3 {
                    let tap = ky * self.pitch + kx;
                    let mut xv = [_mm512_setzero_ps(); V];
                    for (v, vector) in xv.iter_mut().zip(group) {
                        *v = unsafe { _mm512_loadu_ps(x.add(vector.padded + tap)) };
                    }
                    let w_tap = unsafe { w.add((ky * 3 + kx) * self.to) };
                    for (r, acc_r) in acc.iter_mut().enumerate() {
                        let wv = _mm512_set1_ps(unsafe { *w_tap.add(r) });
                        for (a, x) in acc_r.iter_mut().zip(&xv) {
                            *a = _mm512_fmadd_ps(wv, *x, *a);
                        }
                    }
                }
            }
        }
        for (r, acc_r) in acc.iter().enumerate() {
            for (a, vector) in acc_r.iter().zip(group) {
                // Lanes past the row hold sums over the padding: not stored.
                let mask = if vector.lanes == LANES { !0 } else { (1u16 << vector.lanes) - 1 };
                // SAFETY: the first `lanes` values from here are inside output plane `first + r`.
                unsafe { _mm512_mask_storeu_ps(out.add((first + r) * self.pixels + vector.output), mask, *a) };
            }
        }
    }
}
