//! Bilinear resizing as PIL does it (what torchvision's `Resize`/`RandomResizedCrop` call on PIL images): a
//! triangle filter whose support widens with the shrink factor, so downscaling averages every source pixel
//! instead of aliasing, and upscaling is plain bilinear with pixel centres at half-integers.

use serde::{Deserialize, Serialize};

use super::image::Image;

/// Resize so the shorter side is `size` and the aspect ratio is kept (torchvision's `Resize(int)`), the
/// test-time step of §2.2. An image already that size is left alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resize {
    pub size: usize,
}

impl Resize {
    pub fn output_size(&self, h: usize, w: usize) -> (usize, usize) {
        // torchvision truncates the long side: int(size * long / short).
        if h <= w { (self.size, self.size * w / h) } else { (self.size * h / w, self.size) }
    }

    pub fn apply(&self, img: Image) -> Image {
        let (oh, ow) = self.output_size(img.h, img.w);
        resize_bilinear(&img, oh, ow)
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.size == 0 { Err("resize: size must be at least 1".into()) } else { Ok(()) }
    }
}

/// `img` resized to `oh × ow`.
pub fn resize_bilinear(img: &Image, oh: usize, ow: usize) -> Image {
    if (oh, ow) == (img.h, img.w) {
        return img.clone();
    }
    let xs = Coefficients::new(img.w, ow);
    let ys = Coefficients::new(img.h, oh);
    let mut out = Image::zeros(img.c, oh, ow);
    let mut row_pass = vec![0.0f32; img.h * ow];
    for c in 0..img.c {
        let src = img.plane(c);
        // Horizontal pass: every source row to `ow` values.
        for (line, dst) in src.chunks_exact(img.w).zip(row_pass.chunks_exact_mut(ow)) {
            for (x, d) in dst.iter_mut().enumerate() {
                let (start, weights) = xs.get(x);
                *d = weights.iter().zip(&line[start..]).map(|(k, v)| k * v).sum();
            }
        }
        // Vertical pass, a whole row at a time so the inner loop runs over contiguous values.
        let dst_plane = &mut out.data[c * oh * ow..(c + 1) * oh * ow];
        for (y, dst) in dst_plane.chunks_exact_mut(ow).enumerate() {
            let (start, weights) = ys.get(y);
            for (k, &wk) in weights.iter().enumerate() {
                let src_row = &row_pass[(start + k) * ow..(start + k + 1) * ow];
                dst.iter_mut().zip(src_row).for_each(|(d, s)| *d += wk * s);
            }
        }
    }
    out
}

/// For each output position: the first source index and the normalised filter weights from there on, stored
/// flat with a fixed stride.
struct Coefficients {
    starts: Vec<usize>,
    lens: Vec<usize>,
    stride: usize,
    weights: Vec<f32>,
}

impl Coefficients {
    fn new(in_size: usize, out_size: usize) -> Self {
        let scale = in_size as f64 / out_size as f64;
        let filter_scale = scale.max(1.0);
        let support = filter_scale; // the triangle filter's support is 1, widened by the shrink factor
        let stride = 2 * support.ceil() as usize + 2;
        let mut c = Coefficients {
            starts: Vec::with_capacity(out_size),
            lens: Vec::with_capacity(out_size),
            stride,
            weights: vec![0.0; out_size * stride],
        };
        for o in 0..out_size {
            let center = (o as f64 + 0.5) * scale;
            let lo = (center - support + 0.5).floor().max(0.0) as usize;
            let hi = ((center + support + 0.5).floor() as usize).min(in_size);
            let w: Vec<f64> =
                (lo..hi).map(|i| (1.0 - ((i as f64 - center + 0.5) / filter_scale).abs()).max(0.0)).collect();
            let total: f64 = w.iter().sum();
            let norm = if total > 0.0 { 1.0 / total } else { 0.0 };
            for (k, x) in w.iter().enumerate() {
                c.weights[o * stride + k] = (x * norm) as f32;
            }
            c.starts.push(lo);
            c.lens.push(w.len());
        }
        c
    }

    fn get(&self, o: usize) -> (usize, &[f32]) {
        let from = o * self.stride;
        (self.starts[o], &self.weights[from..from + self.lens[o]])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(c: usize, h: usize, w: usize, v: &[u8]) -> Image {
        Image::from_u8(c, h, w, v)
    }

    /// Within one grey level of what Pillow 13 gives (`Image.resize(..., BILINEAR)` on 8-bit images, which
    /// rounds between its two passes).
    fn assert_like_pillow(out: &Image, pillow: &[u8]) {
        for (a, &b) in out.data.iter().zip(pillow) {
            assert!((a * 255.0 - b as f32).abs() <= 1.0, "{:?} vs {pillow:?}", out.data);
        }
    }

    #[test]
    fn shrinking_widens_the_triangle_like_pillow() {
        let img = bytes(1, 2, 4, &[0, 255, 51, 102, 0, 255, 51, 102]);
        let out = resize_bilinear(&img, 1, 2);
        assert_eq!((out.h, out.w), (1, 2));
        // Output pixel 0 covers source centres 0.5, 1.5, 2.5 with weights 3/4, 3/4, 1/4.
        assert!((out.data[0] - (0.75 + 0.25 * 0.2) / 1.75).abs() < 1e-6);
        assert_like_pillow(&out, &[117, 102]);
        let img = bytes(1, 5, 7, &(0..35).map(|v| (v * 7) as u8).collect::<Vec<_>>());
        let out = resize_bilinear(&img, 4, 3);
        assert_like_pillow(&out, &[18, 33, 48, 75, 90, 105, 133, 148, 163, 190, 205, 220]);
    }

    #[test]
    fn doubling_interpolates_between_centres() {
        let img = Image::new(1, 1, 2, vec![0.0, 1.0]);
        let out = resize_bilinear(&img, 1, 4);
        assert_like_pillow(&out, &[0, 64, 191, 255]);
        // Output centres at 0.25, 0.75, 1.25, 1.75 in source pixels (source centres at 0.5 and 1.5).
        let want = [0.0, 0.25, 0.75, 1.0];
        assert!(out.data.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-6), "{:?}", out.data);
    }

    #[test]
    fn constant_images_stay_constant_and_same_size_is_identity() {
        let img = Image::new(2, 5, 7, vec![0.3; 70]);
        let out = resize_bilinear(&img, 3, 11);
        assert!(out.data.iter().all(|v| (v - 0.3).abs() < 1e-6));
        let img = Image::new(1, 2, 2, vec![0.1, 0.2, 0.3, 0.4]);
        assert_eq!(resize_bilinear(&img, 2, 2), img);
    }

    #[test]
    fn resize_keeps_the_aspect_ratio_on_the_short_side() {
        assert_eq!(Resize { size: 84 }.output_size(84, 84), (84, 84));
        assert_eq!(Resize { size: 32 }.output_size(64, 100), (32, 50));
        assert_eq!(Resize { size: 10 }.output_size(30, 20), (15, 10));
    }
}
