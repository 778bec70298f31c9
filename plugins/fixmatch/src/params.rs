//! The `fixmatch` learner's YAML parameters. Defaults are FixMatch's (method §6b.1–6b.2: TF's flags, the paper's
//! table): B = 64, μ = 7, τ = 0.95, λ_u = 1, SGD with Nesterov momentum 0.9, lr 0.03 with the 7π/16 cosine over
//! 2^20 steps (1024 epochs of 1024 steps, evaluated after each, as TF every 64 kimg), weight decay 5e-4, EMA 0.999,
//! weak view flip + 12.5 % reflect shift, strong view CTAugment then Cutout.
use relab_core::component::StageKind;
use relab_core::data::augment::{Augment, CtAugmentConfig, Flip, PadMode, Pipeline, RandAugment, RandomCrop};
use relab_core::nn::BackboneKind;
use relab_core::registry::{ParamError, StageNeed};
use relab_core::train::{Init, OptimiserSettings, SgdSettings};
use serde::{Deserialize, Serialize};

/// Each field's first doc paragraph is its help line in `relab plugins describe`.
#[relab_core::params(needs = FixMatchParams::stage_needs)]
#[derive(Debug, Clone, PartialEq)]
pub struct FixMatchParams {
    /// wrn28_2, wrn16_2 or wrn10_2 (quick runs), resnet18, resnet50 or resnet50_imagenet
    #[param(default = BackboneKind::Wrn28_2)]
    pub backbone: BackboneKind,
    /// starting weights: none, pretrain (the pretrain stage's encoder, same backbone) or a folder with model.json +
    /// weights.safetensors; the head is always re-initialised
    #[param(default = Init::None)]
    pub init: Init,
    /// epochs of steps_per_epoch steps each; the cosine decay spans all of them
    #[param(default = 1024, min = 1)]
    pub epochs: usize,
    /// optimiser steps per epoch (an epoch is a number of steps, not a pass over the few labels)
    ///
    /// Metrics, evaluations and checkpoints happen once per epoch. FixMatch's 2^20 steps are 1024 epochs of 1024
    /// steps, TF's evaluation every 64 kimg.
    #[param(default = 1024, min = 1)]
    pub steps_per_epoch: usize,
    /// labelled images per step (B)
    #[param(default = 64, min = 1)]
    pub labeled_batch_size: usize,
    /// unlabelled images per labelled image in a step (μ): each step takes μB unlabelled images
    #[param(default = 7, min = 1)]
    pub mu: usize,
    /// confidence threshold τ: a pseudo-label is used when its weak view's top probability is ≥ τ
    #[param(default = 0.95, min = 0.0, max = 1.0)]
    pub threshold: f64,
    /// weight λ_u of the unlabelled loss
    #[param(default = 1.0, min = 0.0)]
    pub lambda_u: f64,
    /// initial learning rate η₀ of the cosine decay η₀·cos(7πk/(16K))
    #[param(default = 0.03, above = 0.0)]
    pub lr: f64,
    /// SGD: {momentum, nesterov, weight_decay, dampening}; the decay is coupled L2 on every parameter
    ///
    /// Core's SGD adds `weight_decay·w` to the gradient of every parameter: kernels, and also biases and batch-norm
    /// scales and shifts, which TF's FixMatch leaves undecayed (method §6b.2).
    #[param(default = SgdSettings { momentum: 0.9, nesterov: true, weight_decay: 5e-4, dampening: 0.0 })]
    pub optimizer: SgdSettings,
    /// decay of the weights' moving average, the model evaluated (and probed by CTAugment)
    #[param(default = 0.999, min = 0.0, max = 1.0)]
    pub ema_decay: f64,
    /// weak view: random horizontal flip (p = 0.5); off for digits
    #[param(default = true)]
    pub flip: bool,
    /// weak view: random shift by up to this fraction of the side, reflect-padded (0.125: 4 px of 32)
    #[param(default = 0.125, min = 0.0, max = 0.5)]
    pub shift: f64,
    /// the strong augmentation after the fresh weak view: ctaugment (learnt per-bin rates), randaugment, or weak
    /// (none: a second weak view with Cutout, an ablation)
    #[param(default = Strong::Ctaugment)]
    pub strong: Strong,
    /// CTAugment: {depth (ops per policy), threshold (bins below it are never drawn), decay (of the bin rates)}
    #[param(default = CtAugmentConfig::default())]
    pub ctaugment: CtAugmentConfig,
    /// RandAugment: {n (ops drawn per image), p (each applied with this probability)}
    ///
    /// FixMatch-RA as TF's `rac` pool: n ops with replacement from 14, each at a level drawn from 1..9. The square
    /// that ends the strong view is the `cutout` parameter's, as for CTAugment.
    #[param(nested)]
    pub randaugment: RandAugmentParams,
    /// side of the Cutout square ending every strong view, as a fraction of the image side (0: none)
    #[param(default = 0.5, min = 0.0, max = 1.0)]
    pub cutout: f64,
    /// value Cutout fills with, on the [0, 1] pixel scale (0.5: TF's grey)
    #[param(default = 0.5, min = 0.0, max = 1.0)]
    pub cutout_fill: f32,
    /// align the weak-view predictions to the labelled class distribution before pseudo-labelling
    ///
    /// `q̃ = normalise(q · p_data / p_model)` with `p_model` a moving mean (momentum `alignment_momentum`, per step)
    /// of the unlabelled predictions; not in FixMatch's defaults.
    #[param(default = false)]
    pub distribution_alignment: bool,
    /// momentum of p_model, the moving mean of the unlabelled predictions, for distribution_alignment
    #[param(default = 0.999, min = 0.0, max = 1.0)]
    pub alignment_momentum: f64,
    /// epochs between test evaluations of the EMA model (and after the last)
    #[param(default = 1, min = 1)]
    pub eval_every: usize,
    /// images per batch when evaluating
    #[param(default = 500, min = 1)]
    pub eval_batch_size: usize,
}

