//! Eigendecomposition of a real symmetric matrix: Householder reduction to tridiagonal form, then the implicit QL
//! algorithm with shifts (the EISPACK `tred2`/`tql2` pair, in f64). O(n³); about a second for n = 784 in a release
//! build. Matrices are stored column-major so that every inner loop runs over contiguous memory.

/// Eigenvalues in descending order, with their unit eigenvectors.
#[derive(Debug, Clone, PartialEq)]
pub struct SymmetricEigen {
    pub n: usize,
    /// Descending.
    pub values: Vec<f64>,
    /// `n × n`, one eigenvector per row (`vector(i)` goes with `values[i]`).
    pub vectors: Vec<f64>,
}

impl SymmetricEigen {
    pub fn vector(&self, i: usize) -> &[f64] {
        &self.vectors[i * self.n..(i + 1) * self.n]
    }
}

/// Eigendecomposition of the symmetric `n × n` matrix `a` (row-major; only symmetric input is meaningful, the
/// lower triangle is what is read).
pub fn symmetric_eigen(a: &[f64], n: usize) -> SymmetricEigen {
    assert_eq!(a.len(), n * n, "symmetric_eigen: {n} × {n} needs {} values", n * n);
    if n == 0 {
        return SymmetricEigen { n, values: Vec::new(), vectors: Vec::new() };
    }
    // Column-major copy; for a symmetric matrix this is the same numbers.
    let mut v = vec![0.0; n * n];
    for row in 0..n {
        for col in 0..=row {
            v[col * n + row] = a[row * n + col];
            v[row * n + col] = a[row * n + col];
        }
    }
    let mut d = vec![0.0; n];
    let mut e = vec![0.0; n];
    tridiagonalise(&mut v, &mut d, &mut e, n);
    ql_implicit(&mut v, &mut d, &mut e, n);

    // Descending order; column j of `v` holds the vector of d[j].
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| d[j].total_cmp(&d[i]).then(i.cmp(&j)));
    let values = order.iter().map(|&j| d[j]).collect();
    let mut vectors = Vec::with_capacity(n * n);
    for &j in &order {
        vectors.extend_from_slice(&v[j * n..(j + 1) * n]);
    }
    SymmetricEigen { n, values, vectors }
}

/// `v[c * n + r]` is element (r, c).
#[inline]
fn at(n: usize, r: usize, c: usize) -> usize {
    c * n + r
}

/// Householder reduction of the symmetric matrix in `v` to tridiagonal form: on return `d` holds the diagonal,
/// `e[1..]` the sub-diagonal, and `v` the orthogonal matrix of the accumulated reflections.
fn tridiagonalise(v: &mut [f64], d: &mut [f64], e: &mut [f64], n: usize) {
    for j in 0..n {
        d[j] = v[at(n, n - 1, j)];
    }
    for i in (1..n).rev() {
        // Scaling guards the reflection against under- and overflow.
        let scale: f64 = d[..i].iter().map(|x| x.abs()).sum();
        let mut h = 0.0;
        if scale == 0.0 {
            e[i] = d[i - 1];
            for j in 0..i {
                d[j] = v[at(n, i - 1, j)];
                v[at(n, i, j)] = 0.0;
                v[at(n, j, i)] = 0.0;
            }
        } else {
            for dk in &mut d[..i] {
                *dk /= scale;
                h += *dk * *dk;
            }
            let f = d[i - 1];
            let g = if f > 0.0 { -h.sqrt() } else { h.sqrt() };
            e[i] = scale * g;
            h -= f * g;
            d[i - 1] = f - g;
            e[..i].fill(0.0);
            for j in 0..i {
                let f = d[j];
                v[at(n, j, i)] = f;
                let col_j = j * n;
                let mut g = e[j] + v[col_j + j] * f;
                for k in j + 1..i {
                    g += v[col_j + k] * d[k];
                    e[k] += v[col_j + k] * f;
                }
                e[j] = g;
            }
            let mut f = 0.0;
            for j in 0..i {
                e[j] /= h;
                f += e[j] * d[j];
            }
            let hh = f / (h + h);
            for j in 0..i {
                e[j] -= hh * d[j];
            }
            for j in 0..i {
                let (f, g) = (d[j], e[j]);
                let col_j = j * n;
                for k in j..i {
                    v[col_j + k] -= f * e[k] + g * d[k];
                }
                d[j] = v[at(n, i - 1, j)];
                v[at(n, i, j)] = 0.0;
            }
        }
        d[i] = h;
    }
    // Accumulate the reflections into `v`.
    for i in 0..n - 1 {
        v[at(n, n - 1, i)] = v[at(n, i, i)];
        v[at(n, i, i)] = 1.0;
        let h = d[i + 1];
        if h != 0.0 {
            for k in 0..=i {
                d[k] = v[at(n, k, i + 1)] / h;
            }
            for j in 0..=i {
                let (next, col_j) = ((i + 1) * n, j * n);
                let mut g = 0.0;
                for k in 0..=i {
                    g += v[next + k] * v[col_j + k];
                }
                for k in 0..=i {
                    v[col_j + k] -= g * d[k];
                }
            }
        }
        for k in 0..=i {
            v[at(n, k, i + 1)] = 0.0;
        }
    }
    for j in 0..n {
        d[j] = v[at(n, n - 1, j)];
        v[at(n, n - 1, j)] = 0.0;
    }
    v[at(n, n - 1, n - 1)] = 1.0;
    e[0] = 0.0;
}

