//! What the selector and the learner are handed: one struct per slot, so that a new input is a new field that
//! plugins may read, not a new argument in every plugin's signature.
use super::{Encoder, PropagateStage};
use crate::artifact::{Features, LabeledSet, Propagation};
use crate::data::Dataset;

/// The select stage's inputs.
pub struct SelectorInput<'a> {
    pub data: &'a Dataset,
    /// The propagate stage's output: every training image's scores and label.
    pub propagation: &'a Propagation,
    /// The labelled seeds, with their true labels.
    pub seeds: &'a LabeledSet,
    /// The features the labels were propagated over, when the experiment has a features stage.
    pub features: Option<&'a Features>,
    /// The pretrain stage's encoder, when the experiment has one.
    pub encoder: Option<&'a dyn Encoder>,
}

impl<'a> SelectorInput<'a> {
    /// Inputs without features or encoder (tests, or a pipeline that has neither).
    pub fn new(data: &'a Dataset, propagation: &'a Propagation, seeds: &'a LabeledSet) -> Self {
        SelectorInput { data, propagation, seeds, features: None, encoder: None }
    }
}

/// The train stage's inputs.
pub struct LearnerInput<'a, 'p> {
    pub data: &'a Dataset,
    /// The labelled set to train on: the selected subset with its propagated labels, or the seeds.
    pub labeled: &'a LabeledSet,
    /// The pretrain stage's encoder, when the experiment has one (`init: pretrain` starts from its network).
    pub encoder: Option<&'a dyn Encoder>,
    /// The propagate stage, when the experiment has one: the labelled set was selected from its output, a learner
    /// may also use the propagated labels of the other images, and propagate the seeds again over its own
    /// network's features ([`PropagateStage::propagate_again`]).
    pub propagation: Option<&'a mut PropagateStage<'p>>,
    /// The features stage's output, when the experiment has one.
    pub features: Option<&'a Features>,
}

impl<'a> LearnerInput<'a, '_> {
    /// Inputs of a learner with a labelled set only (tests, or an experiment with no other stage).
    pub fn new(data: &'a Dataset, labeled: &'a LabeledSet) -> Self {
        LearnerInput { data, labeled, encoder: None, propagation: None, features: None }
    }
}
