//! Principal component analysis of the rows of an `N × D` f32 matrix: centring, covariance (denominator N − 1, as
//! scikit-learn's `explained_variance_`) by blocked f64 matrix products, and its eigendecomposition. Used for the
//! features stage's projection (`stages.features.pca`) and for the whitening before diffusion.

use gemm::{Parallelism, gemm};
use rayon::prelude::*;

use super::eigen::symmetric_eigen;

/// Rows per block of the covariance and projection products: the f64 copy of a block stays small.
const BLOCK_ROWS: usize = 2048;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PcaError {
    #[error("PCA needs at least 2 rows, found {0}")]
    TooFewRows(usize),
    #[error("{asked} components asked of {dim}-dimensional data; choose 1..={dim}")]
    Components { asked: usize, dim: usize },
    #[error("row {row} holds a non-finite value")]
    NonFinite { row: usize },
}

/// A fitted PCA: the mean and the leading principal axes, largest variance first.
#[derive(Debug, Clone, PartialEq)]
pub struct Pca {
    pub dim: usize,
    pub mean: Vec<f64>,
    /// `components × dim`, row-major: unit axes, each signed so that its largest-magnitude entry is positive
    /// (scikit-learn's convention), which makes the projection deterministic.
    pub axes: Vec<f64>,
    /// The variance along each axis (an eigenvalue of the covariance), descending.
    pub variances: Vec<f64>,
    /// The variance of the data over all `dim` directions (the covariance's trace).
    pub total_variance: f64,
}

impl Pca {
    /// Fits `components` axes to the `rows × dim` matrix `x`.
    pub fn fit(x: &[f32], rows: usize, dim: usize, components: usize) -> Result<Pca, PcaError> {
        assert_eq!(x.len(), rows * dim, "Pca::fit: {rows} × {dim} needs {} values", rows * dim);
        if rows < 2 {
            return Err(PcaError::TooFewRows(rows));
        }
        if components == 0 || components > dim {
            return Err(PcaError::Components { asked: components, dim });
        }
        if let Some(i) = x.iter().position(|v| !v.is_finite()) {
            return Err(PcaError::NonFinite { row: i / dim });
        }
        let mean = column_mean(x, rows, dim);
        let covariance = covariance(x, rows, dim, &mean);
        let total_variance = (0..dim).map(|j| covariance[j * dim + j]).sum();
        let eig = symmetric_eigen(&covariance, dim);
        let mut axes = Vec::with_capacity(components * dim);
        for c in 0..components {
            let v = eig.vector(c);
            let largest = v.iter().enumerate().fold(0, |best, (i, x)| if x.abs() > v[best].abs() { i } else { best });
            let sign = if v[largest] < 0.0 { -1.0 } else { 1.0 };
            axes.extend(v.iter().map(|x| sign * x));
        }
        // Round-off can leave the smallest eigenvalues of a singular covariance slightly negative.
        let variances = eig.values[..components].iter().map(|&v| v.max(0.0)).collect();
        Ok(Pca { dim, mean, axes, variances, total_variance })
    }

    pub fn components(&self) -> usize {
        self.variances.len()
    }

    /// The share of the total variance the kept axes carry.
    pub fn explained_variance_ratio(&self) -> f64 {
        if self.total_variance > 0.0 { self.variances.iter().sum::<f64>() / self.total_variance } else { 1.0 }
    }

    /// Coordinates of the rows of `x` (`rows × dim`) on the axes: `(x − mean) · axesᵀ`, `rows × components`.
    pub fn project(&self, x: &[f32], rows: usize) -> Vec<f32> {
        self.transform(x, rows, &vec![1.0; self.components()])
    }

    /// The projection divided by each axis's standard deviation, so every component has unit variance over the
    /// fitted data (scikit-learn's `PCA(whiten=True)`). An axis without variance (below 1e-12 of the largest, i.e.
    /// round-off) is set to 0 rather than blown up.
    pub fn whiten(&self, x: &[f32], rows: usize) -> Vec<f32> {
        let floor = self.variances.first().copied().unwrap_or(0.0) * 1e-12;
        let scale: Vec<f64> =
            self.variances.iter().map(|&v| if v > floor && v > 0.0 { 1.0 / v.sqrt() } else { 0.0 }).collect();
        self.transform(x, rows, &scale)
    }

