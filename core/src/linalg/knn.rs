//! Exact k-nearest-neighbour search by inner product, every row of a matrix against all the others: the
//! similarities are computed tile by tile with a matrix product (SIMD GEMM), each thread owning a block of query
//! rows and keeping only its rows' best candidates, so memory stays O(N·k) and never holds the N × N product.

use std::cmp::Ordering;

use gemm::{Parallelism, gemm};
use rayon::prelude::*;

/// Query rows per task: one task's similarity tile is `QUERY_BLOCK × DATABASE_TILE` f32 (1 MiB), which stays in
/// a core's L2 cache while it is scanned.
const QUERY_BLOCK: usize = 128;
const DATABASE_TILE: usize = 2048;

/// The `k` neighbours of every row, most similar first: `indices[i * k + m]` is row `i`'s m-th neighbour and
/// `similarities[i * k + m]` its inner product with row `i`.
#[derive(Debug, Clone, PartialEq)]
pub struct Neighbours {
    pub rows: usize,
    pub k: usize,
    pub indices: Vec<u32>,
    pub similarities: Vec<f32>,
}

impl Neighbours {
    pub fn indices_of(&self, i: usize) -> &[u32] {
        &self.indices[i * self.k..(i + 1) * self.k]
    }

    pub fn similarities_of(&self, i: usize) -> &[f32] {
        &self.similarities[i * self.k..(i + 1) * self.k]
    }
}

/// For each row of `x` (`rows × dim`), the `k` other rows of largest inner product with it. Ranking is by
/// similarity, then by index (ties go to the lower index); the row itself is excluded: the `k + 1` best are found
/// and the row dropped from them (or, should it not be among them, the last one). `done(r)` is called as blocks of
/// `r` rows finish (for progress bars). Needs `k < rows`.
pub fn nearest_neighbours(x: &[f32], rows: usize, dim: usize, k: usize, done: &(dyn Fn(usize) + Sync)) -> Neighbours {
    assert_eq!(x.len(), rows * dim, "nearest_neighbours: {rows} × {dim} needs {} values", rows * dim);
    assert!(k >= 1 && k < rows, "nearest_neighbours: k = {k} needs 1 ≤ k < rows = {rows}");
    let wanted = k + 1;
    let mut indices = vec![0u32; rows * k];
    let mut similarities = vec![0.0f32; rows * k];
    indices.par_chunks_mut(QUERY_BLOCK * k).zip(similarities.par_chunks_mut(QUERY_BLOCK * k)).enumerate().for_each(
        |(block, (out_idx, out_sim))| {
            let first = block * QUERY_BLOCK;
            let count = out_idx.len() / k;
            let queries = &x[first * dim..(first + count) * dim];
            let mut best: Vec<TopK> = (0..count).map(|_| TopK::new(wanted)).collect();
            let mut tile = vec![0.0f32; count * DATABASE_TILE];
            for start in (0..rows).step_by(DATABASE_TILE) {
                let width = DATABASE_TILE.min(rows - start);
                let database = &x[start * dim..(start + width) * dim];
                // SAFETY: queries is count × dim and database width × dim, both row-major; the database is read as
                // its transpose (dim × width); tile holds count × width with row stride `width`.
                unsafe {
                    gemm(
                        count,
                        width,
                        dim,
                        tile.as_mut_ptr(),
                        1,
                        width as isize,
                        false,
                        queries.as_ptr(),
                        1,
                        dim as isize,
                        database.as_ptr(),
                        dim as isize,
                        1,
                        0.0,
                        1.0,
                        false,
                        false,
                        false,
                        Parallelism::None,
                    );
                }
                for (q, top) in best.iter_mut().enumerate() {
                    top.offer(&tile[q * width..(q + 1) * width], start as u32);
                }
            }
            for (q, top) in best.into_iter().enumerate() {
                let row = (first + q) as u32;
                let ranked = top.into_sorted();
                // Drop the row itself; when it is not among the k + 1 (ties with duplicates), drop the last.
                let skip = ranked.iter().position(|&(_, j)| j == row).unwrap_or(k);
                let kept = ranked.iter().enumerate().filter(|&(m, _)| m != skip).map(|(_, c)| c);
                for (m, &(s, j)) in kept.enumerate() {
                    out_idx[q * k + m] = j;
                    out_sim[q * k + m] = s;
                }
            }
            done(count);
        },
    );
    Neighbours { rows, k, indices, similarities }
}

/// Similarity descending, then index ascending: a total order, so the selection is deterministic.
fn rank(a: &(f32, u32), b: &(f32, u32)) -> Ordering {
    b.0.total_cmp(&a.0).then(a.1.cmp(&b.1))
}

