use std::path::Path;

use crate::formats::npy;
use crate::{Error, Result};

/// The propagator's output: a score per class for every training sample (`scores.npy`, `N × C` f32) and the hard
/// label chosen from them (`labels.npy`, `N` i64).
#[derive(Debug, Clone, PartialEq)]
pub struct Propagation {
    pub num_classes: usize,
    pub scores: Vec<f32>,
    pub labels: Vec<u32>,
}

impl Propagation {
    /// Hard labels by argmax of each row (ties to the lower class, as `numpy.argmax`).
    pub fn from_scores(num_classes: usize, scores: Vec<f32>) -> Self {
        assert!(num_classes > 0 && scores.len().is_multiple_of(num_classes));
        let labels = scores
            .chunks(num_classes)
            .map(|row| {
                let mut best = 0;
                for (c, &v) in row.iter().enumerate() {
                    if v > row[best] {
                        best = c;
                    }
                }
                best as u32
            })
            .collect();
        Propagation { num_classes, scores, labels }
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn scores_of(&self, i: usize) -> &[f32] {
        &self.scores[i * self.num_classes..(i + 1) * self.num_classes]
    }

    /// Fraction of hard labels equal to the ground truth.
    pub fn accuracy(&self, truth: &[u32]) -> f64 {
        let ok = self.labels.iter().zip(truth).filter(|(a, b)| a == b).count();
        ok as f64 / self.labels.len().max(1) as f64
    }

    pub fn save(&self, dir: &Path) -> Result<()> {
        npy::write_f32(&dir.join("scores.npy"), &[self.len(), self.num_classes], &self.scores)?;
        let labels: Vec<i64> = self.labels.iter().map(|&l| l as i64).collect();
        npy::write_i64(&dir.join("labels.npy"), &[labels.len()], &labels)
    }

    pub fn load(dir: &Path) -> Result<Self> {
        let scores_path = dir.join("scores.npy");
        let (shape, scores) = npy::read_f32(&scores_path)?;
        let [n, c] = shape[..] else {
            return Err(Error::format(&scores_path, format!("expected N × C scores, found shape {shape:?}")));
        };
        let labels_path = dir.join("labels.npy");
        let (_, labels) = npy::read_i64(&labels_path)?;
        if labels.len() != n {
            return Err(Error::format(&labels_path, format!("{} labels for {n} score rows", labels.len())));
        }
        let labels = labels
            .into_iter()
            .map(|l| {
                if l < 0 || l as usize >= c {
                    Err(Error::format(&labels_path, format!("label {l} outside 0..{c}")))
                } else {
                    Ok(l as u32)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Propagation { num_classes: c, scores, labels })
    }
}
