//! Exact k-nearest-neighbour search by inner product, every row of a matrix against all the others.
//!
//! The rows are cut into blocks; the similarity of each pair of blocks is computed once, by a SIMD matrix product
//! (`gemm`), and scanned both ways: along its rows for the first block's candidates and along its columns for the
//! second's, so the symmetric product costs half of a full one. Pairs of blocks are processed in the rounds of a
//! round-robin tournament: within a round no block appears twice, so the rounds' tiles run in parallel, each owning
//! its two blocks' candidate lists, and the result never depends on the thread count. Each row keeps only its best
//! candidates, so memory stays O(N·k) and never holds the N × N product.

use std::cmp::Ordering;
use std::sync::Mutex;

use gemm::{Parallelism, gemm};
use rayon::prelude::*;

/// Rows per block of the schedule.
const BLOCK: usize = 1024;
/// Rows of a block multiplied at once: the similarity strip is `STRIP × BLOCK` f32 (1 MiB), a core's L2 share.
const STRIP: usize = 256;

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

/// How many tiles [`nearest_neighbours`] computes for `rows` rows (its progress callback counts them).
pub fn knn_tiles(rows: usize) -> u64 {
    let blocks = rows.div_ceil(BLOCK) as u64;
    blocks * (blocks + 1) / 2
}

