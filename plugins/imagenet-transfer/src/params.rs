use std::path::PathBuf;

use relab_core::nn::resnet::StemKind;
use relab_core::registry::ParamError;
use serde::{Deserialize, Serialize};

use crate::torchvision::{WEIGHTS_EXTENSIONS, missing_weights_help};

/// Which per-channel statistics normalise the images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Normalise {
    /// The dataset's own mean and std (`docs/method.md` §8.3), what the original ReLaB did (with CIFAR's).
    Dataset,
    /// The statistics the ImageNet weights were trained with, [`IMAGENET_MEAN`] and [`IMAGENET_STD`].
    Imagenet,
}

/// torchvision's ImageNet normalisation (`ResNet50_Weights.IMAGENET1K_V1.transforms()`).
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Defaults are the pre-cleanup ReLaB's (§2.5): images resized to 224 and normalised with the dataset's statistics.
/// The stem defaults to torchvision's, the one the weights were trained with; `imagenet_relab` is the original's.
/// Each field's first doc paragraph is its help line in `relab plugins describe`; `size` and `batch_size` are
/// checked by their `min` when parsed.
#[relab_core::params(paths("weights"))]
#[derive(Debug, Clone, PartialEq)]
pub struct ImageNetParams {
    /// torchvision's ResNet-50 ImageNet state dict (.pth, .pt or .safetensors), relative to the experiment file;
    /// required
    pub weights: Option<PathBuf>,
    /// images are resized (bilinear) to size × size; the original upsampled CIFAR to 224
    #[param(default = 224, min = MIN_SIZE)]
    pub size: usize,
    /// dataset (its own mean/std, as the original) or imagenet (the weights' training statistics)
    #[param(default = Normalise::Dataset)]
    pub normalise: Normalise,
    /// imagenet (torchvision: 7×7 conv stride 2 + max-pool) or imagenet_relab (the original ReLaB: 7×7 conv stride
    /// 1, pad 1, no max-pool; about 16× the compute)
    #[param(default = StemKind::ImageNet)]
    pub stem: StemKind,
    /// images per forward pass when extracting features
    #[param(default = 32, min = 1)]
    pub batch_size: usize,
}

const MIN_SIZE: usize = 32;

impl ImageNetParams {
    /// The checks that need no file: every value is usable. The weights file itself is read (and its absence
    /// reported) when the stage runs, so that an experiment validates on a machine without it.
    pub fn check(&self) -> Result<(), ParamError> {
        let bad = |key: &str, message: String| ParamError { path: vec![key.into()], message, known_keys: vec![] };
        let Some(weights) = &self.weights else {
            return Err(bad("weights", format!("required: the path of {}", missing_weights_help())));
        };
        let extension = weights.extension().and_then(|e| e.to_str()).unwrap_or_default();
        if !WEIGHTS_EXTENSIONS.contains(&extension) {
            return Err(bad(
                "weights",
                format!("{} must end in .{}", weights.display(), WEIGHTS_EXTENSIONS.join(", .")),
            ));
        }
        if self.stem == StemKind::Cifar {
            return Err(bad(
                "stem",
                "the CIFAR stem is a 3×3 conv, ImageNet weights have a 7×7 one: use imagenet or imagenet_relab".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use relab_core::registry::{PluginParams, parse_params};

    use super::*;

    fn parse(yaml: &str) -> Result<ImageNetParams, ParamError> {
        let params = parse_params::<ImageNetParams>(&serde_yaml::from_str(yaml).unwrap())?;
        params.check().map(|_| params)
    }

    #[test]
    fn defaults_and_names() {
        let p = parse("weights: /w/resnet50-0676ba61.pth").unwrap();
        assert_eq!((p.size, p.normalise, p.stem, p.batch_size), (224, Normalise::Dataset, StemKind::ImageNet, 32));
        let p = parse("{weights: w.safetensors, normalise: imagenet, stem: imagenet_relab, size: 64}").unwrap();
        assert_eq!((p.normalise, p.stem, p.size), (Normalise::Imagenet, StemKind::ImageNetRelab, 64));
        let documented: Vec<&str> = ImageNetParams::help().iter().map(|(k, _)| *k).collect();
        let fields = serde_yaml::to_value(ImageNetParams::default()).unwrap();
        let fields: Vec<&str> = fields.as_mapping().unwrap().keys().map(|k| k.as_str().unwrap()).collect();
        assert_eq!(documented, fields, "every parameter has a help line");
    }

    #[test]
    fn unusable_values_name_their_key() {
        for (yaml, key, says) in [
            ("size: 64", "weights", "download.pytorch.org/models/resnet50-0676ba61.pth"),
            ("weights: w.npz", "weights", "must end in .pth, .pt, .safetensors"),
            ("{weights: w.pth, size: 16}", "size", "at least 32"),
            ("{weights: w.pth, stem: cifar}", "stem", "7×7"),
            ("{weights: w.pth, batch_size: 0}", "batch_size", "at least 1"),
            ("{weights: w.pth, normalise: cifar}", "normalise", "unknown variant"),
            ("{weights: w.pth, resize: 224}", "resize", "unknown field"),
        ] {
            let err = parse(yaml).unwrap_err();
            assert_eq!(err.path, vec![key], "{yaml}: {err}");
            assert!(err.message.contains(says), "{yaml}: {err}");
        }
    }
}
