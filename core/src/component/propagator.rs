use super::StageContext;
use crate::Result;
use crate::artifact::{Features, LabeledSet, Propagation};

/// Phase 2a: spread the seed labels over all training samples using their features.
///
/// Contract: `features` has one row per training image, in the dataset's order. The result has `features.rows`
/// rows of `num_classes` scores, higher meaning more likely (they need not be probabilities: the selector and the
/// learners rank and normalise them), and one hard label per row, normally the argmax with ties to the lower class
/// ([`Propagation::from_scores`]). Seeds keep their own labels. Non-finite features are an error, not class 0. The
/// same inputs and seed give the same bits: draw randomness from `ctx.rng` only. The shared numerics are in
/// [`crate::linalg`]: the exact blocked kNN ([`crate::linalg::nearest_neighbours`], or on the run's GPU with
/// [`crate::linalg::nearest_neighbours_on_device`]), PCA and whitening ([`crate::linalg::Pca`]), row normalisation
/// ([`crate::linalg::l2_normalise_rows`]).
pub trait Propagator: Send {
    fn propagate(
        &mut self,
        ctx: &mut StageContext,
        features: &Features,
        seeds: &LabeledSet,
        num_classes: usize,
    ) -> Result<Propagation>;
}
