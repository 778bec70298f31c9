//! Cutout (DeVries & Taylor, 2017): a `size × size` square, centred on a uniformly drawn pixel and clipped at the
//! borders, set to `value` in every channel. A regulariser: the network cannot lean on any one part of the
//! image.

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::flip::check_probability;
use super::image::Image;

/// Erase one square with probability `p` (default 1, as in the paper). The centre may lie on any pixel, so near
/// a border less than the full square is erased, which is the paper's choice and keeps every pixel equally likely
/// to be covered away from the borders.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Cutout {
    pub size: usize,
    pub p: f32,
    /// The fill, in the `[0, 1]` input range: 0 is black, the background of MNIST-like images.
    pub value: f32,
}

impl Default for Cutout {
    /// Half the side of a 16×16 image: a quarter of its area, the paper's ratio for CIFAR (16 of 32).
    fn default() -> Self {
        Cutout { size: 8, p: 1.0, value: 0.0 }
    }
}

impl Cutout {
    pub fn apply<R: Rng + ?Sized>(&self, img: Image, rng: &mut R) -> Image {
        if img.h == 0 || img.w == 0 || rng.random::<f32>() >= self.p {
            return img;
        }
        let cy = rng.random_range(0..img.h);
        let cx = rng.random_range(0..img.w);
        self.erase_at(img, cy, cx)
    }

    /// `img` with the square centred on (`cy`, `cx`) erased: rows and columns `centre - size/2 ..
    /// centre - size/2 + size`, clipped to the image. For even sizes this is the paper's code's window; for odd
    /// ones that code erases one row and column fewer (`centre ± size/2`), this erases `size`, as asked.
    pub fn erase_at(&self, mut img: Image, cy: usize, cx: usize) -> Image {
        let half = self.size / 2;
        let window = |centre: usize, n: usize| centre.saturating_sub(half)..(centre + self.size - half).min(n);
        let (rows, cols) = (window(cy, img.h), window(cx, img.w));
        let (h, w) = (img.h, img.w);
        for plane in img.data.chunks_exact_mut(h * w) {
            for y in rows.clone() {
                plane[y * w + cols.start..y * w + cols.end].fill(self.value);
            }
        }
        img
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.size == 0 {
            return Err("cutout: size must be at least 1".into());
        }
        if !self.value.is_finite() {
            return Err(format!("cutout: value = {} is not a finite number", self.value));
        }
        check_probability("cutout", self.p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn ones(c: usize, h: usize, w: usize) -> Image {
        Image::new(c, h, w, vec![1.0; c * h * w])
    }

    #[test]
    fn the_square_is_erased_in_every_channel_and_clipped_at_the_borders() {
        let cut = Cutout { size: 2, p: 1.0, value: 0.0 };
        // size 2 centred on (1, 2): rows 0..2, columns 1..3.
        let out = cut.erase_at(ones(2, 3, 4), 1, 2);
        #[rustfmt::skip]
        let plane = [
            1.0, 0.0, 0.0, 1.0,
            1.0, 0.0, 0.0, 1.0,
            1.0, 1.0, 1.0, 1.0,
        ];
        assert_eq!(out.data[..12], plane);
        assert_eq!(out.data[12..], plane);
        // size 3 centred on the corner (0, 0): rows and columns 0..2 only.
        let out = Cutout { size: 3, p: 1.0, value: 0.5 }.erase_at(ones(1, 3, 3), 0, 0);
        assert_eq!(out.data, vec![0.5, 0.5, 1.0, 0.5, 0.5, 1.0, 1.0, 1.0, 1.0]);
        // A square larger than the image erases all of it.
        let out = Cutout { size: 9, p: 1.0, value: 0.0 }.erase_at(ones(1, 3, 3), 2, 1);
        assert!(out.data.iter().all(|&v| v == 0.0));
    }

    #[test]
    fn random_centres_cover_every_pixel_and_p_zero_is_the_identity() {
        let cut = Cutout { size: 1, p: 1.0, value: 0.0 };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let mut hits = [0usize; 12];
        for _ in 0..600 {
            let out = cut.apply(ones(1, 3, 4), &mut rng);
            let erased: Vec<usize> = (0..12).filter(|&i| out.data[i] == 0.0).collect();
            assert_eq!(erased.len(), 1, "a 1×1 cutout erases exactly one pixel");
            hits[erased[0]] += 1;
        }
        assert!(hits.iter().all(|&n| n > 20), "every centre drawn: {hits:?}");
        let never = Cutout { p: 0.0, ..Cutout::default() };
        assert_eq!(never.apply(ones(1, 16, 16), &mut rng), ones(1, 16, 16));
    }

    #[test]
    fn bad_parameters_are_refused() {
        assert!(Cutout { size: 0, ..Cutout::default() }.validate().unwrap_err().contains("size"));
        assert!(Cutout { p: 1.5, ..Cutout::default() }.validate().unwrap_err().contains("probability"));
        assert!(Cutout { value: f32::NAN, ..Cutout::default() }.validate().unwrap_err().contains("finite"));
        assert!(Cutout::default().validate().is_ok());
    }
}
