//! The soft target of every training image during the semi-supervised run (`docs/method.md` §5.2 items 1, 7, 8):
//! the one-hot label for labelled images, the current pseudo-label for the others. Predictions made during an
//! epoch are only recorded; [`SoftLabels::swap`] puts them in at the end of the epoch, so every batch of an epoch
//! trains against the pseudo-labels the epoch started with. An unlabelled image the epoch did not visit keeps its
//! pseudo-label.
use std::path::Path;

use relab_core::artifact::{LabeledSet, Propagation, npy};
use relab_core::{Error, Result};

use crate::params::PropagatedTargets;

#[derive(Debug, Clone, PartialEq)]
pub struct SoftLabels {
    classes: usize,
    /// `N × C`, the targets of this epoch.
    current: Vec<f32>,
    /// `N × C`, predictions recorded this epoch.
    recorded: Vec<f32>,
    fresh: Vec<bool>,
    labeled: Vec<bool>,
}

impl SoftLabels {
    /// One-hot rows for the labelled images; the unlabelled rows are uniform until pseudo-labels are set.
    pub fn new(n: usize, classes: usize, labeled: &LabeledSet) -> Self {
        let mut current = vec![1.0 / classes as f32; n * classes];
        let mut is_labeled = vec![false; n];
        for (&i, &c) in labeled.indices.iter().zip(&labeled.labels) {
            one_hot(&mut current[i * classes..(i + 1) * classes], c);
            is_labeled[i] = true;
        }
        SoftLabels { classes, current, recorded: vec![0.0; n * classes], fresh: vec![false; n], labeled: is_labeled }
    }

    pub fn len(&self) -> usize {
        self.labeled.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labeled.is_empty()
    }

    pub fn classes(&self) -> usize {
        self.classes
    }

    pub fn row(&self, i: usize) -> &[f32] {
        &self.current[i * self.classes..(i + 1) * self.classes]
    }

    /// The `B × C` targets of a batch, row by row.
    pub fn targets(&self, indices: &[usize]) -> Vec<f32> {
        indices.iter().flat_map(|&i| self.row(i).iter().copied()).collect()
    }

    /// Sets the pseudo-labels of unlabelled images now (the initial ones); rows of labelled images are ignored.
    pub fn set_now(&mut self, indices: &[usize], rows: &[f32]) {
        let c = self.classes;
        assert_eq!(rows.len(), indices.len() * c, "one row of {c} per index");
        for (&i, row) in indices.iter().zip(rows.chunks_exact(c)) {
            if !self.labeled[i] {
                self.current[i * c..(i + 1) * c].copy_from_slice(row);
            }
        }
    }

    /// Sets the pseudo-label of each unlabelled image of `indices` to the one-hot row of its class in `classes_of`
    /// (indexed by image, as a propagation's labels); rows of labelled images are ignored.
    pub fn set_one_hot(&mut self, indices: &[usize], classes_of: &[u32]) {
        let c = self.classes;
        for &i in indices.iter().filter(|&&i| !self.labeled[i]) {
            one_hot(&mut self.current[i * c..(i + 1) * c], classes_of[i]);
        }
    }

    /// Sets the pseudo-label of each unlabelled image of `indices` from the propagation (indexed by image): the
    /// one-hot row of its class, or its scores as a soft target (see [`soft_target`]). Rows of labelled images are
    /// ignored.
    pub fn set_propagated(
        &mut self,
        indices: &[usize],
        propagation: &Propagation,
        targets: PropagatedTargets,
        power: f64,
    ) {
        match targets {
            PropagatedTargets::OneHot => self.set_one_hot(indices, &propagation.labels),
            PropagatedTargets::Soft => {
                let c = self.classes;
                for &i in indices.iter().filter(|&&i| !self.labeled[i]) {
                    soft_target(&mut self.current[i * c..(i + 1) * c], &propagation.scores[i * c..(i + 1) * c], power);
                }
            }
        }
    }

    /// Records predictions for the end of the epoch; rows of labelled images are ignored.
    pub fn record(&mut self, indices: &[usize], rows: &[f32]) {
        let c = self.classes;
        assert_eq!(rows.len(), indices.len() * c, "one row of {c} per index");
        for (&i, row) in indices.iter().zip(rows.chunks_exact(c)) {
            if !self.labeled[i] {
                self.recorded[i * c..(i + 1) * c].copy_from_slice(row);
                self.fresh[i] = true;
            }
        }
    }

    /// Replaces the pseudo-label of every unlabelled image predicted this epoch by its latest prediction; returns
    /// how many changed hands.
    pub fn swap(&mut self) -> usize {
        let c = self.classes;
        let mut swapped = 0;
        for i in 0..self.len() {
            if std::mem::take(&mut self.fresh[i]) {
                self.current[i * c..(i + 1) * c].copy_from_slice(&self.recorded[i * c..(i + 1) * c]);
                swapped += 1;
            }
        }
        swapped
    }

