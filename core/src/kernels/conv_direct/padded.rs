//! The zero-padded copy of an image that the kernels read in place of an im2col matrix.

/// An image's planes with a one-pixel zero border, each row `pitch` values apart.
#[derive(Debug, Clone, Copy)]
pub(super) struct Padded {
    pub height: usize,
    pub width: usize,
    pub pitch: usize,
}

/// Where one vector of output pixels along a row lies: its first pixel in the padded input (seen by the tap at
/// row 0, column 0) and in the output, and how many of its lanes are inside the row.
#[derive(Debug, Clone, Copy)]
pub(super) struct PixelVector {
    pub padded: usize,
    pub output: usize,
    pub lanes: usize,
}

impl Padded {
    /// Rows with room for a vector load of `lanes` values at every tap: the last vector of a row reads up to
    /// lanes·⌈W/lanes⌉ + 1 values past the row's padded start, and what it reads past the image is the zero padding.
    pub fn for_row_vectors(height: usize, width: usize, lanes: usize) -> Self {
        Self { height, width, pitch: lanes * width.div_ceil(lanes) + 2 }
    }

    /// Rows no wider than the border needs, for kernels that read single values.
    pub fn tight(height: usize, width: usize) -> Self {
        Self { height, width, pitch: width + 2 }
    }

    pub fn plane(&self) -> usize {
        (self.height + 2) * self.pitch
    }

    /// Copies `channels` planes of `height × width` into `padded`, whose border is already zero and stays so.
    pub fn fill(&self, image: &[f32], channels: usize, padded: &mut [f32]) {
        let (h, w) = (self.height, self.width);
        for c in 0..channels {
            let plane = &mut padded[c * self.plane()..(c + 1) * self.plane()];
            for y in 0..h {
                let start = (y + 1) * self.pitch + 1;
                plane[start..start + w].copy_from_slice(&image[(c * h + y) * w..(c * h + y + 1) * w]);
            }
        }
    }

    /// The row vectors of `lanes` pixels of one image, row after row.
    pub fn vectors(&self, lanes: usize) -> Vec<PixelVector> {
        let (h, w) = (self.height, self.width);
        (0..h)
            .flat_map(|y| {
                (0..w.div_ceil(lanes)).map(move |v| {
                    let x = v * lanes;
                    PixelVector { padded: y * self.pitch + x, output: y * w + x, lanes: (w - x).min(lanes) }
                })
            })
            .collect()
    }

    /// Where each output pixel of one image, row after row, sees its tap at row 0, column 0.
    pub fn pixels(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.height).flat_map(move |y| (0..self.width).map(move |x| y * self.pitch + x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_border_stays_zero_and_every_tap_reads_its_input() {
        let pad = Padded::for_row_vectors(2, 3, 16);
        assert_eq!(pad.pitch, 18);
        let image: Vec<f32> = (1..=6).map(|v| v as f32).collect();
        let mut padded = vec![0.0; pad.plane()];
        pad.fill(&image, 1, &mut padded);
        // Output pixel (y, x) sees input (y + ky − 1, x + kx − 1) at `start + ky·pitch + kx`.
        let starts: Vec<usize> = pad.pixels().collect();
        assert_eq!(starts, vec![0, 1, 2, 18, 19, 20]);
        assert_eq!(padded[starts[4] + pad.pitch + 1], 5.0); // the centre tap of (1, 1)
        assert_eq!(padded[starts[0]], 0.0); // (0, 0) looking up and left: the border
        assert_eq!(padded.iter().sum::<f32>(), 21.0);
        let vectors = pad.vectors(16);
        assert_eq!(vectors.len(), 2);
        assert_eq!((vectors[1].padded, vectors[1].output, vectors[1].lanes), (18, 3, 3));
        assert_eq!(Padded::tight(2, 3).plane(), 20);
    }
}
