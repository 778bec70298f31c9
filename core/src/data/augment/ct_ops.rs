//! CTAugment's 19 operations: their names, bins and magnitude mappings (docs/method.md §6.3, §6b.3; the
//! reference is `libml/ctaugment.py` of FixMatch, the later revision of ReMixMatch's), on images of any channel
//! count.
//!
//! Each op takes one magnitude `v ∈ [0, 1]` per parameter, mapped as the reference maps it:
//!
//! | op | parameter(s) | meaning |
//! |---|---|---|
//! | brightness, color, contrast, sharpness | 1 | PIL enhance factor `0.1 + 1.9v` |
//! | autocontrast, equalize, invert, blur, smooth | 1 | `blend(x, op(x), v)` |
//! | posterize | 1 (8 bins) | keep `1 + ⌊7.999v⌋` bits |
//! | solarize | 1 | invert levels `≥ ⌊255.999v⌋` |
//! | rotate | 1 | `round((2v − 1)·45)` degrees counter-clockwise about the centre |
//! | shear_x, shear_y | 1 | PIL affine coefficient `(2v − 1)·0.3`, about the top-left corner |
//! | translate_x, translate_y | 1 | `(2v − 1)·0.3·side` pixels (see below) |
//! | cutout | 1 | grey (0.5) square of side `1 + ⌊v·min(H, W)·0.499⌋` at a uniform centre, clipped |
//! | rescale | 2 (17 and 6 bins) | crop `0.25·v·side` from each side, resize back with PIL filter `⌊5.99m⌋` |
//! | identity | none | |
//!
//! Where relab departs from the reference code, and why:
//! - **translate**: the reference passes `(2v − 1)·0.3` to PIL's affine as a pixel offset, under half a pixel, so
//!   with nearest sampling it never moves the image (§6b.3 "code quirk"). relab uses the paper's meaning, a
//!   fraction of the side, so the op does what its name says.
//! - **rescale**: the crop is FixMatch's (a fraction of the side, rounded to whole pixels as PIL's `crop` rounds);
//!   ReMixMatch's file crops `0.25·v` *pixels*, which PIL's rounding turns into no crop at all. The six filters
//!   are PIL's own (Lanczos, bicubic, bilinear, box, Hamming, nearest; [`resize_with`]).
//! - Geometric ops fill with black (0) as CTA's PIL calls do; cutout is grey 0.5 (the reference's 127 of 255).
//!   The cutout square is `side` pixels wide for every side (core's [`Cutout`]); the reference erases
//!   `2·⌊side/2⌋`, one less for odd sides.
//!
//! On 1-channel images (Fashion-MNIST, MNIST) every op is defined: color is the identity (PIL's grey version of a
//! grey image is itself), contrast blends with the mean level of the one plane, and the per-channel ops
//! (autocontrast, equalize, posterize, solarize, invert, brightness, sharpness, blur, smooth) act on that plane.

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::cutout::Cutout;
use super::image::Image;
use super::pil;
use super::resize::{Resample, resize_with};

/// One of CTAugment's operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CtOp {
    AutoContrast,
    Blur,
    Brightness,
    Color,
    Contrast,
    Cutout,
    Equalize,
    Invert,
    Identity,
    Posterize,
    Rescale,
    Rotate,
    Sharpness,
    ShearX,
    ShearY,
    Smooth,
    Solarize,
    TranslateX,
    TranslateY,
}

/// PIL's filters in the order the reference's `rescale` indexes them.
const RESCALE_FILTERS: [Resample; 6] =
    [Resample::Lanczos, Resample::Bicubic, Resample::Bilinear, Resample::Box, Resample::Hamming, Resample::Nearest];

impl CtOp {
    /// Every op, in the reference's registration order (the order policies index them).
    pub const ALL: [CtOp; 19] = [
        CtOp::AutoContrast,
        CtOp::Blur,
        CtOp::Brightness,
        CtOp::Color,
        CtOp::Contrast,
        CtOp::Cutout,
        CtOp::Equalize,
        CtOp::Invert,
        CtOp::Identity,
        CtOp::Posterize,
        CtOp::Rescale,
        CtOp::Rotate,
        CtOp::Sharpness,
        CtOp::ShearX,
        CtOp::ShearY,
        CtOp::Smooth,
        CtOp::Solarize,
        CtOp::TranslateX,
        CtOp::TranslateY,
    ];

