//! Conjugate gradient on `(I − α·W) X = B` for every column of B at once: each column keeps its own CG scalars
//! and stopping test (exactly SciPy's `cg` with x0 = 0, `rtol` = tolerance, `atol` = 0), but all share one
//! sparse-matrix × dense-block product per iteration.

use rayon::prelude::*;

use crate::csr::{Csr, ROW_CHUNK, chunk_dots, sum_in_order};
use crate::reorder;

/// The solution and how each column's solve ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Solution {
    /// `n × c`, row-major.
    pub x: Vec<f64>,
    /// Iterations each column ran (fewer than the cap when it converged).
    pub iterations: Vec<usize>,
    /// `‖b − A x‖ / ‖b‖` per column at the end (0 for a zero right-hand side).
    pub relative_residuals: Vec<f64>,
}

/// Solves `(I − alpha·w) X = b` for the `c` columns of the row-major `n × c` block `b`, starting from X = 0, for at
/// most `iterations` steps; a column stops as soon as its residual norm drops below `tolerance · ‖b_col‖`.
/// `step()` is called after each iteration. The nodes are renumbered breadth-first for the duration of the solve
/// (see [`crate::reorder`]), which only changes the order of floating-point sums.
pub fn solve(w: &Csr, alpha: f64, b: &[f64], c: usize, iterations: usize, tolerance: f64, step: &dyn Fn()) -> Solution {
    let order = reorder::breadth_first_order(w);
    let local = reorder::permute(w, &order);
    let b = reorder::permute_rows(b, c, &order);
    let solution = solve_in_order(&local, alpha, &b, c, iterations, tolerance, step);
    Solution { x: reorder::unpermute_rows(&solution.x, c, &order), ..solution }
}

/// [`solve`] without the renumbering.
pub fn solve_in_order(
    w: &Csr,
    alpha: f64,
    b: &[f64],
    c: usize,
    iterations: usize,
    tolerance: f64,
    step: &dyn Fn(),
) -> Solution {
    let n = w.n;
    assert_eq!(b.len(), n * c, "cg::solve: the right-hand sides must be {n} × {c}");
    let b_norms: Vec<f64> = column_dots(b, b, c).into_iter().map(f64::sqrt).collect();
    let limits: Vec<f64> = b_norms.iter().map(|&nb| tolerance * nb).collect();
    let mut x = vec![0.0f64; n * c];
    let mut r = b.to_vec();
    let mut p = vec![0.0f64; n * c];
    let mut q = vec![0.0f64; n * c];
    let mut rho_prev = vec![0.0f64; c];
    // A zero right-hand side has the solution 0: SciPy returns at once.
    let mut active: Vec<bool> = b_norms.iter().map(|&nb| nb > 0.0).collect();
    let mut ran = vec![0usize; c];
    let mut rho = column_dots(&r, &r, c);
    for it in 0..iterations {
        for col in 0..c {
            if active[col] && (rho[col].sqrt() < limits[col] || rho[col] == 0.0) {
                active[col] = false;
            }
        }
        if !active.iter().any(|&a| a) {
            break;
        }
        let beta: Vec<f64> = (0..c).map(|col| if it == 0 { 0.0 } else { rho[col] / rho_prev[col] }).collect();
        p.par_chunks_mut(ROW_CHUNK * c).zip(r.par_chunks(ROW_CHUNK * c)).for_each(|(p, r)| {
            for (p_row, r_row) in p.chunks_mut(c).zip(r.chunks(c)) {
                for col in 0..c {
                    if active[col] {
                        p_row[col] = r_row[col] + beta[col] * p_row[col];
                    }
                }
            }
        });
        let pq = w.shifted_product(alpha, &p, &mut q, c);
        let step_size: Vec<f64> = (0..c).map(|col| if active[col] { rho[col] / pq[col] } else { 0.0 }).collect();
        // x += a p, r −= a q, and the new r · r in the same pass.
        let partial: Vec<Vec<f64>> = x
            .par_chunks_mut(ROW_CHUNK * c)
            .zip(r.par_chunks_mut(ROW_CHUNK * c))
            .zip(p.par_chunks(ROW_CHUNK * c).zip(q.par_chunks(ROW_CHUNK * c)))
            .map(|((x, r), (p, q))| {
                for (((x_row, r_row), p_row), q_row) in
                    x.chunks_mut(c).zip(r.chunks_mut(c)).zip(p.chunks(c)).zip(q.chunks(c))
                {
                    for col in 0..c {
                        x_row[col] += step_size[col] * p_row[col];
                        r_row[col] -= step_size[col] * q_row[col];
                    }
                }
                chunk_dots(r, r, c)
            })
            .collect();
        for col in 0..c {
            if active[col] {
                rho_prev[col] = rho[col];
                ran[col] = it + 1;
            }
        }
        rho = sum_in_order(partial, c);
        step();
    }
    let r_norms = column_dots(&r, &r, c);
    let relative_residuals =
        (0..c).map(|col| if b_norms[col] > 0.0 { r_norms[col].sqrt() / b_norms[col] } else { 0.0 }).collect();
    Solution { x, iterations: ran, relative_residuals }
}

