//! 2-D convolution on the CPU as im2col + GEMM, for f32 NCHW tensors (groups 1, dilation 1, symmetric padding).
//!
//! burn's CPU backend computes a convolution's weight gradient as another convolution with the batch and channel
//! dimensions swapped, which becomes many narrow matrix products (one per input channel, nine columns wide): about
//! half of a WRN training step went there. Here every pass is one well-shaped GEMM per image on the `gemm` crate:
//!
//! * forward: `y_b [O×P] = W [O×CKK] · cols(x_b) [CKK×P]`;
//! * input gradient: `cols(dx_b) = Wᵀ · dy_b`, scattered back with col2im;
//! * weight gradient: `dW = Σ_b dy_b · cols(x_b)ᵀ`, each thread summing its share of the batch.
//!
//! `P` is the output's pixel count and `CKK` the input channels times the kernel's area. A 1×1 convolution with
//! stride 1 and no padding needs no im2col: `cols(x_b)` is `x_b` itself.
//!
//! 3×3 convolutions with stride 1 and padding 1 take [`conv_direct`]'s kernels instead where the CPU has AVX-512 or AVX2.

use super::conv_direct;
pub use super::conv_geometry::ConvGeometry;
use super::conv_geometry::sum_in_order;
use gemm::{Parallelism, gemm};
use rayon::prelude::*;

/// For each kernel row `ky` (or column), the output positions whose input row `o·s + ky − p` lies inside the image:
/// the half-open range of output indices.
fn valid_outputs(out: usize, size: usize, k: usize, s: usize, p: usize) -> (usize, usize) {
    // o·s + k − p ≥ 0  ⇔  o ≥ ⌈(p − k)/s⌉;  o·s + k − p < size  ⇔  o < ⌈(size + p − k)/s⌉.
    let lo = if p > k { (p - k).div_ceil(s) } else { 0 };
    let hi = if size + p > k { (size + p - k).div_ceil(s).min(out) } else { 0 };
    (lo.min(hi), hi)
}

/// Writes the im2col matrix of one image, `C·KH·KW` rows of `P` values, zero where the kernel overlaps the padding.
/// Row `r` starts at `cols[r · row_stride]`, so that the matrices of several images can sit side by side.
fn im2col(image: &[f32], g: &ConvGeometry, cols: &mut [f32], row_stride: usize) {
    let [ho, wo] = g.output_size();
    let [kh, kw] = g.kernel;
    let [sh, sw] = g.stride;
    let [ph, pw] = g.padding;
    let p = ho * wo;
    let mut row = 0;
    for c in 0..g.in_channels {
        let plane = &image[c * g.pixels_in()..(c + 1) * g.pixels_in()];
        for ky in 0..kh {
            let (y_lo, y_hi) = valid_outputs(ho, g.height, ky, sh, ph);
            for kx in 0..kw {
                let (x_lo, x_hi) = valid_outputs(wo, g.width, kx, sw, pw);
                let dst = &mut cols[row * row_stride..row * row_stride + p];
                dst.fill(0.0);
                for oy in y_lo..y_hi {
                    let iy = oy * sh + ky - ph;
                    let src = &plane[iy * g.width..(iy + 1) * g.width];
                    let out = &mut dst[oy * wo..(oy + 1) * wo];
                    if sw == 1 {
                        let ix = x_lo + kx - pw;
                        out[x_lo..x_hi].copy_from_slice(&src[ix..ix + (x_hi - x_lo)]);
                    } else {
                        for ox in x_lo..x_hi {
                            out[ox] = src[ox * sw + kx - pw];
                        }
                    }
                }
                row += 1;
            }
        }
    }
}

