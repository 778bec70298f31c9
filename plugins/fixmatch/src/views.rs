//! The views a step builds itself (method §6b.1 item 3): the strong view of each unlabelled image is a fresh,
//! independent weak view (flip, shift) followed by the strong augmentation and Cutout. The loader makes the weak
//! views of the whole batch; these are made inside the step, because the strong augmentation's policy may change
//! from one step to the next (CTAugment's rates).
//!
//! Every image's generator is seeded from (experiment seed, stream and step, position, index) alone, so the views
//! are the same on resume and for any thread count, and never share a stream with the loader's weak views
//! (whose second number is a small epoch number; a stream sets the top bits).
use relab_core::Result;
use relab_core::data::augment::{Cutout, Image, Pipeline};
use relab_core::data::{Batch, Dataset, image_batch, sample_rng};

/// The top bits of the second seed number of the strong views' generators.
pub const STRONG_STREAM: u64 = 1 << 63;
/// The same for CTAugment's probe views.
pub const PROBE_STREAM: u64 = 1 << 62;

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

    /// Views of `indices` for step `step` made by `f(weak view, generator)`, in the probe stream: CTAugment's
    /// probes of the labelled images.
    pub fn probes<F>(&self, data: &Dataset, indices: &[usize], seed: u64, step: u64, f: F) -> Result<Batch>
    where
        F: Fn(usize, Image, &mut dyn rand::RngCore) -> Image + Sync,
    {
        image_batch(&data.train, indices, &data.mean, &data.std, |position, index, img| {
            let mut rng = sample_rng(seed, PROBE_STREAM | step, position, index);
            let weak = self.weak.apply(img, &mut rng);
            f(position, weak, &mut rng)
        })
    }
}

/// No strong augmentation: the strong view is a second weak view with Cutout (for tests and ablations).
pub struct WeakOnly;

impl StrongAugment for WeakOnly {
    fn apply(&self, img: Image, _rng: &mut dyn rand::RngCore) -> Image {
        img
    }
}
