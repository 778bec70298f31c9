use super::{Encoder, PropagateStage, StageContext};
use crate::Result;
use crate::artifact::{Classifier, LabeledSet};
use crate::data::Dataset;

/// Phase 3: train a classifier on the labelled subset plus all (unlabelled) training images, evaluate it on the
/// test split. `init` is the pretrain stage's encoder when the experiment asks to start from it. `propagation` is the
/// propagate stage when the experiment has one: the labelled set was selected from its output, a learner may also
/// use the propagated labels of the other images (as `pseudo-label`'s `initial_pseudo_labels: propagation`), and
/// propagate the seeds again over its own network's features (`pseudo-label`'s `repropagate`).
pub trait SemiSupervisedLearner: Send {
    fn train(
        &mut self,
        ctx: &mut StageContext,
        data: &Dataset,
        labeled: &LabeledSet,
        init: Option<&dyn Encoder>,
        propagation: Option<&mut PropagateStage<'_>>,
    ) -> Result<Classifier>;
}