impl FixMatchParams {
    fn stage_needs(&self) -> Vec<StageNeed> {
        let mut needs = Vec::new();
        if self.init == Init::Pretrain {
            needs.push(StageNeed::new(
                StageKind::Pretrain,
                "init",
                "init: pretrain needs the pretrain stage's encoder",
            ));
        }
        needs
    }

    /// Checks across parameters, with the key each complaint is about.
    pub fn check(&self) -> Result<(), ParamError> {
        let bad = |key: &str, message: String| ParamError { path: vec![key.to_string()], message, known_keys: vec![] };
        OptimiserSettings::Sgd(self.optimizer.clone()).check().map_err(|m| bad("optimizer", m))?;
        self.init.validate().map_err(|m| bad("init", m))?;
        self.ctaugment.validate().map_err(|m| bad("ctaugment", m))?;
        Ok(())
    }

    /// μB.
    pub fn unlabeled_batch_size(&self) -> usize {
        self.mu * self.labeled_batch_size
    }

    /// The run's optimiser steps, K.
    pub fn total_steps(&self) -> u64 {
        (self.epochs * self.steps_per_epoch) as u64
    }

    /// The weak view α for images of side `side`: flip (when on), then a shift of up to ⌊shift·side⌋ pixels with
    /// reflect padding (TF's order; `int(32·0.125)` in the ports).
    pub fn weak_view(&self, side: usize) -> Pipeline {
        let mut steps = Vec::new();
        if self.flip {
            steps.push(Augment::Flip(Flip::default()));
        }
        let padding = (self.shift * side as f64).floor() as usize;
        if padding > 0 {
            steps.push(Augment::Crop(RandomCrop { size: None, padding, mode: PadMode::Reflect }));
        }
        Pipeline::new(steps)
    }

    /// The side of the strong view's Cutout square for images of side `side` (0: none).
    pub fn cutout_size(&self, side: usize) -> usize {
        if self.cutout <= 0.0 { 0 } else { ((self.cutout * side as f64).round() as usize).max(1) }
    }
}

