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

    /// `out = p − alpha · (self × p)` for a row-major `n × c` block `p`.
    pub fn shifted_product(&self, alpha: f64, p: &[f64], out: &mut [f64], c: usize) {
        assert!(p.len() == self.n * c && out.len() == p.len(), "shifted_product: blocks must be {} × {c}", self.n);
        out.par_chunks_mut(ROW_CHUNK * c).enumerate().for_each(|(chunk, out)| {
            let first = chunk * ROW_CHUNK;
            let mut acc = vec![0.0f64; c];
            for (r, out_row) in out.chunks_mut(c).enumerate() {
                let i = first + r;
                acc.fill(0.0);
                let (cols, values) = self.row(i);
                for (&j, &w) in cols.iter().zip(values) {
                    let pj = &p[j as usize * c..(j as usize + 1) * c];
                    let w = w as f64;
                    for (a, &x) in acc.iter_mut().zip(pj) {
                        *a += w * x;
                    }
                }
                let pi = &p[i * c..(i + 1) * c];
                for ((o, &x), &a) in out_row.iter_mut().zip(pi).zip(&acc) {
                    *o = x - alpha * a;
                }
            }
        });
    }
}
