//! Propagators of the ReLaB method (`docs/method.md` §3).
//!
//! `diffusion` is the method's propagation: L2-normalise, PCA-whiten, L2-normalise, exact kNN graph, symmetric
//! normalisation and one conjugate-gradient solve per class (all classes together). `nearest-seed` is the
//! original's non-diffusion path: every sample takes the label of its nearest seed.

mod cg;
mod class_mass;
mod csr;
mod diffusion;
mod graph;
mod nearest_seed;
mod params;
mod reorder;
mod score_block;
mod sinkhorn;

pub use cg::{Solution, solve, solve_in_order};
pub use class_mass::normalise_class_mass;
pub use csr::Csr;
pub use diffusion::{Diffusion, Outcome, PhaseSeconds, right_hand_sides, scores_and_labels};
pub use graph::{Graph, build as build_graph, edge_weight};
pub use nearest_seed::{Metric, NearestSeed, NearestSeedParams};
pub use params::{Balance, DiffusionParams, KnnOn, Weights};
pub use sinkhorn::balance_sinkhorn;
