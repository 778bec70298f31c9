//! The `fixmatch` learner: FixMatch (Sohn et al., NeurIPS 2020) as relab runs it (`docs/method.md` §6b), on core's
//! training loop.
//!
//! The labelled set is the learner input's (for ReLaB: the selected subset with its propagated labels); the
//! unlabelled pool is every training image, the labelled ones included (§6b.1 item 1). An epoch is
//! `steps_per_epoch` steps ([`sampler`]). Each step:
//!
//! 1. the loader makes weak views α (flip, reflect shift of 12.5 % of the side) of `B` labelled and `μB` unlabelled
//!    images; the step makes a strong view of each unlabelled image ([`views`]): a fresh weak view, CTAugment's
//!    training policy drawn from its current rates (or RandAugment, `strong: randaugment`), then Cutout;
//! 2. one forward pass over `[α(x) | α(u) | 𝒜(u)]`, so batch norm sees all `B + 2μB` rows, as TF;
//! 3. the online model's weak unlabelled rows, without gradient, give hard pseudo-labels and the mask
//!    `max q ≥ τ` ([`pseudo_labels`]), after distribution alignment when it is on ([`alignment`]);
//! 4. `L = ℓ_s + λ_u·ℓ_u`, `ℓ_u` the masked mean over all `μB` rows ([`loss`]); SGD with Nesterov momentum at the
//!    cosine rate ([`cosine`]);
//! 5. after the update, with CTAugment, its probes: each labelled image of the step under a uniform probe policy (on a
//!    fresh weak view, no Cutout) through the EMA model, and the bin rates move towards `probe_accuracy`; then the
//!    EMA moves towards the new weights.
//!
//! The EMA model is evaluated (its last, best and median-of-the-last-20 test accuracies are the stage's headline)
//! and saved as the stage's weights. Each epoch logs `loss_x`, `loss_u`, `mask` (the share of unlabelled images
//! whose pseudo-label is used), `pseudo_label_accuracy` and `masked_pseudo_label_accuracy` (against the hidden true
//! labels of the unlabelled images, over all of them and over the used ones: a diagnostic, never used in
//! training) and `cta/<op>`, CTAugment's mean sampling weight per op.
//!
//! Where this differs from TF's FixMatch, and why:
//! - **Weight decay** is core's SGD's: coupled L2 (`g + wd·w`, through the momentum, as TF) on *every* parameter,
//!   biases and batch-norm scales and shifts included; TF decays the kernels only. Core's SGD has no kernel-only
//!   option.
//! - **The cosine** `η₀·cos(7πk/(16K))` is followed by core's step-milestone schedule within a factor `γ^(±½)`
//!   of the curve at every step, `γ = min(0.99, 1 − 7/K)`: core's `LrSchedule` has no cosine and the loop takes its
//!   rate from it ([`cosine`]). A cosine in core's schedule would make it exact.
//! - **The EMA** is core's [`Ema`](relab_core::train::Ema), kept by the recipe rather than the loop
//!   (`Run::ema`), because the probes in `after_step` need it. It averages the batch-norm running statistics too;
//!   TF evaluates the averaged weights with the online model's running statistics.
//! - **Batch-norm momentum** is the backbone's (PyTorch's 0.1, as ReLaB's networks); TF's is 0.001.
//! - **Sampling**: each epoch draws fresh shuffled passes over the labelled set and over the pool, as many as it
//!   needs; TF streams both with a shuffle buffer of 8192.
//! - **Cutout** is a square of `round(cutout·side)` pixels (8 on 16, 16 on 32: TF CTA's `1 + ⌊0.499·side⌋` on
//!   those sizes) filled with grey 0.5, after the strong augmentation, also with `strong: weak`.
//! - **Distribution alignment** (off by default, not in FixMatch): `p_model` is a per-step moving mean
//!   (momentum 0.999, USB's form), not ReMixMatch's mean of the last 128 batches.
pub mod alignment;
pub mod cosine;
pub mod loss;
mod params;
pub mod pseudo_labels;
pub mod sampler;
mod trainer;
pub mod views;

pub use params::{FixMatchParams, RandAugmentParams, Strong};
pub use trainer::FixMatch;
