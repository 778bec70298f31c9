use relab_core::component::StageKind;
use relab_core::data::augment::{Augment, ColorJitter, Flip, PadMode, Pipeline, RandomCrop};
use relab_core::nn::BackboneKind;
use relab_core::registry::{ParamError, StageNeed};
use relab_core::train::schedule::LrSchedule;
use relab_core::train::{Init, SgdSettings, Views};
use serde::{Deserialize, Serialize};

/// Defaults are ReLaB's Pseudo-Labeling runs (`docs/method.md` §5, §7.2): WRN-28-2; a 200-epoch warm-up on the
/// labelled set (steps at 100 and 150), then 400 semi-supervised epochs (steps at 250 and 350) with batches of 100
/// holding 20 labelled images; SGD 0.1, momentum 0.9, weight decay 1e-4; mixup α = 1; prior and entropy weights
/// 0.8 and 0.4; the `jitter` augmentation; SWA of every 5th epoch after 350.
///
/// The original starts from RotNet weights with its first blocks frozen; those weights are not available here, so
/// `init` defaults to `none` and `freeze` to off (freezing random blocks is refused). Each field's first doc
/// paragraph is its help line in `relab plugins describe`.
#[relab_core::params(needs = PseudoLabelParams::stage_needs)]
#[derive(Debug, Clone, PartialEq)]
pub struct PseudoLabelParams {
    /// wrn28_2, wrn16_2 or wrn10_2 (quick runs), resnet18, resnet50 or resnet50_imagenet
    #[param(default = BackboneKind::Wrn28_2)]
    pub backbone: BackboneKind,
    /// starting weights: none, pretrain (the pretrain stage's encoder, same backbone) or a folder with model.json +
    /// weights.safetensors; the head is always re-initialised
    #[param(default = Init::None)]
    pub init: Init,
    /// freeze all child modules but the last three (WRN: init_conv, unit1, unit2) in both runs
    ///
    /// Freeze what the original's `--freeze` freezes: every child module of the network but the last three (WRN:
    /// `init_conv`, `unit1`, `unit2`; ResNet: `conv1`, `bn1`, `layer1`, `layer2`), in both runs. Their batch norms
    /// stay in training mode, as in PyTorch, so their running statistics still move.
    #[param(default = false)]
    pub freeze: bool,
    /// run 1 on the labelled set only: {epochs, batch_size, schedule}; epochs may be 0
    #[param(nested)]
    pub warmup: WarmupParams,
    /// semi-supervised epochs (run 2)
    #[param(default = 400, min = 1)]
    pub epochs: usize,
    /// images per semi-supervised step, labelled and unlabelled together
    #[param(default = 100, min = 1)]
    pub batch_size: usize,
    /// labelled images in each semi-supervised batch
    ///
    /// The rest are unlabelled.
    #[param(default = 20, min = 1)]
    pub labeled_per_batch: usize,
    /// quick-run approximation: a fresh random sample of this many unlabelled images per epoch (~: all)
    ///
    /// Each semi-supervised epoch visits a fresh seeded random sample of this many unlabelled images instead of all
    /// of them. Pseudo-labels of the others are left as they were.
    pub unlabeled_per_epoch: Option<usize>,
    /// semi-supervised learning rate: {lr, milestones (epochs, 1-based), gamma}
    #[param(default = LrSchedule::multi_step(0.1, &[250, 350], 0.1))]
    pub schedule: LrSchedule,
    /// SGD of both runs: {momentum, nesterov, weight_decay, dampening}
    #[param(default = SgdSettings { momentum: 0.9, nesterov: false, weight_decay: 1e-4, dampening: 0.0 })]
    pub optimizer: SgdSettings,
    /// mixup α (λ ~ Beta(α, α), λ ← max(λ, 1−λ)); 0 for no mixup
    #[param(default = 1.0, min = 0.0)]
    pub mixup_alpha: f64,
    /// weight of the class-prior regulariser (semi-supervised run only)
    ///
    /// `L_p`, the original's `--alpha`.
    #[param(default = 0.8, min = 0.0)]
    pub prior_weight: f64,
    /// weight of the entropy regulariser (semi-supervised run only)
    ///
    /// `L_e`, the original's `--beta`.
    #[param(default = 0.4, min = 0.0)]
    pub entropy_weight: f64,
    /// first pseudo-labels predicted from augmented (as the original) or clean images, or the propagate stage's
    /// labels (propagation)
    #[param(default = InitialPseudoLabels::Augmented)]
    pub initial_pseudo_labels: InitialPseudoLabels,
    /// semi-supervised epochs after which the propagate stage propagates its seeds again over the network's pooled
    /// features, giving every unlabelled image its new propagated label (default: none)
    ///
    /// Not the original's: after each of these semi-supervised epochs, the experiment's propagate stage propagates
    /// its seeds again over the network's pooled features (evaluation mode, un-augmented images), and every
    /// unlabelled image's pseudo-label becomes its new propagated label, one-hot (Iscen et al.'s iterated label
    /// propagation). A network trained on the propagated labels gives a graph that propagates better than the
    /// SSL features did.
    pub repropagate_after: Vec<usize>,
    /// how a propagated label becomes a pseudo-label: one_hot (its class) or soft (its propagated scores, raised to
    /// soft_target_power and normalised to sum to one)
    ///
    /// For `initial_pseudo_labels: propagation` and `repropagate_after`.
    #[param(default = PropagatedTargets::OneHot)]
    pub propagated_targets: PropagatedTargets,
    /// with propagated_targets: soft, the power of the scores (above 1 sharpens)
    ///
    /// The (non-negative) scores are raised to it before they are normalised to sum to one.
    #[param(default = 1.0, above = 0.0)]
    pub soft_target_power: f64,
    /// {start, every}: average the weights after epochs e > start with e % every == 0; ~ for none
    #[param(nested, default = Some(SwaParams::default()))]
    pub swa: Option<SwaParams>,
    /// training augmentation of both runs (default: the original's jitter)
    #[param(default = jitter())]
    pub augment: Pipeline,
    /// epochs between test evaluations
    ///
    /// Evaluate on the test split every this many epochs of each run (and after its last epoch).
    #[param(default = 1, min = 1)]
    pub eval_every: usize,
    /// images per batch when evaluating or predicting pseudo-labels
    #[param(default = 500, min = 1)]
    pub eval_batch_size: usize,
    /// plain | mirror: test predictions of the image, or averaged with its mirror image's
    ///
    /// The views of each test image the evaluations average: `plain` (the method) or `mirror` (the image and its
    /// horizontal mirror; the plain figures of the last and SWA models are then also in the summary).
    #[param(default = Views::Plain)]
    pub test_views: Views,
}

