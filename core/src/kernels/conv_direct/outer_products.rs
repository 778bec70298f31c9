//! The weight-gradient kernel: per output pixel an outer product of its output gradient along one or two vectors of
//! output channels (the gradient transposed to pixels × channels) and the nine input values its taps see,
//! broadcast. The sums of one input channel's nine taps stay in registers over a whole pass of images, so nothing
//! is reduced across vector lanes. AVX-512 takes two vectors (18 accumulators of its 32 registers), AVX2 one (9 of
//! 16).

use super::padded::Padded;
use super::simd::{Avx2, Avx512, Isa, Simd};

/// Adds the weight gradient of `images` images to `partial`, laid out `[C][9][O]`.
///
/// # Safety
/// `isa` must be available; `padded` holds `images · channels` planes laid out as `pad`, image after image, `dy_t`
/// holds each image's output gradient as `[pixel][O]` with `O = o`, a multiple of 16, image after image, and
/// `partial` holds `channels · 9 · o` values.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn images(
    isa: Isa,
    padded: &[f32],
    pad: Padded,
    channels: usize,
    images: usize,
    dy_t: &[f32],
    o: usize,
    partial: &mut [f32],
) {
    debug_assert!(o.is_multiple_of(16) && partial.len() >= channels * 9 * o);
    let pass = Pass { padded, pad, channels, images, dy_t, o };
    // SAFETY: as this function's contract.
    unsafe {
        match isa {
            Isa::Avx512 => images_avx512(&pass, partial),
            Isa::Avx2 => images_avx2(&pass, partial),
        }
    }
}

/// One pass's inputs, as [`images`] takes them.
struct Pass<'a> {
    padded: &'a [f32],
    pad: Padded,
    channels: usize,
    images: usize,
    dy_t: &'a [f32],
    o: usize,
}

#[target_feature(enable = "avx512f")]
unsafe fn images_avx512(pass: &Pass, partial: &mut [f32]) {
    unsafe { all_images::<Avx512, 2>(pass, partial) }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn images_avx2(pass: &Pass, partial: &mut [f32]) {
    unsafe { all_images::<Avx2, 1>(pass, partial) }
}

/// [`images`] on `S`, at most `WIDE` vectors of output channels at a time.
#[inline(always)]
unsafe fn all_images<S: Simd, const WIDE: usize>(pass: &Pass, partial: &mut [f32]) {
    let Pass { padded, pad, channels, images, dy_t, o } = *pass;
    let strides = Images { padded: channels * pad.plane(), dy_t: pad.height * pad.width * o, count: images };
    // Output rows (of every image in the pass, one after the other) in blocks whose gradient stays in L1 while every
    // input channel's sums run over it: streamed from L2 once per channel, the gradient's loads held the kernel to
    // two thirds of its speed on 32×32 and 16×16 maps (64 and 128 channels). Each block reads and writes all the
    // sums, though, so where they outgrow L2 (256 channels: 2.3 MiB) one block takes every row, which measured
    // faster there.
    let rows = images * pad.height;
    let block = if 4 * channels * 9 * o <= SUMS_BLOCKED_MAX_BYTES {
        (GRADIENT_BLOCK_BYTES / (4 * o * pad.width).max(1)).max(1)
    } else {
        rows
    };
    for first_row in (0..rows).step_by(block) {
        let rows = first_row..(first_row + block).min(rows);
        for c in 0..channels {
            let x = &padded[c * pad.plane()..];
            let sums = &mut partial[c * 9 * o..(c + 1) * 9 * o];
            let mut first = 0;
            while first < o {
                // SAFETY: as `images`' contract.
                unsafe {
                    if WIDE >= 2 && o - first >= 2 * S::LANES {
                        channel::<S, 2>(x, pad, strides, rows.clone(), dy_t, o, first, sums);
                        first += 2 * S::LANES;
                    } else {
                        channel::<S, 1>(x, pad, strides, rows.clone(), dy_t, o, first, sums);
                        first += S::LANES;
                    }
                }
            }
        }
    }
}

/// Bytes of output gradient one block of rows holds: half of L1.
const GRADIENT_BLOCK_BYTES: usize = 16 << 10;

/// Sums up to this size (an L2) are read and written once per block of rows.
const SUMS_BLOCKED_MAX_BYTES: usize = 1 << 20;

/// How far apart consecutive images lie in the padded input and the transposed output gradient, and how many.
#[derive(Clone, Copy)]
struct Images {
    padded: usize,
    dy_t: usize,
    count: usize,
}

/// `sums[tap][first..first + V·LANES] += Σ_pixels dy_t[pixel][first..] · x[pixel + tap]` over the pixels of output
/// rows `rows` (counted across the pass's images) for one input channel, whose first image's padded plane starts `x`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn channel<S: Simd, const V: usize>(
    x: &[f32],
    pad: Padded,
    images: Images,
    rows: std::ops::Range<usize>,
    dy_t: &[f32],
    o: usize,
    first: usize,
    sums: &mut [f32],
) {
    let mut acc = [[unsafe { S::zero() }; 9]; V];
    for (v, acc_v) in acc.iter_mut().enumerate() {
        for (tap, a) in acc_v.iter_mut().enumerate() {
            // SAFETY: `sums` holds 9 rows of `o` values and `first + V·LANES ≤ o`.
            *a = unsafe { S::load(sums.as_ptr().add(tap * o + first + v * S::LANES)) };
        }
    }
    debug_assert!(x.len() >= (images.count - 1) * images.padded + pad.plane());
    debug_assert!(dy_t.len() >= images.count * images.dy_t);
    for row in rows {
        let (i, y) = (row / pad.height, row % pad.height);
        // SAFETY (every pointer below): image `i`'s plane and gradient lie inside `x` and `dy_t` (asserted above);
        // padded rows y..y + 2 hold the taps of output row y, columns 0..W + 2, and `dy_t` holds H·W rows of `o`
        // values per image.
        let (x, dy_t) = unsafe { (x.as_ptr().add(i * images.padded), dy_t.as_ptr().add(i * images.dy_t)) };
        let taps = unsafe { [x.add(y * pad.pitch), x.add((y + 1) * pad.pitch), x.add((y + 2) * pad.pitch)] };
        for col in 0..pad.width {
            let mut d = [unsafe { S::zero() }; V];
            for (v, d) in d.iter_mut().enumerate() {
                *d = unsafe { S::load(dy_t.add((y * pad.width + col) * o + first + v * S::LANES)) };
            }
            for (ky, row) in taps.iter().enumerate() {
                for kx in 0..3 {
                    let xv = unsafe { S::splat(*row.add(col + kx)) };
                    for (acc_v, d) in acc.iter_mut().zip(&d) {
                        acc_v[ky * 3 + kx] = unsafe { S::fmadd(*d, xv, acc_v[ky * 3 + kx]) };
                    }
                }
            }
            S::step_end();
        }
    }
    for (v, acc_v) in acc.iter().enumerate() {
        for (tap, a) in acc_v.iter().enumerate() {
            // SAFETY: as the loads above.
            unsafe { S::store(sums.as_mut_ptr().add(tap * o + first + v * S::LANES), *a) };
        }
    }
}