/// The best `k` (similarity, index) pairs of one query seen so far. Candidates below the current k-th best are
/// rejected by one comparison; the buffer is cut back to `k` whenever it fills.
struct TopK {
    k: usize,
    candidates: Vec<(f32, u32)>,
    threshold: f32,
}

impl TopK {
    fn new(k: usize) -> Self {
        TopK { k, candidates: Vec::with_capacity(4 * k), threshold: f32::NEG_INFINITY }
    }

    fn offer(&mut self, similarities: &[f32], first_index: u32) {
        let threshold = self.threshold;
        for (j, &s) in similarities.iter().enumerate() {
            // NaN fails this test and is never kept.
            if s >= threshold {
                self.candidates.push((s, first_index + j as u32));
            }
        }
        if self.candidates.len() >= 3 * self.k {
            self.shrink();
        }
    }

    fn shrink(&mut self) {
        if self.candidates.len() > self.k {
            self.candidates.select_nth_unstable_by(self.k - 1, rank);
            self.candidates.truncate(self.k);
        }
        if self.candidates.len() == self.k {
            self.threshold = self.candidates.iter().map(|c| c.0).fold(f32::INFINITY, f32::min);
        }
    }

    fn into_sorted(mut self) -> Vec<(f32, u32)> {
        self.shrink();
        self.candidates.sort_unstable_by(rank);
        self.candidates
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn brute_force(x: &[f32], rows: usize, dim: usize, k: usize) -> Vec<Vec<(f32, u32)>> {
        (0..rows)
            .map(|i| {
                let mut all: Vec<(f32, u32)> = (0..rows)
                    .filter(|&j| j != i)
                    .map(|j| {
                        let s: f32 = (0..dim).map(|d| x[i * dim + d] * x[j * dim + d]).sum();
                        (s, j as u32)
                    })
                    .collect();
                all.sort_by(rank);
                all.truncate(k);
                all
            })
            .collect()
    }

    #[test]
    fn matches_brute_force_on_random_data_across_tiles() {
        // More rows than one database tile and one query block, with a ragged end.
        let (rows, dim, k) = (DATABASE_TILE + 301, 7, 25);
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let x: Vec<f32> = (0..rows * dim).map(|_| rng.random_range(-1.0..1.0)).collect();
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let nn = nearest_neighbours(&x, rows, dim, k, &|r| {
            calls.fetch_add(r, std::sync::atomic::Ordering::Relaxed);
        });
        assert_eq!(calls.into_inner(), rows);
        let want = brute_force(&x, rows, dim, k);
        let mut mismatched = 0;
        for i in 0..rows {
            let ids: Vec<u32> = want[i].iter().map(|c| c.1).collect();
            if nn.indices_of(i) != ids.as_slice() {
                // The GEMM sums in another order than the naive loop: only near-equal similarities may swap.
                for (m, (&got, w)) in nn.indices_of(i).iter().zip(&want[i]).enumerate() {
                    if got != w.1 {
                        assert!((nn.similarities_of(i)[m] - w.0).abs() < 1e-5, "row {i} rank {m}");
                    }
                }
                mismatched += 1;
            }
            for (m, w) in want[i].iter().enumerate() {
                assert!((nn.similarities_of(i)[m] - w.0).abs() < 1e-5);
            }
        }
        assert!(mismatched < rows / 100, "{mismatched} rows differ beyond round-off swaps");
    }

    #[test]
    fn ties_go_to_the_lower_index_and_self_is_dropped() {
        // Rows 1..=4 are identical: from row 0 they tie, and the two lowest indices win.
        let x = [1.0f32, 0.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, -1.0, 0.0];
        let nn = nearest_neighbours(&x, 6, 2, 2, &|_| {});
        assert_eq!(nn.indices_of(0), &[1, 2]);
        // Row 3 scores 0.5 with rows 0, 1, 2, 4 and itself: the k + 1 best are 0, 1, 2 (lowest indices), which do
        // not include row 3, so the last of them is dropped.
        assert_eq!(nn.indices_of(3), &[0, 1]);
        assert_eq!(nn.similarities_of(3), &[0.5, 0.5]);
        // Row 5 (−1, 0): its best are the duplicates at −0.5 (lowest indices), not row 0 at −1.
        assert_eq!(nn.indices_of(5), &[1, 2]);
    }

    #[test]
    fn self_is_dropped_even_when_not_first() {
        // Row 0 = (1, 0); row 1 = (2, 0) has a larger inner product with row 0 than row 0 itself.
        let x = [1.0f32, 0.0, 2.0, 0.0, 0.0, 1.0];
        let nn = nearest_neighbours(&x, 3, 2, 1, &|_| {});
        assert_eq!(nn.indices_of(0), &[1]);
        assert_eq!(nn.similarities_of(0), &[2.0]);
        // Row 2 is orthogonal to both: similarity 0, ties to the lower index.
        assert_eq!(nn.indices_of(2), &[0]);
    }
}
