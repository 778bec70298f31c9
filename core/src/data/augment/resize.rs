//! Resizing as PIL does it (bilinear is what torchvision's `Resize`/`RandomResizedCrop` call on PIL images): a
//! separable filter whose support widens with the shrink factor, so downscaling averages every source pixel
//! instead of aliasing, and upscaling interpolates with pixel centres at half-integers. PIL's other filters (box,
//! Hamming, bicubic, Lanczos, nearest) are here for CTAugment's `rescale`.

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

/// PIL's resampling filters (`Image.Resampling`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resample {
    Nearest,
    Box,
    Bilinear,
    Hamming,
    Bicubic,
    Lanczos,
}

impl Resample {
    /// Half-width of the filter at scale 1, in source pixels.
    fn support(self) -> f64 {
        match self {
            Resample::Nearest | Resample::Box => 0.5,
            Resample::Bilinear | Resample::Hamming => 1.0,
            Resample::Bicubic => 2.0,
            Resample::Lanczos => 3.0,
        }
    }

    /// PIL's filter functions (libImaging/Resample.c), bicubic with a = -0.5.
    fn weight(self, x: f64) -> f64 {
        let sinc = |x: f64| if x == 0.0 { 1.0 } else { (std::f64::consts::PI * x).sin() / (std::f64::consts::PI * x) };
        let ax = x.abs();
        match self {
            Resample::Nearest | Resample::Box => {
                if x > -0.5 && x <= 0.5 {
                    1.0
                } else {
                    0.0
                }
            }
            Resample::Bilinear => (1.0 - ax).max(0.0),
            Resample::Hamming => {
                if ax >= 1.0 {
                    0.0
                } else {
                    sinc(x) * (0.54 + 0.46 * (std::f64::consts::PI * x).cos())
                }
            }
            Resample::Bicubic => {
                let a = -0.5;
                if ax < 1.0 {
                    ((a + 2.0) * ax - (a + 3.0)) * ax * ax + 1.0
                } else if ax < 2.0 {
                    (((ax - 5.0) * ax + 8.0) * ax - 4.0) * a
                } else {
                    0.0
                }
            }
            Resample::Lanczos => {
                if ax < 3.0 {
                    sinc(x) * sinc(x / 3.0)
                } else {
                    0.0
                }
            }
        }
    }
}

/// `img` resized to `oh × ow` with PIL's bilinear filter.
pub fn resize_bilinear(img: &Image, oh: usize, ow: usize) -> Image {
    resize_with(img, oh, ow, Resample::Bilinear)
}

/// `img` resized to `oh × ow` with `filter`. Nearest is PIL's: output pixel `o` takes source pixel
/// `⌊(o + ½)·in/out⌋`. Filters with negative lobes (bicubic, Lanczos) are clipped to `[0, 1]`, as PIL clips to
/// bytes; PIL also rounds to bytes between its two passes, which this does not.
pub fn resize_with(img: &Image, oh: usize, ow: usize, filter: Resample) -> Image {
    if (oh, ow) == (img.h, img.w) {
        return img.clone();
    }
    if filter == Resample::Nearest {
        return resize_nearest(img, oh, ow);
    }
    let xs = Coefficients::new(img.w, ow, filter);
    let ys = Coefficients::new(img.h, oh, filter);
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
    if matches!(filter, Resample::Bicubic | Resample::Lanczos) {
        out.data.iter_mut().for_each(|v| *v = v.clamp(0.0, 1.0));
    }
    out
}

fn resize_nearest(img: &Image, oh: usize, ow: usize) -> Image {
    let source = |o: usize, n_in: usize, n_out: usize| {
        (((o as f64 + 0.5) * (n_in as f64 / n_out as f64)) as usize).min(n_in - 1)
    };
    let cols: Vec<usize> = (0..ow).map(|x| source(x, img.w, ow)).collect();
    let mut data = Vec::with_capacity(img.c * oh * ow);
    for c in 0..img.c {
        let plane = img.plane(c);
        for y in 0..oh {
            let row = &plane[source(y, img.h, oh) * img.w..];
            data.extend(cols.iter().map(|&x| row[x]));
        }
    }
    Image::new(img.c, oh, ow, data)
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
    fn new(in_size: usize, out_size: usize, filter: Resample) -> Self {
        let scale = in_size as f64 / out_size as f64;
        let filter_scale = scale.max(1.0);
        let support = filter.support() * filter_scale; // widened by the shrink factor
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
            let w: Vec<f64> = (lo..hi).map(|i| filter.weight((i as f64 - center + 0.5) / filter_scale)).collect();
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
