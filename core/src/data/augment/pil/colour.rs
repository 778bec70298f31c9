//! PIL's colour operations (`ImageOps` lookup tables and `ImageEnhance` blends) per channel plane.

use super::super::image::Image;
use super::filter::smooth;

/// The 8-bit level of a `[0, 1]` value, as the reference code converts its float images for PIL.
#[inline]
pub fn level(v: f32) -> u8 {
    (v * 255.0).round().clamp(0.0, 255.0) as u8
}

/// Each plane through the lookup table `lut_of(histogram of that plane)`.
fn map_levels(mut img: Image, lut_of: impl Fn(&[usize; 256]) -> [u8; 256]) -> Image {
    let plane = img.h * img.w;
    if plane == 0 {
        return img;
    }
    for values in img.data.chunks_exact_mut(plane) {
        let mut hist = [0usize; 256];
        values.iter().for_each(|&v| hist[level(v) as usize] += 1);
        let lut = lut_of(&hist);
        values.iter_mut().for_each(|v| *v = lut[level(*v) as usize] as f32 / 255.0);
    }
    img
}

fn identity_lut() -> [u8; 256] {
    std::array::from_fn(|i| i as u8)
}

/// `ImageOps.autocontrast` (no cutoff): each plane's darkest level to 0 and brightest to 255, linearly, the
/// result truncated to a level as PIL does; a flat plane is left alone.
pub fn autocontrast(img: Image) -> Image {
    map_levels(img, |hist| {
        let lo = hist.iter().position(|&n| n > 0).unwrap_or(0);
        let hi = hist.iter().rposition(|&n| n > 0).unwrap_or(0);
        if hi <= lo {
            return identity_lut();
        }
        let scale = 255.0 / (hi - lo) as f64;
        let offset = -(lo as f64) * scale;
        std::array::from_fn(|i| ((i as f64 * scale + offset) as i64).clamp(0, 255) as u8)
    })
}

/// `ImageOps.equalize`: each plane's levels through PIL's cumulative-histogram table. PIL's `step` is
/// (pixels − the count of the highest level present) / 256, rounded down; when it is 0 (fewer than 257 pixels
/// off the top level, as on small images) or the plane has one level, the plane is unchanged.
pub fn equalize(img: Image) -> Image {
    map_levels(img, |hist| {
        let present: Vec<usize> = hist.iter().copied().filter(|&n| n > 0).collect();
        if present.len() <= 1 {
            return identity_lut();
        }
        let step = (present.iter().sum::<usize>() - present[present.len() - 1]) / 256;
        if step == 0 {
            return identity_lut();
        }
        let mut n = step / 2;
        std::array::from_fn(|i| {
            let out = (n / step).min(255) as u8;
            n += hist[i];
            out
        })
    })
}

/// `ImageOps.posterize`: keep the top `bits` (1..=8) of each level.
pub fn posterize(img: Image, bits: u32) -> Image {
    let mask = !((1u32 << (8 - bits.clamp(1, 8))) - 1) as u8;
    map_levels(img, |_| std::array::from_fn(|i| i as u8 & mask))
}

/// `ImageOps.solarize`: levels at or above `threshold` (0..=256) inverted.
pub fn solarize(img: Image, threshold: u32) -> Image {
    map_levels(img, |_| std::array::from_fn(|i| if (i as u32) < threshold { i as u8 } else { 255 - i as u8 }))
}

/// `ImageOps.invert`: `1 - x`.
pub fn invert(mut img: Image) -> Image {
    img.data.iter_mut().for_each(|v| *v = 1.0 - *v);
    img
}

/// `Image.blend(a, b, alpha)`: `a + alpha·(b − a)`, clipped to `[0, 1]`; alpha outside `[0, 1]` extrapolates.
pub fn blend(a: &Image, b: &Image, alpha: f32) -> Image {
    assert_eq!((a.c, a.h, a.w), (b.c, b.h, b.w), "blend needs images of one size");
    let data = a.data.iter().zip(&b.data).map(|(&x, &y)| (x + alpha * (y - x)).clamp(0.0, 1.0)).collect();
    Image { data, ..*a }
}

/// PIL's `convert("L")` levels, one per pixel: ITU-R 601 luma in PIL's fixed point for 3 channels, the levels
/// themselves for 1, the rounded mean level for any other count.
pub fn grey_levels(img: &Image) -> Vec<u8> {
    let n = img.h * img.w;
    match img.c {
        1 => img.data.iter().map(|&v| level(v)).collect(),
        3 => (0..n)
            .map(|i| {
                let [r, g, b] = [0, 1, 2].map(|c| level(img.data[c * n + i]) as u32);
                ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16) as u8
            })
            .collect(),
        c => (0..n)
            .map(|i| {
                let sum: u32 = (0..c).map(|k| level(img.data[k * n + i]) as u32).sum();
                ((sum as f32 / c as f32).round()) as u8
            })
            .collect(),
    }
}

/// `ImageEnhance.Brightness(factor)`: a blend with black, `factor·x`.
pub fn brightness(mut img: Image, factor: f32) -> Image {
    img.data.iter_mut().for_each(|v| *v = (factor * *v).clamp(0.0, 1.0));
    img
}

/// `ImageEnhance.Color(factor)`: a blend with the image's grey version. On a 1-channel image the grey version is
/// the image, so this is the identity (as in PIL); on counts other than 3 too.
pub fn color(img: Image, factor: f32) -> Image {
    if img.c != 3 {
        return img;
    }
    let grey = grey_levels(&img);
    let mut data = Vec::with_capacity(img.data.len());
    for _ in 0..3 {
        data.extend(grey.iter().map(|&g| g as f32 / 255.0));
    }
    blend(&Image { data, ..img }, &img, factor)
}

/// `ImageEnhance.Contrast(factor)`: a blend with the flat image at the mean grey level, rounded to a level.
pub fn contrast(mut img: Image, factor: f32) -> Image {
    let grey = grey_levels(&img);
    if grey.is_empty() {
        return img;
    }
    let mean = grey.iter().map(|&g| g as f64).sum::<f64>() / grey.len() as f64;
    let m = (mean + 0.5).floor() as f32 / 255.0;
    img.data.iter_mut().for_each(|v| *v = (m + factor * (*v - m)).clamp(0.0, 1.0));
    img
}

/// `ImageEnhance.Sharpness(factor)`: a blend with the SMOOTH-filtered image (whose border is the image's own).
pub fn sharpness(img: Image, factor: f32) -> Image {
    blend(&smooth(&img), &img, factor)
}
