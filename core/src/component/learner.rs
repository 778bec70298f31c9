use super::{LearnerInput, StageContext};
use crate::Result;
use crate::artifact::Classifier;

/// Phase 3: train a classifier on the labelled subset plus all (unlabelled) training images, evaluate it on the
/// test split.
///
/// Contract: the learner trains on `input.labeled` and the training images; the training images' true labels
/// (`data.train.labels`) may only be read for diagnostics, never for training. It writes its weights into
/// `ctx.dir()`, reports test accuracy in the returned [`Classifier`] when the test split has labels, and gives the
/// same bits for the same seed (draw randomness from `ctx.rng` or seeded loaders, build modules with `ctx.init`).
/// Training plugins run on core's loop ([`crate::train::Fit`]), which checkpoints and resumes them.
pub trait SemiSupervisedLearner: Send {
    fn train(&mut self, ctx: &mut StageContext, input: LearnerInput<'_, '_>) -> Result<Classifier>;
}
