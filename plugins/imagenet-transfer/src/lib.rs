//! The `imagenet` SSL method: instead of self-supervised training, phase 1 takes torchvision's supervised ImageNet
//! ResNet-50 (`docs/method.md` §2.5, the pre-cleanup ReLaB's `--load imagenet`). Nothing is trained: the state dict
//! is read from a `.pth` or `.safetensors` file, its torchvision key names mapped onto relab's ResNet-50, and the
//! encoder's features are the pooled 2048-d vector of images upsampled (bilinear) to `size` × `size`, repeated to
//! three channels when grey, and normalised with the dataset's statistics (as the original did) or ImageNet's.
//!
//! * [`params`]: the YAML parameters.
//! * [`torchvision`]: torchvision's key names, reading a state dict, checking it against the network.
//! * [`network`]: the ResNet-50 the weights go into, and putting named tensors into it.
//! * [`preprocess`]: grey to RGB, resize, normalise.
//! * [`encoder`]: the [`Encoder`](relab_core::component::Encoder), its files and how it is read back.
//! * [`method`]: the [`SslMethod`](relab_core::component::SslMethod) registered as `imagenet`.

pub mod encoder;
pub mod method;
pub mod network;
pub mod params;
pub mod preprocess;
pub mod torchvision;

pub use encoder::ImageNetEncoder;
pub use method::ImageNetTransfer;
pub use params::{ImageNetParams, Normalise};
pub use preprocess::Preprocess;
