//! Backbones and heads of the method (`docs/method.md` §2.3, §2.5, §5.3).
//!
//! * [`wrn`]: WRN-28-2 (pre-activation, LeakyReLU 0.1), the network of Pseudo-Labeling and sample selection.
//! * [`resnet`]: CIFAR-style ResNet-18/50 (iMix features) and torchvision's ImageNet ResNet-50 (transfer).
//! * [`heads`]: the iMix projection head and the rotation head.
//! * [`backbone`]: the four networks behind one module, chosen by [`BackboneKind`] name, returning pooled features
//!   and logits.
//! * [`store`]: a backbone on disk, `weights.safetensors` + `model.json`.
//! * [`conv`], [`batch_norm`]: the convolution and training-mode batch norm every network calls, on relab's own
//!   CPU kernels ([`crate::kernels`]) where the tensors live on burn's CPU backend.
//! * [`init`], [`ops`], [`params`]: initialisers, parameter-free operations, PyTorch-style parameter counts.
//! * [`seeded`]: building a module from a seed while other threads of the process draw too.
//!
//! Two differences from PyTorch that no configuration removes: burn's batch norm updates its running variance with
//! the biased batch variance (PyTorch: unbiased, a factor n/(n − 1) with n = B·H·W values per channel), and a batch
//! norm takes its training path only on an autodiff device (`Module::valid()` gives the evaluation model).

pub mod backbone;
pub mod batch_norm;
pub mod conv;
mod flex_values;
pub mod heads;
pub mod init;
pub mod ops;
pub mod params;
pub mod resnet;
pub mod seeded;
pub mod store;
pub mod wrn;

/// The CPU kernels, at their old paths (they live in [`crate::kernels`]).
pub use crate::kernels::{batch_norm_cpu, conv_cpu, conv_direct};

pub use backbone::{Backbone, BackboneConfig, BackboneKind, BackboneOutput};
pub use heads::{ProjectionHead, ProjectionHeadConfig, RotationHead, RotationHeadConfig};
pub use params::trainable_params;
pub use resnet::{ResNet, ResNetConfig};
pub use seeded::seeded;
pub use store::{MODEL_FILE, WEIGHTS_FILE, copy_backbone, load_backbone, save_backbone};
pub use wrn::{Wrn, WrnConfig};
