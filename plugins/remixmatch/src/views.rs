//! The images of one step (`docs/method.md` §6.3, the original's `AugmentPoolCTA`): the labelled images, weakly
//! augmented then through a sampled CTAugment policy; a probe copy of the same weak images through a uniformly
//! random policy, whose policies are kept for the rates' update; and each unlabelled image in one weak view and
//! `K` strong ones (weak, then a sampled policy), each view with its own weak augmentation.
//!
//! Each image's generator is seeded from (step seed, stream, position, index) alone, so the views are the same
//! for any number of threads; the labelled view and its probe share their weak augmentation's stream.
use relab_core::Result;
use relab_core::data::augment::{CtAugment, Image, Pipeline, Policy};
use relab_core::data::loader::sample_rng;
use relab_core::data::{Batch, ImageSet, image_batch};

/// The streams of one step's generators.
const WEAK_LABELED: u64 = 0;
const POLICY_LABELED: u64 = 1;
const PROBE_POLICY: u64 = 2;
const PROBE_APPLY: u64 = 3;
const WEAK_UNLABELED: u64 = 4;
const POLICY_UNLABELED: u64 = 5;

/// One step's views, normalised.
pub struct StepViews {
    /// `B` labelled images, weak + sampled policy.
    pub labeled: Batch,
    /// The same `B` weak images through uniform probe policies.
    pub probe: Batch,
    /// The policy of each probe image, in batch order.
    pub probe_policies: Vec<Policy>,
    /// `(K+1)·B` images, view-major: view 0 (weak) of every image, then view 1 (strong) of every image, ...
    pub unlabeled: Batch,
}

/// Where the images come from and how they are augmented.
pub struct ViewSource<'a> {
    pub set: &'a ImageSet,
    pub mean: &'a [f32],
    pub std: &'a [f32],
    pub weak: &'a Pipeline,
    pub cta: &'a CtAugment,
}

impl ViewSource<'_> {
    /// The views of `labeled` and `unlabeled` (training indices) with `strong` strong views, from `seed`.
    pub fn build(&self, labeled: &[usize], unlabeled: &[usize], strong: usize, seed: u64) -> Result<StepViews> {
        let (set, mean, std, weak, cta) = (self.set, self.mean, self.std, self.weak, self.cta);
        let weak_labeled = |pos: usize, index: usize, img: Image| weak.apply(img, &mut sample_rng(seed, WEAK_LABELED, pos, index));
        let labeled_batch = image_batch(set, labeled, mean, std, |pos, index, img| {
            let mut rng = sample_rng(seed, POLICY_LABELED, pos, index);
            cta.sample(&mut rng).apply(weak_labeled(pos, index, img), &mut rng)
        })?;
        let probe_policies: Vec<Policy> = labeled
            .iter()
            .enumerate()
            .map(|(pos, &index)| cta.probe(&mut sample_rng(seed, PROBE_POLICY, pos, index)))
            .collect();
        let probe = image_batch(set, labeled, mean, std, |pos, index, img| {
            probe_policies[pos].apply(weak_labeled(pos, index, img), &mut sample_rng(seed, PROBE_APPLY, pos, index))
        })?;
        let b = unlabeled.len();
        let views: Vec<usize> = (0..=strong).flat_map(|_| unlabeled.iter().copied()).collect();
        let unlabeled = image_batch(set, &views, mean, std, |pos, index, img| {
            let img = weak.apply(img, &mut sample_rng(seed, WEAK_UNLABELED, pos, index));
            if pos < b {
                return img;
            }
            let mut rng = sample_rng(seed, POLICY_UNLABELED, pos, index);
            cta.sample(&mut rng).apply(img, &mut rng)
        })?;
        Ok(StepViews { labeled: labeled_batch, probe, probe_policies, unlabeled })
    }
}
