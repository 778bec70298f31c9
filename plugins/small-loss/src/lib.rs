//! The `small-loss` selector (`docs/method.md` §4): a network trained from scratch on every training image with
//! its propagated label fits the correctly labelled ones first. Each image's loss, measured un-augmented after each
//! of the last epochs and averaged, ranks it; the seeds rank first; each propagated class keeps its `per_class`
//! best-ranked images. The kept images carry their propagated labels (the seeds their true ones).
//!
//! Differences from the released code, on purpose: a class with fewer candidates than its quota keeps what it has
//! and is reported (the original repeats training index 0, bug B5); seeds train and count with their true label
//! (the original uses their propagated label, which equals it in practice); `sample` trains on a subset for quick
//! runs.

mod params;
mod pool;
mod ranking;
mod selector;
mod tracker;
mod training;

pub use params::SmallLossParams;
pub use pool::training_pool;
pub use ranking::{Candidate, Selection, Shortfall, select};
pub use selector::SmallLoss;
pub use tracker::LossTracker;
