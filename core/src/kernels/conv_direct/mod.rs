//! 3×3 convolutions with stride 1 and padding 1 as direct AVX-512 or AVX2 kernels ([`simd`]), without im2col:
//! every WRN and ResNet convolution that neither downsamples nor is a 1×1 shortcut.
//!
//! Their im2col matrices are nine times the image, written and then packed again by `gemm` before the product
//! starts; on the 32×32 maps of WRN-28-2 (32 channels) that traffic held the GEMMs to about half of what the cores
//! can do, and their weight gradient to a fifth. Here each kernel reads a zero-padded copy of the image
//! ([`padded`]) in place:
//!
//! * forward: [`row_tiles`] on maps at least 16 pixels wide, vectors along the rows; [`pixel_tiles`] on narrower
//!   maps, vectors along the output channels;
//! * input gradient: the same kernels over the output gradient, with the weights flipped and their channel axes
//!   swapped (the adjoint of a stride-1, padding-1 3×3 convolution is one);
//! * weight gradient: [`outer_products`] of the output gradient and the input.
//!
//! [`forward`], [`input_grad`] and [`weight_grad`] return `None` where a geometry or the CPU does not fit these
//! kernels, and the caller takes the im2col + GEMM path. Every sum runs in a fixed order, so the results depend on
//! the thread count only.

mod padded;
mod transpose;

#[cfg(target_arch = "x86_64")]
mod outer_products;
#[cfg(target_arch = "x86_64")]
mod pixel_tiles;
#[cfg(target_arch = "x86_64")]
mod row_tiles;
#[cfg(target_arch = "x86_64")]
mod simd;

#[cfg(target_arch = "x86_64")]
pub use simd::Isa;

/// No instruction set to run the kernels on: they are x86-64 only.
#[cfg(not(target_arch = "x86_64"))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {}

#[cfg(not(target_arch = "x86_64"))]
impl Isa {
    pub const ALL: [Isa; 0] = [];

    pub fn available() -> Vec<Isa> {
        Vec::new()
    }

    pub fn runs_here(self) -> bool {
        match self {}
    }

    pub fn lanes(self) -> usize {
        match self {}
    }
}

use super::conv_geometry::{ConvGeometry, sum_in_order};
use super::write_only::{as_write_only, written_whole};
use padded::Padded;
use rayon::prelude::*;
use transpose::{transpose, transpose_in_parallel};

/// The multiple of output channels the row tiles need: a multiple of every instruction set's tile.
const ROW_TILE_CHANNELS: usize = 8;

/// A pass's pixel list is padded to a multiple of this: a multiple of every instruction set's pixel tile.
const PIXEL_TILE_PIXELS: usize = 12;

/// The multiple of output channels the pixel tiles and the weight gradient need: two AVX2 vectors, one AVX-512.
const CHANNEL_MULTIPLE: usize = 16;

/// Output pixels the narrow-map and weight-gradient kernels take in one pass: a pass over a single 4×4 map would
/// stream a block's weights (or the partial gradient, `C·9·O` values, 9 MiB at 512 channels) for only 16 pixels.
const PASS_PIXELS: usize = 256;

/// Pixels of the smallest map whose weight gradient takes the outer products on AVX2.
const AVX2_WEIGHT_GRAD_MIN_PIXELS: usize = 32 * 32;

/// Weights beyond this many values (ResNet-18's 512-channel layers, 2.4 M) take GEMM for their gradient: the
/// partial gradient's trips to memory made the kernel slower there (144 against 167 GFLOP/s on 4×4 maps, 2 cores),
/// while up to 256 channels (590 K values) it is the faster of the two.
const WEIGHT_GRAD_MAX_WEIGHTS: usize = 1 << 20;

/// The best instruction set of this CPU that runs the kernels, if one does; asked at every convolution, so it
/// allocates nothing.
pub(crate) fn best() -> Option<Isa> {
    Isa::ALL.into_iter().find(|isa| isa.runs_here())
}

