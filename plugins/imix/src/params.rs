use relab_core::data::augment::{Augment, ColorJitter, Flip, Pipeline, RandomGrayscale, RandomResizedCrop};
use relab_core::nn::BackboneKind;
use relab_core::train::SgdSettings;
use relab_core::train::schedule::LrSchedule;
use serde::{Deserialize, Serialize};

/// Which output of the network the encoder hands to the features stage when it asks for the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DefaultOutput {
    /// The L2-normalised projection-head embedding: what the current ReLaB code propagates over (method §2.5, D4).
    #[default]
    Head,
    /// The backbone's pooled feature: what the pre-cleanup code propagated over.
    Pooled,
}

/// Which of the two kept encoders the stage hands on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Keep {
    /// The encoder after the last epoch.
    #[default]
    Last,
    /// The encoder with the best kNN accuracy on the test split (the original's `best_model.pth.tar`; choosing by
    /// test accuracy peeks at the test set, hence not the default).
    Best,
}

/// Defaults are iMix's (`docs/method.md` §2.1–2.4, §7.4): two views, mixup of the first with λ ~ Beta(1, 1),
/// N-pairs at τ = 0.2, SGD with Nesterov momentum 0.9, lr 0.1, weight decay 1e-4, 4000 epochs with the rate cut
/// tenfold at 2000 and 3000, batch 256, a 128-d head, the kNN monitor (k = 200, σ = 0.1) after every epoch. The
/// backbone is ResNet-50, the one ReLaB's propagation features come from. Each field's first doc paragraph is its
/// help line in `relab plugins describe`.
#[relab_core::params]
#[derive(Debug, Clone, PartialEq)]
pub struct ImixParams {
    /// resnet50 (ReLaB's features), resnet18, wrn28_2, wrn16_2 or wrn10_2 (quick CPU runs)
    #[param(default = BackboneKind::ResNet50)]
    pub backbone: BackboneKind,
    /// training epochs (the original: 4000)
    #[param(default = 4000, min = 1)]
    pub epochs: usize,
    /// images per epoch, a fresh random draw each epoch; null = the whole training set
    ///
    /// Drawn afresh (without repeats) each epoch.
    #[param(min = 2)]
    pub images_per_epoch: Option<usize>,
    /// images per step; each gives two views, and the other images' views are the negatives
    #[param(default = 256, min = 2)]
    pub batch_size: usize,
    /// τ of the N-pairs logits ⟨z̃_i, z_j⟩/τ
    #[param(default = 0.2, above = 0.0)]
    pub temperature: f64,
    /// mix the first views (iMix); false = plain N-pairs
    ///
    /// `false` is plain N-pairs (the original's `--no-mix`).
    #[param(default = true)]
    pub mix: bool,
    /// λ ~ Beta(α, α), then λ ← max(λ, 1−λ); one λ and one permutation per batch
    #[param(default = 1.0, above = 0.0)]
    pub mix_alpha: f64,
    /// width of the L2-normalised head embedding
    #[param(default = 128, min = 1)]
    pub projection_dim: usize,
    /// hidden width of the head; null = 2 × the backbone's feature width
    #[param(min = 1)]
    pub projection_hidden: Option<usize>,
    /// learning rate: {lr, milestones (0-based epochs), gamma, milestones_in, warmup_steps}
    #[param(default = LrSchedule::multi_step(0.1, &[2000, 3000], 0.1))]
    pub schedule: LrSchedule,
    /// SGD: {momentum, nesterov, weight_decay, dampening}
    #[param(default = SgdSettings { momentum: 0.9, nesterov: true, weight_decay: 1e-4, dampening: 0.0 })]
    pub optimizer: SgdSettings,
    /// each view's augmentations; on grey images saturation, hue and grayscale have no meaning and change nothing
    /// (crop, flip, brightness and contrast still apply)
    ///
    /// The pipeline that makes each of the two views.
    #[param(default = imix_views())]
    pub augment: Pipeline,
    /// epochs between kNN monitors on the test split (also after the last); 0 = never
    #[param(default = 1)]
    pub monitor_every: usize,
    /// neighbours of the kNN monitor (cosine similarity)
    #[param(default = 200, min = 1)]
    pub knn_k: usize,
    /// σ of the monitor's vote weights exp(s/σ)
    #[param(default = 0.1, above = 0.0)]
    pub knn_sigma: f64,
    /// the encoder the stage hands on: last, or best (by the monitor's test accuracy)
    #[param(default = Keep::Last)]
    pub encoder: Keep,
    /// what the features stage gets by default: head (128-d, as the original) or pooled
    #[param(default = DefaultOutput::Head)]
    pub output: DefaultOutput,
    /// images per batch when extracting features
    #[param(default = 500, min = 1)]
    pub eval_batch_size: usize,
}