    /// The reference's name (`autocontrast`, `shear_x`, ...).
    pub fn name(self) -> &'static str {
        match self {
            CtOp::AutoContrast => "autocontrast",
            CtOp::Blur => "blur",
            CtOp::Brightness => "brightness",
            CtOp::Color => "color",
            CtOp::Contrast => "contrast",
            CtOp::Cutout => "cutout",
            CtOp::Equalize => "equalize",
            CtOp::Invert => "invert",
            CtOp::Identity => "identity",
            CtOp::Posterize => "posterize",
            CtOp::Rescale => "rescale",
            CtOp::Rotate => "rotate",
            CtOp::Sharpness => "sharpness",
            CtOp::ShearX => "shear_x",
            CtOp::ShearY => "shear_y",
            CtOp::Smooth => "smooth",
            CtOp::Solarize => "solarize",
            CtOp::TranslateX => "translate_x",
            CtOp::TranslateY => "translate_y",
        }
    }

    /// The op named `name`, if any.
    pub fn from_name(name: &str) -> Option<CtOp> {
        CtOp::ALL.into_iter().find(|op| op.name() == name)
    }

    /// The number of bins of each parameter: 17 for most, 8 for posterize, 17 and 6 for rescale, none for
    /// identity.
    pub fn bins(self) -> &'static [usize] {
        match self {
            CtOp::Identity => &[],
            CtOp::Posterize => &[8],
            CtOp::Rescale => &[17, 6],
            _ => &[17],
        }
    }

    /// `img` through this op at `magnitudes` (one per parameter, each in `[0, 1]`). Only cutout draws from `rng`
    /// (its centre).
    pub fn apply<R: Rng + ?Sized>(self, img: Image, magnitudes: &[f32], rng: &mut R) -> Image {
        assert_eq!(magnitudes.len(), self.bins().len(), "{} takes {} magnitude(s)", self.name(), self.bins().len());
        let v = magnitudes.first().copied().unwrap_or(0.0);
        let enhance = 0.1 + 1.9 * v;
        let signed = 2.0 * v as f64 - 1.0;
        match self {
            CtOp::AutoContrast => blended(img, v, |x| pil::autocontrast(x.clone())),
            CtOp::Blur => blended(img, v, pil::blur),
            CtOp::Brightness => pil::brightness(img, enhance),
            CtOp::Color => pil::color(img, enhance),
            CtOp::Contrast => pil::contrast(img, enhance),
            CtOp::Cutout => {
                let size = 1 + (v * img.h.min(img.w) as f32 * 0.499) as usize;
                Cutout { size, p: 1.0, value: 0.5 }.apply(img, rng)
            }
            CtOp::Equalize => blended(img, v, |x| pil::equalize(x.clone())),
            CtOp::Invert => blended(img, v, |x| pil::invert(x.clone())),
            CtOp::Identity => img,
            CtOp::Posterize => pil::posterize(img, 1 + (v * 7.999) as u32),
            CtOp::Rescale => rescale(img, v, magnitudes[1]),
            CtOp::Rotate => pil::rotate(&img, (signed * 45.0).round_ties_even()),
            CtOp::Sharpness => pil::sharpness(img, enhance),
            CtOp::ShearX => pil::shear_x(&img, signed * 0.3),
            CtOp::ShearY => pil::shear_y(&img, signed * 0.3),
            CtOp::Smooth => blended(img, v, pil::smooth),
            CtOp::Solarize => pil::solarize(img, (v * 255.999) as u32),
            CtOp::TranslateX => {
                let t = signed * 0.3 * img.w as f64;
                pil::translate_x(&img, t)
            }
            CtOp::TranslateY => {
                let t = signed * 0.3 * img.h as f64;
                pil::translate_y(&img, t)
            }
        }
    }
}

