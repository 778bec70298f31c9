//! Propagators of the ReLaB method (`relab-method.md` §3).
//!
//! `nearest-seed` is the original's non-diffusion path: every sample takes the label of its nearest seed.
//! The `diffusion` propagator (kNN graph + conjugate gradient) is not in this crate yet.

mod nearest_seed;

pub use nearest_seed::{Metric, NearestSeed, NearestSeedParams};
