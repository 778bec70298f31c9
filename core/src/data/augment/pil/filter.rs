//! PIL's built-in convolution filters (`ImageFilter.SMOOTH`, `ImageFilter.BLUR`), with PIL's border rule: the
//! pixels the kernel would overhang are copied unchanged, and an image smaller than the kernel is returned as is.

use super::super::image::Image;

/// `ImageFilter.SMOOTH`: 3×3 `[1 1 1; 1 5 1; 1 1 1] / 13`, the one-pixel border kept. Also the degenerate image
/// of `ImageEnhance.Sharpness`.
pub fn smooth(img: &Image) -> Image {
    #[rustfmt::skip]
    const K: [f32; 9] = [
        1.0, 1.0, 1.0,
        1.0, 5.0, 1.0,
        1.0, 1.0, 1.0,
    ];
    convolve(img, 3, &K, 13.0)
}

/// `ImageFilter.BLUR`: 5×5, a ring of ones around a zero 3×3 centre, divided by 16; the two-pixel border kept.
pub fn blur(img: &Image) -> Image {
    #[rustfmt::skip]
    const K: [f32; 25] = [
        1.0, 1.0, 1.0, 1.0, 1.0,
        1.0, 0.0, 0.0, 0.0, 1.0,
        1.0, 0.0, 0.0, 0.0, 1.0,
        1.0, 0.0, 0.0, 0.0, 1.0,
        1.0, 1.0, 1.0, 1.0, 1.0,
    ];
    convolve(img, 5, &K, 16.0)
}

/// A symmetric `k × k` kernel over every plane, divided by `scale` and clipped to `[0, 1]`.
fn convolve(img: &Image, k: usize, kernel: &[f32], scale: f32) -> Image {
    let mut out = img.clone();
    let r = k / 2;
    if img.h < k || img.w < k {
        return out;
    }
    let (h, w) = (img.h, img.w);
    for c in 0..img.c {
        let src = img.plane(c);
        let dst = &mut out.data[c * h * w..(c + 1) * h * w];
        for y in r..h - r {
            for x in r..w - r {
                let mut sum = 0.0f32;
                for dy in 0..k {
                    let row = &src[(y + dy - r) * w + x - r..];
                    sum += kernel[dy * k..(dy + 1) * k].iter().zip(row).map(|(a, b)| a * b).sum::<f32>();
                }
                dst[y * w + x] = (sum / scale).clamp(0.0, 1.0);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smooth_keeps_the_border_and_averages_the_inside() {
        // 1×3×4: only (1, 1) and (1, 2) are inside.
        let img = Image::new(1, 3, 4, (0..12).map(|v| v as f32 / 13.0).collect());
        let out = smooth(&img);
        // (1, 1): neighbours 0+1+2+4+6+8+9+10 = 40, centre 5·5 = 25 → 65/13 /13.
        assert!((out.data[5] - 65.0 / 169.0).abs() < 1e-6);
        // (1, 2): 1+2+3+5+7+9+10+11 = 48, 5·6 = 30 → 78/13 /13.
        assert!((out.data[6] - 78.0 / 169.0).abs() < 1e-6);
        for i in [0, 1, 2, 3, 4, 7, 8, 9, 10, 11] {
            assert_eq!(out.data[i], img.data[i]);
        }
        let tiny = Image::new(2, 2, 2, vec![0.1; 8]);
        assert_eq!(smooth(&tiny), tiny);
    }
}
