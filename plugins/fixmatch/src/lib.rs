//! The `fixmatch` learner: FixMatch (Sohn et al., NeurIPS 2020) as relab runs it (`docs/method.md` §6b).
pub mod alignment;
pub mod cosine;
pub mod loss;
mod params;
pub mod pseudo_labels;
pub mod sampler;
mod trainer;
pub mod views;

pub use params::FixMatchParams;
pub use trainer::FixMatch;
