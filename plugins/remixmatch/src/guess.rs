//! The label guess of the unlabelled images (`docs/method.md` §6.3 step 1): distribution alignment of the weak
//! view's prediction with the running class distributions `p_data` and `p_model`, then sharpening. Rows are
//! `C` probabilities, batches row-major `B × C`; everything here is plain arithmetic on the CPU, checkpointed as
//! JSON.
use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// The two running distributions of distribution alignment, as the original keeps them (`layers.PData`,
/// `layers.PMovingAverage`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alignment {
    /// The labelled batches' class distribution: starts uniform, `p ← 0.999·p + 0.001·mean(onehot(y))` per step.
    pub p_data: Vec<f32>,
    /// The last `dbuf` batch means of the model's predictions, oldest first; starts as `dbuf` uniform rows, so
    /// p_model moves away from uniform only as real batches replace them.
    pub p_model: VecDeque<Vec<f32>>,
}

/// Weight of the newest labelled batch in `p_data`.
const P_DATA_RATE: f32 = 0.001;
/// Added to both distributions before their ratio is taken.
const EPSILON: f32 = 1e-6;

impl Alignment {
    pub fn new(classes: usize, dbuf: usize) -> Self {
        let uniform = vec![1.0 / classes as f32; classes];
        Alignment { p_data: uniform.clone(), p_model: std::iter::repeat_n(uniform, dbuf).collect() }
    }

    pub fn classes(&self) -> usize {
        self.p_data.len()
    }

    /// `p_data / Σ p_data`.
    pub fn p_data(&self) -> Vec<f32> {
        normalised(self.p_data.clone())
    }

    /// The mean of the buffer's rows, renormalised.
    pub fn p_model(&self) -> Vec<f32> {
        let mut mean = vec![0f32; self.classes()];
        for row in &self.p_model {
            mean.iter_mut().zip(row).for_each(|(m, v)| *m += v);
        }
        let n = self.p_model.len() as f32;
        normalised(mean.into_iter().map(|m| m / n).collect())
    }

    /// Each row of `probs` times `(p_data + ε)/(p_model + ε)`, renormalised.
    pub fn align(&self, probs: &[f32]) -> Vec<f32> {
        let (data, model) = (self.p_data(), self.p_model());
        let ratio: Vec<f32> = data.iter().zip(&model).map(|(d, m)| (d + EPSILON) / (m + EPSILON)).collect();
        let mut out = Vec::with_capacity(probs.len());
        for row in probs.chunks_exact(self.classes()) {
            out.extend(normalised(row.iter().zip(&ratio).map(|(p, r)| p * r).collect()));
        }
        out
    }

    /// After the step: the batch mean of the model's (unaligned) predictions joins the buffer, the oldest leaves;
    /// `p_data` moves towards the labelled batch's class distribution.
    pub fn update(&mut self, probs: &[f32], labels: &[u32]) {
        let c = self.classes();
        let rows = probs.len() / c;
        let mut mean = vec![0f32; c];
        for row in probs.chunks_exact(c) {
            mean.iter_mut().zip(row).for_each(|(m, v)| *m += v);
        }
        mean.iter_mut().for_each(|m| *m /= rows as f32);
        self.p_model.pop_front();
        self.p_model.push_back(mean);
        let mut counts = vec![0f32; c];
        labels.iter().for_each(|&y| counts[y as usize] += 1.0);
        let n = labels.len() as f32;
        for (p, k) in self.p_data.iter_mut().zip(counts) {
            *p = *p * (1.0 - P_DATA_RATE) + (k / n) * P_DATA_RATE;
        }
    }
}

/// Each row raised to `1/T` and renormalised (`T < 1` sharpens).
pub fn sharpen(probs: &[f32], classes: usize, temperature: f64) -> Vec<f32> {
    let power = (1.0 / temperature) as f32;
    probs.chunks_exact(classes).flat_map(|row| normalised(row.iter().map(|p| p.powf(power)).collect())).collect()
}

/// What the guesses say about themselves against the hidden true labels (a diagnostic, never used in training).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GuessStats {
    /// Share of rows whose argmax is the true label (`None` when the set has no labels).
    pub accuracy: Option<f64>,
    /// Share of rows whose largest probability is at least `threshold`.
    pub confident: f64,
}

