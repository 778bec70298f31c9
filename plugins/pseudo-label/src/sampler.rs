//! The semi-supervised run's batches (`docs/method.md` §5.2, the original's `TwoStreamBatchSampler`): an epoch is
//! one pass over the unlabelled images in random order, cut into groups of `batch_size − labeled_per_batch` (a
//! short last group is dropped); each group is joined by `labeled_per_batch` labelled images drawn from an endless
//! stream of the labelled set, reshuffled after every full pass and started afresh each epoch.
use rand::Rng;
use rand::seq::SliceRandom;

/// How one semi-supervised batch is made up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TwoStream {
    pub batch_size: usize,
    pub labeled_per_batch: usize,
}

impl TwoStream {
    pub fn unlabeled_per_batch(&self) -> usize {
        self.batch_size - self.labeled_per_batch
    }

    /// Optimiser steps of an epoch that visits `unlabeled` unlabelled images.
    pub fn steps(&self, unlabeled: usize) -> usize {
        unlabeled / self.unlabeled_per_batch()
    }

    /// The training indices of one epoch, `steps × batch_size` of them: batch `k` is
    /// `order[k·batch_size..(k+1)·batch_size]`, its unlabelled images first, then its labelled ones. With `sample`,
    /// the epoch visits a random subset of that many unlabelled images instead of all of them.
    pub fn epoch_order(
        &self,
        rng: &mut impl Rng,
        labeled: &[usize],
        unlabeled: &[usize],
        sample: Option<usize>,
    ) -> Vec<usize> {
        assert!(
            self.labeled_per_batch >= 1 && self.labeled_per_batch < self.batch_size,
            "a two-stream batch holds both kinds"
        );
        assert!(!labeled.is_empty(), "the labelled stream needs at least one image");
        let mut primary = unlabeled.to_vec();
        primary.shuffle(rng);
        primary.truncate(sample.unwrap_or(usize::MAX));
        let steps = self.steps(primary.len());
        let mut secondary = Vec::with_capacity(steps * self.labeled_per_batch + labeled.len());
        while secondary.len() < steps * self.labeled_per_batch {
            let mut pass = labeled.to_vec();
            pass.shuffle(rng);
            secondary.extend(pass);
        }
        let u = self.unlabeled_per_batch();
        let l = self.labeled_per_batch;
        (0..steps)
            .flat_map(|k| primary[k * u..(k + 1) * u].iter().chain(&secondary[k * l..(k + 1) * l]).copied())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    const TWO_STREAM: TwoStream = TwoStream { batch_size: 10, labeled_per_batch: 3 };

    #[test]
    fn batches_hold_seven_unlabelled_then_three_labelled() {
        let labeled: Vec<usize> = (100..105).collect();
        let unlabeled: Vec<usize> = (0..53).collect();
        let order = TWO_STREAM.epoch_order(&mut ChaCha8Rng::seed_from_u64(1), &labeled, &unlabeled, None);
        // ⌊53 / 7⌋ = 7 batches; the 4 unlabelled images left over wait for a later epoch.
        assert_eq!(order.len(), 7 * 10);
        for batch in order.chunks(10) {
            assert!(batch[..7].iter().all(|i| *i < 53), "{batch:?}");
            assert!(batch[7..].iter().all(|i| labeled.contains(i)), "{batch:?}");
        }
        let seen: Vec<usize> = order.chunks(10).flat_map(|b| b[..7].to_vec()).collect();
        assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), 49, "each unlabelled image at most once an epoch");
    }

    #[test]
    fn the_labelled_stream_cycles_through_reshuffled_full_passes() {
        let labeled: Vec<usize> = (100..105).collect();
        let unlabeled: Vec<usize> = (0..70).collect();
        let order = TWO_STREAM.epoch_order(&mut ChaCha8Rng::seed_from_u64(2), &labeled, &unlabeled, None);
        let stream: Vec<usize> = order.chunks(10).flat_map(|b| b[7..].to_vec()).collect();
        // 10 batches × 3 = 30 labelled slots: six full passes over the five labelled images.
        assert_eq!(stream.len(), 30);
        let passes: Vec<&[usize]> = stream.chunks(5).collect();
        for pass in &passes {
            assert_eq!(pass.iter().copied().collect::<BTreeSet<_>>(), labeled.iter().copied().collect());
        }
        assert!(passes.windows(2).any(|w| w[0] != w[1]), "each pass is reshuffled: {passes:?}");
    }

    #[test]
    fn a_sample_limits_the_epoch_and_differs_between_epochs() {
        let labeled = vec![500];
        let unlabeled: Vec<usize> = (0..400).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let first = TWO_STREAM.epoch_order(&mut rng, &labeled, &unlabeled, Some(30));
        let second = TWO_STREAM.epoch_order(&mut rng, &labeled, &unlabeled, Some(30));
        // 30 sampled images make ⌊30/7⌋ = 4 batches.
        assert_eq!((first.len(), second.len()), (40, 40));
        assert_ne!(first, second);
        assert_eq!(TWO_STREAM.epoch_order(&mut rng, &labeled, &unlabeled, Some(10_000)).len(), 57 * 10);
        // Too few unlabelled images for one batch: an empty epoch, which the trainer refuses up front.
        assert!(TWO_STREAM.epoch_order(&mut rng, &labeled, &unlabeled[..6], None).is_empty());
        // Seeded: the same generator state gives the same epoch.
        let again = |seed| TWO_STREAM.epoch_order(&mut ChaCha8Rng::seed_from_u64(seed), &labeled, &unlabeled, None);
        assert_eq!(again(9), again(9));
    }
}
