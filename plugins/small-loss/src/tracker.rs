//! The per-sample losses of the tracked epochs: the last `track_epochs` of `epochs` (1-based: epochs
//! `epochs − track_epochs + 1 ..= epochs`; the original's 30..59 counted from 0). Each tracked epoch adds one row
//! of losses, one per pool sample; the score of a sample is the mean of its column.
//!
//! The rows are kept as they were computed (f32) rather than as a running sum, so a checkpoint stores them
//! exactly (`.npy`) and a resumed run averages the very same numbers.

use std::path::Path;

use relab_core::artifact::npy;
use relab_core::{Error, Result};

const FILE: &str = "tracked_losses.npy";

/// Which epochs are tracked and the losses recorded so far.
#[derive(Debug, Clone, PartialEq)]
pub struct LossTracker {
    epochs: usize,
    track_epochs: usize,
    samples: usize,
    /// `rows × samples`, row-major, one row per tracked epoch finished.
    losses: Vec<f32>,
}

impl LossTracker {
    /// Tracks the last `track_epochs` of `epochs` (`1 ≤ track_epochs ≤ epochs`, checked by the parameters) over
    /// `samples` samples.
    pub fn new(epochs: usize, track_epochs: usize, samples: usize) -> Self {
        assert!((1..=epochs).contains(&track_epochs), "track {track_epochs} of {epochs} epochs");
        LossTracker { epochs, track_epochs, samples, losses: Vec::new() }
    }

    /// The first tracked epoch, 1-based.
    pub fn first_tracked(&self) -> usize {
        self.epochs - self.track_epochs + 1
    }

    /// Whether the losses after training epoch `epoch` (1-based) count.
    pub fn tracks(&self, epoch: usize) -> bool {
        (self.first_tracked()..=self.epochs).contains(&epoch)
    }

    /// Tracked epochs recorded so far.
    pub fn rows(&self) -> usize {
        self.losses.len() / self.samples.max(1)
    }

    /// How many rows a tracker holds once training epoch `epoch` (1-based; 0 before any) is finished.
    pub fn rows_after(&self, epoch: usize) -> usize {
        (epoch + 1).saturating_sub(self.first_tracked()).min(self.track_epochs)
    }

    /// Adds the losses measured after training epoch `epoch`, which must be the next tracked one.
    pub fn record(&mut self, epoch: usize, losses: &[f32]) {
        assert_eq!(losses.len(), self.samples, "one loss per pool sample");
        assert_eq!(epoch, self.first_tracked() + self.rows(), "tracked epochs are recorded in order, once each");
        self.losses.extend_from_slice(losses);
    }

    /// Each sample's loss averaged over the recorded epochs; `None` until every tracked epoch is recorded.
    pub fn mean(&self) -> Option<Vec<f64>> {
        if self.rows() != self.track_epochs {
            return None;
        }
        let mut sums = vec![0.0f64; self.samples];
        for row in self.losses.chunks_exact(self.samples) {
            for (s, &l) in sums.iter_mut().zip(row) {
                *s += l as f64;
            }
        }
        Some(sums.into_iter().map(|s| s / self.track_epochs as f64).collect())
    }

    /// Writes the rows recorded so far to `dir/tracked_losses.npy` (`rows × samples` f32).
    pub fn save(&self, dir: &Path) -> Result<()> {
        npy::write_f32(&dir.join(FILE), &[self.rows(), self.samples], &self.losses)
    }

    /// Restores what [`LossTracker::save`] wrote into a tracker built with the same settings, checking that the
    /// file has one column per sample and at most one row per tracked epoch.
    pub fn load(mut self, dir: &Path) -> Result<Self> {
        let path = dir.join(FILE);
        let (shape, losses) = npy::read_f32(&path)?;
        match shape[..] {
            [rows, samples] if samples == self.samples && rows <= self.track_epochs => {
                self.losses = losses;
                Ok(self)
            }
            _ => Err(Error::format(
                &path,
                format!(
                    "expected at most {} tracked epochs × {} samples, found shape {shape:?}",
                    self.track_epochs, self.samples
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_is_the_last_track_epochs_one_based() {
        // The original: 60 epochs, losses after epochs 30..59 counted from 0, i.e. 31..=60 counted from 1.
        let t = LossTracker::new(60, 30, 1);
        assert_eq!(t.first_tracked(), 31);
        assert!(!t.tracks(30) && t.tracks(31) && t.tracks(60) && !t.tracks(61));
        let all = LossTracker::new(3, 3, 1);
        assert!(!all.tracks(0) && all.tracks(1) && all.tracks(3));
        let last = LossTracker::new(3, 1, 1);
        assert_eq!((1..=3).filter(|&e| last.tracks(e)).collect::<Vec<_>>(), vec![3]);
        let rows: Vec<usize> = (0..=6).map(|e| LossTracker::new(5, 2, 1).rows_after(e)).collect();
        assert_eq!(rows, vec![0, 0, 0, 0, 1, 2, 2]);
        assert_eq!(all.rows_after(0), 0);
        assert_eq!(all.rows_after(2), 2);
    }

    #[test]
    fn the_score_is_the_mean_over_the_tracked_epochs() {
        let mut t = LossTracker::new(5, 3, 2);
        t.record(3, &[1.0, 0.5]);
        t.record(4, &[2.0, 0.25]);
        assert_eq!(t.mean(), None, "not every tracked epoch is in yet");
        t.record(5, &[4.5, 0.75]);
        assert_eq!(t.mean(), Some(vec![7.5 / 3.0, 0.5]));
    }

    #[test]
    #[should_panic(expected = "recorded in order")]
    fn an_untracked_epoch_cannot_be_recorded() {
        LossTracker::new(5, 3, 1).record(2, &[1.0]);
    }

    #[test]
    fn saved_rows_load_back_exactly_and_a_foreign_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = LossTracker::new(4, 2, 3);
        t.record(3, &[0.1, 1.0 / 3.0, 7.25]);
        t.save(dir.path()).unwrap();
        let back = LossTracker::new(4, 2, 3).load(dir.path()).unwrap();
        assert_eq!(back, t);
        let err = LossTracker::new(4, 2, 5).load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("tracked_losses.npy") && err.contains("2 tracked epochs × 5 samples"), "{err}");
    }
}