    fn transform(&self, x: &[f32], rows: usize, scale: &[f64]) -> Vec<f32> {
        let (dim, comps) = (self.dim, self.components());
        assert_eq!(x.len(), rows * dim, "Pca: {rows} × {dim} needs {} values", rows * dim);
        // Axes as a dim × comps matrix with each column already scaled.
        let mut axes_t = vec![0.0f64; dim * comps];
        for c in 0..comps {
            for j in 0..dim {
                axes_t[j * comps + c] = self.axes[c * dim + j] * scale[c];
            }
        }
        let mut out = vec![0.0f32; rows * comps];
        out.par_chunks_mut(BLOCK_ROWS * comps).zip(x.par_chunks(BLOCK_ROWS * dim)).for_each(|(out, x)| {
            let b = x.len() / dim;
            let centred = centred_block(x, dim, &self.mean);
            let mut product = vec![0.0f64; b * comps];
            // SAFETY: the pointers cover b × dim, dim × comps and b × comps row-major f64 matrices.
            unsafe {
                gemm(
                    b,
                    comps,
                    dim,
                    product.as_mut_ptr(),
                    1,
                    comps as isize,
                    false,
                    centred.as_ptr(),
                    1,
                    dim as isize,
                    axes_t.as_ptr(),
                    1,
                    comps as isize,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    Parallelism::None,
                );
            }
            for (o, p) in out.iter_mut().zip(&product) {
                *o = *p as f32;
            }
        });
        out
    }
}

fn column_mean(x: &[f32], rows: usize, dim: usize) -> Vec<f64> {
    let partial: Vec<Vec<f64>> = x
        .par_chunks(BLOCK_ROWS * dim)
        .map(|block| {
            let mut sum = vec![0.0f64; dim];
            for row in block.chunks(dim) {
                for (s, &v) in sum.iter_mut().zip(row) {
                    *s += v as f64;
                }
            }
            sum
        })
        .collect();
    // Blocks are summed in order, so the result does not depend on the thread count.
    let mut mean = vec![0.0f64; dim];
    for sum in partial {
        for (m, s) in mean.iter_mut().zip(sum) {
            *m += s;
        }
    }
    mean.iter_mut().for_each(|m| *m /= rows as f64);
    mean
}

fn centred_block(x: &[f32], dim: usize, mean: &[f64]) -> Vec<f64> {
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks(dim) {
        out.extend(row.iter().zip(mean).map(|(&v, m)| v as f64 - m));
    }
    out
}