/// Adds an im2col matrix (rows `row_stride` apart) back onto the image it came from (the adjoint of [`im2col`]).
fn col2im(cols: &[f32], g: &ConvGeometry, image: &mut [f32], row_stride: usize) {
    let [ho, wo] = g.output_size();
    let [kh, kw] = g.kernel;
    let [sh, sw] = g.stride;
    let [ph, pw] = g.padding;
    let p = ho * wo;
    image.fill(0.0);
    let mut row = 0;
    for c in 0..g.in_channels {
        let plane = &mut image[c * g.pixels_in()..(c + 1) * g.pixels_in()];
        for ky in 0..kh {
            let (y_lo, y_hi) = valid_outputs(ho, g.height, ky, sh, ph);
            for kx in 0..kw {
                let (x_lo, x_hi) = valid_outputs(wo, g.width, kx, sw, pw);
                let src = &cols[row * row_stride..row * row_stride + p];
                for oy in y_lo..y_hi {
                    let iy = oy * sh + ky - ph;
                    let dst = &mut plane[iy * g.width..(iy + 1) * g.width];
                    let from = &src[oy * wo..(oy + 1) * wo];
                    if sw == 1 {
                        // Contiguous on both sides, so the compiler vectorises it (the strided loop below does not).
                        let ix = x_lo + kx - pw;
                        let to = &mut dst[ix..ix + (x_hi - x_lo)];
                        to.iter_mut().zip(&from[x_lo..x_hi]).for_each(|(d, v)| *d += v);
                    } else {
                        for ox in x_lo..x_hi {
                            dst[ox * sw + kx - pw] += from[ox];
                        }
                    }
                }
                row += 1;
            }
        }
    }
}

/// `dst [m×n] = (accumulate ? dst : 0) + lhs [m×k] · rhs [k×n]`, every matrix given by its row and column strides.
#[allow(clippy::too_many_arguments)]
fn matmul(
    dst: &mut [f32],
    accumulate: bool,
    (m, n, k): (usize, usize, usize),
    lhs: &[f32],
    (lhs_rs, lhs_cs): (usize, usize),
    rhs: &[f32],
    (rhs_rs, rhs_cs): (usize, usize),
) {
    debug_assert!(dst.len() >= m * n);
    debug_assert!(m == 0 || k == 0 || lhs.len() > (m - 1) * lhs_rs + (k - 1) * lhs_cs);
    debug_assert!(k == 0 || n == 0 || rhs.len() > (k - 1) * rhs_rs + (n - 1) * rhs_cs);
    // SAFETY: the asserted lengths cover every element the strides address, and `dst` does not alias the inputs
    // (it is a `&mut` borrow while they are shared borrows).
    unsafe {
        gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            Parallelism::None,
        );
    }
}

/// Weights larger than this many values (4 MiB) no longer stay in cache from one image's GEMM to the next: gemm
/// packs them again for every image, which costs more than the product itself when the map is small (ResNet-18's
/// 512-channel layers: a 4×4 map is 16 columns against 2.4 M weights).
const WEIGHTS_KEPT_IN_CACHE: usize = 1 << 20;

/// A group of images whose GEMM is at least this many columns wide packs large weights once for all of them.
const GROUP_COLUMNS: usize = 256;

/// How many images go through one GEMM, side by side along its columns. One image at a time keeps its im2col matrix
/// in cache, which is faster wherever the weights stay in cache too (every WRN layer, measured); larger weights are
/// shared by a group of images. Never more than a thread's share of the batch, so that every thread has work.
fn images_per_gemm(g: &ConvGeometry) -> usize {
    if g.weight_len() <= WEIGHTS_KEPT_IN_CACHE {
        return 1;
    }
    let share = g.batch.div_ceil(rayon::current_num_threads().max(1)).max(1);
    GROUP_COLUMNS.div_ceil(g.pixels_out().max(1)).clamp(1, share)
}

/// Scratch buffers of one thread, sized for a group of `images`.
struct Scratch {
    /// The im2col matrices of the group, side by side: `[CKK × images·P]`.
    cols: Vec<f32>,
    /// An `[O × images·P]` matrix: the group's outputs before they are spread back per image, or its output gradients
    /// gathered side by side.
    outputs: Vec<f32>,
}

impl Scratch {
    fn new(g: &ConvGeometry, images: usize) -> Self {
        // A lone pointwise image is its own im2col matrix, and a lone image's output is written in place.
        let cols = if images == 1 && g.is_pointwise() { 0 } else { g.patch_len() * g.pixels_out() * images };
        let outputs = if images == 1 { 0 } else { g.output_len() * images };
        Self { cols: vec![0.0; cols], outputs: vec![0.0; outputs] }
    }
}

