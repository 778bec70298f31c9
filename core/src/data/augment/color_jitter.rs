//! Colour jitter (torchvision's `ColorJitter`, wrapped in `RandomApply` as the method uses it): brightness,
//! contrast, saturation and hue changed by random factors, the four applied in a random order.
//!
//! On a 1-channel image saturation and hue mean nothing and are the identity; brightness and contrast apply
//! (contrast blends towards the image's mean grey level). Every random draw is made regardless, so a grey and a
//! colour dataset consume the generator alike.

use rand::Rng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use super::flip::check_probability;
use super::grayscale::luma;
use super::image::Image;

/// Factors are drawn uniformly from `[max(0, 1 - x), 1 + x]` for brightness, contrast and saturation, and the
/// hue shift from `[-hue, hue]` (a fraction of the colour wheel); 0 switches one off. The whole jitter happens
/// with probability `p`. Defaults are the method's (§2.2): 0.4, 0.4, 0.4, 0.1, p = 0.8.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ColorJitter {
    pub brightness: f32,
    pub contrast: f32,
    pub saturation: f32,
    pub hue: f32,
    pub p: f32,
}

impl Default for ColorJitter {
    fn default() -> Self {
        ColorJitter { brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.1, p: 0.8 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Adjust {
    Brightness(f32),
    Contrast(f32),
    Saturation(f32),
    Hue(f32),
}

impl ColorJitter {
    pub fn apply<R: Rng + ?Sized>(&self, mut img: Image, rng: &mut R) -> Image {
        if rng.random::<f32>() >= self.p {
            return img;
        }
        // torchvision draws the order first, then each enabled factor in a fixed order.
        let mut order = [0usize, 1, 2, 3];
        order.shuffle(rng);
        let mut factor = |x: f32| (x > 0.0).then(|| uniform(rng, (1.0 - x).max(0.0), 1.0 + x));
        let adjustments = [
            factor(self.brightness).map(Adjust::Brightness),
            factor(self.contrast).map(Adjust::Contrast),
            factor(self.saturation).map(Adjust::Saturation),
            (self.hue > 0.0).then(|| Adjust::Hue(uniform(rng, -self.hue, self.hue))),
        ];
        for i in order {
            img = match adjustments[i] {
                Some(Adjust::Brightness(f)) => brightness(img, f),
                Some(Adjust::Contrast(f)) => contrast(img, f),
                Some(Adjust::Saturation(f)) => saturation(img, f),
                Some(Adjust::Hue(f)) => hue(img, f),
                None => img,
            };
        }
        img
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        for (name, v) in [("brightness", self.brightness), ("contrast", self.contrast), ("saturation", self.saturation)]
        {
            if !(v >= 0.0 && v.is_finite()) {
                return Err(format!("color_jitter: {name} = {v} must be ≥ 0"));
            }
        }
        if !(0.0..=0.5).contains(&self.hue) {
            return Err(format!("color_jitter: hue = {} must lie in [0, 0.5]", self.hue));
        }
        check_probability("color_jitter", self.p)
    }
}

fn uniform<R: Rng + ?Sized>(rng: &mut R, lo: f32, hi: f32) -> f32 {
    lo + (hi - lo) * rng.random::<f32>()
}

/// Every value times `f`, clamped to `[0, 1]`.
pub fn brightness(mut img: Image, f: f32) -> Image {
    img.data.iter_mut().for_each(|v| *v = (*v * f).clamp(0.0, 1.0));
    img
}

/// Blend towards the mean grey level: `f·x + (1 − f)·mean`, clamped.
pub fn contrast(mut img: Image, f: f32) -> Image {
    let grey = if img.c == 3 { luma(&img) } else { img.data.clone() };
    let mean = grey.iter().sum::<f32>() / grey.len().max(1) as f32;
    img.data.iter_mut().for_each(|v| *v = (f * *v + (1.0 - f) * mean).clamp(0.0, 1.0));
    img
}

/// Blend each pixel towards its own grey: `f·x + (1 − f)·luma`, clamped. Identity on grey images.
pub fn saturation(mut img: Image, f: f32) -> Image {
    if img.c != 3 {
        return img;
    }
    let grey = luma(&img);
    let plane = img.h * img.w;
    for values in img.data.chunks_exact_mut(plane.max(1)) {
        for (v, g) in values.iter_mut().zip(&grey) {
            *v = (f * *v + (1.0 - f) * g).clamp(0.0, 1.0);
        }
    }
    img
}

/// Rotate the hue by `shift` turns (in HSV), keeping saturation and value. Identity on grey images.
pub fn hue(mut img: Image, shift: f32) -> Image {
    if img.c != 3 {
        return img;
    }
    let plane = img.h * img.w;
    let (r, gb) = img.data.split_at_mut(plane);
    let (g, b) = gb.split_at_mut(plane);
    for ((r, g), b) in r.iter_mut().zip(g.iter_mut()).zip(b.iter_mut()) {
        let (h, s, v) = rgb_to_hsv(*r, *g, *b);
        (*r, *g, *b) = hsv_to_rgb(wrap_unit(h + shift), s, v);
    }
    img
}

/// `x` wrapped into `[0, 1)` for `x` in `[-1, 2)`, without a division.
fn wrap_unit(x: f32) -> f32 {
    let x = if x < 0.0 { x + 1.0 } else { x };
    if x >= 1.0 { x - 1.0 } else { x }
}

/// Hue in turns `[0, 1)`, saturation, value.
fn rgb_to_hsv(r: f32, g: f32, b: f32) -> (f32, f32, f32) {
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let delta = max - min;
    let s = if max > 0.0 { delta / max } else { 0.0 };
    if delta == 0.0 {
        return (0.0, s, max);
    }
    let h = if max == r {
        let h = (g - b) / delta;
        if h < 0.0 { h + 6.0 } else { h }
    } else if max == g {
        (b - r) / delta + 2.0
    } else {
        (r - g) / delta + 4.0
    };
    (wrap_unit(h / 6.0), s, max)
}

fn hsv_to_rgb(h: f32, s: f32, v: f32) -> (f32, f32, f32) {
    let h6 = h * 6.0;
    let sector = (h6 as usize).min(5);
    let f = h6 - sector as f32;
    let p = v * (1.0 - s);
    let q = v * (1.0 - s * f);
    let t = v * (1.0 - s * (1.0 - f));
    match sector {
        0 => (v, t, p),
        1 => (q, v, p),
        2 => (p, v, t),
        3 => (p, q, v),
        4 => (t, p, v),
        _ => (v, p, q),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn close(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5)
    }

    fn rgb(pixels: &[[f32; 3]]) -> Image {
        let n = pixels.len();
        let data = (0..3).flat_map(|c| pixels.iter().map(move |p| p[c])).collect();
        Image::new(3, 1, n, data)
    }

    #[test]
    fn brightness_scales_and_clamps() {
        let img = Image::new(1, 1, 3, vec![0.1, 0.5, 0.8]);
        assert!(close(&brightness(img, 1.5).data, &[0.15, 0.75, 1.0]));
    }

    #[test]
    fn contrast_blends_towards_the_mean_grey() {
        let img = Image::new(1, 1, 2, vec![0.2, 0.6]);
        // mean 0.4: 0.5·x + 0.5·0.4
        assert!(close(&contrast(img.clone(), 0.5).data, &[0.3, 0.5]));
        assert!(close(&contrast(img, 0.0).data, &[0.4, 0.4]));
        let c = contrast(rgb(&[[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]), 0.0);
        assert!(c.data.iter().all(|v| (v - 0.299 / 2.0).abs() < 1e-6));
    }

    #[test]
    fn saturation_zero_is_grey_and_grey_images_are_untouched() {
        let img = rgb(&[[1.0, 0.0, 0.0]]);
        assert!(close(&saturation(img.clone(), 0.0).data, &[0.299; 3]));
        assert!(close(&saturation(img.clone(), 1.0).data, &img.data));
        let grey = Image::new(1, 1, 1, vec![0.3]);
        assert_eq!(saturation(grey.clone(), 0.0), grey);
        assert_eq!(hue(grey.clone(), 0.25), grey);
    }

    #[test]
    fn hue_rotates_the_colour_wheel() {
        // Red shifted by a third of a turn is green, by two thirds blue; a half turn of red is cyan.
        let red = rgb(&[[1.0, 0.0, 0.0]]);
        assert!(close(&hue(red.clone(), 1.0 / 3.0).data, &[0.0, 1.0, 0.0]));
        assert!(close(&hue(red.clone(), -1.0 / 3.0).data, &[0.0, 0.0, 1.0]));
        assert!(close(&hue(red, 0.5).data, &[0.0, 1.0, 1.0]));
        let dull = rgb(&[[0.5, 0.25, 0.1]]);
        assert!(close(&hue(dull.clone(), 0.0).data, &dull.data));
    }

    #[test]
    fn jitter_stays_in_range_and_p_zero_is_identity() {
        let img = rgb(&[[0.9, 0.1, 0.4], [0.2, 0.7, 0.3], [1.0, 1.0, 0.0]]);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        assert_eq!(ColorJitter { p: 0.0, ..Default::default() }.apply(img.clone(), &mut rng), img);
        let strong = ColorJitter { brightness: 0.8, contrast: 0.8, saturation: 0.8, hue: 0.5, p: 1.0 };
        let mut changed = 0;
        for _ in 0..100 {
            let out = strong.apply(img.clone(), &mut rng);
            assert!(out.data.iter().all(|v| (0.0..=1.0).contains(v)));
            changed += (out != img) as usize;
        }
        assert_eq!(changed, 100);
        assert!(ColorJitter { hue: 0.6, ..Default::default() }.validate().is_err());
        assert!(ColorJitter { brightness: -0.1, ..Default::default() }.validate().is_err());
    }
}