/// Diagonalises the tridiagonal matrix (`d`, `e`) by implicit QL steps with Wilkinson-like shifts, rotating the
/// columns of `v` along: on return `d` holds the eigenvalues and column j of `v` the eigenvector of `d[j]`.
fn ql_implicit(v: &mut [f64], d: &mut [f64], e: &mut [f64], n: usize) {
    for i in 1..n {
        e[i - 1] = e[i];
    }
    e[n - 1] = 0.0;
    let mut shift_total = 0.0;
    let mut tst1: f64 = 0.0;
    let eps = f64::EPSILON;
    for l in 0..n {
        tst1 = tst1.max(d[l].abs() + e[l].abs());
        // The first negligible sub-diagonal element at or after l splits the matrix.
        let mut m = l;
        while m < n - 1 && e[m].abs() > eps * tst1 {
            m += 1;
        }
        if m > l {
            let mut steps = 0;
            loop {
                steps += 1;
                // Finite symmetric input converges in a few steps per eigenvalue; only NaN could loop forever.
                assert!(steps <= 1000, "symmetric_eigen: no convergence (non-finite input?)");
                let g = d[l];
                let mut p = (d[l + 1] - g) / (2.0 * e[l]);
                let mut r = p.hypot(1.0);
                if p < 0.0 {
                    r = -r;
                }
                d[l] = e[l] / (p + r);
                d[l + 1] = e[l] * (p + r);
                let dl1 = d[l + 1];
                let h = g - d[l];
                for di in &mut d[l + 2..n] {
                    *di -= h;
                }
                shift_total += h;

                p = d[m];
                let (mut c, mut c2, mut c3) = (1.0, 1.0, 1.0);
                let el1 = e[l + 1];
                let (mut s, mut s2) = (0.0, 0.0);
                for i in (l..m).rev() {
                    c3 = c2;
                    c2 = c;
                    s2 = s;
                    let g = c * e[i];
                    let h = c * p;
                    r = p.hypot(e[i]);
                    e[i + 1] = s * r;
                    s = e[i] / r;
                    c = p / r;
                    p = c * d[i] - s * g;
                    d[i + 1] = h + s * (c * g + s * d[i]);
                    let (left, right) = v.split_at_mut((i + 1) * n);
                    let col_i = &mut left[i * n..];
                    let col_next = &mut right[..n];
                    for (a, b) in col_i.iter_mut().zip(col_next.iter_mut()) {
                        let h = *b;
                        *b = s * *a + c * h;
                        *a = c * *a - s * h;
                    }
                }
                p = -s * s2 * c3 * el1 * e[l] / dl1;
                e[l] = s * p;
                d[l] = c * p;
                if e[l].abs() <= eps * tst1 {
                    break;
                }
            }
        }
        d[l] += shift_total;
        e[l] = 0.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random_symmetric(n: usize, seed: u64) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut a = vec![0.0; n * n];
        for r in 0..n {
            for c in 0..=r {
                let x: f64 = rng.random_range(-1.0..1.0);
                a[r * n + c] = x;
                a[c * n + r] = x;
            }
        }
        a
    }

    #[test]
    fn two_by_two_by_hand() {
        // [[2, 1], [1, 2]]: eigenvalues 3 and 1, vectors (1, 1)/√2 and (1, −1)/√2.
        let eig = symmetric_eigen(&[2.0, 1.0, 1.0, 2.0], 2);
        assert!((eig.values[0] - 3.0).abs() < 1e-12 && (eig.values[1] - 1.0).abs() < 1e-12);
        let h = std::f64::consts::FRAC_1_SQRT_2;
        let v0 = eig.vector(0);
        assert!((v0[0].abs() - h).abs() < 1e-12 && (v0[0] - v0[1]).abs() < 1e-12);
        let v1 = eig.vector(1);
        assert!((v1[0].abs() - h).abs() < 1e-12 && (v1[0] + v1[1]).abs() < 1e-12);
    }

    #[test]
    fn diagonal_matrix_is_its_own_decomposition() {
        let eig = symmetric_eigen(&[1.0, 0.0, 0.0, 0.0, 5.0, 0.0, 0.0, 0.0, -2.0], 3);
        assert_eq!(eig.values, vec![5.0, 1.0, -2.0]);
        assert_eq!(eig.vector(0).iter().map(|x| x.abs()).collect::<Vec<_>>(), vec![0.0, 1.0, 0.0]);
    }

    #[test]
    fn reconstructs_random_matrices_with_orthonormal_vectors() {
        for (n, seed) in [(1, 1), (5, 2), (37, 3), (64, 4)] {
            let a = random_symmetric(n, seed);
            let eig = symmetric_eigen(&a, n);
            assert!(eig.values.windows(2).all(|w| w[0] >= w[1]), "descending");
            for i in 0..n {
                for j in 0..n {
                    let dot: f64 = eig.vector(i).iter().zip(eig.vector(j)).map(|(x, y)| x * y).sum();
                    let want = if i == j { 1.0 } else { 0.0 };
                    assert!((dot - want).abs() < 1e-10, "n={n}: <v{i}, v{j}> = {dot}");
                }
            }
            // A v = λ v for every pair.
            for i in 0..n {
                let v = eig.vector(i);
                for r in 0..n {
                    let av: f64 = (0..n).map(|c| a[r * n + c] * v[c]).sum();
                    assert!((av - eig.values[i] * v[r]).abs() < 1e-10, "n={n}: (A v{i})[{r}]");
                }
            }
        }
    }

    #[test]
    fn repeated_eigenvalues_and_zero_matrix() {
        let eig = symmetric_eigen(&[0.0; 16], 4);
        assert_eq!(eig.values, vec![0.0; 4]);
        let eye: Vec<f64> = (0..9).map(|i| if i % 4 == 0 { 2.0 } else { 0.0 }).collect();
        let eig = symmetric_eigen(&eye, 3);
        assert_eq!(eig.values, vec![2.0; 3]);
    }
}
