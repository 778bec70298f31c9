//! The learner's YAML parameters. Every default is what ReLaB's ReMixMatch runs (`docs/method.md` §6.2,
//! `cta_remixmatch.py --K=8`) except the length of an epoch, which is relab's reporting unit.
use relab_core::component::StageKind;
use relab_core::nn::BackboneKind;
use relab_core::registry::{ParamError, StageNeed};
use relab_core::train::schedule::LrSchedule;
use relab_core::train::{AdamSettings, Init, OptimiserSettings};

/// ReMixMatch's parameters (`docs/method.md` §6.2). Steps count labelled batches of `batch_size`; the ramp, as in
/// the original, counts labelled samples (`step · batch_size`).
///
/// The original trains 262,144 steps (ReLaB's `train_kimg << 8`) and reports every 1,024 steps: the defaults,
/// `epochs: 256` of `steps_per_epoch: 1024`, are exactly that. Quick configurations shorten both.
#[relab_core::params(needs = RemixMatchParams::stage_needs)]
#[derive(Debug, Clone, PartialEq)]
pub struct RemixMatchParams {
    /// wrn28_2 (the method's), wrn16_2 or wrn10_2 (quick runs), resnet18, resnet50 or resnet50_imagenet
    #[param(default = BackboneKind::Wrn28_2)]
    pub backbone: BackboneKind,
    /// starting weights: none, pretrain (the pretrain stage's encoder, same backbone) or a folder with model.json +
    /// weights.safetensors; the classifier and rotation heads are always fresh
    #[param(default = Init::None)]
    pub init: Init,
    /// epochs: evaluation and checkpoint periods of steps_per_epoch steps each
    #[param(default = 256, min = 1)]
    pub epochs: usize,
    /// optimiser steps per epoch (the method's report_kimg = 64 kimg = 1024 steps of 64)
    ///
    /// One epoch is this many steps, each on `batch_size` labelled and `batch_size` unlabelled images; the
    /// labelled set is cycled and the unlabelled images are shuffled afresh at the start of every epoch.
    #[param(default = 1024, min = 1)]
    pub steps_per_epoch: usize,
    /// labelled images per step; the unlabelled batch has as many images, each in strong_views + 1 views
    #[param(default = 64, min = 4)]
    pub batch_size: usize,
    /// K: strong (CTAugment) views of each unlabelled image, besides its weak view
    #[param(default = 8, min = 1)]
    pub strong_views: usize,
    /// learning rate: {lr, milestones, gamma, milestones_in, warmup_steps}; the method's is constant
    #[param(default = LrSchedule::constant(0.002))]
    pub schedule: LrSchedule,
    /// Adam: {beta1, beta2, epsilon, epsilon_style, weight_decay, no_decay}; decoupled decay of kernels only
    ///
    /// TensorFlow's Adam (ε added to √v before bias correction) and, after each step, every conv/linear kernel
    /// multiplied by `1 − weight_decay·lr`. The rotation head is never decayed (the original decays `classify/*`
    /// kernels only); `no_decay` names further module paths to leave alone.
    #[param(default = AdamSettings::default())]
    pub optimizer: AdamSettings,
    /// decay of the weights' exponential moving average, the model that is evaluated and classifies the probes
    #[param(default = 0.999, min = 0.0, max = 1.0)]
    pub ema: f64,
    /// mixup Beta(α, α) parameter; λ ← max(λ, 1−λ), one λ per sample
    #[param(default = 0.75, above = 0.0)]
    pub beta: f64,
    /// sharpening temperature T of the label guess
    #[param(default = 0.5, above = 0.0)]
    pub temperature: f64,
    /// weight of the unlabelled mixup loss, ramped linearly from 0 over warmup_kimg
    #[param(default = 1.5, min = 0.0)]
    pub w_match: f64,
    /// weight of the pre-mixup loss on the first strong view, ramped as w_match
    #[param(default = 0.5, min = 0.0)]
    pub w_kl: f64,
    /// weight of the rotation loss (not ramped); 0 turns it off
    #[param(default = 0.5, min = 0.0)]
    pub w_rot: f64,
    /// length of the ramp of w_match and w_kl, in thousands (×1024) of labelled samples
    #[param(default = 1024.0, min = 0.0)]
    pub warmup_kimg: f64,
    /// distribution alignment of the label guess (p_data / p_model)
    #[param(default = true)]
    pub use_dm: bool,
    /// cross-entropy (true) or squared error (false) for the unlabelled mixup loss
    #[param(default = true)]
    pub use_xe: bool,
    /// batches in the moving average of the model's mean prediction, p_model
    #[param(default = 128, min = 1)]
    pub dbuf: usize,
    /// CTAugment: ops per sampled policy
    #[param(default = 2, min = 1)]
    pub cta_depth: usize,
    /// CTAugment: bins whose normalised weight is below this are never sampled
    #[param(default = 0.8, min = 0.0, max = 1.0)]
    pub cta_threshold: f64,
    /// CTAugment: decay of the per-bin rates in the probe update
    #[param(default = 0.99, above = 0.0, below = 1.0)]
    pub cta_decay: f64,
    /// weak augmentation: largest shift as a share of the image side (reflect padding), with a random flip
    ///
    /// The method shifts 32×32 images by up to 4 pixels: 12.5 %. The padding is this share of the side, rounded.
    #[param(default = 0.125, min = 0.0, max = 0.5)]
    pub weak_shift: f64,
    /// epochs between test evaluations of the EMA model (and after the last)
    #[param(default = 1, min = 1)]
    pub eval_every: usize,
    /// images per batch when evaluating
    #[param(default = 500, min = 1)]
    pub eval_batch_size: usize,
}

