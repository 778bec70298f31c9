//! Matrix transposes between the layouts of burn's tensors (channels × pixels) and the kernels' (pixels ×
//! channels), in blocks so that both sides stay in cache.

use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Side of a block: 16 rows of 16 values read, 16 of 16 written.
const BLOCK: usize = 16;

/// `dst[c][r] = src[r][c]` for a `rows × cols` matrix `src`; `dst` holds `cols` rows of `rows` values, every one
/// of them written.
pub(super) fn transpose(src: &[f32], rows: usize, cols: usize, dst: &mut [MaybeUninit<f32>]) {
    assert!(src.len() >= rows * cols && dst.len() >= rows * cols, "transpose of {rows}×{cols}");
    columns(src, rows, cols, 0..cols, dst);
}

/// [`transpose`] with blocks of `dst`'s rows spread over the threads, for the weights that the main thread packs
/// while the workers wait (9.4 MiB at 512 channels).
pub(super) fn transpose_in_parallel(src: &[f32], rows: usize, cols: usize, dst: &mut [MaybeUninit<f32>]) {
    assert!(src.len() >= rows * cols && dst.len() >= rows * cols, "transpose of {rows}×{cols}");
    let block = (BLOCK * rows).max(1);
    dst[..rows * cols].par_chunks_mut(block).enumerate().for_each(|(i, dst)| {
        let first = i * BLOCK;
        columns(src, rows, cols, first..(first + BLOCK).min(cols), dst);
    });
}

/// Rows `range` of the transpose, written to `dst` from its start.
fn columns(src: &[f32], rows: usize, cols: usize, range: std::ops::Range<usize>, dst: &mut [MaybeUninit<f32>]) {
    for r0 in (0..rows).step_by(BLOCK) {
        for c0 in range.clone().step_by(BLOCK) {
            for r in r0..(r0 + BLOCK).min(rows) {
                let row = &src[r * cols..(r + 1) * cols];
                for c in c0..(c0 + BLOCK).min(range.end) {
                    dst[(c - range.start) * rows + r].write(row[c]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::write_only::written_whole;

    #[test]
    fn transposes_every_shape_across_block_edges() {
        for (rows, cols) in [(1, 1), (3, 5), (16, 16), (17, 33), (40, 7), (5, 70)] {
            let src: Vec<f32> = (0..rows * cols).map(|v| v as f32).collect();
            // SAFETY: a transpose writes every value of its destination.
            let serial = unsafe { written_whole(rows * cols, |dst| transpose(&src, rows, cols, dst)) };
            let parallel = unsafe { written_whole(rows * cols, |dst| transpose_in_parallel(&src, rows, cols, dst)) };
            for r in 0..rows {
                for c in 0..cols {
                    assert_eq!(serial[c * rows + r], src[r * cols + c], "{rows}×{cols} at ({r}, {c})");
                }
            }
            assert_eq!(parallel, serial, "{rows}×{cols} in parallel");
        }
    }
}
