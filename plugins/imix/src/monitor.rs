//! The kNN monitor of iMix (method §2.4, `Trainer.kNN`): features of the (centre-cropped) training images form a
//! bank labelled with their ground truth, each test image is classified by a weighted vote of its `k` most
//! cosine-similar bank images, and the accuracy on the test split is the training curve's figure of merit.
//! Labels are only read here, never trained on.
use relab_core::Result;
use relab_core::artifact::Features;
use relab_core::burn::tensor::Device;
use relab_core::component::StageContext;
use relab_core::data::Dataset;
use relab_core::train::{KnnClassifier, accuracy};

use crate::encoder::ImixEncoder;

/// When and how the monitor runs.
#[derive(Debug, Clone)]
pub struct Monitor {
    pub every: usize,
    pub k: usize,
    pub sigma: f32,
}

impl Monitor {
    /// `None` when there is nothing to monitor: `every` is 0, or the dataset lacks training or test labels.
    pub fn new(every: usize, k: usize, sigma: f32, data: &Dataset) -> Option<Self> {
        let labelled = data.train.labels.is_some() && data.test.labels.is_some() && !data.test.is_empty();
        (every > 0 && labelled).then_some(Monitor { every, k, sigma })
    }

    /// Whether the monitor runs after `epoch` (1-based) of `epochs`: every `every` epochs, and after the last.
    pub fn due(&self, epoch: usize, epochs: usize) -> bool {
        epoch.is_multiple_of(self.every) || epoch == epochs
    }

    /// The test accuracy of `encoder`'s default output.
    pub fn accuracy(&self, ctx: &StageContext, encoder: &ImixEncoder, data: &Dataset) -> Result<f64> {
        let output = encoder.record.default_output;
        let bank = encoder.features(ctx, &data.train, output)?;
        let queries = encoder.features(ctx, &data.test, output)?;
        let (bank_labels, truth) = (data.train.labels.as_deref(), data.test.labels.as_deref());
        let (Some(bank_labels), Some(truth)) = (bank_labels, truth) else {
            unreachable!("Monitor::new checks that both splits are labelled")
        };
        Ok(self.score(&bank, bank_labels, &queries, truth, data.num_classes, &ctx.device))
    }

    /// The weighted kNN accuracy of `queries` against a labelled `bank`.
    pub fn score(
        &self,
        bank: &Features,
        bank_labels: &[u32],
        queries: &Features,
        truth: &[u32],
        classes: usize,
        device: &Device,
    ) -> f64 {
        let knn = KnnClassifier::new(bank, bank_labels, classes, self.k, self.sigma);
        accuracy(&knn.predict_on(queries, device), truth)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use relab_core::data::ImageSet;

    fn dataset(train_labels: Option<Vec<u32>>, test_labels: Option<Vec<u32>>) -> Dataset {
        let set = |labels: Option<Vec<u32>>| ImageSet { channels: 1, height: 1, width: 1, pixels: vec![0; 2], labels };
        Dataset {
            name: "toy".into(),
            train: set(train_labels),
            test: set(test_labels),
            num_classes: 2,
            class_names: vec!["a".into(), "b".into()],
            mean: vec![0.5],
            std: vec![0.5],
        }
    }

    #[test]
    fn runs_every_n_epochs_and_after_the_last_when_labels_exist() {
        let labelled = dataset(Some(vec![0, 1]), Some(vec![1, 0]));
        let m = Monitor::new(3, 200, 0.1, &labelled).unwrap();
        let due: Vec<usize> = (1..=10).filter(|&e| m.due(e, 10)).collect();
        assert_eq!(due, vec![3, 6, 9, 10]);
        assert!(Monitor::new(0, 200, 0.1, &labelled).is_none());
        assert!(Monitor::new(1, 200, 0.1, &dataset(None, Some(vec![0, 1]))).is_none());
        assert!(Monitor::new(1, 200, 0.1, &dataset(Some(vec![0, 1]), None)).is_none());
    }

    #[test]
    fn scores_test_features_by_cosine_votes_of_the_bank() {
        // Bank: class 0 along +x (three, one of them long: cosine ignores length), class 1 along +y (two).
        let bank = Features::new(5, 2, vec![1.0, 0.1, 5.0, -0.2, 1.0, 0.0, 0.1, 1.0, -0.1, 1.0]);
        let labels = [0, 0, 0, 1, 1];
        // Queries near +x, near +y, and on the diagonal slightly towards y.
        let queries = Features::new(3, 2, vec![2.0, 0.3, 0.2, 3.0, 1.0, 1.1]);
        let device = Device::flex();
        // k = 2, σ = 0.1: the diagonal query's two nearest are (0.1, 1) of class 1 (cos 0.80) and (1, 0.1) of
        // class 0 (cos 0.74); the nearer one's vote e^{s/σ} is larger, so class 1. Ground truth [0, 1, 1] is all
        // right, and a wrong truth for the diagonal costs one third.
        let m = Monitor { every: 1, k: 2, sigma: 0.1 };
        assert_eq!(m.score(&bank, &labels, &queries, &[0, 1, 1], 2, &device), 1.0);
        assert!((m.score(&bank, &labels, &queries, &[0, 1, 0], 2, &device) - 2.0 / 3.0).abs() < 1e-12);
        // With every neighbour voting and a flat σ, class 0's three votes outweigh class 1's two everywhere.
        let flat = Monitor { every: 1, k: 5, sigma: 100.0 };
        assert_eq!(flat.score(&bank, &labels, &queries, &[0, 0, 0], 2, &device), 1.0);
    }
}
