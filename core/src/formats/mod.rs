//! The file formats relab reads and writes, apart from what the files mean: NumPy `.npy` arrays ([`npy`]) and
//! `.npz` archives ([`npz`]), atomic writes ([`atomic`]), the Python pickles of the CIFAR files ([`pickle`]), the
//! IDX files of MNIST ([`idx`]), possibly-gzipped input ([`gzip`]), the content digests written beside artifacts
//! ([`digest`]) and TensorBoard event files ([`tfevents`]).
//!
//! [`crate::artifact`] and [`crate::data`] give these files their meaning and re-export the modules at their old
//! paths (`artifact::npy`, `artifact::npz`, `artifact::atomic`, `data::pickle`, `data::idx`).

pub mod atomic;
pub mod digest;
pub(crate) mod gzip;
pub mod idx;
pub mod npy;
pub mod npz;
pub mod pickle;
pub mod tfevents;
