use super::StageContext;
use crate::Result;
use crate::artifact::{LabeledSet, Propagation};
use crate::data::Dataset;

/// Phase 2b: keep the training samples whose propagated label is reliable. The result is the extended labelled set
/// the learner trains on (seeds included, with their true labels).
pub trait Selector: Send {
    fn select(
        &mut self,
        ctx: &mut StageContext,
        data: &Dataset,
        propagation: &Propagation,
        seeds: &LabeledSet,
    ) -> Result<LabeledSet>;
}
