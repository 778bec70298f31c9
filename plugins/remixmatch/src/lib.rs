//! The `remixmatch` learner: ReMixMatch (Berthelot et al. 2020) as ReLaB runs it (`docs/method.md` §6), on core's
//! training loop.
//!
//! Each step takes `B` labelled images (the labelled set: for ReLaB, the selected subset with its propagated labels)
//! and `B` unlabelled ones (every training image), each unlabelled image in one weak view and `K` CTAugment views
//! ([`views`]). The weak view's prediction, aligned to the labelled class distribution and sharpened, is the guess
//! for all `K + 1` views ([`guess`]); everything is mixed with everything, one λ per sample; the loss adds the
//! pre-mixup loss on the first strong view and the rotation loss ([`loss`], [`rotation`]). Adam with decoupled
//! decay of the kernels, the EMA model for evaluation and for CTAugment's probes ([`trainer`]).
//!
//! **One forward pass per step.** The original runs the label guess, the rotation batch and ten interleaved chunks
//! of the mixed batch through the network separately, with batch-norm statistics updated from the last chunk
//! alone (`post_ops`). Here the mixed batch `[x; u_0..u_K]`, the unmixed weak and first strong views and the
//! rotated strong view go through the network as one batch of `(K + 5)·B` images: one large pass, which the CPU
//! kernels run far better than several small ones, whose batch-norm statistics (used to normalise and, once per
//! step, to update the running averages) are those of the whole batch. Interleaving only served to give every
//! chunk the same share of labelled images; one pass over everything does that by itself. The guess is therefore
//! made with batch statistics of the whole batch rather than of the weak views alone.
//!
//! **Logged per epoch** (means over its steps): `loss_x`, `loss_u`, `loss_kl`, `loss_rot`, `ramp`;
//! `probe_accuracy`, the mean of CTAugment's `1 − ½·Σ|p − onehot|` over the probes; `guess_accuracy`, the share of
//! label guesses whose argmax is the unlabelled image's hidden true label (a diagnostic only, never used in
//! training); `guess_confident`, the share of guesses whose largest aligned probability (before sharpening) is at
//! least 0.95. ReMixMatch masks nothing, so it has no mask rate; this is the closest analogue of FixMatch's. After
//! each epoch, `cta/<op>`: CTAugment's [`op_rates`](relab_core::data::augment::CtAugment::op_rates), the mean
//! sampling weight of each op's bins (identity has none).
//!
//! **Where this differs from the original**, besides the one forward pass:
//! * relab's WRN keeps PyTorch's batch norm (momentum 0.1, ε 1e-5) where the TensorFlow WRN has decay 0.999 and
//!   ε 1e-3; images are normalised with the dataset's mean and standard deviation instead of scaled to [−1, 1].
//! * The EMA is the recipe's own, not the loop's (`Run::ema`): the probes need it inside the step. Probes are
//!   classified, and the rates updated, before the step's optimiser update (the original runs both in one session
//!   call).
//! * Every epoch starts fresh shuffled passes over the labelled and the unlabelled images (the original draws from
//!   endless shuffled streams); each view of an unlabelled image has its own weak augmentation.
//! * `redux` and `mixmode` are fixed to the method's `1st` and `xxy.yxy`; they are not parameters.

pub mod guess;
pub mod loss;
pub mod model;
mod params;
pub mod rotation;
mod trainer;
pub mod views;

pub use params::{RemixMatchParams, ramp};
pub use trainer::RemixMatch;