/// The reference's `Image.blend(x, op(x), v)`.
fn blended(img: Image, v: f32, op: impl Fn(&Image) -> Image) -> Image {
    let out = op(&img);
    pil::blend(&img, &out, v)
}

/// Crop `0.25·v` of each side (PIL rounds the box to whole pixels, half to even as Python's `round`), resize back
/// with filter `⌊5.99·method⌋`.
fn rescale(img: Image, v: f32, method: f32) -> Image {
    let s = 0.25 * v as f64;
    let (w, h) = (img.w as f64, img.h as f64);
    let [left, top, right, bottom] = [s * w, s * h, w * (1.0 - s), h * (1.0 - s)].map(|c| c.round_ties_even() as usize);
    if right <= left || bottom <= top {
        return img;
    }
    let filter = RESCALE_FILTERS[((method * 5.99) as usize).min(5)];
    resize_with(&img.crop(top, left, bottom - top, right - left), img.h, img.w, filter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    type Planes = Vec<Vec<f32>>;

    fn rng() -> rand_chacha::ChaCha8Rng {
        rand_chacha::ChaCha8Rng::seed_from_u64(0)
    }

    /// An image from planes of 8-bit levels.
    fn image(side: usize, planes: &[Vec<f32>]) -> Image {
        Image::new(planes.len(), side, side, planes.concat().iter().map(|l| l / 255.0).collect())
    }

    /// `op` at `v` on each plane as a 1-channel image and on all planes as one image, against hand-computed levels.
    fn check(op: CtOp, v: &[f32], side: usize, input: &[Vec<f32>], want: &[Vec<f32>]) {
        let close = |out: &Image, want: &[f32]| {
            let got: Vec<f32> = out.data.iter().map(|x| x * 255.0).collect();
            assert!(got.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-3), "{op:?} {v:?}: {got:?} != {want:?}");
        };
        for (plane, want) in input.iter().zip(want) {
            close(&op.apply(image(side, std::slice::from_ref(plane)), v, &mut rng()), want);
        }
        close(&op.apply(image(side, input), v, &mut rng()), &want.concat());
    }

    fn levels(f: impl Fn(usize) -> f32, n: usize) -> Vec<f32> {
        (0..n).map(f).collect()
    }

    /// P: levels 0, 16, ..., 240 row by row; R: P reversed; F: flat 64.
    fn prf() -> Planes {
        vec![levels(|k| 16.0 * k as f32, 16), levels(|k| 240.0 - 16.0 * k as f32, 16), vec![64.0; 16]]
    }

    #[test]
    fn names_bins_and_order() {
        assert_eq!(CtOp::ALL.len(), 19);
        assert_eq!(CtOp::ALL.map(|op| op.bins().iter().sum::<usize>()).iter().sum::<usize>(), 16 * 17 + 8 + 23);
        assert_eq!(
            (CtOp::Rescale.bins(), CtOp::Posterize.bins(), CtOp::Identity.bins()),
            (&[17, 6][..], &[8][..], &[][..])
        );
        assert_eq!(CtOp::ShearX.name(), "shear_x");
        assert_eq!(CtOp::from_name("translate_y"), Some(CtOp::TranslateY));
        assert_eq!(serde_json::to_string(&CtOp::AutoContrast).unwrap(), "\"auto_contrast\"");
        for op in CtOp::ALL {
            assert_eq!(CtOp::from_name(op.name()), Some(op));
        }
    }

    #[test]
    fn autocontrast_stretches_each_plane_and_blends_by_v() {
        // P spans 0..240: ×255/240 = 17/16 exactly, 16k → 17k; R likewise reversed; F is flat and kept.
        let want = |v: f32| {
            vec![
                levels(|k| (16.0 + v) * k as f32, 16),
                levels(|k| 240.0 - 16.0 * k as f32 + v * (15.0 - k as f32), 16),
                vec![64.0; 16],
            ]
        };
        check(CtOp::AutoContrast, &[1.0], 4, &prf(), &want(1.0));
        check(CtOp::AutoContrast, &[0.5], 4, &prf(), &want(0.5));
    }

    #[test]
    fn blur_uses_pils_5x5_ring_and_keeps_two_border_pixels() {
        // 5×5: only the centre is inside; the ring holds one 160 → 160/16 = 10, the centre was 32.
        let mut q = vec![0.0; 25];
        q[0] = 160.0;
        q[12] = 32.0;
        let with_centre = |c: f32| {
            let mut p = q.clone();
            p[12] = c;
            p
        };
        check(CtOp::Blur, &[1.0], 5, &[q.clone(), vec![48.0; 25]], &[with_centre(10.0), vec![48.0; 25]]);
        check(CtOp::Blur, &[0.5], 5, &[q.clone(), vec![48.0; 25]], &[with_centre(21.0), vec![48.0; 25]]);
        // A 4×4 image is all border.
        check(CtOp::Blur, &[1.0], 4, &prf(), &prf());
    }

    #[test]
    fn brightness_scales_by_the_enhance_factor() {
        // v = 0: factor 0.1; v = 1: factor 2, clipped at 255.
        let [p, r, f] = [0, 1, 2].map(|i| prf()[i].clone());
        let scaled = |plane: &[f32], k: f32| plane.iter().map(|x| (x * k).min(255.0)).collect::<Vec<_>>();
        check(CtOp::Brightness, &[0.0], 4, &prf(), &[scaled(&p, 0.1), scaled(&r, 0.1), scaled(&f, 0.1)]);
        check(CtOp::Brightness, &[1.0], 4, &prf(), &[scaled(&p, 2.0), scaled(&r, 2.0), scaled(&f, 2.0)]);
    }

    /// Pixel 0 red, 1 green, 2 blue, 3 grey 40, the rest black: PIL's grey levels 76, 150, 29, 40, 0...
    fn rgb() -> Planes {
        let mut planes = vec![vec![0.0; 16]; 3];
        for (c, plane) in planes.iter_mut().enumerate() {
            plane[c] = 255.0;
            plane[3] = 40.0;
        }
        planes
    }

    fn with_first_four(base: f32, first: [[f32; 3]; 4]) -> Planes {
        (0..3)
            .map(|c| {
                let mut p = vec![base; 16];
                for (i, px) in first.iter().enumerate() {
                    p[i] = px[c];
                }
                p
            })
            .collect()
    }

    #[test]
    fn color_blends_with_grey_and_is_the_identity_on_one_channel() {
        // Grey levels (76, 150, 29, 40): x ← g + f·(x − g), f = 0.1 or 2.
        let img = rgb();
        let out = CtOp::Color.apply(image(4, &img), &[0.0], &mut rng());
        let want =
            with_first_four(0.0, [[93.9, 68.4, 68.4], [135.0, 160.5, 135.0], [26.1, 26.1, 51.6], [40.0, 40.0, 40.0]]);
        assert!(out.data.iter().zip(want.concat()).all(|(a, b)| (a * 255.0 - b).abs() < 1e-3), "{:?}", out.data);
        let out = CtOp::Color.apply(image(4, &img), &[1.0], &mut rng());
        let want = with_first_four(0.0, [[255.0, 0.0, 0.0], [0.0, 255.0, 0.0], [0.0, 0.0, 255.0], [40.0; 3]]);
        assert!(out.data.iter().zip(want.concat()).all(|(a, b)| (a * 255.0 - b).abs() < 1e-3));
        for v in [0.0, 1.0] {
            check(CtOp::Color, &[v], 4, &prf()[..1], &prf()[..1]);
        }
    }

    #[test]
    fn contrast_blends_with_the_rounded_mean_grey_level() {
        // 1 channel, P: mean level 120; x ← 120 + f·(x − 120).
        let p = &prf()[..1];
        check(CtOp::Contrast, &[0.0], 4, p, &[levels(|k| 108.0 + 1.6 * k as f32, 16)]);
        check(CtOp::Contrast, &[1.0], 4, p, &[levels(|k| (32.0 * k as f32 - 120.0).clamp(0.0, 255.0), 16)]);
        // 3 channels: grey levels sum to 76 + 150 + 29 + 40 = 295 over 16 pixels, mean 18.44 → 18.
        let out = CtOp::Contrast.apply(image(4, &rgb()), &[0.0], &mut rng());
        let want = with_first_four(16.2, [[41.7, 16.2, 16.2], [16.2, 41.7, 16.2], [16.2, 16.2, 41.7], [20.2; 3]]);
        assert!(out.data.iter().zip(want.concat()).all(|(a, b)| (a * 255.0 - b).abs() < 1e-3), "{:?}", out.data);
        let out = CtOp::Contrast.apply(image(4, &rgb()), &[1.0], &mut rng());
        let want = with_first_four(0.0, [[255.0, 0.0, 0.0], [0.0, 255.0, 0.0], [0.0, 0.0, 255.0], [62.0; 3]]);
        assert!(out.data.iter().zip(want.concat()).all(|(a, b)| (a * 255.0 - b).abs() < 1e-3), "{:?}", out.data);
    }

    #[test]
    fn cutout_greys_a_square_whose_side_follows_v() {
        // Side 1 + ⌊v·min(H, W)·0.499⌋: v = 0.4 on 4×4 → 1; v = 1 on 32×32 → 16.
        for (c, side, v, square) in [(1, 4, 0.4, 1), (3, 4, 0.4, 1), (1, 32, 1.0, 16), (3, 32, 1.0, 16)] {
            let img = Image::new(c, side, side, vec![0.25; c * side * side]);
            let mut r = rng();
            for _ in 0..20 {
                let out = CtOp::Cutout.apply(img.clone(), &[v], &mut r);
                let grey: Vec<usize> = (0..side * side).filter(|&i| out.data[i] == 0.5).collect();
                for ch in 1..c {
                    let plane = &out.data[ch * side * side..(ch + 1) * side * side];
                    assert!(grey.iter().all(|&i| plane[i] == 0.5), "every channel");
                }
                let (rows, cols) = (grey.iter().map(|i| i / side), grey.iter().map(|i| i % side));
                let height = rows.clone().max().unwrap() - rows.min().unwrap() + 1;
                let width = cols.clone().max().unwrap() - cols.min().unwrap() + 1;
                assert_eq!(grey.len(), height * width, "a rectangle");
                assert!(height <= square && width <= square && height * 2 > square && width * 2 > square);
            }
        }
    }

    #[test]
    fn equalize_uses_pils_cumulative_table() {
        // 20×20: 200 pixels at level 10, 100 at 50, 100 at 90. step = (400 − 100)/256 = 1, table = pixels below:
        // 10 → 0, 50 → 200, 90 → 300, clipped to 255.
        let e: Vec<f32> = (0..400)
            .map(|i| {
                if i < 200 {
                    10.0
                } else if i < 300 {
                    50.0
                } else {
                    90.0
                }
            })
            .collect();
        let map = |v: f32| -> Vec<f32> {
            e.iter()
                .map(|&x| {
                    x + v
                        * ((if x == 10.0 {
                            0.0
                        } else if x == 50.0 {
                            200.0
                        } else {
                            255.0
                        }) - x)
                })
                .collect()
        };
        check(CtOp::Equalize, &[1.0], 20, &[e.clone(), vec![64.0; 400]], &[map(1.0), vec![64.0; 400]]);
        check(CtOp::Equalize, &[0.5], 20, &[e.clone(), vec![64.0; 400]], &[map(0.5), vec![64.0; 400]]);
        // 16 pixels: step 0, so PIL leaves the image alone.
        check(CtOp::Equalize, &[1.0], 4, &prf(), &prf());
    }

    #[test]
    fn invert_blends_towards_the_negative() {
        let inv =
            |v: f32| prf().iter().map(|p| p.iter().map(|x| x + v * (255.0 - 2.0 * x)).collect()).collect::<Planes>();
        check(CtOp::Invert, &[1.0], 4, &prf(), &inv(1.0));
        check(CtOp::Invert, &[0.25], 4, &prf(), &inv(0.25));
        check(CtOp::Identity, &[], 4, &prf(), &prf());
    }

    #[test]
    fn posterize_keeps_the_top_bits() {
        // Levels 16k + 5. v = 0: 1 bit (mask 128); v = 0.5: 1 + ⌊3.9995⌋ = 4 bits (mask 240); v = 1: all 8.
        let p5 = vec![levels(|k| 16.0 * k as f32 + 5.0, 16), vec![64.0; 16]];
        check(CtOp::Posterize, &[0.0], 4, &p5, &[levels(|k| if k < 8 { 0.0 } else { 128.0 }, 16), vec![0.0; 16]]);
        check(CtOp::Posterize, &[0.5], 4, &p5, &[levels(|k| 16.0 * k as f32, 16), vec![64.0; 16]]);
        check(CtOp::Posterize, &[1.0], 4, &p5, &p5);
    }

    #[test]
    fn rescale_crops_a_quarter_and_resizes_back_with_the_chosen_filter() {
        // v = 1: box (1, 1, 3, 3), the central 2×2 (P: 80 96 / 144 160; R: 160 144 / 96 80).
        // method 1 → ⌊5.99⌋ = nearest: each pixel doubled.
        let nearest = |a: f32, b: f32, c: f32, d: f32| vec![a, a, b, b, a, a, b, b, c, c, d, d, c, c, d, d];
        check(
            CtOp::Rescale,
            &[1.0, 1.0],
            4,
            &prf(),
            &[nearest(80.0, 96.0, 144.0, 160.0), nearest(160.0, 144.0, 96.0, 80.0), vec![64.0; 16]],
        );
        // method 0.4 → ⌊2.396⌋ = bilinear: 1-D [a, ¾a + ¼b, ¼a + ¾b, b] both ways.
        #[rustfmt::skip]
        let bilinear = vec![
            80.0, 84.0, 92.0, 96.0,
            96.0, 100.0, 108.0, 112.0,
            128.0, 132.0, 140.0, 144.0,
            144.0, 148.0, 156.0, 160.0,
        ];
        let mirrored: Vec<f32> = bilinear.iter().map(|x| 240.0 - x).collect();
        check(CtOp::Rescale, &[1.0, 0.4], 4, &prf(), &[bilinear, mirrored, vec![64.0; 16]]);
        // v = 0.5: box (0.5, 0.5, 3.5, 3.5) rounds half to even → (0, 0, 4, 4), no crop.
        check(CtOp::Rescale, &[0.5, 1.0], 4, &prf(), &prf());
    }

    /// Each output pixel's source in P (`None`: outside, black).
    fn warp(sources: [Option<usize>; 16]) -> Planes {
        let f = prf();
        (0..3).map(|c| sources.iter().map(|s| s.map_or(0.0, |i| f[c][i])).collect()).collect()
    }

    #[test]
    fn rotate_turns_about_the_centre_with_nearest_pixels() {
        check(CtOp::Rotate, &[0.5], 4, &prf(), &prf());
        // v = 5/6: round(2/3·45) = 30° counter-clockwise. Output (x, y) reads input
        // (2 + cos30·u + sin30·w, 2 − sin30·u + cos30·w) floored, with u = x − 1.5, w = y − 1.5.
        let n = None;
        #[rustfmt::skip]
        let src = [
            n,       Some(2),  Some(3),  n,
            Some(0), Some(5),  Some(6),  Some(11),
            Some(4), Some(9),  Some(10), Some(15),
            n,       Some(12), Some(13), n,
        ];
        check(CtOp::Rotate, &[5.0 / 6.0], 4, &prf(), &warp(src));
    }

    #[test]
    fn shears_are_about_the_top_left_corner() {
        let s = Some;
        // shear_x 0.3: input x = x + ½ + 0.3·(y + ½): rows 2 and 3 read one column to the right.
        #[rustfmt::skip]
        let left = [s(0), s(1), s(2), s(3), s(4), s(5), s(6), s(7), s(9), s(10), s(11), None, s(13), s(14), s(15), None];
        check(CtOp::ShearX, &[1.0], 4, &prf(), &warp(left));
        // shear_x −0.3: rows 2 and 3 read one column to the left.
        #[rustfmt::skip]
        let right = [s(0), s(1), s(2), s(3), s(4), s(5), s(6), s(7), None, s(8), s(9), s(10), None, s(12), s(13), s(14)];
        check(CtOp::ShearX, &[0.0], 4, &prf(), &warp(right));
        // shear_y 0.3: columns 2 and 3 read one row down.
        #[rustfmt::skip]
        let up = [s(0), s(1), s(6), s(7), s(4), s(5), s(10), s(11), s(8), s(9), s(14), s(15), s(12), s(13), None, None];
        check(CtOp::ShearY, &[1.0], 4, &prf(), &warp(up));
        #[rustfmt::skip]
        let down = [s(0), s(1), None, None, s(4), s(5), s(2), s(3), s(8), s(9), s(6), s(7), s(12), s(13), s(10), s(11)];
        check(CtOp::ShearY, &[0.0], 4, &prf(), &warp(down));
    }

    #[test]
    fn translations_move_by_a_fraction_of_the_side() {
        let s = Some;
        // v = 1 on 4 px: 1.2 px; nearest at pixel centres reads x + 1.
        #[rustfmt::skip]
        let left = [s(1), s(2), s(3), None, s(5), s(6), s(7), None, s(9), s(10), s(11), None, s(13), s(14), s(15), None];
        check(CtOp::TranslateX, &[1.0], 4, &prf(), &warp(left));
        #[rustfmt::skip]
        let right = [None, s(0), s(1), s(2), None, s(4), s(5), s(6), None, s(8), s(9), s(10), None, s(12), s(13), s(14)];
        check(CtOp::TranslateX, &[0.0], 4, &prf(), &warp(right));
        #[rustfmt::skip]
        let up = [s(4), s(5), s(6), s(7), s(8), s(9), s(10), s(11), s(12), s(13), s(14), s(15), None, None, None, None];
        check(CtOp::TranslateY, &[1.0], 4, &prf(), &warp(up));
        #[rustfmt::skip]
        let down = [None, None, None, None, s(0), s(1), s(2), s(3), s(4), s(5), s(6), s(7), s(8), s(9), s(10), s(11)];
        check(CtOp::TranslateY, &[0.0], 4, &prf(), &warp(down));
    }

    /// 4×4 black with one 130 at (1, 1): SMOOTH gives 50 there and 10 at (1, 2), (2, 1), (2, 2).
    fn spot() -> Vec<f32> {
        let mut p = vec![0.0; 16];
        p[5] = 130.0;
        p
    }

    fn inner(at5: f32, rest: f32) -> Vec<f32> {
        let mut p = vec![0.0; 16];
        p[5] = at5;
        p[6] = rest;
        p[9] = rest;
        p[10] = rest;
        p
    }

    #[test]
    fn smooth_and_sharpness_blend_with_pils_smooth_filter() {
        let input = [spot(), vec![64.0; 16]];
        check(CtOp::Smooth, &[1.0], 4, &input, &[inner(50.0, 10.0), vec![64.0; 16]]);
        check(CtOp::Smooth, &[0.5], 4, &input, &[inner(90.0, 5.0), vec![64.0; 16]]);
        // Sharpness: smooth + f·(x − smooth); f = 0.1 → 58 and 9; f = 2 → 210 and −10 clipped to 0.
        check(CtOp::Sharpness, &[0.0], 4, &input, &[inner(58.0, 9.0), vec![64.0; 16]]);
        check(CtOp::Sharpness, &[1.0], 4, &input, &[inner(210.0, 0.0), vec![64.0; 16]]);
    }

    #[test]
    fn solarize_inverts_levels_at_or_above_the_threshold() {
        // v = 0.5: threshold ⌊127.9995⌋ = 127; v = 0: threshold 0, every level inverted.
        let sol = |t: f32| {
            prf().iter().map(|p| p.iter().map(|&x| if x >= t { 255.0 - x } else { x }).collect()).collect::<Planes>()
        };
        check(CtOp::Solarize, &[0.5], 4, &prf(), &sol(127.0));
        check(CtOp::Solarize, &[0.0], 4, &prf(), &sol(0.0));
    }
}