/// The iMix views (§2.2) with the crop at the input's own size: random resized crop (scale 0.08–1, ratio 3/4–4/3),
/// horizontal flip, colour jitter 0.4/0.4/0.4/0.1 with p 0.8, grayscale with p 0.2.
pub fn imix_views() -> Pipeline {
    Pipeline::new(vec![
        Augment::ResizedCrop(RandomResizedCrop::default()),
        Augment::Flip(Flip::default()),
        Augment::ColorJitter(ColorJitter::default()),
        Augment::Grayscale(RandomGrayscale::default()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use relab_core::data::augment::Image;

    #[test]
    fn default_views_are_the_methods() {
        let views = imix_views();
        let Augment::ResizedCrop(crop) = &views.0[0] else { panic!("the views start with a random resized crop") };
        assert_eq!((crop.size, crop.scale, crop.ratio), (None, [0.08, 1.0], [0.75, 4.0 / 3.0]));
        // The rest is core's contrastive views: flip 0.5, jitter 0.4/0.4/0.4/0.1 with p 0.8, grayscale 0.2.
        assert_eq!(views.0[1..], Pipeline::contrastive_views(32).0[1..]);
        let Augment::ColorJitter(jitter) = &views.0[2] else { panic!("colour jitter third") };
        assert_eq!(
            (jitter.brightness, jitter.contrast, jitter.saturation, jitter.hue, jitter.p),
            (0.4, 0.4, 0.4, 0.1, 0.8)
        );
        assert_eq!(views.0[3], Augment::Grayscale(RandomGrayscale { p: 0.2 }));
        assert_eq!(views.output_size(28, 28), Ok((28, 28)));
    }

    #[test]
    fn on_grey_images_saturation_hue_and_grayscale_change_nothing() {
        let colour_only = Pipeline::new(vec![
            Augment::ColorJitter(ColorJitter { brightness: 0.0, contrast: 0.0, saturation: 0.4, hue: 0.1, p: 1.0 }),
            Augment::Grayscale(RandomGrayscale { p: 1.0 }),
        ]);
        let grey: Vec<f32> = (0..16).map(|v| v as f32 / 15.0).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        for _ in 0..20 {
            // One channel, and the three equal channels of `dataset.channels: 3`.
            assert_eq!(colour_only.apply(Image::new(1, 4, 4, grey.clone()), &mut rng).data, grey);
            let rgb = colour_only.apply(Image::new(3, 4, 4, grey.repeat(3)), &mut rng);
            assert!(rgb.data.iter().zip(grey.repeat(3)).all(|(a, b)| (a - b).abs() < 1e-5), "{:?}", rgb.data);
        }
        // Brightness still acts: every pixel scaled by one factor in [0.6, 1.4] (clamped at 1).
        let brightness = ColorJitter { brightness: 0.4, contrast: 0.0, saturation: 0.0, hue: 0.0, p: 1.0 };
        let out = brightness.apply(Image::new(1, 4, 4, grey.clone()), &mut rng).data;
        let factor = out[1] / grey[1];
        assert!((0.6..=1.4).contains(&factor) && (factor - 1.0).abs() > 1e-6, "{factor}");
        assert!(out.iter().zip(&grey).all(|(o, g)| (o - (g * factor).min(1.0)).abs() < 1e-6));
    }
}
