//! The weighted kNN classifier iMix monitors training with (method §2.4, `Trainer.kNN`): cosine similarity
//! between L2-normalised features, the top `k` (200) bank neighbours of each query, each voting for its class with
//! weight `exp(s/σ)` (σ = 0.1), prediction = the class with the largest summed vote.
//!
//! Queries are processed in blocks of [`KnnClassifier::block`] rows, so memory stays `O(block × bank)` (per thread
//! for the plain path). Similarities come from plain Rust ([`KnnClassifier::predict`]: dot products summed in a
//! fixed order, the same answer for any number of threads) or from a burn matmul on a device
//! ([`KnnClassifier::predict_on`]: much faster on a GPU or with the CPU backend's tuned matmul; deterministic for a
//! given device, though its rounding may differ from the plain path's). Neighbour selection and voting are plain
//! Rust in both: among equal similarities the lower bank index ranks first, among equal votes the lower class wins.
use burn::tensor::{Device, Tensor, TensorData};

use crate::artifact::Features;

/// The default number of queries per block.
pub const BLOCK: usize = 256;

/// A bank of labelled features to classify queries against.
#[derive(Debug, Clone)]
pub struct KnnClassifier {
    /// L2-normalised bank rows.
    bank: Features,
    labels: Vec<u32>,
    classes: usize,
    pub k: usize,
    pub sigma: f32,
    /// Queries per block.
    pub block: usize,
}

impl KnnClassifier {
    pub fn new(bank: &Features, labels: &[u32], classes: usize, k: usize, sigma: f32) -> Self {
        assert_eq!(bank.rows, labels.len(), "kNN: {} bank rows, {} labels", bank.rows, labels.len());
        assert!(labels.iter().all(|&l| (l as usize) < classes), "kNN: a bank label is outside 0..{classes}");
        assert!(k > 0 && sigma > 0.0, "kNN needs k > 0 and σ > 0");
        KnnClassifier { bank: normalised(bank), labels: labels.to_vec(), classes, k, sigma, block: BLOCK }
    }

    /// The predicted class of each query row, similarities in plain Rust on all cores.
    pub fn predict(&self, queries: &Features) -> Vec<u32> {
        let queries = self.check(queries);
        let mut out = vec![0u32; queries.rows];
        let block = self.block.max(1);
        let blocks = queries.rows.div_ceil(block);
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(blocks).max(1);
        // Contiguous shares of whole blocks, one per thread.
        let per_thread = blocks.div_ceil(threads).max(1) * block;
        std::thread::scope(|s| {
            for (t, chunk) in out.chunks_mut(per_thread).enumerate() {
                let queries = &queries;
                s.spawn(move || {
                    let n = self.bank.rows;
                    let mut sims = vec![0f32; block.min(chunk.len()) * n];
                    for (b, block_out) in chunk.chunks_mut(block).enumerate() {
                        let q0 = t * per_thread + b * block;
                        let rows = block_out.len();
                        // Bank row outer, queries inner: the bank streams through the cache once per block.
                        for j in 0..n {
                            let bank_row = self.bank.row(j);
                            for i in 0..rows {
                                sims[i * n + j] = dot(queries.row(q0 + i), bank_row);
                            }
                        }
                        for (i, pred) in block_out.iter_mut().enumerate() {
                            *pred = self.vote(&sims[i * n..(i + 1) * n]);
                        }
                    }
                });
            }
        });
        out
    }