/// For each row of `x` (`rows × dim`), the `k` other rows of largest inner product with it. Ranking is by
/// similarity, then by index (ties go to the lower index); the row itself is excluded: the `k + 1` best are found
/// and the row dropped from them (or, should it not be among them, the last one). `done(t)` is called as `t` more
/// tiles (of [`knn_tiles`]) finish. Needs `1 ≤ k < rows`.
pub fn nearest_neighbours(x: &[f32], rows: usize, dim: usize, k: usize, done: &(dyn Fn(u64) + Sync)) -> Neighbours {
    assert_eq!(x.len(), rows * dim, "nearest_neighbours: {rows} × {dim} needs {} values", rows * dim);
    assert!(k >= 1 && k < rows, "nearest_neighbours: k = {k} needs 1 ≤ k < rows = {rows}");
    let blocks = rows.div_ceil(BLOCK);
    let block_rows = |b: usize| b * BLOCK..((b + 1) * BLOCK).min(rows);
    let states: Vec<Mutex<Block>> = (0..blocks).map(|b| Mutex::new(Block::new(block_rows(b).len(), k + 1))).collect();
    for round in rounds(blocks) {
        round.par_iter().for_each(|&(a, b)| {
            let mut strip = vec![0.0f32; STRIP * BLOCK];
            let mut first = lock(&states[a]);
            if a == b {
                tile(x, dim, block_rows(a), block_rows(b), &mut first, None, &mut strip);
            } else {
                let mut second = lock(&states[b]);
                tile(x, dim, block_rows(a), block_rows(b), &mut first, Some(&mut second), &mut strip);
            }
            done(1);
        });
    }
    let mut indices = vec![0u32; rows * k];
    let mut similarities = vec![0.0f32; rows * k];
    indices.par_chunks_mut(BLOCK * k).zip(similarities.par_chunks_mut(BLOCK * k)).zip(states).enumerate().for_each(
        |(b, ((out_idx, out_sim), state))| {
            let state = state.into_inner().unwrap_or_else(|p| p.into_inner());
            for (q, top) in state.tops.into_iter().enumerate() {
                let row = (b * BLOCK + q) as u32;
                let ranked = top.into_sorted();
                // Drop the row itself; when it is not among the k + 1 (ties with duplicates), drop the last.
                let skip = ranked.iter().position(|&(_, j)| j == row).unwrap_or(k);
                let kept = ranked.iter().enumerate().filter(|&(m, _)| m != skip).map(|(_, c)| c);
                for (m, &(s, j)) in kept.enumerate() {
                    out_idx[q * k + m] = j;
                    out_sim[q * k + m] = s;
                }
            }
        },
    );
    Neighbours { rows, k, indices, similarities }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Each block is locked by one tile at a time by construction; a poisoned lock only means another tile panicked.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The pairs of blocks `(a, b)`, `a ≤ b`, grouped in rounds where no block appears twice: the round-robin
/// tournament's circle method for the pairs `a < b`, then one round of the diagonal pairs `(a, a)`.
fn rounds(blocks: usize) -> Vec<Vec<(usize, usize)>> {
    // An odd count gets a phantom block; its pairs are byes.
    let m = blocks + blocks % 2;
    let mut out = Vec::with_capacity(m);
    for r in 0..m.saturating_sub(1) {
        let mut round = Vec::with_capacity(m / 2);
        let pairs =
            std::iter::once((r, m - 1)).chain((1..m / 2).map(|i| ((r + i) % (m - 1), (r + m - 1 - i) % (m - 1))));
        for (a, b) in pairs {
            if a < blocks && b < blocks {
                round.push((a.min(b), a.max(b)));
            }
        }
        out.push(round);
    }
    out.push((0..blocks).map(|b| (b, b)).collect());
    out
}

/// The candidates of one block's rows, with each row's admission threshold kept apart in one contiguous array,
/// so a scan compares a run of similarities with a run of thresholds in SIMD lanes.
struct Block {
    tops: Vec<TopK>,
    thresholds: Vec<f32>,
}

impl Block {
    fn new(rows: usize, k: usize) -> Self {
        Block { tops: (0..rows).map(|_| TopK::new(k)).collect(), thresholds: vec![f32::NEG_INFINITY; rows] }
    }
}

/// Similarities between the rows of block `a` and those of block `b`, offered to `a`'s rows (`first`) and, when
/// the blocks differ, to `b`'s rows too (`second`, by the transposed entries).
fn tile(
    x: &[f32],
    dim: usize,
    a: std::ops::Range<usize>,
    b: std::ops::Range<usize>,
    first: &mut Block,
    mut second: Option<&mut Block>,
    strip: &mut [f32],
) {
    let width = b.len();
    let database = &x[b.start * dim..b.end * dim];
    #[cfg(target_arch = "x86_64")]
    let wide = std::arch::is_x86_feature_detected!("avx2");
    for strip_start in a.clone().step_by(STRIP) {
        let height = STRIP.min(a.end - strip_start);
        let queries = &x[strip_start * dim..(strip_start + height) * dim];
        // SAFETY: queries is height × dim and database width × dim, both row-major; the database is read as its
        // transpose (dim × width); strip holds height × width (≤ STRIP × BLOCK) with row stride `width`.
        unsafe {
            gemm(
                height,
                width,
                dim,
                strip.as_mut_ptr(),
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
        for r in 0..height {
            let row = &strip[r * width..(r + 1) * width];
            let query = strip_start + r;
            let local = query - a.start;
            let own = (&mut first.tops[local], &mut first.thresholds[local]);
            let columns = second.as_deref_mut();
            #[cfg(target_arch = "x86_64")]
            if wide {
                // SAFETY: the CPU has AVX2, checked above.
                unsafe { scan_avx2(row, b.start as u32, own, query as u32, columns) };
                continue;
            }
            scan(row, b.start as u32, own, query as u32, columns);
        }
    }
}

/// [`scan`] compiled for AVX2 (eight similarity/threshold comparisons per instruction).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn scan_avx2(
    row: &[f32],
    first_index: u32,
    own: (&mut TopK, &mut f32),
    query: u32,
    columns: Option<&mut Block>,
) {
    scan(row, first_index, own, query, columns)
}

/// Offers one row of similarities (to rows `first_index..`) to the row's own candidates and, with `columns`, each
/// entry to the candidates of its column's row (the transposed pair).
#[inline(always)]
fn scan(row: &[f32], first_index: u32, own: (&mut TopK, &mut f32), query: u32, mut columns: Option<&mut Block>) {
    let (top, threshold) = own;
    for (chunk_start, chunk) in (0..row.len()).step_by(LANES).zip(row.chunks(LANES)) {
        let end = chunk_start + chunk.len();
        // Most entries fall below every threshold: test a run at once, look closer only when one passes.
        let row_passes = chunk.iter().fold(false, |any, &s| any | (s >= *threshold));
        let column_passes = columns.as_ref().is_some_and(|cols| {
            chunk.iter().zip(&cols.thresholds[chunk_start..end]).fold(false, |any, (&s, &t)| any | (s >= t))
        });
        if row_passes {
            for (j, &s) in chunk.iter().enumerate() {
                top.offer(s, first_index + (chunk_start + j) as u32, threshold);
            }
        }
        if column_passes && let Some(cols) = columns.as_deref_mut() {
            let tops = &mut cols.tops[chunk_start..end];
            let thresholds = &mut cols.thresholds[chunk_start..end];
            for ((&s, top), t) in chunk.iter().zip(tops).zip(thresholds) {
                top.offer(s, query, t);
            }
        }
    }
}

const LANES: usize = 16;

/// Similarity descending, then index ascending: a total order, so the selection is deterministic.
pub(super) fn rank(a: &(f32, u32), b: &(f32, u32)) -> Ordering {
    b.0.total_cmp(&a.0).then(a.1.cmp(&b.1))
}

/// The best `k` (similarity, index) pairs of one row seen so far. Its admission threshold (the k-th best
/// similarity once `k` are held) lives with the caller, in [`Block::thresholds`]: a candidate below it can never
/// rank among the best `k`, whatever comes later, so the final set does not depend on the order candidates came in.
struct TopK {
    k: usize,
    candidates: Vec<(f32, u32)>,
}

impl TopK {
    fn new(k: usize) -> Self {
        TopK { k, candidates: Vec::new() }
    }

    #[inline]
    fn offer(&mut self, s: f32, index: u32, threshold: &mut f32) {
        // NaN fails this test and is never kept.
        if s >= *threshold {
            self.candidates.push((s, index));
            if self.candidates.len() >= 2 * self.k + 16 {
                *threshold = self.shrink();
            }
        }
    }

    /// Cuts the candidates back to the best `k`; returns the new threshold.
    fn shrink(&mut self) -> f32 {
        if self.candidates.len() > self.k {
            self.candidates.select_nth_unstable_by(self.k - 1, rank);
            self.candidates.truncate(self.k);
        }
        if self.candidates.len() == self.k {
            self.candidates.iter().map(|c| c.0).fold(f32::INFINITY, f32::min)
        } else {
            f32::NEG_INFINITY
        }
    }

    fn into_sorted(mut self) -> Vec<(f32, u32)> {
        self.shrink();
        self.candidates.sort_unstable_by(rank);
        self.candidates
    }
}

#[cfg(test)]
// The reference computations index like the textbook formulas they check.
#[allow(clippy::needless_range_loop)]
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
        // Three blocks, the last one ragged (an odd count exercises the schedule's byes).
        let (rows, dim, k) = (2 * BLOCK + 301, 7, 25);
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let x: Vec<f32> = (0..rows * dim).map(|_| rng.random_range(-1.0..1.0)).collect();
        let calls = std::sync::atomic::AtomicU64::new(0);
        let nn = nearest_neighbours(&x, rows, dim, k, &|t| {
            calls.fetch_add(t, std::sync::atomic::Ordering::Relaxed);
        });
        assert_eq!(calls.into_inner(), knn_tiles(rows));
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
    fn rounds_cover_every_pair_once_without_sharing_a_block() {
        for blocks in 1..=9 {
            let mut seen = std::collections::HashSet::new();
            for round in rounds(blocks) {
                let mut used = std::collections::HashSet::new();
                for &(a, b) in &round {
                    assert!(a <= b && b < blocks);
                    assert!(
                        used.insert(a) && (a == b || used.insert(b)),
                        "{blocks} blocks: a block twice in {round:?}"
                    );
                    assert!(seen.insert((a, b)), "{blocks} blocks: pair ({a}, {b}) twice");
                }
            }
            assert_eq!(seen.len() as u64, knn_tiles(blocks * BLOCK));
        }
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
