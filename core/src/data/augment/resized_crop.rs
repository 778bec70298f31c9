//! Random resized crop (torchvision's `RandomResizedCrop`), the first and strongest step of the iMix views
//! (docs/method.md §2.2): a window of random area and aspect ratio, resized to a fixed size.

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::image::Image;
use super::resize::resize_bilinear;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RandomResizedCrop {
    /// Output side (square); default: the input's own size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<usize>,
    /// Range of the window's area as a fraction of the image's.
    pub scale: [f32; 2],
    /// Range of the window's width / height.
    pub ratio: [f32; 2],
}

impl Default for RandomResizedCrop {
    /// torchvision's defaults.
    fn default() -> Self {
        RandomResizedCrop { size: None, scale: [0.08, 1.0], ratio: [3.0 / 4.0, 4.0 / 3.0] }
    }
}

/// A window: top, left, height, width.
pub type Window = (usize, usize, usize, usize);

impl RandomResizedCrop {
    pub fn output_size(&self, h: usize, w: usize) -> (usize, usize) {
        self.size.map_or((h, w), |s| (s, s))
    }

    pub fn apply<R: Rng + ?Sized>(&self, img: Image, rng: &mut R) -> Image {
        let (top, left, h, w) = self.window(img.h, img.w, rng);
        let (oh, ow) = self.output_size(img.h, img.w);
        resize_bilinear(&img.crop(top, left, h, w), oh, ow)
    }

    /// torchvision's `get_params`: ten tries at a window with area and log-ratio drawn uniformly that fits the
    /// image; failing that, the largest centred window whose ratio is clamped into range.
    pub fn window<R: Rng + ?Sized>(&self, height: usize, width: usize, rng: &mut R) -> Window {
        let area = (height * width) as f64;
        let (log_lo, log_hi) = ((self.ratio[0] as f64).ln(), (self.ratio[1] as f64).ln());
        for _ in 0..10 {
            let target = area * uniform(rng, self.scale[0] as f64, self.scale[1] as f64);
            let aspect = uniform(rng, log_lo, log_hi).exp();
            // Python's round() rounds halves to even.
            let w = (target * aspect).sqrt().round_ties_even() as usize;
            let h = (target / aspect).sqrt().round_ties_even() as usize;
            if 0 < w && w <= width && 0 < h && h <= height {
                let top = rng.random_range(0..=height - h);
                let left = rng.random_range(0..=width - w);
                return (top, left, h, w);
            }
        }
        centred_fallback(height, width, self.ratio)
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        let [s0, s1] = self.scale;
        let [r0, r1] = self.ratio;
        if !(s0 > 0.0 && s0 <= s1 && s1.is_finite()) {
            return Err(format!("resized_crop: scale [{s0}, {s1}] must satisfy 0 < low <= high"));
        }
        if !(r0 > 0.0 && r0 <= r1 && r1.is_finite()) {
            return Err(format!("resized_crop: ratio [{r0}, {r1}] must satisfy 0 < low <= high"));
        }
        if self.size == Some(0) {
            return Err("resized_crop: size must be at least 1".into());
        }
        Ok(())
    }
}

fn uniform<R: Rng + ?Sized>(rng: &mut R, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * rng.random::<f64>()
}

/// The whole image when its ratio is in range, else the widest/tallest centred window at the nearest ratio.
fn centred_fallback(height: usize, width: usize, ratio: [f32; 2]) -> Window {
    let in_ratio = width as f64 / height as f64;
    let (lo, hi) = (ratio[0] as f64, ratio[1] as f64);
    let (h, w) = if in_ratio < lo {
        ((width as f64 / lo).round_ties_even() as usize, width)
    } else if in_ratio > hi {
        (height, (height as f64 * hi).round_ties_even() as usize)
    } else {
        (height, width)
    };
    ((height - h) / 2, (width - w) / 2, h, w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn windows_respect_scale_ratio_and_bounds() {
        let op = RandomResizedCrop::default();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for _ in 0..2000 {
            let (t, l, h, w) = op.window(32, 32, &mut rng);
            assert!(t + h <= 32 && l + w <= 32 && h > 0 && w > 0);
            let area = (h * w) as f64 / 1024.0;
            // rounding each side moves the area and ratio a little beyond the sampled range
            assert!((0.05..=1.0).contains(&area), "area {area}");
            let r = w as f64 / h as f64;
            assert!((0.6..=1.6).contains(&r), "ratio {r}");
        }
    }

    #[test]
    fn full_scale_and_square_ratio_takes_the_whole_image() {
        let op = RandomResizedCrop { size: Some(2), scale: [1.0, 1.0], ratio: [1.0, 1.0] };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        assert_eq!(op.window(4, 4, &mut rng), (0, 0, 4, 4));
        let img = Image::new(1, 4, 4, (0..16).map(|v| v as f32).collect());
        let out = op.apply(img, &mut rng);
        assert_eq!((out.h, out.w), (2, 2));
        // Each output pixel averages a 2×2 block with the widened triangle; the mean of all stays the same.
        let mean: f32 = out.data.iter().sum::<f32>() / 4.0;
        assert!((mean - 7.5).abs() < 1e-4, "{:?}", out.data);
    }

    #[test]
    fn impossible_windows_fall_back_to_a_centred_crop() {
        // A 1×10 strip cannot hold a window of ratio ≤ 4/3 covering ≥ 90% of it: the fallback clamps the ratio.
        let op = RandomResizedCrop { size: Some(1), scale: [0.9, 1.0], ratio: [0.75, 4.0 / 3.0] };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        assert_eq!(op.window(1, 10, &mut rng), (0, 4, 1, 1));
        assert_eq!(centred_fallback(10, 2, [0.75, 4.0 / 3.0]), (3, 0, 3, 2));
        assert_eq!(centred_fallback(5, 5, [0.75, 4.0 / 3.0]), (0, 0, 5, 5));
    }
}
