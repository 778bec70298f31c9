//! Random horizontal flip (torchvision's `RandomHorizontalFlip`).

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::image::Image;

/// Mirror left–right with probability `p` (default 0.5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Flip {
    pub p: f32,
}

impl Default for Flip {
    fn default() -> Self {
        Flip { p: 0.5 }
    }
}

impl Flip {
    pub fn apply<R: Rng + ?Sized>(&self, img: Image, rng: &mut R) -> Image {
        if rng.random::<f32>() < self.p { flip(img) } else { img }
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        check_probability("flip", self.p)
    }
}

/// `img` mirrored left–right: every row reversed.
pub fn flip(mut img: Image) -> Image {
    let w = img.w.max(1);
    img.data.chunks_exact_mut(w).for_each(<[f32]>::reverse);
    img
}

pub(crate) fn check_probability(op: &str, p: f32) -> Result<(), String> {
    if (0.0..=1.0).contains(&p) { Ok(()) } else { Err(format!("{op}: p = {p} is not a probability in [0, 1]")) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn flip_reverses_every_row() {
        let img = Image::new(2, 2, 3, (0..12).map(|v| v as f32).collect());
        let want = [2.0, 1.0, 0.0, 5.0, 4.0, 3.0, 8.0, 7.0, 6.0, 11.0, 10.0, 9.0];
        assert_eq!(flip(img).data, want);
    }

    #[test]
    fn probability_zero_and_one() {
        let img = Image::new(1, 1, 2, vec![0.0, 1.0]);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        assert_eq!(Flip { p: 0.0 }.apply(img.clone(), &mut rng), img);
        assert_eq!(Flip { p: 1.0 }.apply(img.clone(), &mut rng).data, vec![1.0, 0.0]);
        let flips = (0..1000).filter(|_| Flip::default().apply(img.clone(), &mut rng).data[0] == 1.0).count();
        assert!((400..600).contains(&flips), "{flips}");
        assert!(Flip { p: 1.5 }.validate().is_err());
    }
}