    /// The predicted class of each query row, similarities by a burn matmul on `device`; the block's similarity
    /// matrix comes back to the host for selection and voting, spread over all cores.
    pub fn predict_on(&self, queries: &Features, device: &Device) -> Vec<u32> {
        let queries = self.check(queries);
        let device = device.clone().without_autodiff();
        let (n, d) = (self.bank.rows, self.bank.dim);
        let bank_t = Tensor::<2>::from_data(TensorData::new(self.bank.values.clone(), [n, d]), &device).transpose();
        let block = self.block.max(1);
        let mut out = Vec::with_capacity(queries.rows);
        for start in (0..queries.rows).step_by(block) {
            let rows = block.min(queries.rows - start);
            let q = queries.values[start * d..(start + rows) * d].to_vec();
            let q = Tensor::<2>::from_data(TensorData::new(q, [rows, d]), &device);
            let sims: Vec<f32> =
                q.matmul(bank_t.clone()).into_data().try_into_vec_as::<f32>().expect("f32 similarities");
            let mut preds = vec![0u32; rows];
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(rows).max(1);
            let per = rows.div_ceil(threads);
            std::thread::scope(|s| {
                for (t, chunk) in preds.chunks_mut(per).enumerate() {
                    let sims = &sims;
                    s.spawn(move || {
                        for (i, pred) in chunk.iter_mut().enumerate() {
                            let r = t * per + i;
                            *pred = self.vote(&sims[r * n..(r + 1) * n]);
                        }
                    });
                }
            });
            out.extend(preds);
        }
        out
    }

    /// Accuracy of [`predict`](Self::predict) against `truth`.
    pub fn accuracy(&self, queries: &Features, truth: &[u32]) -> f64 {
        super::metrics::accuracy(&self.predict(queries), truth)
    }

    fn check(&self, queries: &Features) -> Features {
        assert_eq!(queries.dim, self.bank.dim, "kNN: queries have {} dims, the bank {}", queries.dim, self.bank.dim);
        normalised(queries)
    }

    /// The class with the largest `Σ exp(s/σ)` over the top `k` of one query's similarities to the bank.
    fn vote(&self, sims: &[f32]) -> u32 {
        let mut votes = vec![0f64; self.classes];
        for j in top_k(sims, self.k) {
            votes[self.labels[j] as usize] += ((sims[j] / self.sigma) as f64).exp();
        }
        argmax(&votes)
    }
}

/// Indices of the `k` largest values (all when fewer), ranked by value then by lower index; NaN ranks lowest.
/// One pass keeping the current top `k` sorted: later indices enter only when strictly larger, which keeps the
/// lower index first among ties without comparing indices.
pub fn top_k(values: &[f32], k: usize) -> Vec<usize> {
    let k = k.min(values.len());
    if k == 0 {
        return Vec::new();
    }
    let key = |v: f32| if v.is_nan() { f32::NEG_INFINITY } else { v };
    // Sorted best first; `floor` is the value of the worst kept.
    let mut kept: Vec<(f32, usize)> = Vec::with_capacity(k + 1);
    for (j, &v) in values.iter().enumerate() {
        let v = key(v);
        if kept.len() == k {
            if v <= kept[k - 1].0 {
                continue;
            }
            kept.pop();
        }
        // Insert after every kept value ≥ v (earlier indices win ties).
        let at = kept.partition_point(|&(w, _)| w >= v);
        kept.insert(at, (v, j));
    }
    kept.into_iter().map(|(_, j)| j).collect()
}

fn argmax(v: &[f64]) -> u32 {
    let mut best = 0;
    for (c, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = c;
        }
    }
    best as u32
}

/// Rows scaled to unit L2 norm (norms below 1e-12 taken as 1e-12, as `F.normalize`).
pub fn normalised(f: &Features) -> Features {
    let mut values = f.values.clone();
    if f.dim > 0 {
        for row in values.chunks_exact_mut(f.dim) {
            let norm = (row.iter().map(|v| (*v as f64) * (*v as f64)).sum::<f64>().sqrt()).max(1e-12) as f32;
            row.iter_mut().for_each(|v| *v /= norm);
        }
    }
    Features::new(f.rows, f.dim, values)
}

