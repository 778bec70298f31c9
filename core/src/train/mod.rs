//! Shared training parts: the training loop, losses, mixup, EMA/SWA, schedules, metrics, the kNN monitor.
//!
//! Everything here works for any burn [`Module`](burn::module::Module) and any device; the phases' trainers
//! (plugins) put them together:
//!
//! * [`fit`] — the one training loop: epochs, steps, schedule, NaN guard, evaluation, metrics, checkpoints and
//!   resume; a plugin gives a [`Recipe`] (an epoch's order, one batch's loss, hooks).
//! * [`losses`] — soft-target and hard-label cross-entropy, the N-pairs / InfoNCE loss of iMix.
//! * [`mixup`] — `λ ~ Beta(α, α)`, `λ ← max(λ, 1−λ)`, per batch or per sample, and the permutation.
//! * [`schedule`] — learning-rate schedules (constant, multi-step, linear ramp-up) as pure functions.
//! * [`optim`] — PyTorch's SGD (momentum, Nesterov, coupled weight decay) and Adam with decoupled weight decay on
//!   kernels only, taking a learning rate per step.
//! * [`ema`], [`swa`] — weight averages, and the batch-norm statistics recompute for SWA.
//! * [`metrics`], [`knn`] — accuracy, confusion matrix, the weighted kNN monitor.
//! * [`extract`] — features of an image set through any encoder in evaluation mode.
//! * [`predict`] — class probabilities of an image set, optionally averaged with the mirror images'.
//! * [`checkpoint`] — model weights and optimiser state for bit-identical resume.
//! * [`guard`] — the per-step non-finite loss check.
//! * [`init_weights`] — a learner's starting weights: fresh, the pretrain encoder's, or a saved backbone's.

pub mod checkpoint;
pub mod ema;
pub mod extract;
pub mod fit;
pub mod guard;
pub mod init_weights;
pub mod knn;
pub mod losses;
pub mod metrics;
pub mod mixup;
pub mod optim;
pub mod predict;
pub mod schedule;
pub mod sgd;
pub mod swa;
mod walk;

pub use checkpoint::{load_module, load_optimiser, save_module, save_optimiser};
pub use ema::Ema;
pub use extract::{extract_features, extract_with};
pub use fit::{At, Fit, Phase, Recipe, Run, ScheduleEpoch, StepLoss, Trained};
pub use guard::finite_loss;
pub use init_weights::{Init, initial_weights};
pub use knn::KnnClassifier;
pub use losses::{cross_entropy, n_pairs_loss, soft_cross_entropy};
pub use metrics::{ConfusionMatrix, accuracy};
pub use mixup::Mix;
pub use optim::{AdamSettings, EpsilonStyle, Optimiser, OptimiserSettings, Scheduled, SgdSettings};
pub use predict::{EvalInput, Views, class_probabilities, views_accuracy};
pub use schedule::LrSchedule;
pub use swa::{BnRecompute, Swa, recompute_bn_stats};
pub use walk::leaf_bytes;