/// [`GuessStats`] of `rows` (`B × C`) against `truth` (one label per row, when known).
pub fn guess_stats(rows: &[f32], classes: usize, truth: Option<&[u32]>, threshold: f32) -> GuessStats {
    let n = rows.len() / classes;
    let argmax_max = |row: &[f32]| {
        row.iter().enumerate().fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| if v > bv { (i, v) } else { (bi, bv) })
    };
    let mut right = 0usize;
    let mut confident = 0usize;
    for (k, row) in rows.chunks_exact(classes).enumerate() {
        let (arg, max) = argmax_max(row);
        right += truth.is_some_and(|t| t[k] as usize == arg) as usize;
        confident += (max >= threshold) as usize;
    }
    GuessStats { accuracy: truth.map(|_| right as f64 / n as f64), confident: confident as f64 / n as f64 }
}

fn normalised(mut v: Vec<f32>) -> Vec<f32> {
    let sum: f32 = v.iter().sum();
    v.iter_mut().for_each(|x| *x /= sum);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6)
    }

    #[test]
    fn starts_uniform_so_alignment_changes_nothing() {
        let a = Alignment::new(4, 128);
        assert_eq!(a.p_model.len(), 128);
        assert!(close(&a.p_model(), &[0.25; 4]) && close(&a.p_data(), &[0.25; 4]));
        let p = [0.1, 0.2, 0.3, 0.4, 0.7, 0.1, 0.1, 0.1];
        assert!(close(&a.align(&p), &p));
    }

    #[test]
    fn updates_the_buffer_fifo_and_p_data_as_by_hand() {
        let mut a = Alignment::new(2, 3);
        // Batch of two predictions, mean [0.8, 0.2]; labels [0, 0, 1, 0]: class share [0.75, 0.25].
        a.update(&[0.9, 0.1, 0.7, 0.3], &[0, 0, 1, 0]);
        assert_eq!(a.p_model.len(), 3);
        assert!(close(a.p_model.back().unwrap(), &[0.8, 0.2]));
        // p_model = mean of [0.5, 0.5], [0.5, 0.5], [0.8, 0.2] = [0.6, 0.4].
        assert!(close(&a.p_model(), &[0.6, 0.4]));
        // p_data = 0.999·0.5 + 0.001·0.75 = 0.50025, and 0.49975.
        assert!(close(&a.p_data, &[0.50025, 0.49975]));
        a.update(&[0.6, 0.4], &[1]);
        a.update(&[0.2, 0.8], &[1]);
        // The uniform rows are gone: mean of [0.8, 0.2], [0.6, 0.4], [0.2, 0.8].
        assert!(close(&a.p_model(), &[1.6 / 3.0, 1.4 / 3.0]), "{:?}", a.p_model());
        a.update(&[1.0, 0.0], &[0]);
        assert!(close(a.p_model.front().unwrap(), &[0.6, 0.4]));
    }

    #[test]
    fn aligns_and_sharpens_as_by_hand() {
        let mut a = Alignment::new(2, 1);
        a.p_data = vec![0.5, 0.5];
        a.p_model = VecDeque::from([vec![0.8, 0.2]]);
        // Ratio (0.5+ε)/(0.8+ε) ≈ 0.625 and (0.5+ε)/(0.2+ε) ≈ 2.5: [0.5, 0.5] → [0.625, 2.5]/3.125 = [0.2, 0.8].
        let aligned = a.align(&[0.5, 0.5, 0.8, 0.2]);
        assert!(close(&aligned, &[0.2, 0.8, 0.5, 0.5]), "{aligned:?}");
        // T = 0.5 squares: [0.04, 0.64]/0.68.
        let q = sharpen(&[0.2, 0.8, 0.5, 0.5], 2, 0.5);
        assert!(close(&q, &[0.04 / 0.68, 0.64 / 0.68, 0.5, 0.5]), "{q:?}");
        // T = 1 changes nothing; rows always sum to one.
        assert!(close(&sharpen(&[0.1, 0.3, 0.6], 3, 1.0), &[0.1, 0.3, 0.6]));
        let q = sharpen(&[0.1, 0.3, 0.6], 3, 0.25);
        assert!((q.iter().sum::<f32>() - 1.0).abs() < 1e-6 && q[2] > 0.9);
        // p_data unnormalised in storage is normalised before use.
        a.p_data = vec![1.0, 3.0];
        assert!(close(&a.p_data(), &[0.25, 0.75]));
    }

    #[test]
    fn guess_stats_count_right_and_confident_rows() {
        let rows = [0.96, 0.02, 0.02, 0.1, 0.5, 0.4, 0.0, 0.01, 0.99, 0.3, 0.3, 0.4];
        let s = guess_stats(&rows, 3, Some(&[0, 2, 2, 1]), 0.95);
        assert_eq!(s, GuessStats { accuracy: Some(0.5), confident: 0.5 });
        assert_eq!(guess_stats(&rows, 3, None, 0.5).accuracy, None);
        assert_eq!(guess_stats(&rows, 3, None, 0.5).confident, 0.75);
    }
}
