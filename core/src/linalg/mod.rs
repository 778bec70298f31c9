//! Dense numerics shared by the host and the plugins: a symmetric eigensolver, PCA (projection and whitening) and
//! exact k-nearest-neighbour search, all on CPU cores through SIMD matrix products (`gemm`) and rayon.

mod eigen;
mod knn;
mod normalise;
mod pca;

pub use eigen::{SymmetricEigen, symmetric_eigen};
pub use knn::{Neighbours, knn_tiles, nearest_neighbours};
pub use normalise::l2_normalise_rows;
pub use pca::{Pca, PcaError};
