//! Image operations with PIL's semantics, on the `f32` `[0, 1]` images of [`super::Image`]: what CTAugment and
//! RandAugment call (`ImageOps`, `ImageEnhance`, `ImageFilter`, `Image.transform`), so their magnitudes mean what
//! they mean in the reference code.
//!
//! Values stay `f32` between operations. Where PIL's result depends on 8-bit levels (histograms and lookup tables:
//! autocontrast, equalize, posterize, solarize; the grey image of color and contrast) the input is quantised to
//! the level `round(255·x)` first; blends and filters are computed exactly and clipped to `[0, 1]` without
//! PIL's rounding to bytes, which changes values by less than one grey level.
//!
//! 1-channel images: every operation is defined. The grey image PIL's `convert("L")` makes is the image itself,
//! so `color` is the identity and `contrast` blends with the image's own mean level; the rest act on the one
//! plane as on each plane of an RGB image.

mod colour;
mod filter;
mod geometry;

pub use colour::{
    autocontrast, blend, brightness, color, contrast, equalize, grey_levels, invert, level, posterize, sharpness,
    solarize,
};
pub use filter::{blur, smooth};
pub use geometry::{affine_nearest, rotate, shear_x, shear_y, translate_x, translate_y};
