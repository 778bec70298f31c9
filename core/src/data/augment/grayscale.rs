//! Random grayscale (torchvision's `RandomGrayscale`), and the luma conversion colour jitter also needs.
//!
//! A 1-channel image is already grey, so on it this is the identity (the random draw is still made, so the
//! draws after it do not depend on the channel count).

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::flip::check_probability;
use super::image::Image;

/// ITU-R 601 luma weights, as PIL's `convert("L")`.
pub const LUMA: [f32; 3] = [0.299, 0.587, 0.114];

/// Replace the colour image by its luma in all three channels with probability `p` (default 0.2, the method's
/// value in §2.2; torchvision's own default is 0.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RandomGrayscale {
    pub p: f32,
}

impl Default for RandomGrayscale {
    fn default() -> Self {
        RandomGrayscale { p: 0.2 }
    }
}

impl RandomGrayscale {
    pub fn apply<R: Rng + ?Sized>(&self, img: Image, rng: &mut R) -> Image {
        let hit = rng.random::<f32>() < self.p;
        if hit && img.c == 3 { grayscale(&img) } else { img }
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        check_probability("grayscale", self.p)
    }
}

/// The luma plane of an RGB image.
pub fn luma(img: &Image) -> Vec<f32> {
    let (r, g, b) = (img.plane(0), img.plane(1), img.plane(2));
    r.iter().zip(g).zip(b).map(|((r, g), b)| LUMA[0] * r + LUMA[1] * g + LUMA[2] * b).collect()
}

/// An RGB image as grey in all three channels.
pub fn grayscale(img: &Image) -> Image {
    let l = luma(img);
    Image::new(3, img.h, img.w, [l.as_slice(), &l, &l].concat())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn weights_are_299_587_114() {
        // One pixel each of pure red, green and blue, and one white.
        let img = Image::new(3, 1, 4, vec![1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0]);
        let g = grayscale(&img);
        for c in 0..3 {
            let p = g.plane(c);
            assert!((p[0] - 0.299).abs() < 1e-7 && (p[1] - 0.587).abs() < 1e-7 && (p[2] - 0.114).abs() < 1e-7);
            assert!((p[3] - 1.0).abs() < 1e-6);
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        assert_eq!(RandomGrayscale { p: 1.0 }.apply(img.clone(), &mut rng), g);
        assert_eq!(RandomGrayscale { p: 0.0 }.apply(img.clone(), &mut rng), img);
    }

    #[test]
    fn grey_images_are_left_alone() {
        let img = Image::new(1, 1, 2, vec![0.2, 0.9]);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        assert_eq!(RandomGrayscale { p: 1.0 }.apply(img.clone(), &mut rng), img);
    }
}
