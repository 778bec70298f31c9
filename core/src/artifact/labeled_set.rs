use std::path::Path;

use crate::formats::npy;
use crate::{Error, Result};

/// Training-set indices with a label each: the seeds, or the extended set a selector keeps.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabeledSet {
    pub indices: Vec<usize>,
    pub labels: Vec<u32>,
}

impl LabeledSet {
    pub fn new(indices: Vec<usize>, labels: Vec<u32>) -> Self {
        assert_eq!(indices.len(), labels.len(), "one label per index");
        LabeledSet { indices, labels }
    }

    pub fn len(&self) -> usize {
        self.indices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// The fraction of labels that agree with `truth` (indexed by training index).
    pub fn precision(&self, truth: &[u32]) -> f64 {
        if self.is_empty() {
            return 0.0;
        }
        let correct = self.indices.iter().zip(&self.labels).filter(|&(&i, &l)| truth[i] == l).count();
        correct as f64 / self.len() as f64
    }

    /// Per class (by assigned label): the precision, and how many samples carry that label.
    pub fn precision_per_class(&self, truth: &[u32], num_classes: usize) -> Vec<(f64, usize)> {
        let mut counts = vec![(0usize, 0usize); num_classes];
        for (&i, &l) in self.indices.iter().zip(&self.labels) {
            let c = &mut counts[l as usize];
            c.1 += 1;
            if truth[i] == l {
                c.0 += 1;
            }
        }
        counts.into_iter().map(|(ok, n)| (if n == 0 { 0.0 } else { ok as f64 / n as f64 }, n)).collect()
    }

    /// Writes `indices` to `indices_path` and `labels` to `labels_path`, both `i64` vectors.
    pub fn save(&self, indices_path: &Path, labels_path: &Path) -> Result<()> {
        let idx: Vec<i64> = self.indices.iter().map(|&i| i as i64).collect();
        npy::write_i64(indices_path, &[idx.len()], &idx)?;
        let lab: Vec<i64> = self.labels.iter().map(|&l| l as i64).collect();
        npy::write_i64(labels_path, &[lab.len()], &lab)
    }

    /// Reads indices (and labels, when a labels file is given) and checks them against the training set size and
    /// the number of classes. Without a labels file, labels come from `fallback_labels` (e.g. ground truth for seeds).
    pub fn load(
        indices_path: &Path,
        labels_path: Option<&Path>,
        train_len: usize,
        num_classes: usize,
        fallback_labels: Option<&[u32]>,
    ) -> Result<Self> {
        let indices = read_indices(indices_path, train_len)?;
        let labels = match labels_path {
            Some(p) => {
                let (_, raw) = npy::read_i64(p)?;
                if raw.len() != indices.len() {
                    return Err(Error::format(
                        p,
                        format!("{} labels for {} indices in {}", raw.len(), indices.len(), indices_path.display()),
                    ));
                }
                raw.iter()
                    .map(|&l| {
                        if l < 0 || l as usize >= num_classes {
                            Err(Error::format(p, format!("label {l} outside 0..{num_classes}")))
                        } else {
                            Ok(l as u32)
                        }
                    })
                    .collect::<Result<Vec<_>>>()?
            }
            None => match fallback_labels {
                Some(truth) => indices.iter().map(|&i| truth[i]).collect(),
                None => {
                    return Err(Error::format(
                        indices_path,
                        "no labels file given and the dataset has no ground truth to label these indices",
                    ));
                }
            },
        };
        Ok(LabeledSet { indices, labels })
    }
}

/// Reads a 1-D integer index vector and checks every index lies in `0..len`.
pub(crate) fn read_indices(path: &Path, len: usize) -> Result<Vec<usize>> {
    let (shape, raw) = npy::read_i64(path)?;
    if shape.len() != 1 {
        return Err(Error::format(path, format!("expected a 1-D index vector, found shape {shape:?}")));
    }
    raw.iter()
        .map(|&i| {
            if i < 0 || i as usize >= len {
                Err(Error::format(path, format!("index {i} outside the training set (0..{len})")))
            } else {
                Ok(i as usize)
            }
        })
        .collect()
}