/// Run 1: supervised training on the labelled set alone, with mixup and without the regularisers.
#[relab_core::params]
#[derive(Debug, Clone, PartialEq)]
pub struct WarmupParams {
    /// warm-up epochs; may be 0
    #[param(default = 200)]
    pub epochs: usize,
    /// labelled images per warm-up step
    #[param(default = 100, min = 1)]
    pub batch_size: usize,
    /// warm-up learning rate: {lr, milestones (epochs, 1-based), gamma}
    #[param(default = LrSchedule::multi_step(0.1, &[100, 150], 0.1))]
    pub schedule: LrSchedule,
}

/// Stochastic weight averaging: after semi-supervised epoch `e` with `e > start` and `e % every == 0`, the weights
/// join an equal-weight average; batch-norm statistics are recomputed for it at the end.
#[relab_core::params]
#[derive(Debug, Clone, PartialEq)]
pub struct SwaParams {
    /// epochs after which averaging starts
    #[param(default = 350)]
    pub start: usize,
    /// average every this many epochs
    #[param(default = 5, min = 1)]
    pub every: usize,
}

/// The original predicts the first pseudo-labels in evaluation mode from its training loader, i.e. from augmented
/// images (`docs/method.md` §5.1, B7); `clean` predicts them from the un-augmented images instead. `propagation`
/// is not the original's: the first pseudo-label of each unlabelled image is its propagated label (one-hot), from the
/// experiment's propagate stage, so the semi-supervised run starts from what the graph knows about every image
/// rather than from what the warm-up learnt from the labelled set alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InitialPseudoLabels {
    #[default]
    Augmented,
    Clean,
    Propagation,
}

/// What an unlabelled image's pseudo-label becomes when it takes its propagated label. `soft` keeps what the graph
/// says about the image's other classes: an image the propagation is torn about trains towards each class in
/// proportion, rather than all the way towards a class that may be wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PropagatedTargets {
    #[default]
    OneHot,
    Soft,
}

