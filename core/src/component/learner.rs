use super::{Encoder, StageContext};
use crate::Result;
use crate::artifact::{Classifier, LabeledSet};
use crate::data::Dataset;

/// Phase 3: train a classifier on the labelled subset plus all (unlabelled) training images, evaluate it on the
/// test split. `init` is the pretrain stage's encoder when the experiment asks to start from it.
pub trait SemiSupervisedLearner: Send {
    fn train(
        &mut self,
        ctx: &mut StageContext,
        data: &Dataset,
        labeled: &LabeledSet,
        init: Option<&dyn Encoder>,
    ) -> Result<Classifier>;
}
