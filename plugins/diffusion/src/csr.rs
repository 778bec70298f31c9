//! A compressed-sparse-row matrix and the one product the solver needs: the operator `I − α·W` applied to a block
//! of column vectors at once, so the matrix is read once per iteration whatever the number of classes.

use rayon::prelude::*;

/// Rows per parallel task (and per partial sum, which keeps reductions in a fixed order).
pub const ROW_CHUNK: usize = 1024;

#[derive(Debug, Clone, PartialEq)]
pub struct Csr {
    pub n: usize,
    /// `n + 1` offsets into `cols`/`values`.
    pub row_start: Vec<usize>,
    pub cols: Vec<u32>,
    pub values: Vec<f32>,
}

impl Csr {
    pub fn nnz(&self) -> usize {
        self.cols.len()
    }

    pub fn row(&self, i: usize) -> (&[u32], &[f32]) {
        let range = self.row_start[i]..self.row_start[i + 1];
        (&self.cols[range.clone()], &self.values[range])
    }

    /// Dense `n × n` copy (tests and small examples).
    pub fn to_dense(&self) -> Vec<f64> {
        let mut dense = vec![0.0; self.n * self.n];
        for i in 0..self.n {
            let (cols, values) = self.row(i);
            for (&j, &v) in cols.iter().zip(values) {
                dense[i * self.n + j as usize] = v as f64;
            }
        }
        dense
    }

    /// `out = p − alpha · (self × p)` for a row-major `n × c` block `p`; returns the per-column inner products
    /// `p · out`, summed chunk by chunk in a fixed order (so they do not depend on the thread count). Fusing the
    /// product with the solver's next reduction saves a pass over the blocks and a synchronisation per iteration.
    pub fn shifted_product(&self, alpha: f64, p: &[f64], out: &mut [f64], c: usize) -> Vec<f64> {
        assert!(p.len() == self.n * c && out.len() == p.len(), "shifted_product: blocks must be {} × {c}", self.n);
        #[cfg(target_arch = "x86_64")]
        let wide = std::arch::is_x86_feature_detected!("avx2");
        #[cfg(not(target_arch = "x86_64"))]
        let wide = false;
        let partial: Vec<Vec<f64>> = out
            .par_chunks_mut(ROW_CHUNK * c)
            .enumerate()
            .map(|(chunk, out)| {
                let rows = chunk * ROW_CHUNK..chunk * ROW_CHUNK + out.len() / c;
                let p_rows = &p[rows.start * c..rows.end * c];
                #[cfg(target_arch = "x86_64")]
                if wide {
                    // SAFETY: the CPU has AVX2, checked above.
                    unsafe { shifted_rows_avx2(self, alpha, p, out, c, rows) };
                    return chunk_dots(p_rows, out, c);
                }
                let _ = wide;
                shifted_rows(self, alpha, p, out, c, rows);
                chunk_dots(p_rows, out, c)
            })
            .collect();
        sum_in_order(partial, c)
    }
}

/// Per-column inner products of two row-major blocks of `c` columns, in row order.
pub fn chunk_dots(a: &[f64], b: &[f64], c: usize) -> Vec<f64> {
    let mut sums = vec![0.0f64; c];
    for (a_row, b_row) in a.chunks(c).zip(b.chunks(c)) {
        for ((s, &x), &y) in sums.iter_mut().zip(a_row).zip(b_row) {
            *s += x * y;
        }
    }
    sums
}

/// Adds per-chunk partial sums in chunk order.
pub fn sum_in_order(partial: Vec<Vec<f64>>, c: usize) -> Vec<f64> {
    let mut total = vec![0.0f64; c];
    for sums in partial {
        for (t, s) in total.iter_mut().zip(sums) {
            *t += s;
        }
    }
    total
}

/// The rows `rows` of `p − alpha · (w × p)` into `out`. Each output entry sums over its row's non-zeros in order,
/// with separate multiplies and adds, so the numbers are the same whether the loop runs on SSE2 or AVX2 lanes.
#[inline(always)]
fn shifted_rows(w: &Csr, alpha: f64, p: &[f64], out: &mut [f64], c: usize, rows: std::ops::Range<usize>) {
    for (i, out_row) in rows.zip(out.chunks_mut(c)) {
        let (cols, values) = w.row(i);
        let pi = &p[i * c..(i + 1) * c];
        // Columns in groups of 8, then 4, 2, 1, each group's sums held in registers over the row's non-zeros.
        let mut g = 0;
        while g < c {
            let width = [8, 4, 2, 1].into_iter().find(|&wd| g + wd <= c).unwrap_or(1);
            let finish = |out: &mut [f64], acc: &[f64]| {
                for ((o, &x), &a) in out.iter_mut().zip(&pi[g..]).zip(acc) {
                    *o = x - alpha * a;
                }
            };
            match width {
                8 => finish(&mut out_row[g..g + 8], &group_sums::<8>(cols, values, p, c, g)),
                4 => finish(&mut out_row[g..g + 4], &group_sums::<4>(cols, values, p, c, g)),
                2 => finish(&mut out_row[g..g + 2], &group_sums::<2>(cols, values, p, c, g)),
                _ => finish(&mut out_row[g..g + 1], &group_sums::<1>(cols, values, p, c, g)),
            }
            g += width;
        }
    }
}

/// `Σ_j w_ij · p[j, g..g + W]` over one row's non-zeros.
#[inline(always)]
fn group_sums<const W: usize>(cols: &[u32], values: &[f32], p: &[f64], c: usize, g: usize) -> [f64; W] {
    let mut acc = [0.0f64; W];
    for (&j, &v) in cols.iter().zip(values) {
        let start = j as usize * c + g;
        let pj: &[f64; W] = p[start..start + W].try_into().expect("a group lies inside its row");
        let v = v as f64;
        for t in 0..W {
            acc[t] += v * pj[t];
        }
    }
    acc
}

/// [`shifted_rows`] compiled for AVX2: the per-class loop runs four f64 lanes at a time.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn shifted_rows_avx2(w: &Csr, alpha: f64, p: &[f64], out: &mut [f64], c: usize, rows: std::ops::Range<usize>) {
    shifted_rows(w, alpha, p, out, c, rows)
}
