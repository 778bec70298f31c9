/// A set of images held in memory as bytes, the way every supported dataset ships them.
///
/// Pixels are `u8`, channel-planar per image (`N × C × H × W`, row-major), so one image is one contiguous slice
/// and conversion to a normalised `f32` tensor happens once per batch, not once per dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSet {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    /// `len() × channels × height × width` bytes.
    pub pixels: Vec<u8>,
    /// Ground-truth class of every image, when known.
    pub labels: Option<Vec<u32>>,
}

impl ImageSet {
    pub fn len(&self) -> usize {
        self.pixels.len() / self.image_len().max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.pixels.is_empty()
    }

    /// Bytes in one image.
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// The bytes of image `i`, channel-planar.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.pixels[i * n..(i + 1) * n]
    }

    /// The subset of images at `indices`, in that order, labels included.
    pub fn select(&self, indices: &[usize]) -> ImageSet {
        let mut pixels = Vec::with_capacity(indices.len() * self.image_len());
        for &i in indices {
            pixels.extend_from_slice(self.image(i));
        }
        ImageSet {
            channels: self.channels,
            height: self.height,
            width: self.width,
            pixels,
            labels: self.labels.as_ref().map(|l| indices.iter().map(|&i| l[i]).collect()),
        }
    }
}

/// A dataset as the pipeline sees it: the training images (the ones that get seeds, propagated labels and pseudo
/// labels; indices in every artifact refer to their order) and the test images for evaluation.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The name the experiment used (`fashion-mnist`, `cifar10`, ...).
    pub name: String,
    pub train: ImageSet,
    pub test: ImageSet,
    pub num_classes: usize,
    pub class_names: Vec<String>,
    /// Per-channel normalisation statistics on the `[0, 1]` scale, as the method uses for this dataset.
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}