/// A 3×3 kernel, stride 1, padding 1: the output has the input's size.
fn is_same_size_3x3(g: &ConvGeometry) -> bool {
    g.kernel == [3, 3] && g.stride == [1, 1] && g.padding == [1, 1] && g.height > 0 && g.width > 0
}

/// Whether rows of this width fill at least three quarters of their vectors' lanes (an 8-wide row fills half of an
/// AVX-512 vector).
fn fills_vectors(width: usize, lanes: usize) -> bool {
    4 * width >= 3 * lanes * width.div_ceil(lanes)
}

/// The kernel that maps `from` channels to `to` channels on this geometry's maps, if one does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernel {
    Rows,
    Pixels,
}

fn kernel_for(isa: Isa, g: &ConvGeometry, to: usize) -> Option<Kernel> {
    if !is_same_size_3x3(g) {
        None
    } else if fills_vectors(g.width, isa.lanes()) && to.is_multiple_of(ROW_TILE_CHANNELS) {
        Some(Kernel::Rows)
    } else if isa == Isa::Avx512 && to.is_multiple_of(CHANNEL_MULTIPLE) {
        // On AVX2 the pixel tiles measured slower than GEMM (about 50 against 90 GFLOP/s on 8×8 maps, 2 cores of an
        // AMD EPYC): LLVM spilled their accumulators whatever the tile.
        Some(Kernel::Pixels)
    } else {
        None
    }
}

/// The convolution `y = conv(x, w)` ([`super::conv_cpu::forward`]'s contract), or `None` where these kernels do not
/// apply: they need 8k output channels on maps that fill row vectors, 16k on narrower ones.
pub fn forward(x: &[f32], weight: &[f32], g: &ConvGeometry) -> Option<Vec<f32>> {
    forward_on(best()?, x, weight, g)
}

/// [`forward`] on `isa`, which must be one of [`Isa::available`].
pub fn forward_on(isa: Isa, x: &[f32], weight: &[f32], g: &ConvGeometry) -> Option<Vec<f32>> {
    let kernel = kernel_for(isa, g, g.out_channels)?;
    let (c_in, o) = (g.in_channels, g.out_channels);
    Some(match kernel {
        Kernel::Rows => {
            let at = |c: usize, tap: usize, oc: usize| weight[(oc * c_in + c) * 9 + tap];
            by_rows(isa, x, &packed_in_blocks(c_in, o, row_tile_channels(isa), at), c_in, o, g)
        }
        Kernel::Pixels => {
            // [O][C][3][3] → [C][9][O]: the output channels of one input channel's tap side by side.
            // SAFETY: a transpose writes every value.
            let packed = unsafe { written_whole(weight.len(), |dst| transpose_in_parallel(weight, o, c_in * 9, dst)) };
            by_pixels(x, &packed, c_in, o, g)
        }
    })
}

/// The gradient with respect to the input ([`super::conv_cpu::input_grad`]'s contract), or `None` where these
/// kernels do not apply: they need 8k input channels on maps that fill row vectors, 16k on narrower ones.
pub fn input_grad(weight: &[f32], dy: &[f32], g: &ConvGeometry) -> Option<Vec<f32>> {
    input_grad_on(best()?, weight, dy, g)
}

/// [`input_grad`] on `isa`, which must be one of [`Isa::available`].
pub fn input_grad_on(isa: Isa, weight: &[f32], dy: &[f32], g: &ConvGeometry) -> Option<Vec<f32>> {
    let kernel = kernel_for(isa, g, g.in_channels)?;
    // dx[c, p] = Σ_o Σ_tap w[o, c, tap] · dy[o, p − (tap − centre)]: a forward convolution of dy from O to C channels
    // whose weight for tap t is w[o, c, 8 − t].
    let (c_in, o) = (g.in_channels, g.out_channels);
    let at = |oc: usize, tap: usize, c: usize| weight[(oc * c_in + c) * 9 + (8 - tap)];
    Some(match kernel {
        Kernel::Rows => by_rows(isa, dy, &packed_in_blocks(o, c_in, row_tile_channels(isa), at), o, c_in, g),
        // One block of all `c_in` channels: [O][9][C].
        Kernel::Pixels => by_pixels(dy, &packed_in_blocks(o, c_in, c_in, at), o, c_in, g),
    })
}