/// Per-column inner products of two row-major `n × c` blocks, summed chunk by chunk in a fixed order so the
/// result does not depend on the number of threads.
pub fn column_dots(a: &[f64], b: &[f64], c: usize) -> Vec<f64> {
    let partial =
        a.par_chunks(ROW_CHUNK * c).zip(b.par_chunks(ROW_CHUNK * c)).map(|(a, b)| chunk_dots(a, b, c)).collect();
    sum_in_order(partial, c)
}

#[cfg(test)]
// The reference computations index like the textbook formulas they check.
#[allow(clippy::needless_range_loop)]
mod tests {
    use super::*;

    /// A small symmetric matrix with spectral radius below 1 (so I − αW is SPD), as CSR.
    fn toy() -> Csr {
        // Path 0–1–2–3–4 plus the chord 0–3, weights chosen by hand.
        let dense = [
            [0.0, 0.4, 0.0, 0.2, 0.0],
            [0.4, 0.0, 0.3, 0.0, 0.0],
            [0.0, 0.3, 0.0, 0.25, 0.0],
            [0.2, 0.0, 0.25, 0.0, 0.35],
            [0.0, 0.0, 0.0, 0.35, 0.0],
        ];
        let mut row_start = vec![0];
        let (mut cols, mut values) = (vec![], vec![]);
        for row in dense {
            for (j, v) in row.iter().enumerate() {
                if *v != 0.0 {
                    cols.push(j as u32);
                    values.push(*v as f32);
                }
            }
            row_start.push(cols.len());
        }
        Csr { n: 5, row_start, cols, values }
    }

    /// Gaussian elimination with partial pivoting on a dense copy.
    fn dense_solve(a: &[f64], b: &[f64], n: usize) -> Vec<f64> {
        let mut m: Vec<Vec<f64>> = (0..n)
            .map(|i| {
                let mut row = a[i * n..(i + 1) * n].to_vec();
                row.push(b[i]);
                row
            })
            .collect();
        for col in 0..n {
            let pivot = (col..n).max_by(|&x, &y| m[x][col].abs().total_cmp(&m[y][col].abs())).unwrap();
            m.swap(col, pivot);
            for row in col + 1..n {
                let f = m[row][col] / m[col][col];
                for k in col..=n {
                    m[row][k] -= f * m[col][k];
                }
            }
        }
        let mut x = vec![0.0; n];
        for i in (0..n).rev() {
            let s: f64 = (i + 1..n).map(|k| m[i][k] * x[k]).sum();
            x[i] = (m[i][n] - s) / m[i][i];
        }
        x
    }

    #[test]
    fn matches_a_dense_solve_for_every_column() {
        let w = toy();
        let alpha = 0.9;
        let n = w.n;
        let dense = w.to_dense();
        let a: Vec<f64> = (0..n * n).map(|i| if i / n == i % n { 1.0 } else { 0.0 } - alpha * dense[i]).collect();
        // Three right-hand sides side by side (row-major 5 × 3); the third is zero.
        let columns = [[1.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.5, 0.0, 0.0, 0.5], [0.0; 5]];
        let b: Vec<f64> = (0..n).flat_map(|i| columns.iter().map(move |c| c[i])).collect();
        // In exact arithmetic CG ends within n steps; a tolerance of 0 keeps it going to the cap.
        let sol = solve(&w, alpha, &b, 3, 50, 1e-12, &|| {});
        for (c, col) in columns.iter().enumerate() {
            let want = if col.iter().all(|&v| v == 0.0) { vec![0.0; n] } else { dense_solve(&a, col, n) };
            for i in 0..n {
                assert!(
                    (sol.x[i * 3 + c] - want[i]).abs() < 1e-9,
                    "column {c} row {i}: {} vs {}",
                    sol.x[i * 3 + c],
                    want[i]
                );
            }
        }
        assert!(sol.iterations[0] <= n + 1 && sol.iterations[0] >= 1, "converged: {:?}", sol.iterations);
        assert_eq!(sol.iterations[2], 0, "a zero right-hand side returns 0 at once");
        assert!(sol.relative_residuals[0] < 1e-12);
    }

    #[test]
    fn the_iteration_cap_binds_and_matches_hand_computed_steps() {
        // One CG step from x0 = 0: x1 = (bᵀb / bᵀAb) b.
        let w = toy();
        let alpha = 0.9;
        let b = [1.0, 0.0, 0.0, 0.0, 0.0];
        let sol = solve(&w, alpha, &b, 1, 1, 0.0, &|| {});
        // A b = b − α W b: W's first column is (0, 0.4, 0, 0.2, 0); bᵀAb = 1.
        assert_eq!(sol.iterations, vec![1]);
        assert!((sol.x[0] - 1.0).abs() < 1e-12 && sol.x[1..].iter().all(|&v| v == 0.0));
        // The residual is b − A x1 = α W b = (0, 0.36, 0, 0.18, 0).
        let r = (0.36f64 * 0.36 + 0.18 * 0.18).sqrt();
        assert!((sol.relative_residuals[0] - r).abs() < 1e-7);
    }
}