/// The im2col matrix of a group of images, `[CKK × images·P]`: a lone pointwise image itself, else written into
/// `cols`.
fn patches<'a>(images: &'a [f32], g: &ConvGeometry, cols: &'a mut [f32]) -> &'a [f32] {
    let count = images.len() / g.input_len().max(1);
    if count == 1 && g.is_pointwise() {
        return images;
    }
    let (p, width) = (g.pixels_out(), g.pixels_out() * count);
    let cols = &mut cols[..g.patch_len() * width];
    for (i, image) in images.chunks(g.input_len().max(1)).enumerate() {
        im2col(image, g, &mut cols[i * p..], width);
    }
    cols
}

/// The output gradients of a group of images side by side, `[O × images·P]`: a lone image's own, else gathered
/// into `buffer`.
fn side_by_side<'a>(per_image: &'a [f32], g: &ConvGeometry, buffer: &'a mut [f32]) -> &'a [f32] {
    let count = per_image.len() / g.output_len().max(1);
    if count == 1 {
        return per_image;
    }
    let (p, width) = (g.pixels_out(), g.pixels_out() * count);
    let buffer = &mut buffer[..g.out_channels * width];
    for (i, image) in per_image.chunks(g.output_len().max(1)).enumerate() {
        for (o, plane) in image.chunks(p.max(1)).enumerate() {
            buffer[o * width + i * p..o * width + (i + 1) * p].copy_from_slice(plane);
        }
    }
    buffer
}

/// Spreads an `[O × images·P]` matrix back into `images` outputs of `[O × P]` each (the inverse of
/// [`side_by_side`]).
fn spread(side_by_side: &[f32], g: &ConvGeometry, per_image: &mut [f32]) {
    let count = per_image.len() / g.output_len().max(1);
    let (p, width) = (g.pixels_out(), g.pixels_out() * count);
    for (i, image) in per_image.chunks_mut(g.output_len().max(1)).enumerate() {
        for (o, plane) in image.chunks_mut(p.max(1)).enumerate() {
            plane.copy_from_slice(&side_by_side[o * width + i * p..o * width + (i + 1) * p]);
        }
    }
}

/// The convolution `y = conv(x, w)`: `x` is `[B, C, H, W]`, `weight` is `[O, C, KH, KW]`, `y` is `[B, O, HO, WO]`.
pub fn forward(x: &[f32], weight: &[f32], g: &ConvGeometry) -> Vec<f32> {
    assert_lengths(g, x.len(), weight.len(), None);
    conv_direct::forward(x, weight, g).unwrap_or_else(|| forward_in_groups(x, weight, g, images_per_gemm(g)))
}

/// [`forward`] with `group` images per GEMM.
fn forward_in_groups(x: &[f32], weight: &[f32], g: &ConvGeometry, group: usize) -> Vec<f32> {
    assert_lengths(g, x.len(), weight.len(), None);
    let (o, ckk, p) = (g.out_channels, g.patch_len(), g.pixels_out());
    let mut y = vec![0.0f32; g.batch * g.output_len()];
    y.par_chunks_mut((group * g.output_len()).max(1)).zip(x.par_chunks((group * g.input_len()).max(1))).for_each_init(
        || Scratch::new(g, group),
        |scratch, (y_group, x_group)| {
            let width = p * (x_group.len() / g.input_len().max(1));
            let Scratch { cols, outputs } = scratch;
            let cols = patches(x_group, g, cols);
            if width == p {
                matmul(y_group, false, (o, p, ckk), weight, (ckk, 1), cols, (p, 1));
            } else {
                matmul(outputs, false, (o, width, ckk), weight, (ckk, 1), cols, (width, 1));
                spread(outputs, g, y_group);
            }
        },
    );
    y
}

/// The gradient with respect to the input, `[B, C, H, W]`, of a convolution whose output gradient is `dy`.
pub fn input_grad(weight: &[f32], dy: &[f32], g: &ConvGeometry) -> Vec<f32> {
    assert_lengths(g, g.batch * g.input_len(), weight.len(), Some(dy.len()));
    conv_direct::input_grad(weight, dy, g).unwrap_or_else(|| input_grad_in_groups(weight, dy, g, images_per_gemm(g)))
}