/// ReLaB's `--DA jitter`: reflect-pad 2 and random crop, ColorJitter(0.4, 0.4, 0.4, 0.1) always applied, flip. The
/// jitter runs before the pad-and-crop here (the original pads first); only contrast, which uses the image mean,
/// can tell the difference.
pub fn jitter() -> Pipeline {
    Pipeline::new(vec![
        Augment::ColorJitter(ColorJitter { p: 1.0, ..ColorJitter::default() }),
        Augment::Crop(RandomCrop { size: None, padding: 2, mode: PadMode::Reflect }),
        Augment::Flip(Flip::default()),
    ])
}

impl PseudoLabelParams {
    /// The stages `init`, `initial_pseudo_labels` and `repropagate_after` ask for.
    fn stage_needs(&self) -> Vec<StageNeed> {
        let mut needs = Vec::new();
        if self.init == Init::Pretrain {
            needs.push(StageNeed::new(
                StageKind::Pretrain,
                "init",
                "init: pretrain needs the pretrain stage's encoder",
            ));
        }
        if self.initial_pseudo_labels == InitialPseudoLabels::Propagation {
            needs.push(StageNeed::new(
                StageKind::Propagate,
                "initial_pseudo_labels",
                "initial_pseudo_labels: propagation needs the propagated labels of the propagate stage",
            ));
        }
        if !self.repropagate_after.is_empty() {
            needs.push(
                StageNeed::new(
                    StageKind::Propagate,
                    "repropagate_after",
                    "repropagate_after needs a propagate stage run by a plugin, to propagate again over the \
                     network's features",
                )
                .run_by_plugin(),
            );
        }
        needs
    }

    /// Checks across parameters, with the key each complaint is about.
    pub fn check(&self) -> Result<(), ParamError> {
        let bad = |path: &[&str], message: String| ParamError {
            path: path.iter().map(|s| s.to_string()).collect(),
            message,
            known_keys: vec![],
        };
        // Counts and the other single-value ranges are declared on the fields (`min = 1`, ...) and checked when
        // the parameters are parsed.
        if self.labeled_per_batch >= self.batch_size {
            return Err(bad(
                &["labeled_per_batch"],
                format!(
                    "must be smaller than batch_size ({}) so that each batch holds unlabelled images, found {}",
                    self.batch_size, self.labeled_per_batch
                ),
            ));
        }
        if let Some(n) = self.unlabeled_per_epoch.filter(|&n| n < self.batch_size - self.labeled_per_batch) {
            return Err(bad(
                &["unlabeled_per_epoch"],
                format!(
                    "{n} unlabelled images do not fill one batch ({} unlabelled per batch)",
                    self.batch_size - self.labeled_per_batch
                ),
            ));
        }
        self.schedule.check().map_err(|m| bad(&["schedule"], m))?;
        self.warmup.schedule.check().map_err(|m| bad(&["warmup", "schedule"], m))?;
        relab_core::train::OptimiserSettings::Sgd(self.optimizer.clone())
            .check()
            .map_err(|m| bad(&["optimizer"], m))?;
        if let Some(&e) = self.repropagate_after.iter().find(|&&e| e == 0 || e > self.epochs) {
            return Err(bad(
                &["repropagate_after"],
                format!("epoch {e} is not one of the {} semi-supervised epochs (1..={})", self.epochs, self.epochs),
            ));
        }
        if self.freeze && self.init == Init::None {
            return Err(bad(
                &["freeze"],
                "freezing blocks of a randomly initialised network would keep them random; give `init` (pretrain \
                 or a weights folder) or set freeze: false"
                    .into(),
            ));
        }
        self.init.validate().map_err(|m| bad(&["init"], m))?;
        for (key, pipeline) in [("augment", &self.augment)] {
            if let Some(e) = pipeline.0.iter().find_map(|a| a.validate().err()) {
                return Err(bad(&[key], e));
            }
        }
        Ok(())
    }

    /// Unlabelled images in each semi-supervised batch.
    pub fn unlabeled_per_batch(&self) -> usize {
        self.batch_size - self.labeled_per_batch
    }

