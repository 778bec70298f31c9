//! relab's own CPU kernels, apart from the network definitions in [`crate::nn`] that call them: plain `&[f32]` in,
//! `Vec<f32>` out, no burn types.
//!
//! * [`conv_geometry`]: a convolution's shapes and the ordered sum of per-thread partials, shared by the two paths.
//! * [`conv_cpu`]: 2-D convolution as im2col + GEMM, forward and both gradients.
//! * [`conv_direct`]: direct AVX-512/AVX2 kernels for 3×3, stride-1, padding-1 convolutions, which [`conv_cpu`]
//!   takes where they fit.
//! * [`batch_norm_cpu`]: training-mode batch norm with a fused activation and residual, forward and backward.
//! * `write_only`: output buffers the kernels write whole, without zeroing them first.

pub mod batch_norm_cpu;
pub mod conv_cpu;
pub mod conv_direct;
pub mod conv_geometry;
mod write_only;
