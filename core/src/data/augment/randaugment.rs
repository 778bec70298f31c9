//! RandAugment as FixMatch-RA runs it (TF `AugmentPoolRAMC(nops=2, magnitude=10)`, copied by kekmodel's port;
//! docs/method.md §6b.3): `n` ops drawn uniformly with replacement from 14, each applied with probability `p` at
//! its own level drawn uniformly from 1..=9 (of a maximum of 10), then Cutout.
//!
//! Magnitude maps (TF's `rac` column, level l ∈ 1..=9; ± is a fair random sign):
//!
//! | op | magnitude |
//! |---|---|
//! | identity, autocontrast, equalize | none |
//! | brightness, color, contrast, sharpness | PIL enhance factor `0.1 + 0.18·l` (0.28 ..= 1.72) |
//! | posterize | keep `4 − ⌊0.4·l⌋` bits (4, 3, 2, 1) |
//! | rotate | ±`3·l` degrees about the centre |
//! | shear_x, shear_y | ±`0.03·l` affine coefficient, about the top-left corner |
//! | solarize | invert levels `≥ 256 − ⌊25.6·l⌋` (231 ..= 26) |
//! | translate_x, translate_y | ±`l` pixels |
//!
//! The ops have PIL's semantics ([`super::pil`]). Vacated pixels of the geometric ops are black (0) as in CTA,
//! kekmodel's and USB's ports (TF's RA fills them with mid-grey); the cutout square is grey 0.5, half the
//! shorter side (16 px on 32×32, TF's fixed size there). On 1-channel images color is the identity, the other
//! ops act on the one plane (module docs of [`super::ct_ops`]).

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::cutout::Cutout;
use super::flip::check_probability;
use super::image::Image;
use super::pil;

/// The pipeline step: `- randaugment: {n: 2, p: 0.5, cutout: true}` (the defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RandAugment {
    /// Ops drawn per image, with replacement.
    pub n: usize,
    /// Probability that each drawn op is applied.
    pub p: f32,
    /// Finish with a grey cutout of half the shorter side.
    pub cutout: bool,
}

impl Default for RandAugment {
    fn default() -> Self {
        RandAugment { n: 2, p: 0.5, cutout: true }
    }
}

/// The largest level a draw can reach is `MAX_LEVEL − 1` (TF `randint(1, 10)`).
const MAX_LEVEL: u32 = 10;

/// RandAugment's 14 ops (TF's `RANDOM_POLICY_OPS`, in its order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RaOp {
    Identity,
    AutoContrast,
    Equalize,
    Rotate,
    Solarize,
    Color,
    Contrast,
    Brightness,
    Sharpness,
    ShearX,
    TranslateX,
    TranslateY,
    Posterize,
    ShearY,
}

impl RaOp {
    pub const ALL: [RaOp; 14] = [
        RaOp::Identity,
        RaOp::AutoContrast,
        RaOp::Equalize,
        RaOp::Rotate,
        RaOp::Solarize,
        RaOp::Color,
        RaOp::Contrast,
        RaOp::Brightness,
        RaOp::Sharpness,
        RaOp::ShearX,
        RaOp::TranslateX,
        RaOp::TranslateY,
        RaOp::Posterize,
        RaOp::ShearY,
    ];

    /// The op's parameter at `level` before any random sign: enhance factor, bits, degrees, shear coefficient,
    /// solarize threshold or pixels; 0 for the ops without one.
    pub fn magnitude(self, level: u32) -> f64 {
        let l = level as f64;
        let int_parameter = |max: f64| (l * max / MAX_LEVEL as f64).floor();
        match self {
            RaOp::Identity | RaOp::AutoContrast | RaOp::Equalize => 0.0,
            RaOp::Color | RaOp::Contrast | RaOp::Brightness | RaOp::Sharpness => 0.1 + l * 1.8 / MAX_LEVEL as f64,
            RaOp::Posterize => 4.0 - int_parameter(4.0),
            RaOp::Rotate => int_parameter(30.0),
            RaOp::ShearX | RaOp::ShearY => l * 0.3 / MAX_LEVEL as f64,
            RaOp::Solarize => 256.0 - int_parameter(256.0),
            RaOp::TranslateX | RaOp::TranslateY => int_parameter(10.0),
        }
    }

    fn signed(self) -> bool {
        matches!(self, RaOp::Rotate | RaOp::ShearX | RaOp::ShearY | RaOp::TranslateX | RaOp::TranslateY)
    }

    /// `img` through this op at `level`; signed ops draw their sign from `rng`.
    pub fn apply<R: Rng + ?Sized>(self, img: Image, level: u32, rng: &mut R) -> Image {
        let mut m = self.magnitude(level);
        if self.signed() && rng.random::<f32>() < 0.5 {
            m = -m;
        }
        match self {
            RaOp::Identity => img,
            RaOp::AutoContrast => pil::autocontrast(img),
            RaOp::Equalize => pil::equalize(img),
            RaOp::Rotate => pil::rotate(&img, m),
            RaOp::Solarize => pil::solarize(img, m as u32),
            RaOp::Color => pil::color(img, m as f32),
            RaOp::Contrast => pil::contrast(img, m as f32),
            RaOp::Brightness => pil::brightness(img, m as f32),
            RaOp::Sharpness => pil::sharpness(img, m as f32),
            RaOp::ShearX => pil::shear_x(&img, m),
            RaOp::ShearY => pil::shear_y(&img, m),
            RaOp::TranslateX => pil::translate_x(&img, m),
            RaOp::TranslateY => pil::translate_y(&img, m),
            RaOp::Posterize => pil::posterize(img, m as u32),
        }
    }
}

