//! Classification metrics: predictions from logits, top-1 accuracy, per-class accuracy and the confusion matrix.
use burn::tensor::Tensor;

/// The arg-max of each row of a row-major `rows × classes` matrix; ties go to the lowest class, as `torch.argmax`.
pub fn argmax_rows(values: &[f32], classes: usize) -> Vec<u32> {
    assert!(classes > 0 && values.len().is_multiple_of(classes), "{} values are not rows of {classes}", values.len());
    values
        .chunks_exact(classes)
        .map(|row| {
            let mut best = 0;
            for (c, v) in row.iter().enumerate() {
                if *v > row[best] {
                    best = c;
                }
            }
            best as u32
        })
        .collect()
}

/// The predicted class of each row of `B × C` logits (or probabilities).
pub fn predictions(logits: Tensor<2>) -> Vec<u32> {
    let [_, c] = logits.dims();
    let values: Vec<f32> = logits.into_data().try_into_vec_as::<f32>().expect("logits convert to f32");
    argmax_rows(&values, c)
}

/// The fraction of `predicted` equal to `truth`; 0 for no samples.
pub fn accuracy(predicted: &[u32], truth: &[u32]) -> f64 {
    assert_eq!(predicted.len(), truth.len(), "{} predictions for {} labels", predicted.len(), truth.len());
    if truth.is_empty() {
        return 0.0;
    }
    predicted.iter().zip(truth).filter(|(p, t)| p == t).count() as f64 / truth.len() as f64
}

/// Top-1 accuracy of `B × C` logits against `truth`.
pub fn accuracy_from_logits(logits: Tensor<2>, truth: &[u32]) -> f64 {
    accuracy(&predictions(logits), truth)
}

/// Counts of (true class, predicted class) pairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfusionMatrix {
    pub classes: usize,
    /// Row-major `classes × classes`: `counts[t * classes + p]` samples of class `t` were predicted as `p`.
    pub counts: Vec<u64>,
}

impl ConfusionMatrix {
    pub fn new(classes: usize) -> Self {
        ConfusionMatrix { classes, counts: vec![0; classes * classes] }
    }

    pub fn from_predictions(predicted: &[u32], truth: &[u32], classes: usize) -> Self {
        let mut m = ConfusionMatrix::new(classes);
        m.add(predicted, truth);
        m
    }

    pub fn from_logits(logits: Tensor<2>, truth: &[u32]) -> Self {
        let classes = logits.dims()[1];
        ConfusionMatrix::from_predictions(&predictions(logits), truth, classes)
    }

    /// Adds a batch. Panics on a class outside `0..classes`.
    pub fn add(&mut self, predicted: &[u32], truth: &[u32]) {
        assert_eq!(predicted.len(), truth.len(), "{} predictions for {} labels", predicted.len(), truth.len());
        let k = self.classes;
        for (&p, &t) in predicted.iter().zip(truth) {
            assert!((p as usize) < k && (t as usize) < k, "class {} outside 0..{k}", p.max(t));
            self.counts[t as usize * k + p as usize] += 1;
        }
    }

    pub fn get(&self, truth: usize, predicted: usize) -> u64 {
        self.counts[truth * self.classes + predicted]
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Top-1 accuracy over all samples; 0 when empty.
    pub fn accuracy(&self) -> f64 {
        let correct: u64 = (0..self.classes).map(|c| self.get(c, c)).sum();
        if self.total() == 0 { 0.0 } else { correct as f64 / self.total() as f64 }
    }

    /// Accuracy (recall) of each true class; `None` for a class without samples.
    pub fn per_class_accuracy(&self) -> Vec<Option<f64>> {
        (0..self.classes)
            .map(|t| {
                let row = &self.counts[t * self.classes..(t + 1) * self.classes];
                let n: u64 = row.iter().sum();
                (n > 0).then(|| row[t] as f64 / n as f64)
            })
            .collect()
    }

    /// The mean of the per-class accuracies over the classes that have samples.
    pub fn mean_per_class_accuracy(&self) -> f64 {
        let seen: Vec<f64> = self.per_class_accuracy().into_iter().flatten().collect();
        if seen.is_empty() { 0.0 } else { seen.iter().sum::<f64>() / seen.len() as f64 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn argmax_accuracy_and_confusion() {
        assert_eq!(argmax_rows(&[0.1, 0.7, 0.2, 1.0, 1.0, 0.0], 3), vec![1, 0]);
        let logits = Tensor::<2>::from_data(
            TensorData::new(vec![2.0f32, 1.0, 0.0, 0.0, 3.0, 1.0, 0.5, 0.2, 0.9, 5.0, 0.0, 0.0], [4, 3]),
            &Device::flex(),
        );
        let truth = [0, 1, 1, 2];
        assert_eq!(predictions(logits.clone()), vec![0, 1, 2, 0]);
        assert_eq!(accuracy_from_logits(logits.clone(), &truth), 0.5);
        let m = ConfusionMatrix::from_logits(logits, &truth);
        assert_eq!(m.counts, vec![1, 0, 0, 0, 1, 1, 1, 0, 0]);
        assert_eq!((m.get(1, 2), m.get(2, 0), m.total()), (1, 1, 4));
        assert_eq!(m.accuracy(), 0.5);
        assert_eq!(m.per_class_accuracy(), vec![Some(1.0), Some(0.5), Some(0.0)]);
        assert_eq!(m.mean_per_class_accuracy(), 0.5);
        let mut empty_class = ConfusionMatrix::from_predictions(&[0, 0], &[0, 1], 3);
        assert_eq!(empty_class.per_class_accuracy(), vec![Some(1.0), Some(0.0), None]);
        empty_class.add(&[2], &[2]);
        assert_eq!(empty_class.mean_per_class_accuracy(), 2.0 / 3.0);
        assert_eq!(accuracy(&[], &[]), 0.0);
    }
}