impl RemixMatchParams {
    /// `init: pretrain` needs the pretrain stage's encoder.
    fn stage_needs(&self) -> Vec<StageNeed> {
        if self.init == Init::Pretrain {
            vec![StageNeed::new(StageKind::Pretrain, "init", "init: pretrain needs the pretrain stage's encoder")]
        } else {
            Vec::new()
        }
    }

    /// Checks across parameters, with the key each complaint is about.
    pub fn check(&self) -> Result<(), ParamError> {
        let bad = |key: &str, message: String| ParamError { path: vec![key.to_string()], message, known_keys: vec![] };
        self.schedule.check().map_err(|m| bad("schedule", m))?;
        OptimiserSettings::Adam(self.optimizer.clone()).check().map_err(|m| bad("optimizer", m))?;
        self.init.validate().map_err(|m| bad("init", m))?;
        Ok(())
    }

    /// The ramp of w_match and w_kl before the step that follows `steps` steps: `clip(samples / (warmup_kimg ·
    /// 1024), 0, 1)` with `samples = steps · batch_size` (the original's step counter counts labelled samples).
    pub fn ramp(&self, steps: u64) -> f64 {
        ramp(steps * self.batch_size as u64, self.warmup_kimg * 1024.0)
    }

    /// The weak augmentation's padding (and largest shift) in pixels for images of side `side`.
    pub fn weak_padding(&self, side: usize) -> usize {
        (self.weak_shift * side as f64).round() as usize
    }
}

/// `clip(samples / warmup_samples, 0, 1)`; 1 from the start when there is no warm-up.
pub fn ramp(samples: u64, warmup_samples: f64) -> f64 {
    if warmup_samples <= 0.0 { 1.0 } else { (samples as f64 / warmup_samples).clamp(0.0, 1.0) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use relab_core::registry::parse_params;
    use relab_core::train::EpsilonStyle;

    fn parse(yaml: &str) -> Result<RemixMatchParams, ParamError> {
        let p: RemixMatchParams = parse_params(&serde_yaml::from_str(yaml).unwrap())?;
        p.check()?;
        Ok(p)
    }

    #[test]
    fn defaults_are_the_method_s() {
        let p = parse("{}").unwrap();
        assert_eq!((p.backbone, p.batch_size, p.strong_views), (BackboneKind::Wrn28_2, 64, 8));
        // 256 epochs of 1024 steps: ReLaB's 262,144 steps, reported every 64 kimg.
        assert_eq!((p.epochs, p.steps_per_epoch, p.epochs * p.steps_per_epoch), (256, 1024, 262_144));
        assert_eq!((p.schedule.lr, p.schedule.milestones.len(), p.schedule.warmup_steps), (0.002, 0, 0));
        let o = &p.optimizer;
        assert_eq!((o.beta1, o.beta2, o.epsilon, o.epsilon_style), (0.9, 0.999, 1e-8, EpsilonStyle::Tensorflow));
        assert_eq!(o.weight_decay, 0.02);
        assert_eq!((p.ema, p.beta, p.temperature), (0.999, 0.75, 0.5));
        assert_eq!((p.w_match, p.w_kl, p.w_rot, p.warmup_kimg), (1.5, 0.5, 0.5, 1024.0));
        assert!(p.use_dm && p.use_xe);
        assert_eq!(p.dbuf, 128);
        assert_eq!((p.cta_depth, p.cta_threshold, p.cta_decay), (2, 0.8, 0.99));
        // 4 pixels on CIFAR's 32×32; 2 on the main job's 16×16; 3.5 rounds to 4 on 28×28.
        assert_eq!((p.weak_padding(32), p.weak_padding(16), p.weak_padding(28)), (4, 2, 4));
        assert_eq!(p.init, Init::None);
    }

    #[test]
    fn the_ramp_counts_labelled_samples() {
        let p = parse("{}").unwrap();
        // 1024 · 1024 samples = 16,384 steps of 64.
        assert_eq!(p.ramp(0), 0.0);
        assert_eq!(p.ramp(4096), 0.25);
        assert_eq!(p.ramp(16_384), 1.0);
        assert_eq!(p.ramp(100_000), 1.0);
        let quick = parse("{warmup_kimg: 2, batch_size: 32}").unwrap();
        // 2048 samples = 64 steps of 32.
        assert_eq!((quick.ramp(16), quick.ramp(64)), (0.25, 1.0));
        assert_eq!(ramp(10, 0.0), 1.0);
        assert_eq!(ramp(3, 12.0), 0.25);
    }

    #[test]
    fn rejects_unusable_values_naming_the_key() {
        let key = |yaml: &str| parse(yaml).unwrap_err().path.join(".");
        assert_eq!(key("batch_size: 2"), "batch_size");
        assert_eq!(key("strong_views: 0"), "strong_views");
        assert_eq!(key("temperature: 0"), "temperature");
        assert_eq!(key("ema: 1.5"), "ema");
        assert_eq!(key("optimizer: {beta1: 1.0}"), "optimizer");
        assert_eq!(key("schedule: {lr: -1}"), "schedule");
        assert_eq!(key("cta_threshold: 2"), "cta_threshold");
        assert_eq!(key("cta_decay: 1"), "cta_decay");
        assert_eq!(key("init: /no/such/folder"), "init");
        assert_eq!(key("mixmode: xxy"), "mixmode");
        assert!(parse("w_rot: 0\nuse_dm: false\nuse_xe: false").is_ok());
    }
}
