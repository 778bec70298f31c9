//! Training-mode batch norm on the CPU for f32 tensors laid out `[B, C, ...]` (NCHW, or `[B, C]`), in two passes
//! each way.
//!
//! burn's default batch norm reduces over a transposed copy of the activation (`swap_dims(0, 1)` then a reshape,
//! which the CPU backend materialises) and builds the normalisation and its gradient out of half a dozen
//! broadcast tensor operations, each a full pass with its own allocation. Here the statistics are read straight
//! from the channel's planes and the output (or the input gradient) is one affine pass per channel:
//!
//! * forward: `μ_c`, `σ²_c` (biased, as burn's), then `y = x·s_c + t_c` with `s_c = γ_c/√(σ²_c+ε)`,
//!   `t_c = β_c − μ_c·s_c`;
//! * backward: `∂β_c = Σ dy`, `∂γ_c = Σ dy·x̂`, and `dx = s_c·(dy − ∂β_c/n − x̂·∂γ_c/n)`, written as
//!   `dx = s_c·dy + u_c·x + v_c`.
//!
//! Sums run in f32 lanes within a plane and in f64 across planes; each channel is summed by one thread in a fixed
//! order, so the results do not depend on scheduling.
//!
//! An [`Activation`] can ride along: applied as the output is written, and differentiated in one pass that gates
//! `dy` at the pre-activation recomputed from the input, before the batch norm's own backward. The networks put a
//! (leaky) ReLU after every batch norm, and as burn operations it costs four passes forward and five backward.
//! So can a residual added before the activation ([`forward_onto`], a post-activation ResNet block's
//! `relu(bn(x) + shortcut)`): its gradient is the gated `dy`.

use super::write_only::written_whole;
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// The shape of a batch-norm input: `batch` images of `channels` planes of `plane` values each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NormLayout {
    pub batch: usize,
    pub channels: usize,
    pub plane: usize,
}

impl NormLayout {
    /// The layout of a tensor of these dims (`[B, C, ...]`); `None` for fewer than two dims or an empty tensor.
    pub fn of(dims: &[usize]) -> Option<Self> {
        let (&batch, rest) = dims.split_first()?;
        let (&channels, spatial) = rest.split_first()?;
        let layout = NormLayout { batch, channels, plane: spatial.iter().product() };
        (layout.values_per_channel() > 0 && channels > 0).then_some(layout)
    }

    fn len(&self) -> usize {
        self.batch * self.channels * self.plane
    }

    fn image_len(&self) -> usize {
        self.channels * self.plane
    }

    /// `n`: the values each channel's statistics are taken over.
    pub fn values_per_channel(&self) -> usize {
        self.batch * self.plane
    }

    /// Channel `c`'s plane of every image, in batch order.
    fn planes<'a>(&self, values: &'a [f32], c: usize) -> impl Iterator<Item = &'a [f32]> {
        let (plane, image) = (self.plane, self.image_len());
        (0..self.batch).map(move |b| &values[b * image + c * plane..b * image + (c + 1) * plane])
    }
}

/// An activation fused into the batch norm's output. Each is computed as burn's CPU backend computes it in the
/// networks, with the same f32 operations in the same order, so that fusing changes no bit of a training run:
/// `Relu` as burn's `relu`, `LeakyRelu(slope)` as [`super::ops::leaky_relu`] (`(1 − slope)·relu(x) + slope·x`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    Identity,
    Relu,
    LeakyRelu(f64),
}

/// burn's `relu`: NaN passes through.
#[inline(always)]
fn relu(x: f32) -> f32 {
    if x.is_nan() || x > 0.0 { x } else { 0.0 }
}

/// burn's `relu_backward`: the gradient where the output is positive (or NaN), zero elsewhere.
#[inline(always)]
fn relu_gate(output: f32, g: f32) -> f32 {
    if output.is_nan() || output > 0.0 { g } else { 0.0 }
}

impl Activation {
    /// The f32 weights of the relu and identity terms, as burn's `mul_scalar` casts them.
    #[inline(always)]
    fn weights(self) -> (f32, f32) {
        match self {
            Activation::LeakyRelu(slope) => ((1.0 - slope) as f32, slope as f32),
            Activation::Identity | Activation::Relu => (1.0, 0.0),
        }
    }
}

/// What the forward pass computed: the output and the batch statistics (variance biased, as burn's), and the
/// per-channel affine map `x·scale + shift` that gave the pre-activation.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalised {
    pub output: Vec<f32>,
    pub mean: Vec<f32>,
    pub variance: Vec<f32>,
    pub scale: Vec<f32>,
    pub shift: Vec<f32>,
}

