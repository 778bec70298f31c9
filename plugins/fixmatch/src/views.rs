//! The views a step builds itself (method §6b.1 item 3): the strong view of each unlabelled image is a fresh,
//! independent weak view (flip, shift) followed by the strong augmentation and Cutout. The loader makes the weak
//! views of the whole batch; these are made inside the step, because the strong augmentation's policy may change
//! from one step to the next (CTAugment's rates).
//!
//! Every image's generator is seeded from (experiment seed, stream and step, position, index) alone, so the views
//! are the same on resume and for any thread count, and never share a stream with the loader's weak views
//! (whose second number is a small epoch number; a stream sets the top bits).
use relab_core::Result;
use relab_core::data::augment::{CtAugment, Cutout, Image, Pipeline, Policy, RandAugment};
use relab_core::data::{Batch, Dataset, image_batch, sample_rng};

/// The top bits of the second seed number of the strong views' generators.
pub const STRONG_STREAM: u64 = 1 << 63;
/// The same for CTAugment's probe views, and for the draws of their policies.
pub const PROBE_STREAM: u64 = 1 << 62;
pub const PROBE_POLICY_STREAM: u64 = 3 << 62;

/// What turns a fresh weak view into a strong one, image by image.
pub trait StrongAugment: Sync {
    fn apply(&self, img: Image, rng: &mut dyn rand::RngCore) -> Image;
}

/// Weak views made by a step, and the strong ones on top of them.
pub struct StepViews {
    pub weak: Pipeline,
    pub cutout: Option<Cutout>,
}

impl StepViews {
    /// `weak` then, for strong views, the strong augmentation and a Cutout square of side `cutout` (0: none)
    /// filled with `fill`.
    pub fn new(weak: Pipeline, cutout: usize, fill: f32) -> Self {
        let cutout = (cutout > 0).then_some(Cutout { size: cutout, p: 1.0, value: fill });
        StepViews { weak, cutout }
    }

    /// The strong views of `indices` for optimiser step `step`: fresh weak view, `strong`, Cutout.
    pub fn strong(
        &self,
        data: &Dataset,
        indices: &[usize],
        seed: u64,
        step: u64,
        strong: &dyn StrongAugment,
    ) -> Result<Batch> {
        image_batch(&data.train, indices, &data.mean, &data.std, |position, index, img| {
            let mut rng = sample_rng(seed, STRONG_STREAM | step, position, index);
            let img = strong.apply(self.weak.apply(img, &mut rng), &mut rng);
            match &self.cutout {
                Some(c) => c.apply(img, &mut rng),
                None => img,
            }
        })
    }

    /// CTAugment's probes of `indices` (labelled images) for step `step`: a uniform probe policy each (returned,
    /// for the rate update) applied to a fresh weak view, without Cutout.
    pub fn probes(
        &self,
        data: &Dataset,
        indices: &[usize],
        seed: u64,
        step: u64,
        cta: &CtAugment,
    ) -> Result<(Batch, Vec<Policy>)> {
        let policies: Vec<Policy> = indices
            .iter()
            .enumerate()
            .map(|(position, &index)| cta.probe(&mut sample_rng(seed, PROBE_POLICY_STREAM | step, position, index)))
            .collect();
        let batch = image_batch(&data.train, indices, &data.mean, &data.std, |position, index, img| {
            let mut rng = sample_rng(seed, PROBE_STREAM | step, position, index);
            let weak = self.weak.apply(img, &mut rng);
            policies[position].apply(weak, &mut rng)
        })?;
        Ok((batch, policies))
    }
}

/// CTAugment's training policy, drawn afresh for each image from the current rates.
impl StrongAugment for CtAugment {
    fn apply(&self, img: Image, rng: &mut dyn rand::RngCore) -> Image {
        self.sample(rng).apply(img, rng)
    }
}

/// FixMatch-RA.
impl StrongAugment for RandAugment {
    fn apply(&self, img: Image, rng: &mut dyn rand::RngCore) -> Image {
        RandAugment::apply(self, img, rng)
    }
}

/// No strong augmentation: the strong view is a second weak view with Cutout (an ablation).
pub struct WeakOnly;

impl StrongAugment for WeakOnly {
    fn apply(&self, img: Image, _rng: &mut dyn rand::RngCore) -> Image {
        img
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use relab_core::data::augment::CtAugmentConfig;
    use relab_core::testing::{TinySpec, tiny_dataset};

    #[test]
    fn probes_are_their_policies_on_the_weak_view_and_strong_views_end_with_cutout() {
        let data = tiny_dataset(&TinySpec::default());
        let set = &data.train;
        let cta = CtAugment::new(CtAugmentConfig::default());
        // No weak augmentation, so a probe is its policy applied to the image itself.
        let views = StepViews::new(Pipeline::default(), 0, 0.5);
        let (batch, policies) = views.probes(&data, &[4, 9], 7, 3, &cta).unwrap();
        assert_eq!((batch.shape, policies.len()), ([2, 1, 8, 8], 2));
        for (position, (&index, policy)) in [4usize, 9].iter().zip(&policies).enumerate() {
            assert_eq!(policy.0.len(), 2, "depth 2");
            let img = Image::from_u8(1, 8, 8, set.image(index));
            let mut want = policy.apply(img, &mut sample_rng(7, PROBE_STREAM | 3, position, index));
            want.normalise(&data.mean, &data.std);
            assert_eq!(batch.images[position * 64..(position + 1) * 64], want.data[..]);
        }
        // The same step gives the same probes; another step others.
        assert_eq!(views.probes(&data, &[4, 9], 7, 3, &cta).unwrap().1, policies);
        assert_ne!(views.probes(&data, &[4, 9], 7, 4, &cta).unwrap().1, policies);
        // A Cutout as large as the image leaves only its fill, (0.5 − mean) / std.
        let views = StepViews::new(Pipeline::default(), 16, 0.5);
        let strong = views.strong(&data, &[1, 2, 3], 7, 0, &cta).unwrap();
        let fill = (0.5 - data.mean[0]) / data.std[0];
        assert!(strong.images.iter().all(|&v| (v - fill).abs() < 1e-6));
    }
}
