//! The shapes of one convolution ([`ConvGeometry`]) and the ordered sum of per-thread partial results
//! ([`sum_in_order`]): what the im2col + GEMM path ([`super::conv_cpu`]) and the direct kernels
//! ([`super::conv_direct`]) share, in a file of its own so that neither imports the other's internals.

use rayon::prelude::*;

/// Shapes of one convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeometry {
    pub batch: usize,
    pub in_channels: usize,
    pub height: usize,
    pub width: usize,
    pub out_channels: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
}

impl ConvGeometry {
    /// Output height and width.
    pub fn output_size(&self) -> [usize; 2] {
        let out = |size: usize, k: usize, s: usize, p: usize| (size + 2 * p - k) / s + 1;
        [
            out(self.height, self.kernel[0], self.stride[0], self.padding[0]),
            out(self.width, self.kernel[1], self.stride[1], self.padding[1]),
        ]
    }

    /// A 3×3 convolution with stride 1 and padding 1 (the output has the input's size).
    #[cfg(test)]
    pub(crate) fn same_size_3x3(batch: usize, c: usize, h: usize, w: usize, o: usize) -> Self {
        Self {
            batch,
            in_channels: c,
            height: h,
            width: w,
            out_channels: o,
            kernel: [3, 3],
            stride: [1, 1],
            padding: [1, 1],
        }
    }

    /// Whether the input's size and the padding leave at least one output pixel.
    pub fn is_valid(&self) -> bool {
        let fits = |size: usize, k: usize, p: usize| k >= 1 && size + 2 * p >= k;
        self.stride.iter().all(|&s| s >= 1)
            && fits(self.height, self.kernel[0], self.padding[0])
            && fits(self.width, self.kernel[1], self.padding[1])
    }

    pub(crate) fn pixels_in(&self) -> usize {
        self.height * self.width
    }

    pub(crate) fn pixels_out(&self) -> usize {
        let [h, w] = self.output_size();
        h * w
    }

    /// Rows of the im2col matrix: input channels × kernel area.
    pub(crate) fn patch_len(&self) -> usize {
        self.in_channels * self.kernel[0] * self.kernel[1]
    }

    /// A 1×1 convolution with stride 1 and no padding, whose im2col matrix is the image itself.
    pub(crate) fn is_pointwise(&self) -> bool {
        self.kernel == [1, 1] && self.stride == [1, 1] && self.padding == [0, 0]
    }

    pub(crate) fn input_len(&self) -> usize {
        self.in_channels * self.pixels_in()
    }

    pub(crate) fn output_len(&self) -> usize {
        self.out_channels * self.pixels_out()
    }

    pub(crate) fn weight_len(&self) -> usize {
        self.out_channels * self.patch_len()
    }
}

/// `Σ partials`, added value by value in the order given (so that the result does not depend on the scheduling),
/// spread over the threads in blocks; `len` zeros where there is none.
pub(crate) fn sum_in_order(partials: Vec<Vec<f32>>, len: usize) -> Vec<f32> {
    let mut partials = partials.into_iter();
    let Some(mut sum) = partials.next() else { return vec![0.0; len] };
    let rest: Vec<Vec<f32>> = partials.collect();
    sum.par_chunks_mut(SUM_BLOCK).enumerate().for_each(|(i, block)| {
        for partial in &rest {
            block.iter_mut().zip(&partial[i * SUM_BLOCK..]).for_each(|(a, b)| *a += b);
        }
    });
    sum
}

/// Values of a sum's block: 64 KiB.
const SUM_BLOCK: usize = 1 << 14;