/// A dot product in a fixed summation order (eight lanes, then the tail), which the compiler vectorises.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(deg: f32) -> [f32; 2] {
        let r = deg.to_radians();
        [r.cos(), r.sin()]
    }

    #[test]
    fn top_k_ranks_by_value_then_index() {
        let v = [0.5, 0.9, f32::NAN, 0.9, 0.1, 0.7, 0.9];
        assert_eq!(top_k(&v, 3), vec![1, 3, 6]);
        assert_eq!(top_k(&v, 5), vec![1, 3, 6, 5, 0]);
        assert_eq!(top_k(&v, 100), vec![1, 3, 6, 5, 0, 4, 2]);
        assert_eq!(top_k(&v, 0), Vec::<usize>::new());
        // The same as a full sort by (value desc, index asc), on a larger input.
        let big: Vec<f32> = (0..1000).map(|i| ((i * 7919 % 97) as f32) / 7.0).collect();
        let mut order: Vec<usize> = (0..1000).collect();
        order.sort_by(|&a, &b| big[b].total_cmp(&big[a]).then(a.cmp(&b)));
        assert_eq!(top_k(&big, 200), order[..200].to_vec());
    }

    #[test]
    fn toy_set_matches_hand_computed_votes() {
        // Bank on the unit circle: class 0 at 0°, 10°, 80°; class 1 at 40°, 50°; class 2 at 180°.
        let angles = [0.0f32, 10.0, 80.0, 40.0, 50.0, 180.0];
        let labels = [0, 0, 0, 1, 1, 2];
        let bank = Features::new(6, 2, angles.iter().flat_map(|a| unit(*a)).collect());
        // Query at 45° (scaled: normalisation must not matter), k = 3: neighbours 40°, 50° (class 1, cos 5°) and
        // 10° / 80° (cos 35°, class 0). Votes: class 1 = 2·e^{cos5°/σ} beats class 0. At 5°: class 0.
        let q = Features::new(2, 2, [unit(45.0).map(|v| v * 3.0), unit(5.0)].concat());
        let knn = KnnClassifier::new(&bank, &labels, 3, 3, 0.1);
        assert_eq!(knn.predict(&q), vec![1, 0]);
        // With a large σ the votes are nearly equal counts, with all 6 neighbours: class 0 (3 votes) wins at 45°.
        let flat = KnnClassifier::new(&bank, &labels, 3, 6, 100.0);
        assert_eq!(flat.predict(&q)[0], 0);
        // Hand-computed for k = 5, σ = 1 at 45°: class 0 gets 2·e^{cos35°} + e^{cos45°} ≈ 6.57, class 1 gets
        // 2·e^{cos5°} ≈ 5.42; with σ = 0.5 the order flips (14.40 against 14.67).
        let votes = |sigma: f64| {
            let e = |deg: f64| (deg.to_radians().cos() / sigma).exp();
            (2.0 * e(35.0) + e(45.0), 2.0 * e(5.0))
        };
        let (c0, c1) = votes(1.0);
        assert!(c0 > c1 && (c0 - 6.565).abs() < 1e-3 && (c1 - 5.416).abs() < 1e-3, "{c0} {c1}");
        let (c0, c1) = votes(0.5);
        assert!(c0 < c1, "{c0} {c1}");
        let five = KnnClassifier::new(&bank, &labels, 3, 5, 1.0);
        assert_eq!(five.predict(&q)[0], 0);
        assert_eq!(KnnClassifier::new(&bank, &labels, 3, 5, 0.5).predict(&q)[0], 1);
        assert_eq!(five.accuracy(&q, &[0, 0]), 1.0);
        assert_eq!(five.predict_on(&q, &Device::flex()), five.predict(&q));
    }

    #[test]
    fn blocked_threaded_and_matmul_prediction_equal_one_query_at_a_time() {
        let (n, m, d) = (300, 2 * 64 + 37, 9);
        let val = |i: usize| ((i * 7919 % 1000) as f32 / 500.0) - 1.0;
        let bank = Features::new(n, d, (0..n * d).map(val).collect());
        let labels: Vec<u32> = (0..n as u32).map(|i| i % 5).collect();
        let queries = Features::new(m, d, (0..m * d).map(|i| val(i + 13)).collect());
        let mut knn = KnnClassifier::new(&bank, &labels, 5, 20, 0.1);
        knn.block = 64;
        let all = knn.predict(&queries);
        for i in [0, 1, 63, 64, 2 * 64 + 36] {
            let one = Features::new(1, d, queries.row(i).to_vec());
            assert_eq!(knn.predict(&one)[0], all[i], "query {i}");
        }
        assert_eq!(knn.predict_on(&queries, &Device::flex()), all);
        // k beyond the bank uses the whole bank.
        assert_eq!(KnnClassifier::new(&bank, &labels, 5, 10_000, 0.1).predict(&queries).len(), m);
    }
}
