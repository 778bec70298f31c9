use super::StageContext;
use crate::Result;
use crate::artifact::{Features, LabeledSet, Propagation};

/// Phase 2a: spread the seed labels over all training samples using their features.
pub trait Propagator: Send {
    fn propagate(
        &mut self,
        ctx: &mut StageContext,
        features: &Features,
        seeds: &LabeledSet,
        num_classes: usize,
    ) -> Result<Propagation>;
}