/// Output channels of one row tile on `isa`.
fn row_tile_channels(isa: Isa) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        row_tiles::tile_channels(isa)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        match isa {}
    }
}

/// 3×3 weights `at(from, tap, to)` laid out `[to / r][from][9][r]`: with `r = to`, `[from][9][to]` (the pixel
/// tiles'); with `r` a row tile's channels, one tile's weights contiguous (the row tiles': read from
/// `[from][9][to]`, a tile of 2 channels used 8 bytes of every cache line it touched, and at 128 input channels its
/// lines outgrew L1).
fn packed_in_blocks(from: usize, to: usize, r: usize, at: impl Fn(usize, usize, usize) -> f32 + Sync) -> Vec<f32> {
    debug_assert!(r > 0 && to.is_multiple_of(r));
    let pack = |packed: &mut [std::mem::MaybeUninit<f32>]| {
        packed.par_chunks_mut(9 * r).enumerate().for_each(|(k, taps)| {
            let (block, c) = (k / from, k % from);
            for (tap, row) in taps.chunks_mut(r).enumerate() {
                for (i, w) in row.iter_mut().enumerate() {
                    w.write(at(c, tap, block * r + i));
                }
            }
        })
    };
    // SAFETY: the chunks cover all `from · 9 · to` values and `pack` writes each one.
    unsafe { written_whole(from * 9 * to, pack) }
}

/// [`row_tiles`], one image at a time on each thread, the weights packed in blocks of a tile's channels.
fn by_rows(isa: Isa, input: &[f32], blocked: &[f32], from: usize, to: usize, g: &ConvGeometry) -> Vec<f32> {
    let pad = Padded::for_row_vectors(g.height, g.width, isa.lanes());
    let vectors = pad.vectors(isa.lanes());
    let (image_in, image_out) = (from * g.height * g.width, to * g.height * g.width);
    let run = |out: &mut [std::mem::MaybeUninit<f32>]| {
        out.par_chunks_mut(image_out.max(1)).zip(input.par_chunks(image_in.max(1))).for_each_init(
            || vec![0.0f32; from * pad.plane()],
            |padded, (out, image)| {
                pad.fill(image, from, padded);
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `isa` is available, `kernel_for` checked that `to` is a multiple of the tile's channels; the
                // planes are laid out for `isa`'s row vectors, `blocked` holds `from · 9 · to` weights blocked for
                // `isa` and `out` holds `to` planes.
                unsafe {
                    row_tiles::image(isa, padded, pad.plane(), pad.pitch, from, blocked, to, &vectors, out)
                };
            },
        )
    };
    // SAFETY: the row tiles write every pixel of every output plane (`row_tiles::image`).
    unsafe { written_whole(g.batch * image_out, run) }
}