    /// The fraction of unlabelled images whose pseudo-label's arg-max is their true class.
    pub fn accuracy(&self, truth: &[u32]) -> f64 {
        let (mut right, mut total) = (0usize, 0usize);
        for (i, &t) in truth.iter().enumerate().filter(|(i, _)| !self.labeled[*i]) {
            total += 1;
            right += usize::from(argmax(self.row(i)) == t as usize);
        }
        if total == 0 { 0.0 } else { right as f64 / total as f64 }
    }

    /// Writes the current targets as an `N × C` f32 `.npy` file (the predictions recorded this epoch are
    /// [`SoftLabels::save_recorded`]'s).
    pub fn save(&self, path: &Path) -> Result<()> {
        npy::write_f32(path, &[self.len(), self.classes], &self.current)
    }

    /// Whether predictions wait for the end of the epoch (a checkpoint taken mid-epoch must keep them).
    pub fn has_recorded(&self) -> bool {
        self.fresh.iter().any(|&f| f)
    }

    /// Writes the predictions recorded this epoch as an `N × C` f32 `.npy` file, NaN rows for the images not
    /// predicted yet (a prediction is a distribution, never NaN).
    pub fn save_recorded(&self, path: &Path) -> Result<()> {
        let c = self.classes;
        let mut rows = self.recorded.clone();
        for (i, _) in self.fresh.iter().enumerate().filter(|(_, f)| !**f) {
            rows[i * c..(i + 1) * c].fill(f32::NAN);
        }
        npy::write_f32(path, &[self.len(), c], &rows)
    }

    /// Takes back what [`SoftLabels::save_recorded`] wrote.
    pub fn load_recorded(mut self, path: &Path) -> Result<Self> {
        let (shape, values) = npy::read_f32(path)?;
        if shape != [self.len(), self.classes] {
            return Err(Error::format(
                path,
                format!("expected {} × {} recorded predictions, found shape {shape:?}", self.len(), self.classes),
            ));
        }
        let c = self.classes;
        for (i, row) in values.chunks_exact(c).enumerate() {
            self.fresh[i] = !row[0].is_nan();
            let kept = if self.fresh[i] { row.to_vec() } else { vec![0.0; c] };
            self.recorded[i * c..(i + 1) * c].copy_from_slice(&kept);
        }
        Ok(self)
    }

    /// Reads the targets [`SoftLabels::save`] wrote into a store built for the same images and labelled set.
    pub fn load(mut self, path: &Path) -> Result<Self> {
        let (shape, values) = npy::read_f32(path)?;
        if shape != [self.len(), self.classes] {
            return Err(Error::format(
                path,
                format!("expected {} × {} soft labels, found shape {shape:?}", self.len(), self.classes),
            ));
        }
        self.current = values;
        Ok(self)
    }
}

fn argmax(row: &[f32]) -> usize {
    row.iter().enumerate().fold((0, f32::NEG_INFINITY), |best, (k, &v)| if v > best.1 { (k, v) } else { best }).0
}

/// Makes `row` the propagated `scores` as a distribution: each non-negative score raised to `power`, divided by
/// their sum. Negative scores (the graph's solution can dip below zero far from a class's seeds) count as zero; a
/// row the propagation did not reach becomes uniform, since it says nothing of the image's class.
fn soft_target(row: &mut [f32], scores: &[f32], power: f64) {
    let weights: Vec<f64> = scores.iter().map(|&s| if s > 0.0 { (s as f64).powf(power) } else { 0.0 }).collect();
    let total: f64 = weights.iter().sum();
    if total > 0.0 {
        for (out, w) in row.iter_mut().zip(weights) {
            *out = (w / total) as f32;
        }
    } else {
        row.fill(1.0 / row.len() as f32);
    }
}

