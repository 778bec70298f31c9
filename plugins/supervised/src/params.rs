use relab_core::data::augment::{PadMode, Pipeline};
use relab_core::nn::BackboneKind;
use relab_core::registry::PluginParams;
use relab_core::train::schedule::LrSchedule;
use relab_core::train::{Init, SgdSettings, Views};
use serde::{Deserialize, Serialize};

/// Defaults are the Pseudo-Labeling warm-up's (`relab-method.md` §5.1: WRN-28-2, 200 epochs, SGD 0.1 with
/// momentum 0.9 and weight decay 1e-4, steps at 100 and 150, batch 100, random crop with 4 pixels of padding and
/// horizontal flips).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SupervisedParams {
    pub backbone: BackboneKind,
    /// Starting weights, as the pseudo-label learner's `init`: compare the two from the same encoder.
    pub init: Init,
    pub epochs: usize,
    pub batch_size: usize,
    /// Optimiser steps per epoch at least: a tiny labelled set is cycled (reshuffled each pass) to fill them.
    pub min_steps_per_epoch: usize,
    pub schedule: LrSchedule,
    pub optimizer: SgdSettings,
    pub augment: Pipeline,
    /// Evaluate on the test split every this many epochs (and after the last).
    pub eval_every: usize,
    pub eval_batch_size: usize,
    /// The views of each test image the evaluations average: `plain` or `mirror` (with its horizontal mirror).
    pub test_views: Views,
}

impl Default for SupervisedParams {
    fn default() -> Self {
        SupervisedParams {
            backbone: BackboneKind::Wrn28_2,
            init: Init::None,
            epochs: 200,
            batch_size: 100,
            min_steps_per_epoch: 1,
            schedule: LrSchedule::multi_step(0.1, &[100, 150], 0.1),
            optimizer: SgdSettings { momentum: 0.9, nesterov: false, weight_decay: 1e-4, dampening: 0.0 },
            augment: Pipeline::crop_flip(4, PadMode::Zero),
            eval_every: 1,
            eval_batch_size: 500,
            test_views: Views::Plain,
        }
    }
}

impl PluginParams for SupervisedParams {
    fn help() -> &'static [(&'static str, &'static str)] {
        &[
            ("backbone", "wrn28_2, wrn16_2, wrn10_2, resnet18, resnet50 or resnet50_imagenet"),
            ("init", "starting weights: none, pretrain (the pretrain stage's encoder) or a saved backbone's folder"),
            ("epochs", "training epochs"),
            ("batch_size", "labelled images per optimiser step"),
            ("min_steps_per_epoch", "cycle a small labelled set until an epoch has at least this many steps"),
            ("schedule", "learning rate: {lr, milestones (epochs, 1-based), gamma, milestones_in, warmup_steps}"),
            ("optimizer", "SGD: {momentum, nesterov, weight_decay, dampening}"),
            ("augment", "training augmentations, e.g. [{crop: {padding: 4}}, flip]"),
            ("eval_every", "epochs between test evaluations"),
            ("eval_batch_size", "images per batch when evaluating"),
            ("test_views", "plain | mirror: test predictions of the image, or averaged with its mirror image's"),
        ]
    }
}
