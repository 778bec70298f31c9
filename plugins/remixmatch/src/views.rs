//! The images of one step (`docs/method.md` §6.3, the original's `AugmentPoolCTA`): the labelled images, weakly
//! augmented then through a sampled CTAugment policy; a probe copy of the same weak images through a uniformly
//! random policy, whose policies are kept for the rates' update; and each unlabelled image in one weak view and
//! `K` strong ones (weak, then a sampled policy), each view with its own weak augmentation.
//!
//! Each image's generator is seeded from (step seed, stream, position, index) alone, so the views are the same
//! for any number of threads; the labelled view and its probe share their weak augmentation's stream.
use relab_core::Result;
use relab_core::data::augment::{CtAugment, Image, Pipeline, Policy};
use relab_core::data::{Batch, ImageSet, image_batch, sample_rng};

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
        let weak_labeled =
            |pos: usize, index: usize, img: Image| weak.apply(img, &mut sample_rng(seed, WEAK_LABELED, pos, index));
        let labeled_batch = image_batch(set, labeled, mean, std, |pos, index, img| {
            let mut rng = sample_rng(seed, POLICY_LABELED, pos, index);
            cta.sample_segments(&mut rng).apply(weak_labeled(pos, index, img), &mut rng)
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
            cta.sample_segments(&mut rng).apply(img, &mut rng)
        })?;
        Ok(StepViews { labeled: labeled_batch, probe, probe_policies, unlabeled })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use relab_core::data::augment::CtAugmentConfig;
    use relab_core::testing::{TinySpec, tiny_dataset};

    fn views(weak: &Pipeline, seed: u64) -> StepViews {
        let data = tiny_dataset(&TinySpec::default());
        let cta = CtAugment::new(CtAugmentConfig { depth: 2, threshold: 0.8, decay: 0.99 });
        let source = ViewSource { set: &data.train, mean: &data.mean, std: &data.std, weak, cta: &cta };
        source.build(&[0, 4, 8, 1], &[2, 3, 5, 6, 7], 3, seed).unwrap()
    }

    #[test]
    fn one_weak_and_k_strong_views_of_each_unlabelled_image_view_major() {
        let plain = Pipeline::new(vec![]);
        let v = views(&plain, 7);
        assert_eq!(v.labeled.shape, [4, 1, 8, 8]);
        assert_eq!((v.probe.shape, v.probe_policies.len()), ([4, 1, 8, 8], 4));
        assert_eq!(v.unlabeled.shape, [20, 1, 8, 8]);
        assert_eq!(v.unlabeled.indices, [2, 3, 5, 6, 7].repeat(4));
        // Without a weak augmentation, view 0 is the image itself, normalised; the strong views are not.
        let data = tiny_dataset(&TinySpec::default());
        let plain_view =
            |i: usize| -> Vec<f32> { data.train.image(i).iter().map(|&p| (p as f32 / 255.0 - 0.3) / 0.3).collect() };
        let image = |b: &Batch, k: usize| b.images[k * 64..(k + 1) * 64].to_vec();
        for (k, &i) in [2, 3, 5, 6, 7].iter().enumerate() {
            assert!(image(&v.unlabeled, k).iter().zip(plain_view(i)).all(|(a, b)| (a - b).abs() < 1e-6));
        }
        let changed = (5..20).filter(|&k| image(&v.unlabeled, k) != plain_view(v.unlabeled.indices[k])).count();
        assert!(changed > 10, "most strong views change their image: {changed} of 15");
    }

    #[test]
    fn the_same_seed_gives_the_same_views() {
        let weak = Pipeline::new(vec![
            relab_core::data::augment::Augment::Flip(Default::default()),
            relab_core::data::augment::Augment::Crop(relab_core::data::augment::RandomCrop {
                size: None,
                padding: 1,
                mode: relab_core::data::augment::PadMode::Reflect,
            }),
        ]);
        let (a, b, c) = (views(&weak, 3), views(&weak, 3), views(&weak, 4));
        assert_eq!((&a.labeled, &a.probe, &a.unlabeled), (&b.labeled, &b.probe, &b.unlabeled));
        assert_ne!(a.unlabeled.images, c.unlabeled.images);
    }
}