/// `(x − mean)ᵀ (x − mean) / (rows − 1)`, `dim × dim`, accumulated block by block in f64.
fn covariance(x: &[f32], rows: usize, dim: usize, mean: &[f64]) -> Vec<f64> {
    let mut cov = vec![0.0f64; dim * dim];
    for (i, block) in x.chunks(BLOCK_ROWS * dim).enumerate() {
        let b = block.len() / dim;
        let centred = centred_block(block, dim, mean);
        // SAFETY: `centred` is b × dim row-major; read as its transpose (dim × b) on the left; `cov` is dim × dim.
        unsafe {
            gemm(
                dim,
                dim,
                b,
                cov.as_mut_ptr(),
                1,
                dim as isize,
                i > 0,
                centred.as_ptr(),
                dim as isize,
                1,
                centred.as_ptr(),
                1,
                dim as isize,
                1.0,
                1.0,
                false,
                false,
                false,
                Parallelism::Rayon(0),
            );
        }
    }
    let scale = 1.0 / (rows - 1) as f64;
    // Exact symmetry, whatever order the product summed in.
    for r in 0..dim {
        for c in 0..r {
            let v = 0.5 * (cov[r * dim + c] + cov[c * dim + r]) * scale;
            cov[r * dim + c] = v;
            cov[c * dim + r] = v;
        }
        cov[r * dim + r] *= scale;
    }
    cov
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_dimensional_by_hand() {
        let x = [0.0f32, 0.0, 2.0, 2.0, 1.0, 0.0, 1.0, 2.0];
        // Rows (0,0), (2,2), (1,0), (1,2): mean (1,1); centred (−1,−1), (1,1), (0,−1), (0,1).
        // Covariance = [[2, 2], [2, 4]] / 3. Eigenvalues (6 ± √(4 + 16)) / 2 / 3 = (3 ± √5) / 3.
        let pca = Pca::fit(&x, 4, 2, 2).unwrap();
        assert_eq!(pca.mean, vec![1.0, 1.0]);
        let s5 = 5f64.sqrt();
        assert!((pca.variances[0] - (3.0 + s5) / 3.0).abs() < 1e-12);
        assert!((pca.variances[1] - (3.0 - s5) / 3.0).abs() < 1e-12);
        // The top axis of [[2, 2], [2, 4]] is ∝ (2, 1 + √5), positive since its largest entry is.
        let norm = (4.0 + (1.0 + s5).powi(2)).sqrt();
        assert!((pca.axes[0] - 2.0 / norm).abs() < 1e-12 && (pca.axes[1] - (1.0 + s5) / norm).abs() < 1e-12);
        // The second axis is orthogonal, its largest entry (the first) positive.
        assert!((pca.axes[2] - (1.0 + s5) / norm).abs() < 1e-12 && (pca.axes[3] + 2.0 / norm).abs() < 1e-12);
        let p = pca.project(&x, 4);
        // Row (2,2) centred (1,1) on the top axis.
        assert!((p[2] as f64 - (2.0 + 1.0 + s5) / norm).abs() < 1e-6);
    }

    /// A dense reference: covariance by a naive double sum, then the same eigensolver.
    #[test]
    fn matches_a_naive_covariance_across_blocks() {
        let (rows, dim) = (BLOCK_ROWS * 2 + 37, 5);
        let x: Vec<f32> =
            (0..rows * dim).map(|i| (((i * 7919) % 1013) as f32 / 101.3).sin() * (1 + i % dim) as f32).collect();
        let pca = Pca::fit(&x, rows, dim, 3).unwrap();
        let mut mean = vec![0.0f64; dim];
        for r in 0..rows {
            for j in 0..dim {
                mean[j] += x[r * dim + j] as f64 / rows as f64;
            }
        }
        let mut cov = vec![0.0f64; dim * dim];
        for r in 0..rows {
            for a in 0..dim {
                for b in 0..dim {
                    cov[a * dim + b] += (x[r * dim + a] as f64 - mean[a]) * (x[r * dim + b] as f64 - mean[b]);
                }
            }
        }
        cov.iter_mut().for_each(|c| *c /= (rows - 1) as f64);
        let eig = symmetric_eigen(&cov, dim);
        for c in 0..3 {
            assert!((pca.variances[c] - eig.values[c]).abs() < 1e-9 * eig.values[0]);
            let dot: f64 = pca.axes[c * dim..(c + 1) * dim].iter().zip(eig.vector(c)).map(|(a, b)| a * b).sum();
            assert!((dot.abs() - 1.0).abs() < 1e-9, "axis {c} differs: |dot| = {dot}");
        }
        // Whitened coordinates have unit variance.
        let w = pca.whiten(&x, rows);
        for c in 0..3 {
            let var: f64 = (0..rows).map(|r| (w[r * 3 + c] as f64).powi(2)).sum::<f64>() / (rows - 1) as f64;
            assert!((var - 1.0).abs() < 1e-4, "component {c}: variance {var}");
        }
    }

    #[test]
    fn errors_name_the_problem() {
        assert_eq!(Pca::fit(&[1.0, 2.0], 1, 2, 1), Err(PcaError::TooFewRows(1)));
        assert_eq!(Pca::fit(&[1.0, 2.0, 3.0, 4.0], 2, 2, 3), Err(PcaError::Components { asked: 3, dim: 2 }));
        assert_eq!(Pca::fit(&[1.0, 2.0, 3.0, f32::NAN], 2, 2, 1), Err(PcaError::NonFinite { row: 1 }));
    }

    #[test]
    fn a_flat_direction_whitens_to_zero() {
        // Second coordinate constant: its variance is 0.
        let x = [0.0f32, 5.0, 1.0, 5.0, 2.0, 5.0];
        let pca = Pca::fit(&x, 3, 2, 2).unwrap();
        assert!(pca.variances[1] < 1e-12);
        let w = pca.whiten(&x, 3);
        assert!(w.iter().skip(1).step_by(2).all(|&v| v == 0.0));
        assert!(w.iter().all(|v| v.is_finite()));
    }
}
