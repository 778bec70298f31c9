//! What stages hand each other, and the files they live in. Every artifact is a file a researcher can open:
//! `.npy`/`.npz` for arrays, safetensors for weights, JSON for descriptions.

mod classifier;
mod features;
mod labeled_set;
pub mod original;
mod propagation;

/// The array formats and atomic writes, at the paths plugins have always used.
pub use crate::formats::{atomic, npy, npz};

pub use classifier::{Classifier, TestAccuracy};
pub use features::Features;
pub use labeled_set::LabeledSet;
pub(crate) use labeled_set::read_indices;
pub use propagation::Propagation;