/// The gradients with respect to the input, γ and β, and the residual where [`forward_onto`] added one.
#[derive(Debug, Clone, PartialEq)]
pub struct NormGrads {
    pub x: Vec<f32>,
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
    pub residual: Option<Vec<f32>>,
}

const LANES: usize = 8;

/// `Σ f(a_i, b_i)` over two slices of one length (`b` may be `a` itself), in eight f32 lanes (which the compiler
/// vectorises) added up in f64.
fn lane_sum(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f64 {
    let mut lanes = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f64 = ca.remainder().iter().zip(cb.remainder()).map(|(&x, &y)| f(x, y) as f64).sum();
    for (xa, xb) in ca.zip(cb) {
        for ((lane, &x), &y) in lanes.iter_mut().zip(xa).zip(xb) {
            *lane += f(x, y);
        }
    }
    lanes.iter().map(|&l| l as f64).sum::<f64>() + tail
}

/// `out = act(values·scale_c + shift_c [+ residual])` channel by channel, one image per task. Each activation gets
/// its own loop, compiled without a per-value branch on the kind.
fn affine(
    values: &[f32],
    residual: Option<&[f32]>,
    (scale, shift): (&[f32], &[f32]),
    act: Activation,
    layout: NormLayout,
    out: &mut [MaybeUninit<f32>],
) {
    let (a, b) = act.weights();
    let map = (scale, shift);
    match act {
        Activation::Identity => affine_with(values, residual, map, |v| v, layout, out),
        Activation::Relu => affine_with(values, residual, map, relu, layout, out),
        Activation::LeakyRelu(_) => affine_with(values, residual, map, move |v| relu(v) * a + v * b, layout, out),
    }
}

fn affine_with(
    values: &[f32],
    residual: Option<&[f32]>,
    (scale, shift): (&[f32], &[f32]),
    act: impl Fn(f32) -> f32 + Sync + Copy,
    layout: NormLayout,
    out: &mut [MaybeUninit<f32>],
) {
    let image = layout.image_len();
    out.par_chunks_mut(image).zip(values.par_chunks(image)).enumerate().for_each(|(i, (out, values))| {
        for (c, (out, values)) in out.chunks_mut(layout.plane).zip(values.chunks(layout.plane)).enumerate() {
            let (s, t) = (scale[c], shift[c]);
            match residual {
                None => out.iter_mut().zip(values).for_each(|(o, &v)| _ = o.write(act(v * s + t))),
                Some(r) => {
                    let r = &r[i * image + c * layout.plane..i * image + (c + 1) * layout.plane];
                    out.iter_mut().zip(values).zip(r).for_each(|((o, &v), &r)| _ = o.write(act(v * s + t + r)))
                }
            }
        }
    });
}

/// Batch norm of `x` with its own statistics, followed by `act`.
pub fn forward(
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    epsilon: f64,
    layout: NormLayout,
    act: Activation,
) -> Normalised {
    forward_onto(x, None, gamma, beta, epsilon, layout, act)
}

/// Batch norm of `x` with its own statistics, plus `residual` (of `x`'s layout) where given, followed by `act`:
/// the sum rounds as burn's `bn(x) + residual` does.
pub fn forward_onto(
    x: &[f32],
    residual: Option<&[f32]>,
    gamma: &[f32],
    beta: &[f32],
    epsilon: f64,
    layout: NormLayout,
    act: Activation,
) -> Normalised {
    assert_eq!(x.len(), layout.len(), "batch norm input length");
    assert!(residual.is_none_or(|r| r.len() == x.len()), "batch norm residual length");
    assert!(gamma.len() == layout.channels && beta.len() == layout.channels, "batch norm γ and β lengths");
    let n = layout.values_per_channel() as f64;
    let stats: Vec<(f64, f64)> = (0..layout.channels)
        .into_par_iter()
        .map(|c| {
            let mean = layout.planes(x, c).map(|p| lane_sum(p, p, |v, _| v)).sum::<f64>() / n;
            let m = mean as f32;
            let variance = layout.planes(x, c).map(|p| lane_sum(p, p, |v, _| (v - m) * (v - m))).sum::<f64>() / n;
            (mean, variance)
        })
        .collect();
    let mut scale = Vec::with_capacity(layout.channels);
    let mut shift = Vec::with_capacity(layout.channels);
    for (c, &(mean, variance)) in stats.iter().enumerate() {
        let s = gamma[c] as f64 / (variance + epsilon).sqrt();
        scale.push(s as f32);
        shift.push((beta[c] as f64 - mean * s) as f32);
    }
    // SAFETY: `affine` writes every value, image by image and plane by plane.
    let output = unsafe { written_whole(x.len(), |out| affine(x, residual, (&scale, &shift), act, layout, out)) };
    Normalised {
        output,
        mean: stats.iter().map(|&(m, _)| m as f32).collect(),
        variance: stats.iter().map(|&(_, v)| v as f32).collect(),
        scale,
        shift,
    }
}

/// How the forward pass activated its output: `act` applied to `x·scale_c + shift_c`, plus `residual` where
/// [`forward_onto`] added one.
#[derive(Debug, Clone, Copy)]
pub struct Activated<'a> {
    pub act: Activation,
    pub scale: &'a [f32],
    pub shift: &'a [f32],
    pub residual: Option<&'a [f32]>,
}

