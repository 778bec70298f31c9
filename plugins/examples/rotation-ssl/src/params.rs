use relab_core::data::augment::{PadMode, Pipeline};
use relab_core::nn::BackboneKind;
use relab_core::registry::PluginParams;
use relab_core::serde::{Deserialize, Serialize};
use relab_core::train::SgdSettings;
use relab_core::train::schedule::LrSchedule;

/// The YAML parameters of `rotation`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(crate = "relab_core::serde", deny_unknown_fields, default)]
pub struct RotationParams {
    pub backbone: BackboneKind,
    pub epochs: usize,
    pub images_per_epoch: Option<usize>,
    pub batch_size: usize,
    pub schedule: LrSchedule,
    pub optimizer: SgdSettings,
    pub augment: Pipeline,
    pub eval_batch_size: usize,
}

impl Default for RotationParams {
    fn default() -> Self {
        RotationParams {
            backbone: BackboneKind::Wrn10_2,
            epochs: 30,
            images_per_epoch: None,
            batch_size: 64,
            schedule: LrSchedule::multi_step(0.1, &[20, 25], 0.2),
            optimizer: SgdSettings { momentum: 0.9, nesterov: true, weight_decay: 5e-4, dampening: 0.0 },
            augment: Pipeline::crop_flip(2, PadMode::Reflect),
            eval_batch_size: 500,
        }
    }
}

impl PluginParams for RotationParams {
    fn help() -> &'static [(&'static str, &'static str)] {
        &[
            ("backbone", "wrn10_2, wrn16_2, wrn28_2, resnet18 or resnet50; its pooled feature is the encoder's output"),
            ("epochs", "training epochs"),
            ("images_per_epoch", "images per epoch, a fresh random draw each epoch; null = the whole training set"),
            ("batch_size", "images per step, each shown in its four rotations (4 × batch_size rows)"),
            ("schedule", "learning rate: {lr, milestones (0-based epochs), gamma, milestones_in, warmup_steps}"),
            ("optimizer", "SGD: {momentum, nesterov, weight_decay, dampening}"),
            ("augment", "augmentations applied before rotating (square images only)"),
            ("eval_batch_size", "images per batch when extracting features"),
        ]
    }
}