/// FixMatch-RA's knobs (TF's `AugmentPoolRAMC(nops=2)`, each op with p = 0.5).
#[relab_core::params]
#[derive(Debug, Clone, PartialEq)]
pub struct RandAugmentParams {
    /// ops drawn per image, with replacement
    #[param(default = 2, min = 1)]
    pub n: usize,
    /// probability that each drawn op is applied
    #[param(default = 0.5, min = 0.0, max = 1.0)]
    pub p: f32,
}

impl RandAugmentParams {
    /// Core's RandAugment without its own Cutout: the strong view's square comes after it.
    pub fn op(&self) -> RandAugment {
        RandAugment { n: self.n, p: self.p, cutout: false }
    }
}

/// Which strong augmentation follows the fresh weak view (method §6b.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strong {
    /// CTAugment: 2 ops with magnitudes drawn from per-bin rates learnt from probes of the labelled images.
    #[default]
    Ctaugment,
    /// FixMatch-RA: RandAugment's ops at random levels.
    Randaugment,
    /// No strong augmentation: the "strong" view is a second, independent weak view with Cutout.
    Weak,
}

#[cfg(test)]
mod tests {
    use super::*;
    use relab_core::registry::parse_params;

    fn parse(yaml: &str) -> Result<FixMatchParams, ParamError> {
        let p: FixMatchParams = parse_params(&serde_yaml::from_str(yaml).unwrap())?;
        p.check()?;
        Ok(p)
    }

    #[test]
    fn defaults_are_fixmatch_s() {
        let p = parse("{}").unwrap();
        assert_eq!((p.labeled_batch_size, p.mu, p.unlabeled_batch_size()), (64, 7, 448));
        assert_eq!((p.threshold, p.lambda_u, p.lr, p.ema_decay), (0.95, 1.0, 0.03, 0.999));
        assert_eq!(p.total_steps(), 1 << 20);
        assert!(p.optimizer.nesterov && p.optimizer.momentum == 0.9 && p.optimizer.weight_decay == 5e-4);
        // 12.5 % of 32 is 4 px, of 16 is 2 px, of 28 is ⌊3.5⌋ = 3 px; Cutout is half the side.
        let crop = |side| match &p.weak_view(side).0[1] {
            Augment::Crop(c) => (c.padding, c.mode),
            other => panic!("{other:?}"),
        };
        assert_eq!((crop(32), crop(16), crop(28).0), ((4, PadMode::Reflect), (2, PadMode::Reflect), 3));
        assert!(matches!(p.weak_view(32).0[0], Augment::Flip(_)));
        assert_eq!((p.cutout_size(32), p.cutout_size(16), p.cutout_size(28)), (16, 8, 14));
    }

    #[test]
    fn refusals_name_their_key() {
        let e = parse("{threshold: 1.5}").unwrap_err();
        assert_eq!(e.path, vec!["threshold"]);
        let e = parse("{optimizer: {momentum: 0.0, nesterov: true}}").unwrap_err();
        assert_eq!(e.path, vec!["optimizer"]);
        let e = parse("{ctaugment: {decay: 1.0}}").unwrap_err();
        assert_eq!(e.path, vec!["ctaugment"]);
        assert_eq!(parse("{strong: weak}").unwrap().strong, Strong::Weak);
        let p = parse("{strong: randaugment, randaugment: {n: 3}}").unwrap();
        assert_eq!((p.strong, p.randaugment.op()), (Strong::Randaugment, RandAugment { n: 3, p: 0.5, cutout: false }));
        assert_eq!(parse("{randaugment: {p: 2.0}}").unwrap_err().path, vec!["randaugment", "p"]);
        assert!(parse("{randaugment: {cutout: true}}").is_err(), "the square is the `cutout` parameter's");
        let e = parse("{mu: 0}").unwrap_err();
        assert_eq!(e.path, vec!["mu"]);
        let p = parse("{flip: false, shift: 0.0, cutout: 0.0}").unwrap();
        assert!(p.weak_view(32).is_empty() && p.cutout_size(32) == 0);
    }
}
