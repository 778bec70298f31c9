//! An example plugin library: RotNet-style self-supervised pretraining (Gidaris et al., 2018). Each training image
//! is shown in its four rotations (0°, 90°, 180°, 270°) and the network learns to tell which; the encoder it hands to
//! the features stage is the backbone's pooled feature.
//!
//! It is built like any crate that depends on relab-core alone (see `Cargo.toml`) and loaded by relab at run time:
//! `relab --plugin target/release/librelab_example_rotation.so run experiment.yaml`, or `plugins:` in the
//! experiment file. The last line of this file is all that makes it a plugin library.

mod encoder;
mod method;
mod params;
pub mod rotate;

pub use method::RotationPrediction;
pub use params::RotationParams;

relab_core::export_plugins! { pretrain: RotationPrediction }
