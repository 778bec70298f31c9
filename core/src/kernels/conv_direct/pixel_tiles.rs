//! The forward kernel of maps too narrow to fill row vectors (8×8, 4×4): a tile of 12 output pixels × 16 or 32
//! output channels sums, over the input channels and the nine taps, one or two vector loads of packed weights
//! times each pixel's input value, broadcast (24 accumulators in registers). Its output is pixels × channels.

use super::PIXEL_TILE_PIXELS as TILE_PIXELS;
use std::arch::x86_64::*;
use std::ops::Range;

/// Lanes of an AVX-512 vector of f32: these tiles run on AVX-512 only.
const LANES: usize = 16;

/// Input channels whose weights (9 × 32 output channels each, 72 KiB for 64) and planes a pass keeps in cache.
const INPUT_BLOCK: usize = 64;

/// `out[i][o] = Σ_c Σ_tap padded[starts[i] + c·plane + tap] · packed[c][tap][o]` for every pixel `i`.
///
/// # Safety
/// AVX-512F must be available; `padded` holds, for every start, `from` planes of `plane` values with rows `pitch`
/// apart from that start on (its 3×3 window included), `packed` holds the weights as `[from][9][to]`, `out` holds
/// `starts.len()` rows of `to` values, `starts.len()` is a multiple of [`TILE_PIXELS`] and `to` of 16.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn pixels(
    padded: &[f32],
    plane: usize,
    pitch: usize,
    from: usize,
    packed: &[f32],
    to: usize,
    starts: &[usize],
    out: &mut [f32],
) {
    debug_assert!(starts.len().is_multiple_of(TILE_PIXELS) && to.is_multiple_of(LANES));
    debug_assert!(packed.len() >= from * 9 * to && out.len() >= starts.len() * to);
    let tile = Tile { padded: padded.as_ptr(), plane, pitch, packed: packed.as_ptr(), to };
    // Input channels in blocks, and output channels in blocks inside them, so that a block's weights and input
    // planes stay in cache over every pixel; each pixel's sums go to `out` between input blocks.
    for channels in (0..from).step_by(INPUT_BLOCK).map(|c| c..(c + INPUT_BLOCK).min(from)) {
        let mut first = 0;
        while first < to {
            let wide = to - first >= 2 * LANES;
            for (t, pixels) in starts.chunks(TILE_PIXELS).enumerate() {
                let pixels: &[usize; TILE_PIXELS] = pixels.try_into().expect("pixel lists are whole tiles");
                let out = out[t * TILE_PIXELS * to..].as_mut_ptr();
                // SAFETY: as this function's contract.
                unsafe {
                    if wide {
                        tile.run::<2>(pixels, channels.clone(), first, out);
                    } else {
                        tile.run::<1>(pixels, channels.clone(), first, out);
                    }
                }
            }
            first += if wide { 2 * LANES } else { LANES };
        }
    }
}

/// What every tile shares.
struct Tile {
    padded: *const f32,
    plane: usize,
    pitch: usize,
    packed: *const f32,
    to: usize,
}

impl Tile {
    /// Output channels `first..first + 16·V` of 12 pixels, summed over input channels `channels` and added to (for
    /// the first input block: written to) rows `to` values apart from `out`.
    #[target_feature(enable = "avx512f")]
    unsafe fn run<const V: usize>(
        &self,
        starts: &[usize; TILE_PIXELS],
        channels: Range<usize>,
        first: usize,
        out: *mut f32,
    ) {
        let mut acc = [[_mm512_setzero_ps(); V]; TILE_PIXELS];
        if channels.start > 0 {
            for (r, acc_r) in acc.iter_mut().enumerate() {
                for (v, a) in acc_r.iter_mut().enumerate() {
                    // SAFETY: as the stores below.
                    *a = unsafe { _mm512_loadu_ps(out.add(r * self.to + first + v * LANES)) };
                }
            }
        }
        for c in channels {
            // SAFETY (every pointer below): inside `padded` and `packed` by `pixels`' contract.
            let x = unsafe { self.padded.add(c * self.plane) };
            let w = unsafe { self.packed.add(c * 9 * self.to + first) };
            for ky in 0..3 {
                for kx in 0..3 {
                    let tap = ky * self.pitch + kx;
                    let w_tap = unsafe { w.add((ky * 3 + kx) * self.to) };
                    let mut wv = [_mm512_setzero_ps(); V];
                    for (v, w) in wv.iter_mut().enumerate() {
                        *w = unsafe { _mm512_loadu_ps(w_tap.add(v * LANES)) };
                    }
                    for (acc_r, &start) in acc.iter_mut().zip(starts) {
                        let xv = _mm512_set1_ps(unsafe { *x.add(start + tap) });
                        for (a, w) in acc_r.iter_mut().zip(&wv) {
                            *a = _mm512_fmadd_ps(*w, xv, *a);
                        }
                    }
                }
            }
        }
        for (r, acc_r) in acc.iter().enumerate() {
            for (v, a) in acc_r.iter().enumerate() {
                // SAFETY: row `r` of the tile holds `to` values, `first + 16·V ≤ to`.
                unsafe { _mm512_storeu_ps(out.add(r * self.to + first + v * LANES), *a) };
            }
        }
    }
}
