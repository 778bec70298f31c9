//! From a batch of images on the `[0, 1]` scale to the ResNet-50's input: grey repeated to three channels, resized
//! to `size` × `size`, normalised per channel.
//!
//! The original (`8c115fb:main_subset.py`) resized the PIL image to 224 (bilinear), converted it to a tensor and
//! normalised it. Here the resize is on floats, not on 8-bit pixels, so values differ from the original by at most
//! the rounding PIL did; normalisation is affine per channel, so doing it before or after the resize is the same.
use relab_core::burn::tensor::Tensor;
use relab_core::burn::tensor::module::interpolate;
use relab_core::burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use relab_core::data::Dataset;
use relab_core::{Error, Result};
use serde::{Deserialize, Serialize};

use crate::params::{IMAGENET_MEAN, IMAGENET_STD, Normalise};

/// The preprocessing of one encoder, with its statistics resolved (saved with the encoder).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preprocess {
    /// Images are resized to `size` × `size`.
    pub size: usize,
    /// Where `mean` and `std` come from.
    pub normalise: Normalise,
    /// Per RGB channel, on the `[0, 1]` scale.
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Preprocess {
    /// The preprocessing for `data`'s images; a grey dataset's single statistic serves all three channels.
    pub fn for_dataset(size: usize, normalise: Normalise, data: &Dataset) -> Result<Self> {
        let (mean, std) = match normalise {
            Normalise::Imagenet => (IMAGENET_MEAN, IMAGENET_STD),
            Normalise::Dataset => (rgb(&data.mean, &data.name, "mean")?, rgb(&data.std, &data.name, "std")?),
        };
        Ok(Preprocess { size, normalise, mean, std })
    }

    /// `[B, C, H, W]` on the `[0, 1]` scale with C = 1 or 3 → `[B, 3, size, size]`, normalised.
    pub fn apply(&self, x: Tensor<4>) -> Tensor<4> {
        let [_, channels, height, width] = x.dims();
        let x = if channels == 1 { x.repeat_dim(1, 3) } else { x };
        let x = if (height, width) == (self.size, self.size) {
            x
        } else {
            // Half-pixel centres, as PIL's and torchvision's bilinear resize.
            let options = InterpolateOptions::new(InterpolateMode::Bilinear)
                .with_align_corners(false)
                .with_output_size([self.size, self.size]);
            interpolate(x, options)
        };
        let device = x.device();
        let mean = Tensor::<1>::from_floats(self.mean, &device).reshape([1, 3, 1, 1]);
        let std = Tensor::<1>::from_floats(self.std, &device).reshape([1, 3, 1, 1]);
        (x - mean) / std
    }
}

/// Three per-channel values from a dataset's one (grey) or three.
fn rgb(values: &[f32], dataset: &str, what: &str) -> Result<[f32; 3]> {
    match *values {
        [v] => Ok([v; 3]),
        [r, g, b] => Ok([r, g, b]),
        _ => Err(Error::stage(
            "pretrain",
            format!("dataset `{dataset}` has {} {what} values; the imagenet encoder needs 1 or 3", values.len()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use relab_core::burn::tensor::{Device, TensorData};
    use relab_core::data::ImageSet;

    use super::*;

    fn values(x: Tensor<4>) -> Vec<f32> {
        x.into_data().try_to_vec::<f32>().unwrap()
    }

    fn close(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(a, b)| (a - b).abs() < 1e-6)
    }

    #[test]
    fn grey_is_repeated_resized_with_half_pixel_centres_and_normalised() {
        let device = Device::flex();
        // One grey 2×2 image [[0, 1], [1, 0]], resized to 4×4.
        let x = Tensor::<4>::from_data(TensorData::new(vec![0.0f32, 1.0, 1.0, 0.0], [1, 1, 2, 2]), &device);
        let p = Preprocess { size: 4, normalise: Normalise::Dataset, mean: [0.0, 0.5, 0.25], std: [1.0, 0.5, 2.0] };
        let y = p.apply(x);
        assert_eq!(y.dims(), [1, 3, 4, 4]);
        // Output pixel j samples source coordinate (j + 0.5) / 2 − 0.5 = −0.25, 0.25, 0.75, 1.25, clamped to the
        // edge: weights 0, 0.25, 0.75, 1 on the second pixel. Along both axes of [[0, 1], [1, 0]]: a + b − 2ab.
        let t = [0.0f32, 0.25, 0.75, 1.0];
        let resized: Vec<f32> = t.iter().flat_map(|&a| t.iter().map(move |&b| a + b - 2.0 * a * b)).collect();
        let y = values(y);
        for (c, (m, s)) in [(0.0f32, 1.0f32), (0.5, 0.5), (0.25, 2.0)].into_iter().enumerate() {
            let want: Vec<f32> = resized.iter().map(|v| (v - m) / s).collect();
            assert!(close(&y[c * 16..(c + 1) * 16], &want), "channel {c}: {:?} vs {want:?}", &y[c * 16..(c + 1) * 16]);
        }
    }

    #[test]
    fn colour_at_the_right_size_is_only_normalised() {
        let device = Device::flex();
        let pixels: Vec<f32> = (0..12).map(|v| v as f32 / 12.0).collect();
        let x = Tensor::<4>::from_data(TensorData::new(pixels.clone(), [1, 3, 2, 2]), &device);
        let p = Preprocess { size: 2, normalise: Normalise::Imagenet, mean: IMAGENET_MEAN, std: IMAGENET_STD };
        let want: Vec<f32> =
            pixels.iter().enumerate().map(|(i, v)| (v - IMAGENET_MEAN[i / 4]) / IMAGENET_STD[i / 4]).collect();
        assert!(close(&values(p.apply(x)), &want));
    }

    fn dataset(mean: Vec<f32>, std: Vec<f32>) -> Dataset {
        let set = ImageSet { channels: mean.len(), height: 1, width: 1, pixels: Vec::new(), labels: None };
        Dataset {
            name: "toy".into(),
            train: set.clone(),
            test: set,
            num_classes: 2,
            class_names: vec!["a".into(), "b".into()],
            mean,
            std,
        }
    }

    #[test]
    fn statistics_come_from_the_dataset_or_imagenet() {
        let grey = dataset(vec![0.286], vec![0.353]);
        let p = Preprocess::for_dataset(64, Normalise::Dataset, &grey).unwrap();
        assert_eq!((p.size, p.mean, p.std), (64, [0.286; 3], [0.353; 3]));
        let p = Preprocess::for_dataset(224, Normalise::Imagenet, &grey).unwrap();
        assert_eq!((p.mean, p.std), (IMAGENET_MEAN, IMAGENET_STD));
        // CIFAR-10's (docs/method.md §8.3), what the original used.
        let cifar = dataset(vec![0.4914, 0.4822, 0.4465], vec![0.2023, 0.1994, 0.2010]);
        let p = Preprocess::for_dataset(224, Normalise::Dataset, &cifar).unwrap();
        assert_eq!((p.mean, p.std), ([0.4914, 0.4822, 0.4465], [0.2023, 0.1994, 0.2010]));
        let err = Preprocess::for_dataset(224, Normalise::Dataset, &dataset(vec![0.1; 2], vec![0.2; 2])).unwrap_err();
        assert!(err.to_string().contains("2 mean values"), "{err}");
    }
}
