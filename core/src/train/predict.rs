//! A classifier's class probabilities over an image set, and the same averaged with those of each image's mirror
//! image. The learners train with random horizontal flips, so the mirror image is as much an image of the class as
//! the original to the network, and averaging the two views removes some of the variance of a single prediction.
use burn::module::Module;
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::extract::extract_with;
use super::metrics::{accuracy, argmax_rows};
use crate::Result;
use crate::artifact::Features;
use crate::data::{Dataset, ImageSet};

/// Which views of each image the probabilities average (YAML: `plain` or `mirror`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Views {
    /// The image as it is.
    #[default]
    Plain,
    /// The image and its horizontal mirror image, probabilities averaged.
    Mirror,
}

/// The images a prediction runs over, how they are normalised (`mean`/`std` per channel) and batched, and where.
#[derive(Clone, Copy)]
pub struct EvalInput<'a> {
    pub set: &'a ImageSet,
    pub mean: &'a [f32],
    pub std: &'a [f32],
    pub batch_size: usize,
    pub device: &'a Device,
}

impl<'a> EvalInput<'a> {
    /// The dataset's test split, normalised with the dataset's statistics: what a learner evaluates on.
    pub fn test_split(data: &'a Dataset, batch_size: usize, device: &'a Device) -> Self {
        EvalInput { set: &data.test, mean: &data.mean, std: &data.std, batch_size, device }
    }
}

/// `n × C` softmax probabilities of `logits(model, x)` over every image of `input.set` (no augmentation, `model` in
/// evaluation mode), rows in set order.
pub fn class_probabilities<M, F>(model: &M, input: EvalInput, views: Views, logits: F) -> Result<Features>
where
    M: Module,
    F: Fn(&M, Tensor<4>) -> Tensor<2>,
{
    let EvalInput { set, mean, std, batch_size, device } = input;
    extract_with(model, set, mean, std, batch_size, device, |m, x| match views {
        Views::Plain => softmax(logits(m, x), 1),
        Views::Mirror => {
            let mirrored = x.clone().flip([3]);
            (softmax(logits(m, x), 1) + softmax(logits(m, mirrored), 1)) / 2.0
        }
    })
}

/// Test accuracy of `logits(model, ·)` over a labelled `input.set` with the given views; `None` for a set without
/// labels.
pub fn views_accuracy<M, F>(model: &M, input: EvalInput, views: Views, logits: F) -> Result<Option<f64>>
where
    M: Module,
    F: Fn(&M, Tensor<4>) -> Tensor<2>,
{
    let Some(truth) = input.set.labels.as_deref() else { return Ok(None) };
    let probs = class_probabilities(model, input, views, logits)?;
    Ok(Some(accuracy(&argmax_rows(&probs.values, probs.dim), truth)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1×1×3 image set; pixel values chosen so that the images and their mirrors differ.
    fn set() -> ImageSet {
        ImageSet { channels: 1, height: 1, width: 3, pixels: vec![255, 0, 0, 0, 0, 255], labels: None }
    }

    /// "Logits" of the image itself: its three pixels, so the expected probabilities are softmaxes by hand.
    fn pixels_as_logits<M>(_: &M, x: Tensor<4>) -> Tensor<2> {
        x.flatten(1, 3)
    }

    fn softmax3(v: [f32; 3]) -> [f32; 3] {
        let z: f32 = v.iter().map(|x| x.exp()).sum();
        v.map(|x| x.exp() / z)
    }

    #[test]
    fn plain_and_mirrored_probabilities_match_hand_computation() {
        let device = Device::flex();
        let model = burn::nn::Identity::new();
        let set = set();
        let input = EvalInput { set: &set, mean: &[0.0], std: &[1.0], batch_size: 2, device: &device };
        let plain = class_probabilities(&model, input, Views::Plain, pixels_as_logits).unwrap();
        let mirror = class_probabilities(&model, input, Views::Mirror, pixels_as_logits).unwrap();
        let a = softmax3([1.0, 0.0, 0.0]);
        let b = softmax3([0.0, 0.0, 1.0]);
        // Image 0 is [1, 0, 0], its mirror [0, 0, 1]; image 1 is image 0's mirror, so both average to the same.
        let avg: Vec<f32> = a.iter().zip(&b).map(|(x, y)| (x + y) / 2.0).collect();
        let expect_plain: Vec<f32> = a.iter().chain(&b).copied().collect();
        let expect_mirror: Vec<f32> = avg.iter().chain(&avg).copied().collect();
        for (got, want) in [(&plain.values, &expect_plain), (&mirror.values, &expect_mirror)] {
            assert_eq!(got.len(), want.len());
            assert!(got.iter().zip(want.iter()).all(|(g, w)| (g - w).abs() < 1e-6), "{got:?} against {want:?}");
        }
    }
}
