//! What stages hand each other, and the files they live in. Every artifact is a file a researcher can open:
//! `.npy`/`.npz` for arrays, safetensors for weights, JSON for descriptions.

pub mod atomic;
mod classifier;
mod features;
mod labeled_set;
pub mod npy;
pub mod npz;
pub mod original;
mod propagation;

pub use classifier::{Classifier, TestAccuracy};
pub use features::Features;
pub use labeled_set::LabeledSet;
pub(crate) use labeled_set::read_indices;
pub use propagation::Propagation;
