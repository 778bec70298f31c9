use relab_core::component::StageKind;
use relab_core::data::augment::{PadMode, Pipeline};
use relab_core::nn::BackboneKind;
use relab_core::registry::StageNeed;
use relab_core::train::schedule::LrSchedule;
use relab_core::train::{Init, SgdSettings, Views};

/// Defaults are the Pseudo-Labeling warm-up's (`docs/method.md` §5.1: WRN-28-2, 200 epochs, SGD 0.1 with
/// momentum 0.9 and weight decay 1e-4, steps at 100 and 150, batch 100, random crop with 4 pixels of padding and
/// horizontal flips). Each field's first doc paragraph is its help line in `relab plugins describe`.
#[relab_core::params(needs = SupervisedParams::stage_needs)]
#[derive(Debug, Clone, PartialEq)]
pub struct SupervisedParams {
    /// wrn28_2, wrn16_2, wrn10_2, resnet18, resnet50 or resnet50_imagenet
    #[param(default = BackboneKind::Wrn28_2)]
    pub backbone: BackboneKind,
    /// starting weights: none, pretrain (the pretrain stage's encoder) or a saved backbone's folder
    ///
    /// As the pseudo-label learner's `init`: compare the two from the same encoder.
    #[param(default = Init::None)]
    pub init: Init,
    /// training epochs
    #[param(default = 200, min = 1)]
    pub epochs: usize,
    /// labelled images per optimiser step
    #[param(default = 100, min = 1)]
    pub batch_size: usize,
    /// cycle a small labelled set until an epoch has at least this many steps
    ///
    /// Optimiser steps per epoch at least: a tiny labelled set is cycled (reshuffled each pass) to fill them.
    #[param(default = 1)]
    pub min_steps_per_epoch: usize,
    /// learning rate: {lr, milestones (epochs, 1-based), gamma, milestones_in, warmup_steps}
    #[param(default = LrSchedule::multi_step(0.1, &[100, 150], 0.1))]
    pub schedule: LrSchedule,
    /// SGD: {momentum, nesterov, weight_decay, dampening}
    #[param(default = SgdSettings { momentum: 0.9, nesterov: false, weight_decay: 1e-4, dampening: 0.0 })]
    pub optimizer: SgdSettings,
    /// training augmentations, e.g. [{crop: {padding: 4}}, flip]
    #[param(default = Pipeline::crop_flip(4, PadMode::Zero))]
    pub augment: Pipeline,
    /// epochs between test evaluations
    ///
    /// Evaluate on the test split every this many epochs (and after the last).
    #[param(default = 1, min = 1)]
    pub eval_every: usize,
    /// images per batch when evaluating
    #[param(default = 500, min = 1)]
    pub eval_batch_size: usize,
    /// plain | mirror: test predictions of the image, or averaged with its mirror image's
    ///
    /// The views of each test image the evaluations average: `plain` or `mirror` (with its horizontal mirror).
    #[param(default = Views::Plain)]
    pub test_views: Views,
}

impl SupervisedParams {
    /// `init: pretrain` needs the pretrain stage.
    fn stage_needs(&self) -> Vec<StageNeed> {
        match self.init {
            Init::Pretrain => {
                vec![StageNeed::new(StageKind::Pretrain, "init", "init: pretrain needs the pretrain stage's encoder")]
            }
            _ => Vec::new(),
        }
    }
}