/// [`pixel_tiles`], a pass of images at a time on each thread, transposed back to channels × pixels.
fn by_pixels(input: &[f32], packed: &[f32], from: usize, to: usize, g: &ConvGeometry) -> Vec<f32> {
    let pad = Padded::tight(g.height, g.width);
    let p = g.height * g.width;
    let (image_in, image_out) = (from * p, to * p);
    let share = g.batch.div_ceil(rayon::current_num_threads().max(1)).max(1);
    let group = images_per_pass(g, share);
    let rows = (group * p).next_multiple_of(PIXEL_TILE_PIXELS);
    let run = |out: &mut [std::mem::MaybeUninit<f32>]| {
        out.par_chunks_mut((group * image_out).max(1)).zip(input.par_chunks((group * image_in).max(1))).for_each_init(
            || (vec![0.0f32; group * from * pad.plane()], vec![0.0f32; rows * to], Vec::with_capacity(rows)),
            |(padded, by_pixel, starts), (out, images)| {
                let count = images.len() / image_in.max(1);
                starts.clear();
                for (i, image) in images.chunks(image_in.max(1)).enumerate() {
                    let offset = i * from * pad.plane();
                    pad.fill(image, from, &mut padded[offset..]);
                    starts.extend(pad.pixels().map(|start| start + offset));
                }
                // The last tile's missing pixels repeat the last one; their rows are not read back.
                let last = *starts.last().expect("a pass holds at least one pixel");
                starts.resize(starts.len().next_multiple_of(PIXEL_TILE_PIXELS), last);
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `kernel_for` takes pixel tiles on AVX-512 only, where `to` is a multiple of 16; every start's
                // window lies in `padded`, `packed` holds `from · 9 · to` weights and `by_pixel` holds
                // `rows ≥ starts.len()` rows.
                unsafe {
                    pixel_tiles::pixels(padded, pad.plane(), pad.pitch, from, packed, to, starts, by_pixel)
                };
                for i in 0..count {
                    transpose(&by_pixel[i * p * to..], p, to, &mut out[i * image_out..(i + 1) * image_out]);
                }
            },
        )
    };
    // SAFETY: every image of every pass is transposed whole into its place.
    unsafe { written_whole(g.batch * image_out, run) }
}

/// Images per pass of the pixel-tile and weight-gradient kernels: enough for [`PASS_PIXELS`], at most a thread's
/// share.
fn images_per_pass(g: &ConvGeometry, per_share: usize) -> usize {
    PASS_PIXELS.div_ceil((g.height * g.width).max(1)).clamp(1, per_share.max(1))
}

/// The gradient with respect to the weight ([`super::conv_cpu::weight_grad`]'s contract), or `None` where these
/// kernels do not apply: they need 16k output channels and at most [`WEIGHT_GRAD_MAX_WEIGHTS`] weights.
pub fn weight_grad(x: &[f32], dy: &[f32], g: &ConvGeometry) -> Option<Vec<f32>> {
    weight_grad_on(best()?, x, dy, g)
}

