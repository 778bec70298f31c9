//! The `imix` SSL method (ReLaB phase 1, `docs/method.md` §2): iMix / N-pairs contrastive pretraining.
//!
//! Every step takes a batch of images, makes two independently augmented views of each ([`views`]), mixes the
//! first views with one λ ~ Beta(1, 1), λ ← max(λ, 1−λ), and one permutation π, embeds both with the backbone and
//! projection head ([`network`]), and minimises `λ·CE(s_i, i) + (1−λ)·CE(s_i, π(i))` over the logits
//! `s_ij = ⟨z̃_i, z_j⟩/τ` ([`loss`]). The kNN monitor ([`monitor`]) measures the test accuracy of a weighted kNN
//! vote over the training features; the encoder with the best accuracy and the last one are kept ([`encoder`]).

pub mod encoder;
pub mod loss;
pub mod monitor;
pub mod network;
mod params;
mod trainer;
pub mod views;

pub use encoder::{EncoderRecord, ImixEncoder};
pub use params::{DefaultOutput, ImixParams, Keep, imix_views};
pub use trainer::{BEST_DIR, Imix, LAST_DIR};
