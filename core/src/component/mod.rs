//! The four component slots of the method. Each slot is one object-safe trait; plugins implement them.
//!
//! burn 0.22 tensors and modules carry no backend type parameter (the backend is the runtime
//! [`burn::tensor::Device`] in [`StageContext`]), so these traits need no generics and can be boxed.

mod checkpoint_manifest;
mod context;
pub mod headline;
mod inputs;
mod learner;
mod propagate_stage;
mod propagator;
mod selector;
mod ssl_method;
mod stage_kind;

pub use context::{MetricsSink, StageContext, is_checkpoint_entry};
pub use inputs::{LearnerInput, SelectorInput};
pub use learner::SemiSupervisedLearner;
pub use propagate_stage::PropagateStage;
pub use propagator::Propagator;
pub use selector::Selector;
pub use ssl_method::{Encoder, FeatureOutput, SslMethod};
pub use stage_kind::StageKind;