    /// Whether the weights after semi-supervised epoch `epoch` (1-based) join the SWA average.
    pub fn swa_after(&self, epoch: usize) -> bool {
        self.swa.as_ref().is_some_and(|s| epoch > s.start && epoch.is_multiple_of(s.every))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use relab_core::registry::parse_params;

    fn parse(yaml: &str) -> Result<PseudoLabelParams, ParamError> {
        let p: PseudoLabelParams = parse_params(&serde_yaml::from_str(yaml).unwrap())?;
        p.check()?;
        Ok(p)
    }

    #[test]
    fn defaults_are_the_method_s() {
        let p = parse("{}").unwrap();
        assert_eq!((p.warmup.epochs, p.warmup.batch_size, p.epochs), (200, 100, 400));
        assert_eq!((p.batch_size, p.labeled_per_batch, p.unlabeled_per_batch()), (100, 20, 80));
        assert_eq!(
            (p.warmup.schedule.milestones.clone(), p.schedule.milestones.clone()),
            (vec![100, 150], vec![250, 350])
        );
        assert_eq!(
            (p.schedule.lr, p.optimizer.momentum, p.optimizer.weight_decay, p.optimizer.nesterov),
            (0.1, 0.9, 1e-4, false)
        );
        assert_eq!((p.mixup_alpha, p.prior_weight, p.entropy_weight), (1.0, 0.8, 0.4));
        assert_eq!(p.swa, Some(SwaParams { start: 350, every: 5 }));
        // SWA covers epochs 355, 360, ..., 400: ten snapshots.
        let snapshots: Vec<usize> = (1..=400).filter(|&e| p.swa_after(e)).collect();
        assert_eq!((snapshots.len(), snapshots[0], snapshots[9]), (10, 355, 400));
        assert_eq!(p.init, Init::None);
        assert_eq!(p.augment, jitter());
        assert!(p.repropagate_after.is_empty());
        assert_eq!((p.propagated_targets, p.soft_target_power), (PropagatedTargets::OneHot, 1.0));
    }

    #[test]
    fn init_reads_none_pretrain_or_a_folder() {
        assert_eq!(parse("init: ~").unwrap().init, Init::None);
        assert_eq!(parse("init: none").unwrap().init, Init::None);
        assert_eq!(parse("init: pretrain").unwrap().init, Init::Pretrain);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(relab_core::nn::MODEL_FILE), "{}").unwrap();
        let yaml = format!("init: {}", dir.path().display());
        assert_eq!(parse(&yaml).unwrap().init, Init::Folder(dir.path().to_path_buf()));
        let err = parse("init: /no/such/folder").unwrap_err();
        assert_eq!(err.path, vec!["init"]);
        assert!(err.message.contains("/no/such/folder holds no model.json"), "{}", err.message);
        // The default round-trips through its YAML form, as `relab plugins describe` prints it.
        let text = serde_yaml::to_string(&PseudoLabelParams::default()).unwrap();
        assert!(text.contains("init: none"), "{text}");
        assert_eq!(parse(&text).unwrap(), PseudoLabelParams::default());
    }

    #[test]
    fn rejects_unusable_values_naming_the_key() {
        let key = |yaml: &str| parse(yaml).unwrap_err().path.join(".");
        assert_eq!(key("labeled_per_batch: 100"), "labeled_per_batch");
        assert_eq!(key("batch_size: 0"), "batch_size");
        assert_eq!(key("warmup: {batch_size: 0}"), "warmup.batch_size");
        assert_eq!(key("warmup: {schedule: {lr: -1}}"), "warmup.schedule");
        assert_eq!(key("unlabeled_per_epoch: 50"), "unlabeled_per_epoch");
        assert_eq!(key("swa: {every: 0}"), "swa.every");
        assert_eq!(key("prior_weight: -0.5"), "prior_weight");
        assert_eq!(key("optimizer: {nesterov: true, momentum: 0}"), "optimizer");
        assert_eq!(key("freeze: true"), "freeze");
        assert_eq!(key("epochs: 0"), "epochs");
        assert_eq!(key("unknown_knob: 3"), "unknown_knob");
        assert_eq!(key("epochs: 10\nrepropagate_after: [4, 11]"), "repropagate_after");
        assert_eq!(key("repropagate_after: [0]"), "repropagate_after");
        assert_eq!(key("soft_target_power: 0"), "soft_target_power");
        assert_eq!(key("propagated_targets: fuzzy"), "propagated_targets");
        assert_eq!(parse("propagated_targets: soft").unwrap().propagated_targets, PropagatedTargets::Soft);
        assert_eq!(parse("epochs: 10\nrepropagate_after: [4, 7]").unwrap().repropagate_after, vec![4, 7]);
        assert!(parse("freeze: true\ninit: pretrain").is_ok());
        assert!(parse("swa: ~").unwrap().swa.is_none());
        assert!(parse("warmup: {epochs: 0}").is_ok());
        assert_eq!(parse("unlabeled_per_epoch: 800").unwrap().unlabeled_per_epoch, Some(800));
    }
}