/// [`input_grad`] with `group` images per GEMM.
fn input_grad_in_groups(weight: &[f32], dy: &[f32], g: &ConvGeometry, group: usize) -> Vec<f32> {
    assert_lengths(g, g.batch * g.input_len(), weight.len(), Some(dy.len()));
    let (o, ckk, p) = (g.out_channels, g.patch_len(), g.pixels_out());
    let mut dx = vec![0.0f32; g.batch * g.input_len()];
    dx.par_chunks_mut((group * g.input_len()).max(1))
        .zip(dy.par_chunks((group * g.output_len()).max(1)))
        .for_each_init(
            || Scratch::new(g, group),
            |scratch, (dx_group, dy_group)| {
                let width = p * (dy_group.len() / g.output_len().max(1));
                if width == p && g.is_pointwise() {
                    matmul(dx_group, false, (ckk, p, o), weight, (1, ckk), dy_group, (p, 1));
                    return;
                }
                let Scratch { cols, outputs } = scratch;
                let dy_wide = side_by_side(dy_group, g, outputs);
                matmul(cols, false, (ckk, width, o), weight, (1, ckk), dy_wide, (width, 1));
                for (i, dx_b) in dx_group.chunks_mut(g.input_len().max(1)).enumerate() {
                    col2im(&cols[i * p..], g, dx_b, width);
                }
            },
        );
    dx
}

/// The gradient with respect to the weight, `[O, C, KH, KW]`, summed over the batch.
pub fn weight_grad(x: &[f32], dy: &[f32], g: &ConvGeometry) -> Vec<f32> {
    assert_lengths(g, x.len(), g.weight_len(), Some(dy.len()));
    conv_direct::weight_grad(x, dy, g).unwrap_or_else(|| weight_grad_in_groups(x, dy, g, images_per_gemm(g)))
}

/// [`weight_grad`] with `group` images per GEMM.
fn weight_grad_in_groups(x: &[f32], dy: &[f32], g: &ConvGeometry, group: usize) -> Vec<f32> {
    assert_lengths(g, x.len(), g.weight_len(), Some(dy.len()));
    let (o, ckk, p) = (g.out_channels, g.patch_len(), g.pixels_out());
    // One contiguous share of the batch per thread, each with its own sum, so that the result does not depend on
    // how rayon schedules the work (only on the thread count).
    let shares = rayon::current_num_threads().clamp(1, g.batch.max(1));
    let per_share = g.batch.div_ceil(shares).max(1);
    let partials: Vec<Vec<f32>> = (0..shares)
        .into_par_iter()
        .map(|share| {
            let mut dw = vec![0.0f32; g.weight_len()];
            let Scratch { mut cols, mut outputs } = Scratch::new(g, group);
            let (first, end) = (share * per_share, ((share + 1) * per_share).min(g.batch));
            let mut start = first;
            while start < end {
                let stop = (start + group).min(end);
                let width = p * (stop - start);
                let patches = patches(&x[start * g.input_len()..stop * g.input_len()], g, &mut cols);
                let dy_wide = side_by_side(&dy[start * g.output_len()..stop * g.output_len()], g, &mut outputs);
                // dW [O×CKK] += dy [O × images·P] · cols [CKK × images·P]ᵀ
                matmul(&mut dw, start > first, (o, ckk, width), dy_wide, (width, 1), patches, (1, width));
                start = stop;
            }
            dw
        })
        .collect();
    sum_in_order(partials, g.weight_len())
}

