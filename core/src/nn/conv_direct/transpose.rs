//! Matrix transposes between the layouts of burn's tensors (channels × pixels) and the kernels' (pixels ×
//! channels), in blocks so that both sides stay in cache.

/// Side of a block: 16 rows of 16 values read, 16 of 16 written.
const BLOCK: usize = 16;

/// `dst[c][r] = src[r][c]` for a `rows × cols` matrix `src`; `dst` holds `cols` rows of `rows` values.
pub(super) fn transpose(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    assert!(src.len() >= rows * cols && dst.len() >= rows * cols, "transpose of {rows}×{cols}");
    for r0 in (0..rows).step_by(BLOCK) {
        for c0 in (0..cols).step_by(BLOCK) {
            for r in r0..(r0 + BLOCK).min(rows) {
                let row = &src[r * cols..(r + 1) * cols];
                for c in c0..(c0 + BLOCK).min(cols) {
                    dst[c * rows + r] = row[c];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transposes_every_shape_across_block_edges() {
        for (rows, cols) in [(1, 1), (3, 5), (16, 16), (17, 33), (40, 7)] {
            let src: Vec<f32> = (0..rows * cols).map(|v| v as f32).collect();
            let mut dst = vec![0.0; rows * cols];
            transpose(&src, rows, cols, &mut dst);
            for r in 0..rows {
                for c in 0..cols {
                    assert_eq!(dst[c * rows + r], src[r * cols + c], "{rows}×{cols} at ({r}, {c})");
                }
            }
        }
    }
}