impl RandAugment {
    pub fn apply<R: Rng + ?Sized>(&self, mut img: Image, rng: &mut R) -> Image {
        for _ in 0..self.n {
            let op = RaOp::ALL[rng.random_range(0..RaOp::ALL.len())];
            let level = rng.random_range(1..MAX_LEVEL);
            if rng.random::<f32>() < self.p {
                img = op.apply(img, level, rng);
            }
        }
        if self.cutout && img.h > 0 && img.w > 0 {
            let size = (img.h.min(img.w) / 2).max(1);
            img = Cutout { size, p: 1.0, value: 0.5 }.apply(img, rng);
        }
        img
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.n == 0 {
            return Err("randaugment: n must be at least 1".into());
        }
        check_probability("randaugment", self.p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn rng(seed: u64) -> rand_chacha::ChaCha8Rng {
        rand_chacha::ChaCha8Rng::seed_from_u64(seed)
    }

    #[test]
    fn magnitude_maps_follow_tfs_rac_column() {
        let at = |op: RaOp| [1, 5, 9].map(|l| op.magnitude(l));
        let close = |a: [f64; 3], b: [f64; 3]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12);
        for op in [RaOp::Brightness, RaOp::Color, RaOp::Contrast, RaOp::Sharpness] {
            assert!(close(at(op), [0.28, 1.0, 1.72]), "{op:?} {:?}", at(op));
        }
        // 4 − ⌊0.4·l⌋: l = 1, 3, 5, 9 → 4, 3, 2, 1.
        assert_eq!([1, 3, 5, 9].map(|l| RaOp::Posterize.magnitude(l)), [4.0, 3.0, 2.0, 1.0]);
        assert_eq!(at(RaOp::Rotate), [3.0, 15.0, 27.0]);
        assert!(close(at(RaOp::ShearX), [0.03, 0.15, 0.27]));
        assert!(close(at(RaOp::ShearY), [0.03, 0.15, 0.27]));
        // 256 − ⌊25.6·l⌋: 256 − 25, 256 − 128, 256 − 230.
        assert_eq!(at(RaOp::Solarize), [231.0, 128.0, 26.0]);
        assert_eq!(at(RaOp::TranslateX), [1.0, 5.0, 9.0]);
        assert_eq!(at(RaOp::Identity), [0.0; 3]);
    }

    #[test]
    fn ops_apply_their_magnitudes() {
        let p: Vec<f32> = (0..16).map(|k| k as f32 * 16.0 / 255.0).collect();
        let img = Image::new(1, 4, 4, p.clone());
        // Translate by level 1 = one pixel, left or right by the sign; both signs occur.
        let mut seen = std::collections::HashSet::new();
        let mut g = rng(0);
        for _ in 0..20 {
            let out = RaOp::TranslateX.apply(img.clone(), 1, &mut g);
            let first_row: Vec<u32> = out.data[..4].iter().map(|v| (v * 255.0).round() as u32).collect();
            assert!(first_row == [16, 32, 48, 0] || first_row == [0, 0, 16, 32], "{first_row:?}");
            seen.insert(first_row);
        }
        assert_eq!(seen.len(), 2);
        // Solarize at level 5: levels ≥ 128 inverted.
        let out = RaOp::Solarize.apply(img.clone(), 5, &mut g);
        let want: Vec<f32> = (0..16).map(|k| (16 * k) as f32).map(|x| if x >= 128.0 { 255.0 - x } else { x }).collect();
        assert!(out.data.iter().zip(&want).all(|(a, b)| (a * 255.0 - b).abs() < 1e-3));
        // Posterize at level 9: 1 bit.
        let out = RaOp::Posterize.apply(img.clone(), 9, &mut g);
        assert!(out.data.iter().enumerate().all(|(k, &v)| v == if k < 8 { 0.0 } else { 128.0 / 255.0 }));
        // Brightness at level 5: factor 1.0, the identity.
        assert_eq!(RaOp::Brightness.apply(img.clone(), 5, &mut g), img);
        // Color is the identity on one channel.
        assert_eq!(RaOp::Color.apply(img.clone(), 9, &mut g), img);
    }

    #[test]
    fn the_same_seed_gives_the_same_view_and_cutout_is_always_there() {
        let img = Image::new(3, 8, 8, (0..192).map(|v| (v % 251) as f32 / 255.0).collect());
        let ra = RandAugment::default();
        let a = ra.apply(img.clone(), &mut rng(7));
        assert_eq!(a, ra.apply(img.clone(), &mut rng(7)));
        let others = (8..20).filter(|&s| ra.apply(img.clone(), &mut rng(s)) != a).count();
        assert!(others >= 10, "different seeds, different views");
        for s in 0..30 {
            let out = ra.apply(img.clone(), &mut rng(s));
            assert_eq!((out.c, out.h, out.w), (3, 8, 8));
            // The cutout (side 4) leaves at least 2×2 grey pixels in every channel.
            assert!(out.plane(2).iter().filter(|&&v| v == 0.5).count() >= 4);
        }
        // p = 0 and no cutout: the identity.
        let off = RandAugment { n: 3, p: 0.0, cutout: false };
        assert_eq!(off.apply(img.clone(), &mut rng(1)), img);
        assert!(RandAugment { n: 0, ..ra.clone() }.validate().is_err());
        assert!(RandAugment { p: 1.5, ..ra }.validate().unwrap_err().contains("probability"));
    }
}
