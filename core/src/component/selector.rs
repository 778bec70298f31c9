use super::{SelectorInput, StageContext};
use crate::Result;
use crate::artifact::LabeledSet;

/// Phase 2b: keep the training samples whose propagated label is reliable. The result is the extended labelled set
/// the learner trains on.
///
/// Contract: every index is a training image's (`0..data.train.len()`), listed once, with a label in
/// `0..num_classes`; the seeds are kept with their true labels; other samples carry their propagated label (or a
/// better guess the selector makes without the hidden true labels, which it may read only for diagnostics). Same
/// seed, same subset.
pub trait Selector: Send {
    fn select(&mut self, ctx: &mut StageContext, input: SelectorInput<'_>) -> Result<LabeledSet>;
}
