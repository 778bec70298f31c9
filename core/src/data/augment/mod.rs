//! Image augmentations on `f32` CHW images in `[0, 1]`, each seeded by the caller's generator, with torchvision's
//! semantics (docs/method.md §2.2), and a YAML-configurable [`Pipeline`] of them.
//!
//! On 1-channel images the colour operations that have no grey meaning (saturation, hue, grayscale) are the
//! identity; brightness and contrast still apply.

mod center_crop;
mod color_jitter;
mod crop;
mod ct_ops;
mod ctaugment;
mod cutout;
mod flip;
mod grayscale;
mod image;
pub mod pil;
mod pipeline;
mod randaugment;
mod resize;
mod resized_crop;

pub use center_crop::CenterCrop;
pub use color_jitter::{ColorJitter, brightness, contrast, hue, saturation};
pub use crop::{PadMode, RandomCrop};
pub use ct_ops::CtOp;
pub use ctaugment::{CtAugment, CtAugmentConfig, OpDraw, Policy, probe_accuracy};
pub use cutout::Cutout;
pub use flip::{Flip, flip};
pub use grayscale::{LUMA, RandomGrayscale, grayscale, luma};
pub use image::Image;
pub use pipeline::{AUGMENT_NAMES, Augment, Pipeline};
pub use randaugment::{RaOp, RandAugment};
pub use resize::{Resample, Resize, resize_bilinear, resize_with};
pub use resized_crop::{RandomResizedCrop, Window};