/// The gradients of [`forward`] given the gradient `dy` of its activated output, from the input and the statistics
/// it returned. An activation's derivative is taken at the pre-activation recomputed from the input, exactly as the
/// forward pass computed it, in one pass that gates `dy` (folding the gate into the two passes below instead
/// keeps their sums from vectorising: slower, measured).
pub fn backward(
    x: &[f32],
    dy: &[f32],
    gamma: &[f32],
    statistics: (&[f32], &[f32]),
    epsilon: f64,
    layout: NormLayout,
    activated: Activated<'_>,
) -> NormGrads {
    assert!(x.len() == layout.len() && dy.len() == layout.len(), "batch norm input and gradient lengths");
    let Activated { act, scale, shift, residual } = activated;
    assert!(scale.len() == layout.channels && shift.len() == layout.channels, "activation's affine map");
    assert!(residual.is_none_or(|r| r.len() == x.len()), "batch norm residual length");
    let (a, b) = act.weights();
    let map = (scale, shift);
    // The derivative times `g` at pre-activation `p`; for the leaky ReLU the relu branch's gradient plus the
    // identity branch's, as burn's autodiff sums them.
    let gated = match act {
        Activation::Identity if residual.is_none() => {
            return normalisation_backward(x, dy, gamma, statistics, epsilon, layout);
        }
        Activation::Identity => dy.to_vec(),
        Activation::Relu => gate(x, residual, dy, map, |p, g| relu_gate(relu(p), g), layout),
        Activation::LeakyRelu(_) => gate(x, residual, dy, map, move |p, g| relu_gate(relu(p), g * a) + g * b, layout),
    };
    let grads = normalisation_backward(x, &gated, gamma, statistics, epsilon, layout);
    NormGrads { residual: residual.map(|_| gated), ..grads }
}

/// `derivative(x·scale_c + shift_c [+ residual], dy)` value by value, one image per task.
fn gate(
    x: &[f32],
    residual: Option<&[f32]>,
    dy: &[f32],
    (scale, shift): (&[f32], &[f32]),
    derivative: impl Fn(f32, f32) -> f32 + Sync + Copy,
    layout: NormLayout,
) -> Vec<f32> {
    let image = layout.image_len();
    let write = |dz: &mut [MaybeUninit<f32>]| {
        let images = dz.par_chunks_mut(image).zip(x.par_chunks(image).zip(dy.par_chunks(image)));
        images.enumerate().for_each(|(i, (dz, (x, dy)))| {
            let planes = dz.chunks_mut(layout.plane).zip(x.chunks(layout.plane).zip(dy.chunks(layout.plane)));
            for (c, (dz, (x, dy))) in planes.enumerate() {
                let (s, t) = (scale[c], shift[c]);
                match residual {
                    None => {
                        for ((d, &v), &g) in dz.iter_mut().zip(x).zip(dy) {
                            d.write(derivative(v * s + t, g));
                        }
                    }
                    Some(r) => {
                        let r = &r[i * image + c * layout.plane..i * image + (c + 1) * layout.plane];
                        for (((d, &v), &g), &r) in dz.iter_mut().zip(x).zip(dy).zip(r) {
                            d.write(derivative(v * s + t + r, g));
                        }
                    }
                }
            }
        })
    };
    // SAFETY: every value is written, image by image and plane by plane.
    unsafe { written_whole(x.len(), write) }
}