fn assert_lengths(g: &ConvGeometry, x: usize, weight: usize, dy: Option<usize>) {
    assert!(g.is_valid(), "convolution geometry leaves no output: {g:?}");
    assert_eq!(x, g.batch * g.input_len(), "input length for {g:?}");
    assert_eq!(weight, g.weight_len(), "weight length for {g:?}");
    if let Some(dy) = dy {
        assert_eq!(dy, g.batch * g.output_len(), "output-gradient length for {g:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Calls `term(y, x, w)` with the indices of every product `x · w` that the convolution's definition sums into
    /// output `y`, the products of each output in order.
    fn each_term(g: &ConvGeometry, mut term: impl FnMut(usize, usize, usize)) {
        let [ho, wo] = g.output_size();
        for b in 0..g.batch {
            for o in 0..g.out_channels {
                for oy in 0..ho {
                    for ox in 0..wo {
                        let yi = ((b * g.out_channels + o) * ho + oy) * wo + ox;
                        for c in 0..g.in_channels {
                            for ky in 0..g.kernel[0] {
                                for kx in 0..g.kernel[1] {
                                    let iy = (oy * g.stride[0] + ky) as isize - g.padding[0] as isize;
                                    let ix = (ox * g.stride[1] + kx) as isize - g.padding[1] as isize;
                                    if iy < 0 || ix < 0 || iy >= g.height as isize || ix >= g.width as isize {
                                        continue;
                                    }
                                    let xi = ((b * g.in_channels + c) * g.height + iy as usize) * g.width + ix as usize;
                                    let wi = ((o * g.in_channels + c) * g.kernel[0] + ky) * g.kernel[1] + kx;
                                    term(yi, xi, wi);
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The convolution written out as its definition, in f64.
    fn direct(x: &[f32], w: &[f32], g: &ConvGeometry) -> Vec<f64> {
        let mut y = vec![0.0f64; g.batch * g.output_len()];
        each_term(g, |yi, xi, wi| y[yi] += x[xi] as f64 * w[wi] as f64);
        y
    }

    /// The gradients of `L = Σ dy ⊙ conv(x, w)` written out as their definition, in f64: every product `x · w` of
    /// the forward sum sends `dy · w` to the input and `dy · x` to the weight.
    fn direct_grads(x: &[f32], w: &[f32], dy: &[f32], g: &ConvGeometry) -> (Vec<f64>, Vec<f64>) {
        let (mut dx, mut dw) = (vec![0.0f64; x.len()], vec![0.0f64; w.len()]);
        each_term(g, |yi, xi, wi| {
            dx[xi] += dy[yi] as f64 * w[wi] as f64;
            dw[wi] += dy[yi] as f64 * x[xi] as f64;
        });
        (dx, dw)
    }

    fn values(n: usize, seed: u32) -> Vec<f32> {
        // A small deterministic generator: values in [−1, 1) with no structure the kernels could exploit.
        let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state as f64 / u32::MAX as f64 * 2.0 - 1.0) as f32
            })
            .collect()
    }

    fn geometries() -> Vec<ConvGeometry> {
        let g = |batch, c, h, w, o, k: usize, s: usize, p: usize| ConvGeometry {
            batch,
            in_channels: c,
            height: h,
            width: w,
            out_channels: o,
            kernel: [k, k],
            stride: [s, s],
            padding: [p, p],
        };
        vec![
            g(3, 2, 5, 5, 4, 3, 1, 1), // a WRN 3×3
            g(2, 3, 7, 6, 5, 3, 2, 1), // strided, odd and non-square
            g(2, 4, 6, 6, 3, 1, 2, 0), // a strided 1×1 shortcut
            g(2, 4, 5, 3, 6, 1, 1, 0), // pointwise: no im2col
            g(1, 3, 9, 9, 2, 7, 2, 3), // an ImageNet stem
            g(2, 1, 4, 4, 2, 3, 1, 0), // no padding
            g(1, 2, 3, 3, 2, 5, 1, 2), // a kernel larger than the image
            g(5, 2, 4, 4, 3, 3, 1, 1), // more images than threads
        ]
    }

    fn assert_close(got: &[f32], want: &[f64], what: &str, g: &ConvGeometry) {
        assert_eq!(got.len(), want.len(), "{what} length for {g:?}");
        for (i, (a, b)) in got.iter().zip(want).enumerate() {
            assert!((*a as f64 - b).abs() <= 1e-5 * (1.0 + b.abs()), "{what}[{i}] = {a}, want {b}, for {g:?}");
        }
    }

    #[test]
    fn forward_matches_the_definition() {
        for (i, g) in geometries().iter().enumerate() {
            let x = values(g.batch * g.input_len(), i as u32);
            let w = values(g.weight_len(), 100 + i as u32);
            assert_close(&forward(&x, &w, g), &direct(&x, &w, g), "y", g);
        }
    }

    /// The gradients of `L = Σ dy ⊙ conv(x, w)` are linear in `dy`: ∂L/∂x_j = Σ_i dy_i ∂y_i/∂x_j, and the
    /// definition gives ∂y_i/∂x_j by convolving a one-hot input.
    #[test]
    fn gradients_match_the_definition() {
        for (i, g) in geometries().iter().enumerate() {
            let x = values(g.batch * g.input_len(), i as u32);
            let w = values(g.weight_len(), 100 + i as u32);
            let dy = values(g.batch * g.output_len(), 200 + i as u32);
            let dot = |y: &[f64]| y.iter().zip(&dy).map(|(a, b)| a * *b as f64).sum::<f64>();
            let want_dx: Vec<f64> = (0..x.len())
                .map(|j| {
                    let mut e = vec![0.0f32; x.len()];
                    e[j] = 1.0;
                    dot(&direct(&e, &w, g))
                })
                .collect();
            let want_dw: Vec<f64> = (0..w.len())
                .map(|j| {
                    let mut e = vec![0.0f32; w.len()];
                    e[j] = 1.0;
                    dot(&direct(&x, &e, g))
                })
                .collect();
            assert_close(&input_grad(&w, &dy, g), &want_dx, "dx", g);
            assert_close(&weight_grad(&x, &dy, g), &want_dw, "dw", g);
        }
    }

    /// Images grouped side by side in one GEMM (the path of large weights), including a last group with fewer
    /// images: the output against the definition, the gradients against the per-image path (which
    /// `gradients_match_the_definition` checks against the definition).
    #[test]
    fn grouped_images_match_the_definition() {
        for (i, g) in geometries().iter().enumerate() {
            let x = values(g.batch * g.input_len(), i as u32);
            let w = values(g.weight_len(), 100 + i as u32);
            let dy = values(g.batch * g.output_len(), 200 + i as u32);
            let y_want = direct(&x, &w, g);
            for group in [2, 3, g.batch] {
                assert_close(&forward_in_groups(&x, &w, g, group), &y_want, "grouped y", g);
                assert_close(
                    &input_grad_in_groups(&w, &dy, g, group),
                    &to_f64(&input_grad_in_groups(&w, &dy, g, 1)),
                    "grouped dx",
                    g,
                );
                assert_close(
                    &weight_grad_in_groups(&x, &dy, g, group),
                    &to_f64(&weight_grad_in_groups(&x, &dy, g, 1)),
                    "grouped dw",
                    g,
                );
            }
        }
    }

    /// 3×3 convolutions with stride 1 and padding 1 whose channels and widths the direct kernels take, on every
    /// instruction set this CPU has: full rows of vectors, a row ending in a partial vector, an odd input channel
    /// count, output channels in blocks of two vectors and one, and maps too narrow for row vectors (pixel tiles,
    /// whose last tile is partly padding).
    #[test]
    fn direct_kernels_match_the_definition() {
        let g = ConvGeometry::same_size_3x3;
        // (geometry, whether forward, input gradient and weight gradient take the direct kernels on AVX-512, and on
        // AVX2 where that differs: an 8×8 map fills 8-lane rows, and AVX2 has no pixel tiles)
        let cases = [
            (g(3, 8, 5, 32, 16), [true, true, true], Some([true, true, false])),
            (g(2, 16, 4, 28, 8), [true, true, false], None),
            (g(2, 3, 6, 16, 48), [true, false, true], Some([true, false, false])),
            (g(5, 8, 3, 17, 32), [true, false, true], Some([false, false, false])),
            (g(3, 16, 4, 4, 32), [true, true, true], Some([false, false, false])),
            (g(2, 32, 8, 8, 16), [true, true, true], Some([true, true, false])),
            (g(2, 8, 8, 8, 16), [true, false, true], Some([true, true, false])),
            // Weight-gradient sums past the size whose rows go in blocks.
            (g(1, 176, 3, 3, 176), [true, true, true], Some([false, false, false])),
            // 20-wide rows fill 5/6 of 8-lane vectors (AVX2's rows), 5/8 of 16-lane ones.
            (g(2, 16, 20, 20, 16), [true, true, true], Some([true, true, false])),
            // AVX2's weight gradient: 32×32 maps and larger, with a row ending in a partial vector. On AVX-512 the
            // 33-wide rows fill 33/48 of their vectors (under 3/4), and 8 input channels are too few for pixel tiles,
            // so the input gradient takes GEMM there.
            (g(1, 8, 32, 33, 16), [true, false, true], Some([true, true, true])),
        ];
        for (i, (g, wide_paths, narrow_paths)) in cases.iter().enumerate() {
            let x = values(g.batch * g.input_len(), 300 + i as u32);
            let w = values(g.weight_len(), 400 + i as u32);
            let dy = values(g.batch * g.output_len(), 500 + i as u32);
            let (want_y, (want_dx, want_dw)) = (direct(&x, &w, g), direct_grads(&x, &w, &dy, g));
            for isa in conv_direct::Isa::available() {
                let paths = if isa.lanes() == 16 { wide_paths } else { narrow_paths.as_ref().unwrap_or(wide_paths) };
                let y = conv_direct::forward_on(isa, &x, &w, g);
                let dx = conv_direct::input_grad_on(isa, &w, &dy, g);
                let dw = conv_direct::weight_grad_on(isa, &x, &dy, g);
                assert_eq!(&[y.is_some(), dx.is_some(), dw.is_some()], paths, "{isa:?} kernels taken for {g:?}");
                let what = |name| format!("{name} on {isa:?}");
                for (got, want, name) in [(y, &want_y, "y"), (dx, &want_dx, "dx"), (dw, &want_dw, "dw")] {
                    if let Some(got) = got {
                        assert_close(&got, want, &what(name), g);
                    }
                }
            }
            // And whatever path the dispatch takes.
            assert_close(&forward(&x, &w, g), &want_y, "y", g);
            assert_close(&input_grad(&w, &dy, g), &want_dx, "dx", g);
            assert_close(&weight_grad(&x, &dy, g), &want_dw, "dw", g);
        }
    }

    fn to_f64(v: &[f32]) -> Vec<f64> {
        v.iter().map(|&a| a as f64).collect()
    }

    #[test]
    fn only_weights_too_large_for_the_cache_group_images() {
        let wrn = ConvGeometry {
            batch: 64,
            in_channels: 128,
            height: 8,
            width: 8,
            out_channels: 128,
            kernel: [3, 3],
            stride: [1, 1],
            padding: [1, 1],
        };
        assert_eq!(images_per_gemm(&wrn), 1);
        let late = ConvGeometry { in_channels: 512, height: 4, width: 4, out_channels: 512, ..wrn };
        let threads = rayon::current_num_threads().max(1);
        assert_eq!(images_per_gemm(&late), 16.min(64_usize.div_ceil(threads)));
    }

    #[test]
    fn valid_output_ranges_keep_the_kernel_inside_the_image() {
        // size 5, kernel offset 0, stride 1, padding 1: output 0 reads row −1.
        assert_eq!(valid_outputs(5, 5, 0, 1, 1), (1, 5));
        // kernel offset 2 reads row o + 1: output 4 reads row 5, outside.
        assert_eq!(valid_outputs(5, 5, 2, 1, 1), (0, 4));
        // stride 2, padding 3, offset 0 on a 9-wide image with 5 outputs: rows −3, −1, 1, 3, 5.
        assert_eq!(valid_outputs(5, 9, 0, 2, 3), (2, 5));
        // a kernel offset beyond every row.
        assert_eq!(valid_outputs(3, 3, 4, 1, 0), (0, 0));
    }

    /// The GEMM path, and the direct kernels (on CPUs that have them) on a geometry with more images than threads.
    #[test]
    fn the_weight_gradient_does_not_depend_on_scheduling() {
        for g in [geometries()[7], ConvGeometry::same_size_3x3(5, 8, 4, 16, 16)] {
            let x = values(g.batch * g.input_len(), 7);
            let dy = values(g.batch * g.output_len(), 8);
            let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
            let a = pool.install(|| weight_grad(&x, &dy, &g));
            let b = pool.install(|| weight_grad(&x, &dy, &g));
            assert_eq!(a, b, "{g:?}");
        }
    }
}
