//! The forward kernel of maps wide enough to fill row vectors: a tile of `R` output channels × `V` vectors of
//! pixels along rows sums, over the input channels and the nine taps, one vector load of the padded input times one
//! broadcast weight. AVX-512 takes 8 channels × 3 vectors (24 accumulators of its 32 registers, the 3 input vectors
//! held while the weights stream), AVX2 2 channels × 6 vectors (12 of its 16, the 2 weights held while the input
//! streams: 4 × 3 with either held needs 17 registers, and LLVM spilled the accumulators).

use super::padded::PixelVector;
use super::simd::{Avx2, Avx512, Isa, Simd};
use std::mem::MaybeUninit;

/// Output channels × pixel vectors of one tile on each instruction set; [`super::ROW_TILE_CHANNELS`] is a multiple
/// of both channel counts.
const AVX512_TILE: (usize, usize) = (8, 3);
const AVX2_TILE: (usize, usize) = (2, 5);

/// Output channels of one tile on `isa`: the blocks its weights are packed in.
pub(super) fn tile_channels(isa: Isa) -> usize {
    match isa {
        Isa::Avx512 => AVX512_TILE.0,
        Isa::Avx2 => AVX2_TILE.0,
    }
}

/// One image: `to` output planes from `from` padded input planes.
///
/// # Safety
/// `isa` must be available; `padded` holds `from` planes of `plane` values with rows `pitch` apart and room for a
/// vector load at every tap of every vector in `vectors` (`Padded::for_row_vectors` with `isa`'s lanes), `blocked`
/// holds the weights as `[to / R][from][9][R]` for `isa`'s [`tile_channels`] `R`, `out` holds `to` planes of the
/// vectors' pixels, and `to` is a multiple of [`super::ROW_TILE_CHANNELS`]. Every value of `out` is written, none read.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn image(
    isa: Isa,
    padded: &[f32],
    plane: usize,
    pitch: usize,
    from: usize,
    blocked: &[f32],
    to: usize,
    vectors: &[PixelVector],
    out: &mut [MaybeUninit<f32>],
) {
    debug_assert!(padded.len() >= from * plane && blocked.len() >= from * 9 * to);
    debug_assert!(to.is_multiple_of(super::ROW_TILE_CHANNELS));
    let pixels = out.len() / to;
    let out = out.as_mut_ptr().cast::<f32>();
    let tile = Tile { padded: padded.as_ptr(), plane, pitch, from, blocked: blocked.as_ptr(), to, pixels };
    // SAFETY: as this function's contract.
    unsafe {
        match isa {
            Isa::Avx512 => image_avx512(&tile, vectors, out),
            Isa::Avx2 => image_avx2(&tile, vectors, out),
        }
    }
}

#[target_feature(enable = "avx512f")]
unsafe fn image_avx512(tile: &Tile, vectors: &[PixelVector], out: *mut f32) {
    unsafe { tiles::<Avx512, { AVX512_TILE.0 }, { AVX512_TILE.1 }>(tile, vectors, out) }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn image_avx2(tile: &Tile, vectors: &[PixelVector], out: *mut f32) {
    unsafe { tiles::<Avx2, { AVX2_TILE.0 }, { AVX2_TILE.1 }>(tile, vectors, out) }
}

/// Tiles of `R` channels × `V` vectors (`V` ≤ 6), the last group of vectors as many as are left.
#[inline(always)]
unsafe fn tiles<S: Simd, const R: usize, const V: usize>(tile: &Tile, vectors: &[PixelVector], out: *mut f32) {
    for group in vectors.chunks(V) {
        for first in (0..tile.to).step_by(R) {
            // SAFETY: as `image`'s contract.
            unsafe {
                match group.len() {
                    6 => tile.run::<S, R, 6>(group, first, out),
                    5 => tile.run::<S, R, 5>(group, first, out),
                    4 => tile.run::<S, R, 4>(group, first, out),
                    3 => tile.run::<S, R, 3>(group, first, out),
                    2 => tile.run::<S, R, 2>(group, first, out),
                    _ => tile.run::<S, R, 1>(group, first, out),
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
    blocked: *const f32,
    to: usize,
    pixels: usize,
}

impl Tile {
    /// Output channels `first..first + R` at `V` pixel vectors.
    #[inline(always)]
    unsafe fn run<S: Simd, const R: usize, const V: usize>(&self, group: &[PixelVector], first: usize, out: *mut f32) {
        let mut acc = [[unsafe { S::zero() }; V]; R];
        // SAFETY (every pointer below): inside `padded` and `blocked` by `image`'s contract.
        let weights = unsafe { self.blocked.add(first * self.from * 9) };
        for c in 0..self.from {
            let x = unsafe { self.padded.add(c * self.plane) };
            let w = unsafe { weights.add(c * 9 * R) };
            for ky in 0..3 {
                for kx in 0..3 {
                    let tap = ky * self.pitch + kx;
                    let w_tap = unsafe { w.add((ky * 3 + kx) * R) };
                    // Each accumulator takes one FMA per tap in either order, so both give the same bits.
                    if R > V {
                        let mut xv = [unsafe { S::zero() }; V];
                        for (v, vector) in xv.iter_mut().zip(group) {
                            *v = unsafe { S::load(x.add(vector.padded + tap)) };
                        }
                        for (r, acc_r) in acc.iter_mut().enumerate() {
                            let wv = unsafe { S::splat(*w_tap.add(r)) };
                            for (a, x) in acc_r.iter_mut().zip(&xv) {
                                *a = unsafe { S::fmadd(wv, *x, *a) };
                            }
                        }
                    } else {
                        let mut wv = [unsafe { S::zero() }; R];
                        for (r, w) in wv.iter_mut().enumerate() {
                            *w = unsafe { S::splat(*w_tap.add(r)) };
                        }
                        for (v, vector) in group.iter().enumerate() {
                            let xv = unsafe { S::load(x.add(vector.padded + tap)) };
                            for (acc_r, w) in acc.iter_mut().zip(&wv) {
                                acc_r[v] = unsafe { S::fmadd(*w, xv, acc_r[v]) };
                            }
                        }
                    }
                    S::step_end();
                }
            }
        }
        for (r, acc_r) in acc.iter().enumerate() {
            for (a, vector) in acc_r.iter().zip(group) {
                // Lanes past the row hold sums over the padding: not stored.
                // SAFETY: the first `lanes` values from here are inside output plane `first + r`.
                unsafe { S::store_first(out.add((first + r) * self.pixels + vector.output), *a, vector.lanes) };
            }
        }
    }
}