/// [`weight_grad`] on `isa`, which must be one of [`Isa::available`].
pub fn weight_grad_on(isa: Isa, x: &[f32], dy: &[f32], g: &ConvGeometry) -> Option<Vec<f32>> {
    let weights = g.out_channels * g.in_channels * 9;
    if !(is_same_size_3x3(g) && g.out_channels.is_multiple_of(CHANNEL_MULTIPLE) && weights <= WEIGHT_GRAD_MAX_WEIGHTS) {
        return None;
    }
    // With one 8-lane vector of output channels per pass, AVX2's outer products beat GEMM on 32×32 maps only (about
    // 65 against 40–60 GFLOP/s at 32 and 64 channels, 2 cores of an AMD EPYC), and lost to it on smaller maps
    // (about 60 against 75–90).
    if isa == Isa::Avx2 && g.height * g.width < AVX2_WEIGHT_GRAD_MIN_PIXELS {
        return None;
    }
    let (c_in, o, p) = (g.in_channels, g.out_channels, g.height * g.width);
    let pad = Padded::tight(g.height, g.width);
    // Contiguous shares of the batch, each with its own sum, added up in a fixed order, so that the result depends on
    // the thread count only. Several shares per thread, taken as threads come free: with one each, a thread slowed
    // by anything else on its core held the other idle (2 % of a ResNet-18 step on 2 cores).
    let threads = rayon::current_num_threads().max(1);
    let pass = images_per_pass(g, g.batch.div_ceil(threads).max(1));
    let shares = (SHARES_PER_THREAD * threads).min(g.batch.div_ceil(pass)).max(1);
    let per_share = g.batch.div_ceil(shares).max(1);
    let shares = g.batch.div_ceil(per_share).max(1);
    let group = images_per_pass(g, per_share);
    let partials: Vec<Vec<f32>> = (0..shares)
        .into_par_iter()
        .map(|share| {
            // [C][9][O]: a tap's output channels side by side, the layout of the kernel's accumulators.
            let mut partial = vec![0.0f32; c_in * 9 * o];
            let mut padded = vec![0.0f32; group * c_in * pad.plane()];
            let mut dy_t = vec![0.0f32; group * p * o];
            let (first, end) = (share * per_share, ((share + 1) * per_share).min(g.batch));
            let mut start = first;
            while start < end {
                let images = (end - start).min(group);
                for i in 0..images {
                    let b = start + i;
                    let padded_i = &mut padded[i * c_in * pad.plane()..(i + 1) * c_in * pad.plane()];
                    pad.fill(&x[b * c_in * p..(b + 1) * c_in * p], c_in, padded_i);
                    // SAFETY: a transpose stores only initialised values.
                    let dy_t = unsafe { as_write_only(&mut dy_t[i * p * o..(i + 1) * p * o]) };
                    transpose(&dy[b * o * p..(b + 1) * o * p], o, p, dy_t);
                }
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `isa` is available; `padded` holds `images · c_in` padded planes of `pad`, `dy_t` holds
                // `images · p` rows of `o` values, `partial` holds `c_in · 9 · o`, and `o` is a multiple of 16.
                unsafe {
                    outer_products::images(isa, &padded, pad, c_in, images, &dy_t, o, &mut partial)
                };
                start += images;
            }
            partial
        })
        .collect();
    let sum = sum_in_order(partials, c_in * 9 * o);
    // SAFETY: a transpose writes every value.
    Some(unsafe { written_whole(o * c_in * 9, |dw| transpose_in_parallel(&sum, c_in * 9, o, dw)) })
}

/// Shares of the batch per thread in the weight gradient.
const SHARES_PER_THREAD: usize = 4;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_geometry_takes_the_kernel_that_fits_it() {
        let g = |c, h, w, o| ConvGeometry::same_size_3x3(64, c, h, w, o);
        for isa in Isa::available() {
            let wide = isa.lanes() == 16;
            let kernel = |g: ConvGeometry, to| kernel_for(isa, &g, to);
            // WRN-28-2 at 32×32: rows on 32×32 and 16×16 maps; 8×8 fills AVX2's 8-lane rows, not AVX-512's.
            assert_eq!(kernel(g(32, 32, 32, 32), 32), Some(Kernel::Rows));
            assert_eq!(kernel(g(64, 16, 16, 64), 64), Some(Kernel::Rows));
            let eight = if wide { Kernel::Pixels } else { Kernel::Rows };
            assert_eq!(kernel(g(128, 8, 8, 128), 128), Some(eight));
            // 28-wide rows fill 7/8 of their vectors either way; 20-wide 5/8 of AVX-512's, 5/6 of AVX2's.
            assert_eq!(kernel(g(8, 28, 28, 8), 8), Some(Kernel::Rows));
            let twenty = if wide { Kernel::Pixels } else { Kernel::Rows };
            assert_eq!(kernel(g(16, 20, 20, 16), 16), Some(twenty));
            // ResNet-18's 4×4 maps take pixel tiles on AVX-512, GEMM on AVX2; anything strided or not 3×3 GEMM.
            let four = if wide { Some(Kernel::Pixels) } else { None };
            assert_eq!(kernel(g(512, 4, 4, 512), 512), four);
            assert_eq!(kernel(ConvGeometry { stride: [2, 2], ..g(32, 32, 32, 32) }, 32), None);
            assert_eq!(kernel(ConvGeometry { kernel: [1, 1], padding: [0, 0], ..g(32, 32, 32, 32) }, 32), None);
            // Channel counts the tiles do not divide.
            assert_eq!(kernel(g(3, 32, 32, 12), 12), None);
            assert_eq!(kernel(g(8, 4, 4, 8), 8), None);
        }
    }
}
