use relab_core::data::augment::{PadMode, Pipeline};
use relab_core::nn::BackboneKind;
use relab_core::train::SgdSettings;
use relab_core::train::schedule::LrSchedule;

/// The YAML parameters of `rotation`: each field's first doc paragraph is its help line in `relab plugins describe`.
#[relab_core::params]
#[derive(Debug, Clone, PartialEq)]
pub struct RotationParams {
    /// wrn10_2, wrn16_2, wrn28_2, resnet18 or resnet50; its pooled feature is the encoder's output
    #[param(default = BackboneKind::Wrn10_2)]
    pub backbone: BackboneKind,
    /// training epochs
    #[param(default = 30, min = 1)]
    pub epochs: usize,
    /// images per epoch, a fresh random draw each epoch; null = the whole training set
    #[param(min = 1)]
    pub images_per_epoch: Option<usize>,
    /// images per step, each shown in its four rotations (4 × batch_size rows)
    #[param(default = 64, min = 1)]
    pub batch_size: usize,
    /// learning rate: {lr, milestones (0-based epochs), gamma, milestones_in, warmup_steps}
    #[param(default = LrSchedule::multi_step(0.1, &[20, 25], 0.2))]
    pub schedule: LrSchedule,
    /// SGD: {momentum, nesterov, weight_decay, dampening}
    #[param(default = SgdSettings { momentum: 0.9, nesterov: true, weight_decay: 5e-4, dampening: 0.0 })]
    pub optimizer: SgdSettings,
    /// augmentations applied before rotating (square images only)
    #[param(default = Pipeline::crop_flip(2, PadMode::Reflect))]
    pub augment: Pipeline,
    /// images per batch when extracting features
    #[param(default = 500, min = 1)]
    pub eval_batch_size: usize,
}
