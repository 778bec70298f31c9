//! Random crop after padding (torchvision's `RandomCrop(size, padding, padding_mode)`): the CIFAR-style
//! translation augmentation of phase 2b and of the semi-supervised trainers.

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::image::Image;

/// How the border added before cropping is filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PadMode {
    /// Black (value 0), torchvision's default `constant` fill.
    #[default]
    Zero,
    /// Mirror without repeating the edge pixel (torch's `reflect`): `… 2 1 | 0 1 2 …`.
    Reflect,
}

/// Pad every side by `padding`, then take a uniformly placed `size × size` window (default: the image's own
/// size, so the output has the input's shape).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RandomCrop {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<usize>,
    pub padding: usize,
    pub mode: PadMode,
}

impl Default for RandomCrop {
    /// The CIFAR setting: 4 pixels, zero fill.
    fn default() -> Self {
        RandomCrop { size: None, padding: 4, mode: PadMode::Zero }
    }
}

impl RandomCrop {
    pub fn output_size(&self, h: usize, w: usize) -> Result<(usize, usize), String> {
        let (th, tw) = self.size.map_or((h, w), |s| (s, s));
        if th > h + 2 * self.padding || tw > w + 2 * self.padding {
            return Err(format!("crop: a {th}×{tw} window does not fit a {h}×{w} image padded by {}", self.padding));
        }
        Ok((th, tw))
    }

    pub fn apply<R: Rng + ?Sized>(&self, img: Image, rng: &mut R) -> Image {
        let (th, tw) = self.output_size(img.h, img.w).expect("validated against the pipeline's input size");
        let top = rng.random_range(0..=img.h + 2 * self.padding - th);
        let left = rng.random_range(0..=img.w + 2 * self.padding - tw);
        self.crop_at(&img, top, left, th, tw)
    }

    /// The `th × tw` window at (`top`, `left`) of the padded image.
    pub fn crop_at(&self, img: &Image, top: usize, left: usize, th: usize, tw: usize) -> Image {
        // Source row/column of every output row/column (`None`: zero padding), computed once per image
        // rather than once per value.
        let p = self.padding as isize;
        let map = |offset: usize, len: usize, n: usize| -> Vec<Option<usize>> {
            (0..len)
                .map(|k| {
                    let s = offset as isize + k as isize - p;
                    match self.mode {
                        PadMode::Zero => (0..n as isize).contains(&s).then_some(s as usize),
                        PadMode::Reflect => Some(reflect(s, n)),
                    }
                })
                .collect()
        };
        let rows = map(top, th, img.h);
        let cols = map(left, tw, img.w);
        let mut out = Image::zeros(img.c, th, tw);
        for c in 0..img.c {
            let plane = img.plane(c);
            let dst_plane = &mut out.data[c * th * tw..(c + 1) * th * tw];
            for (dst, sy) in dst_plane.chunks_exact_mut(tw).zip(&rows) {
                let Some(sy) = *sy else { continue };
                let src = &plane[sy * img.w..(sy + 1) * img.w];
                for (d, sx) in dst.iter_mut().zip(&cols) {
                    if let Some(sx) = *sx {
                        *d = src[sx];
                    }
                }
            }
        }
        out
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.size == Some(0) { Err("crop: size must be at least 1".into()) } else { Ok(()) }
    }
}

/// Index `i` of an axis of length `n` mirrored about its end pixels; padding wider than the image keeps
/// bouncing (torch refuses that case; here it stays well defined).
fn reflect(i: isize, n: usize) -> usize {
    if n == 1 {
        return 0;
    }
    let period = 2 * (n as isize - 1);
    let k = i.rem_euclid(period);
    (if k >= n as isize { period - k } else { k }) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn img3x3() -> Image {
        Image::new(1, 3, 3, (1..=9).map(|v| v as f32).collect())
    }

    #[test]
    fn zero_padded_window_at_a_known_offset() {
        let crop = RandomCrop { size: None, padding: 1, mode: PadMode::Zero };
        let out = crop.crop_at(&img3x3(), 0, 0, 3, 3);
        assert_eq!(out.data, vec![0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 0.0, 4.0, 5.0]);
        let out = crop.crop_at(&img3x3(), 2, 1, 3, 3);
        assert_eq!(out.data, vec![4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn reflect_padding_mirrors_without_the_edge() {
        let crop = RandomCrop { size: Some(5), padding: 1, mode: PadMode::Reflect };
        let out = crop.crop_at(&img3x3(), 0, 0, 5, 5);
        #[rustfmt::skip]
        let want = [
            5.0, 4.0, 5.0, 6.0, 5.0,
            2.0, 1.0, 2.0, 3.0, 2.0,
            5.0, 4.0, 5.0, 6.0, 5.0,
            8.0, 7.0, 8.0, 9.0, 8.0,
            5.0, 4.0, 5.0, 6.0, 5.0,
        ];
        assert_eq!(out.data, want);
        assert_eq!((reflect(-3, 3), reflect(5, 3), reflect(0, 1)), (1, 1, 0));
    }

    #[test]
    fn random_offsets_cover_every_position_and_keep_the_shape() {
        let crop = RandomCrop { size: None, padding: 1, mode: PadMode::Zero };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let out = crop.apply(img3x3(), &mut rng);
            assert_eq!((out.h, out.w), (3, 3));
            seen.insert(out.data.iter().map(|v| *v as u8).collect::<Vec<_>>());
        }
        assert_eq!(seen.len(), 9, "3×3 offsets in a 5×5 padded image");
        assert!(RandomCrop { size: Some(6), padding: 1, mode: PadMode::Zero }.output_size(3, 3).is_err());
    }
}
