//! The image type augmentations work on: `f32` values in `[0, 1]`, channel-planar (`C × H × W`), the layout
//! networks take, so the loader converts each sample once and never transposes.

/// One image, `c × h × w` values, channel-planar and row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub data: Vec<f32>,
}

impl Image {
    pub fn new(c: usize, h: usize, w: usize, data: Vec<f32>) -> Self {
        assert_eq!(data.len(), c * h * w, "an image of {c}×{h}×{w} holds {} values", c * h * w);
        Image { c, h, w, data }
    }

    pub fn zeros(c: usize, h: usize, w: usize) -> Self {
        Image { c, h, w, data: vec![0.0; c * h * w] }
    }

    /// Bytes `0..=255` as values `0..=1` (ToTensor's scaling).
    pub fn from_u8(c: usize, h: usize, w: usize, bytes: &[u8]) -> Self {
        Image::new(c, h, w, bytes.iter().map(|&b| b as f32 / 255.0).collect())
    }

    #[inline]
    pub fn at(&self, c: usize, y: usize, x: usize) -> f32 {
        self.data[(c * self.h + y) * self.w + x]
    }

    pub fn plane(&self, c: usize) -> &[f32] {
        &self.data[c * self.h * self.w..(c + 1) * self.h * self.w]
    }

    /// The `h × w` window at (`top`, `left`), which must lie inside the image.
    pub fn crop(&self, top: usize, left: usize, h: usize, w: usize) -> Image {
        assert!(top + h <= self.h && left + w <= self.w, "crop inside the image");
        let mut data = Vec::with_capacity(self.c * h * w);
        for c in 0..self.c {
            for y in top..top + h {
                let row = (c * self.h + y) * self.w;
                data.extend_from_slice(&self.data[row + left..row + left + w]);
            }
        }
        Image { c: self.c, h, w, data }
    }

    /// `(x - mean[c]) / std[c]` per channel, in place.
    pub fn normalise(&mut self, mean: &[f32], std: &[f32]) {
        let plane = self.h * self.w;
        for (c, values) in self.data.chunks_exact_mut(plane.max(1)).enumerate() {
            let (m, inv) = (mean[c], 1.0 / std[c]);
            values.iter_mut().for_each(|v| *v = (*v - m) * inv);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_and_normalise() {
        let img = Image::new(2, 2, 3, (0..12).map(|v| v as f32).collect());
        assert_eq!(img.at(1, 1, 2), 11.0);
        let c = img.crop(1, 1, 1, 2);
        assert_eq!(c.data, vec![4.0, 5.0, 10.0, 11.0]);
        let mut n = Image::from_u8(1, 1, 2, &[0, 255]);
        n.normalise(&[0.5], &[0.25]);
        assert_eq!(n.data, vec![-2.0, 2.0]);
    }
}
