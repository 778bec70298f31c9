//! Centre crop (torchvision's `CenterCrop`), the test-time companion of the random crops.

use serde::{Deserialize, Serialize};

use super::image::Image;

/// The central `size × size` window; an image smaller than that is zero-padded first, as torchvision does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CenterCrop {
    pub size: usize,
}

impl CenterCrop {
    pub fn apply(&self, img: Image) -> Image {
        let s = self.size;
        let img = if s > img.h || s > img.w { pad_centred(&img, s.max(img.h), s.max(img.w)) } else { img };
        // torchvision: int(round((h - size) / 2)), Python rounding halves to even.
        let top = ((img.h - s) as f64 / 2.0).round_ties_even() as usize;
        let left = ((img.w - s) as f64 / 2.0).round_ties_even() as usize;
        img.crop(top, left, s, s)
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.size == 0 { Err("center_crop: size must be at least 1".into()) } else { Ok(()) }
    }
}

/// Zero-pad to `h × w`, the extra row/column of an odd excess going to the bottom/right.
fn pad_centred(img: &Image, h: usize, w: usize) -> Image {
    let (top, left) = ((h - img.h) / 2, (w - img.w) / 2);
    let mut out = Image::zeros(img.c, h, w);
    for c in 0..img.c {
        for y in 0..img.h {
            let dst = (c * h + top + y) * w + left;
            out.data[dst..dst + img.w].copy_from_slice(&img.plane(c)[y * img.w..(y + 1) * img.w]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_the_middle() {
        let img = Image::new(1, 4, 4, (0..16).map(|v| v as f32).collect());
        assert_eq!(CenterCrop { size: 2 }.apply(img.clone()).data, vec![5.0, 6.0, 9.0, 10.0]);
        // An odd margin of 1 rounds half to even: offset round(0.5) = 0.
        assert_eq!(CenterCrop { size: 3 }.apply(img).data, vec![0.0, 1.0, 2.0, 4.0, 5.0, 6.0, 8.0, 9.0, 10.0]);
    }

    #[test]
    fn pads_small_images_with_zeros() {
        let img = Image::new(1, 1, 1, vec![1.0]);
        assert_eq!(CenterCrop { size: 3 }.apply(img).data, vec![0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
    }
}