/// The batch norm's own backward pass, given the gradient of its (not activated) output.
fn normalisation_backward(
    x: &[f32],
    dy: &[f32],
    gamma: &[f32],
    (mean, variance): (&[f32], &[f32]),
    epsilon: f64,
    layout: NormLayout,
) -> NormGrads {
    let n = layout.values_per_channel() as f64;
    let sums: Vec<(f64, f64)> = (0..layout.channels)
        .into_par_iter()
        .map(|c| {
            let m = mean[c];
            let planes = layout.planes(x, c).zip(layout.planes(dy, c));
            planes.fold((0.0, 0.0), |(sum_dy, sum_dy_xc), (x, dy)| {
                (sum_dy + lane_sum(dy, dy, |g, _| g), sum_dy_xc + lane_sum(x, dy, |v, g| g * (v - m)))
            })
        })
        .collect();
    let (mut grad_gamma, mut grad_beta) = (Vec::new(), Vec::new());
    let (mut scale, mut along_x, mut shift) = (Vec::new(), Vec::new(), Vec::new());
    for (c, &(sum_dy, sum_dy_xc)) in sums.iter().enumerate() {
        let inv_std = 1.0 / (variance[c] as f64 + epsilon).sqrt();
        let (d_beta, d_gamma) = (sum_dy, sum_dy_xc * inv_std);
        let s = gamma[c] as f64 * inv_std;
        // dx = s·dy − s·∂β/n − s·inv_std·∂γ/n·(x − μ)
        let u = -s * inv_std * d_gamma / n;
        grad_beta.push(d_beta as f32);
        grad_gamma.push(d_gamma as f32);
        scale.push(s as f32);
        along_x.push(u as f32);
        shift.push((-s * d_beta / n - u * mean[c] as f64) as f32);
    }
    let image = layout.image_len();
    let write = |dx: &mut [MaybeUninit<f32>]| {
        dx.par_chunks_mut(image).zip(x.par_chunks(image).zip(dy.par_chunks(image))).for_each(|(dx, (x, dy))| {
            let planes = dx.chunks_mut(layout.plane).zip(x.chunks(layout.plane).zip(dy.chunks(layout.plane)));
            for (c, (dx, (x, dy))) in planes.enumerate() {
                let (s, u, v) = (scale[c], along_x[c], shift[c]);
                for ((d, &xv), &g) in dx.iter_mut().zip(x).zip(dy) {
                    d.write(s * g + u * xv + v);
                }
            }
        })
    };
    // SAFETY: every value is written, image by image and plane by plane.
    let dx = unsafe { written_whole(x.len(), write) };
    NormGrads { x: dx, gamma: grad_gamma, beta: grad_beta, residual: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Batch 2, two channels of three values: channel 0 holds 1, 2, 3 and 5, 7, 0; channel 1 holds 4 six times.
    fn toy() -> (Vec<f32>, NormLayout) {
        let x = vec![1.0, 2.0, 3.0, 4.0, 4.0, 4.0, 5.0, 7.0, 0.0, 4.0, 4.0, 4.0];
        (x, NormLayout::of(&[2, 2, 3]).unwrap())
    }

    #[test]
    fn statistics_and_output_match_a_hand_computation() {
        let (x, layout) = toy();
        let out = forward(&x, &[2.0, 1.0], &[0.5, -1.0], 1e-5, layout, Activation::Identity);
        // Channel 0: mean 18/6 = 3, biased variance (4+1+0+4+16+9)/6 = 17/3.
        assert_eq!(out.mean, vec![3.0, 4.0]);
        assert!((out.variance[0] - 17.0 / 3.0).abs() < 1e-6 && out.variance[1] == 0.0);
        let s0 = 2.0 / (17.0f64 / 3.0 + 1e-5).sqrt();
        for (i, &v) in [1.0, 2.0, 3.0].iter().chain(&[5.0, 7.0, 0.0]).enumerate() {
            let at = if i < 3 { i } else { i + 3 };
            let expected = (v - 3.0) * s0 + 0.5;
            assert!((out.output[at] as f64 - expected).abs() < 1e-5, "channel 0 value {i}");
        }
        // A constant channel normalises to β.
        for at in [3, 4, 5, 9, 10, 11] {
            assert_eq!(out.output[at], -1.0);
        }
    }

    #[test]
    fn gradients_match_a_hand_computation() {
        let (x, layout) = toy();
        let gamma = [2.0, 1.0];
        let out = forward(&x, &gamma, &[0.0, 0.0], 1e-5, layout, Activation::Identity);
        // A loss Σ w·y with w = 1 on channel 0's first value, 0 elsewhere.
        let mut dy = vec![0.0f32; x.len()];
        dy[0] = 1.0;
        let plain = Activated { act: Activation::Identity, scale: &out.scale, shift: &out.shift, residual: None };
        let g = backward(&x, &dy, &gamma, (&out.mean, &out.variance), 1e-5, layout, plain);
        let inv_std = 1.0 / (17.0f64 / 3.0 + 1e-5).sqrt();
        let xhat = |v: f64| (v - 3.0) * inv_std;
        assert!((g.beta[0] - 1.0).abs() < 1e-6 && g.beta[1] == 0.0);
        assert!((g.gamma[0] as f64 - xhat(1.0)).abs() < 1e-6 && g.gamma[1] == 0.0);
        // dx_i = γ·inv_std·(δ_i0 − 1/n − x̂_i·x̂_0/n), n = 6.
        for (i, &v) in [1.0, 2.0, 3.0, 5.0, 7.0, 0.0].iter().enumerate() {
            let at = if i < 3 { i } else { i + 3 };
            let delta = if i == 0 { 1.0 } else { 0.0 };
            let expected = 2.0 * inv_std * (delta - 1.0 / 6.0 - xhat(v) * xhat(1.0) / 6.0);
            assert!((g.x[at] as f64 - expected).abs() < 1e-6, "dx {i}: {} against {expected}", g.x[at]);
        }
        assert!(g.x[3..6].iter().chain(&g.x[9..12]).all(|&v| v == 0.0));
    }

    #[test]
    fn activations_and_their_gradients_match_a_hand_computation() {
        let (x, layout) = toy();
        let plain = forward(&x, &[2.0, 1.0], &[0.5, -1.0], 1e-5, layout, Activation::Identity);
        let relu = forward(&x, &[2.0, 1.0], &[0.5, -1.0], 1e-5, layout, Activation::Relu);
        let leaky = forward(&x, &[2.0, 1.0], &[0.5, -1.0], 1e-5, layout, Activation::LeakyRelu(0.25));
        for ((&z, &r), &l) in plain.output.iter().zip(&relu.output).zip(&leaky.output) {
            assert_eq!(r, z.max(0.0));
            // (1 − 0.25)·relu(z) + 0.25·z, exact in f32 for these weights up to one rounding.
            assert!((l - if z > 0.0 { z } else { 0.25 * z }).abs() <= 1e-6 * z.abs().max(1.0), "{l} for {z}");
        }
        // The backward pass of an activated batch norm is the plain one's, given `dy` times the activation's
        // derivative. Channel 1 is constant: every pre-activation is β = −1, so the ReLU's derivative is zero there
        // and the leaky ReLU's 0.25; channel 0's first value (1 − 3)·s + 0.5 is negative and its third
        // (3 − 3)·s + 0.5 positive.
        let dy: Vec<f32> = (1..=12).map(|v| v as f32).collect();
        let pre: Vec<f32> =
            x.iter().enumerate().map(|(i, &v)| v * plain.scale[(i / 3) % 2] + plain.shift[(i / 3) % 2]).collect();
        assert!(pre[0] < 0.0 && pre[2] > 0.0 && pre[3] == -1.0);
        let statistics = (&plain.mean[..], &plain.variance[..]);
        let gamma = [2.0, 1.0];
        for (act, slope) in [(Activation::Relu, 0.0f32), (Activation::LeakyRelu(0.25), 0.25)] {
            let activated = Activated { act, scale: &plain.scale, shift: &plain.shift, residual: None };
            let got = backward(&x, &dy, &gamma, statistics, 1e-5, layout, activated);
            let gated: Vec<f32> = dy.iter().zip(&pre).map(|(&g, &p)| if p > 0.0 { g } else { slope * g }).collect();
            let identity = Activated { act: Activation::Identity, ..activated };
            let want = backward(&x, &gated, &gamma, statistics, 1e-5, layout, identity);
            for (what, got, want) in
                [("dx", &got.x, &want.x), ("γ", &got.gamma, &want.gamma), ("β", &got.beta, &want.beta)]
            {
                for (g, w) in got.iter().zip(want.iter()) {
                    assert!((g - w).abs() <= 1e-6 * w.abs().max(1.0), "{act:?} {what}: {g} against {w}");
                }
            }
        }
    }

    #[test]
    fn layouts_need_a_batch_a_channel_and_values() {
        assert_eq!(NormLayout::of(&[4, 3]), Some(NormLayout { batch: 4, channels: 3, plane: 1 }));
        assert_eq!(NormLayout::of(&[2, 3, 4, 5]).map(|l| l.plane), Some(20));
        assert_eq!(NormLayout::of(&[4]), None);
        assert_eq!(NormLayout::of(&[0, 3, 2, 2]), None);
        assert_eq!(NormLayout::of(&[2, 0, 2, 2]), None);
    }
}
