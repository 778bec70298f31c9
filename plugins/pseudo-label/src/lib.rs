//! The `pseudo-label` learner: Pseudo-Labeling (Arazo et al. 2019) as ReLaB runs it (`docs/method.md` §5).
//!
//! Run 1, the warm-up, trains on the labelled set alone with mixup. Run 2 trains on every training image with
//! batches of labelled and unlabelled images ([`sampler`]): mixup of the images and of their soft targets (one-hot
//! labels, or pseudo-labels), the soft cross-entropy plus the class-prior and entropy regularisers ([`loss`]);
//! after each step the updated model predicts the batch's un-augmented images, and those predictions become the
//! unlabelled images' pseudo-labels at the end of the epoch ([`soft_labels`]). The weights of the last epochs are
//! averaged (SWA) and the average gets fresh batch-norm statistics. Both runs checkpoint every epoch and resume.

pub mod freeze;
pub mod images;
pub mod loss;
mod params;
pub mod sampler;
pub mod soft_labels;
mod trainer;

pub use params::{InitialPseudoLabels, PropagatedTargets, PseudoLabelParams, SwaParams, WarmupParams, jitter};
pub use relab_core::train::Init;
pub use trainer::PseudoLabel;