/// Makes `row` the one-hot row of `class`.
fn one_hot(row: &mut [f32], class: u32) {
    row.fill(0.0);
    row[class as usize] = 1.0;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> SoftLabels {
        // Images 0..4, three classes; image 1 is labelled class 2.
        SoftLabels::new(4, 3, &LabeledSet::new(vec![1], vec![2]))
    }

    #[test]
    fn labelled_rows_are_one_hot_and_never_replaced() {
        let mut s = store();
        assert_eq!(s.row(1), &[0.0, 0.0, 1.0]);
        assert_eq!(s.row(0), &[1.0 / 3.0; 3]);
        s.set_now(&[0, 1], &[0.5, 0.5, 0.0, 1.0, 0.0, 0.0]);
        s.record(&[1], &[1.0, 0.0, 0.0]);
        assert_eq!(s.swap(), 0);
        assert_eq!(s.targets(&[1, 0]), vec![0.0, 0.0, 1.0, 0.5, 0.5, 0.0]);
    }

    #[test]
    fn predictions_wait_for_the_end_of_the_epoch() {
        let mut s = store();
        s.set_now(&[0, 2, 3], &[0.6, 0.3, 0.1, 0.2, 0.2, 0.6, 0.1, 0.8, 0.1]);
        let before = s.clone();
        s.record(&[2, 0], &[0.9, 0.05, 0.05, 0.0, 0.0, 1.0]);
        // Recorded twice in one epoch: the later prediction wins.
        s.record(&[0], &[0.1, 0.1, 0.8]);
        assert_eq!(s.targets(&[0, 2, 3]), before.targets(&[0, 2, 3]), "no change during the epoch");
        assert_eq!(s.swap(), 2);
        assert_eq!(s.row(0), &[0.1, 0.1, 0.8]);
        assert_eq!(s.row(2), &[0.9, 0.05, 0.05]);
        assert_eq!(s.row(3), &[0.1, 0.8, 0.1], "an image the epoch did not visit keeps its pseudo-label");
        assert_eq!(s.swap(), 0, "a swap consumes the recorded predictions");
        // Truth 0, 2, 0, 1 for images 0..4 (image 1 is labelled and not counted): image 0 is wrong (class 2),
        // 2 right (class 0), 3 right (class 1).
        assert!((s.accuracy(&[0, 2, 0, 1]) - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn propagated_labels_become_one_hot_pseudo_labels_of_unlabelled_images_only() {
        let mut s = store();
        // Propagated classes of images 0..4; image 1's propagated class (0) differs from its label (2).
        s.set_one_hot(&[0, 1, 3], &[1, 0, 2, 2]);
        assert_eq!(s.row(0), &[0.0, 1.0, 0.0]);
        assert_eq!(s.row(1), &[0.0, 0.0, 1.0], "a labelled image keeps its label");
        assert_eq!(s.row(2), &[1.0 / 3.0; 3], "an image not named is untouched");
        assert_eq!(s.row(3), &[0.0, 0.0, 1.0]);
        assert!((s.accuracy(&[1, 2, 1, 1]) - 1.0 / 3.0).abs() < 1e-12, "only image 0 of 0, 2, 3 is right");
    }

    #[test]
    fn propagated_scores_become_soft_targets_of_unlabelled_images_only() {
        let mut s = store();
        // Unit-L2 scores of images 0..4 over three classes: image 0 torn between classes 0 and 1, image 1 labelled,
        // image 2 with a negative score, image 3 not reached by the propagation.
        let scores = vec![0.6, 0.8, 0.0, 1.0, 0.0, 0.0, -0.1, 0.0, 1.0, 0.0, 0.0, 0.0];
        let propagation = Propagation::from_scores(3, scores);
        s.set_propagated(&[0, 1, 2, 3], &propagation, PropagatedTargets::Soft, 1.0);
        let close = |a: &[f32], b: &[f64]| a.iter().zip(b).all(|(&x, &y)| (x as f64 - y).abs() < 1e-6);
        assert!(close(s.row(0), &[0.6 / 1.4, 0.8 / 1.4, 0.0]), "{:?}", s.row(0));
        assert_eq!(s.row(1), &[0.0, 0.0, 1.0], "a labelled image keeps its label");
        assert_eq!(s.row(2), &[0.0, 0.0, 1.0], "a negative score counts as zero");
        assert_eq!(s.row(3), &[1.0 / 3.0; 3], "an unreached image gets no preference");
        // Squared unit-L2 scores sum to one already: power 2 gives them as they are.
        s.set_propagated(&[0], &propagation, PropagatedTargets::Soft, 2.0);
        assert!(close(s.row(0), &[0.36, 0.64, 0.0]), "{:?}", s.row(0));
        s.set_propagated(&[0, 3], &propagation, PropagatedTargets::OneHot, 2.0);
        assert_eq!(s.targets(&[0, 3]), vec![0.0, 1.0, 0.0, 1.0, 0.0, 0.0], "one-hot takes the argmax, power unused");
    }

    #[test]
    fn saves_and_loads_the_targets() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store();
        s.set_now(&[3], &[0.25, 0.25, 0.5]);
        s.save(&dir.path().join("labels.npy")).unwrap();
        let back = store().load(&dir.path().join("labels.npy")).unwrap();
        assert_eq!(back, s);
        let other = SoftLabels::new(5, 3, &LabeledSet::default());
        let err = other.load(&dir.path().join("labels.npy")).unwrap_err().to_string();
        assert!(err.contains("expected 5 × 3 soft labels, found shape [4, 3]"), "{err}");
    }

    #[test]
    fn predictions_recorded_mid_epoch_survive_a_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store();
        s.record(&[2], &[0.1, 0.2, 0.7]);
        assert!(s.has_recorded());
        s.save_recorded(&dir.path().join("recorded.npy")).unwrap();
        let mut back = store().load_recorded(&dir.path().join("recorded.npy")).unwrap();
        assert_eq!(back, s);
        assert_eq!((back.swap(), back.row(2)), (1, &[0.1, 0.2, 0.7][..]));
        assert_eq!(back.row(3), store().row(3), "an image not predicted keeps its pseudo-label");
    }
}
