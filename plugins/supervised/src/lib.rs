//! The `supervised` learner: a backbone trained with cross-entropy on the labelled set alone (the seeds, or the
//! subset a selector kept), evaluated on the test split after every epoch. It ignores the unlabelled images, which
//! makes it the baseline every semi-supervised learner and every selector is compared with.

mod params;
mod trainer;

pub use params::SupervisedParams;
pub use trainer::Supervised;
