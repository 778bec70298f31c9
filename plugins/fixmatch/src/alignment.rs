//! Distribution alignment (Berthelot et al.'s ReMixMatch; optional in FixMatch as USB offers it): each weak-view
//! prediction `q` becomes `q̃ = normalise(q · p_data / p_model)`, where `p_data` is the labelled set's class
//! distribution and `p_model` a moving mean of the model's unlabelled predictions.
//!
//! The moving mean is USB's form, an exponential one per step: `p_model ← m·p_model + (1−m)·mean_b q_b` with the
//! batch's unaligned predictions, updated before the batch is aligned, starting from the uniform distribution.
//! (ReMixMatch's TF code keeps the mean of the last 128 batches instead.)
use serde::{Deserialize, Serialize};

/// The alignment and its moving state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DistributionAlignment {
    p_data: Vec<f64>,
    /// The moving mean of the model's predictions (checkpointed).
    pub p_model: Vec<f64>,
    momentum: f64,
}

impl DistributionAlignment {
    /// `p_data` from the labelled set's labels over `classes` classes; `p_model` starts uniform.
    pub fn new(labels: &[u32], classes: usize, momentum: f64) -> Self {
        let mut p_data = vec![0.0; classes];
        for &l in labels {
            p_data[l as usize] += 1.0;
        }
        let n = labels.len().max(1) as f64;
        p_data.iter_mut().for_each(|p| *p /= n);
        DistributionAlignment { p_data, p_model: vec![1.0 / classes as f64; classes], momentum }
    }

    pub fn p_data(&self) -> &[f64] {
        &self.p_data
    }

    /// Moves `p_model` towards the mean of `probabilities` (rows of `classes`), then returns them aligned.
    pub fn update_and_align(&mut self, probabilities: &[f32]) -> Vec<f32> {
        let c = self.p_data.len();
        let rows = probabilities.len() / c;
        if rows > 0 {
            let mut mean = vec![0.0f64; c];
            for row in probabilities.chunks_exact(c) {
                mean.iter_mut().zip(row).for_each(|(m, &q)| *m += q as f64);
            }
            let m = self.momentum;
            for (p, s) in self.p_model.iter_mut().zip(mean) {
                *p = m * *p + (1.0 - m) * s / rows as f64;
            }
        }
        self.align(probabilities)
    }

    /// `normalise(q · p_data / p_model)` row by row.
    pub fn align(&self, probabilities: &[f32]) -> Vec<f32> {
        let c = self.p_data.len();
        let mut out = Vec::with_capacity(probabilities.len());
        for row in probabilities.chunks_exact(c) {
            let scaled: Vec<f64> =
                (0..c).map(|k| row[k] as f64 * self.p_data[k] / self.p_model[k].max(f64::MIN_POSITIVE)).collect();
            let total: f64 = scaled.iter().sum();
            out.extend(scaled.iter().map(|&s| if total > 0.0 { (s / total) as f32 } else { 1.0 / c as f32 }));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f32], b: &[f64]) -> bool {
        a.iter().zip(b).all(|(x, y)| (*x as f64 - y).abs() < 1e-6)
    }

    #[test]
    fn aligns_by_hand() {
        // Balanced labels: p_data = (½, ½).
        let mut da = DistributionAlignment::new(&[0, 1, 1, 0], 2, 0.5);
        assert_eq!(da.p_data(), &[0.5, 0.5]);
        assert_eq!(da.p_model, vec![0.5, 0.5]);
        // Batch mean of (1, 0) and (½, ½) is (¾, ¼): p_model = ½·(½, ½) + ½·(¾, ¼) = (⅝, ⅜).
        let aligned = da.update_and_align(&[1.0, 0.0, 0.5, 0.5]);
        assert_eq!(da.p_model, vec![0.625, 0.375]);
        // (½·½/⅝, ½·½/⅜) = (0.4, ⅔) → (0.375, 0.625); (1, 0) stays (1, 0).
        assert!(close(&aligned, &[1.0, 0.0, 0.375, 0.625]), "{aligned:?}");
        // p_model (¾, ¼): q = (0.6, 0.4) → (0.4, 0.8) → (⅓, ⅔).
        da.p_model = vec![0.75, 0.25];
        assert!(close(&da.align(&[0.6, 0.4]), &[1.0 / 3.0, 2.0 / 3.0]));
        // Unbalanced labels: p_data = (¼, ¾).
        let da = DistributionAlignment::new(&[0, 1, 1, 1], 2, 0.999);
        assert_eq!(da.p_data(), &[0.25, 0.75]);
        assert!(close(&da.align(&[0.5, 0.5]), &[0.25, 0.75]));
    }
}
