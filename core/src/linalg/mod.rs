//! Dense numerics shared by the host and the plugins: a symmetric eigensolver, PCA (projection and whitening) and
//! exact k-nearest-neighbour search, all on CPU cores through SIMD matrix products (`gemm`) and rayon; the exact
//! kNN also on a burn device (`knn_device`), for runs that have a GPU.

mod eigen;
mod knn;
mod knn_device;
mod normalise;
mod pca;

pub use eigen::{SymmetricEigen, symmetric_eigen};
pub use knn::{Neighbours, knn_tiles, nearest_neighbours};
pub use knn_device::{DeviceKnnError, device_block_rows, device_knn_blocks, nearest_neighbours_on_device};
pub use normalise::l2_normalise_rows;
pub use pca::{Pca, PcaError};
