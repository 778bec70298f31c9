//! The encoder: ImageNet ResNet-50 → pooled 2048-d features, and its files.
//!
//! A stage folder holds `weights.safetensors` and `model.json` (written by [`save_backbone`]) and
//! [`ENCODER_FILE`], the stem and the preprocessing. `model.json` says `resnet50_imagenet` for either stem: only
//! [`ENCODER_FILE`] tells the two apart, so the folder is read back with [`ImageNetEncoder::load`].
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use relab_core::artifact::Features;
use relab_core::artifact::atomic::write_json;
use relab_core::burn::store::{ModuleStore, SafetensorsStore};
use relab_core::burn::tensor::Device;
use relab_core::component::{Encoder, StageContext};
use relab_core::data::ImageSet;
use relab_core::experiment::FeatureOutput;
use relab_core::nn::resnet::StemKind;
use relab_core::nn::seeded::to_overwrite;
use relab_core::nn::{Backbone, BackboneConfig, BackboneKind, MODEL_FILE, WEIGHTS_FILE, save_backbone};
use relab_core::train::extract_with;
use relab_core::{Error, Result};
use serde::{Deserialize, Serialize};

use crate::network;
use crate::preprocess::Preprocess;

/// The encoder's own description inside its folder.
pub const ENCODER_FILE: &str = "imagenet.json";

/// Width of ResNet-50's pooled feature.
pub const FEATURE_DIM: usize = 2048;

/// What [`ENCODER_FILE`] holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncoderRecord {
    /// The state dict the weights came from (for the record; the folder's own weights are what is loaded).
    pub weights: PathBuf,
    pub stem: StemKind,
    pub preprocess: Preprocess,
    /// Images per forward pass.
    pub batch_size: usize,
}

/// ImageNet ResNet-50 features of preprocessed images. Its one output is the pooled feature.
#[derive(Debug)]
pub struct ImageNetEncoder {
    backbone: Backbone,
    config: BackboneConfig,
    record: EncoderRecord,
}

impl ImageNetEncoder {
    /// `backbone` must be described by `config` and have `record.stem`.
    pub fn new(backbone: Backbone, config: BackboneConfig, record: EncoderRecord) -> Self {
        ImageNetEncoder { backbone, config, record }
    }

    pub fn backbone(&self) -> &Backbone {
        &self.backbone
    }

    pub fn record(&self) -> &EncoderRecord {
        &self.record
    }

    /// Reads back the encoder [`Encoder::save`] wrote into `dir`, on `device`: every tensor of its weights must fit
    /// the described network, and every parameter of the network must be in them.
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let record: EncoderRecord = read_json(&dir.join(ENCODER_FILE), "the imagenet encoder's description")?;
        let model = dir.join(MODEL_FILE);
        let config: BackboneConfig = read_json(&model, "a backbone description")?;
        if config.kind != BackboneKind::ResNet50ImageNet || config.in_channels != 3 {
            return Err(Error::format(
                &model,
                format!("the imagenet encoder is a 3-channel resnet50_imagenet, not {}", serde_json::json!(config)),
            ));
        }
        let (mut backbone, config) =
            to_overwrite(device, || network::resnet50(record.stem, config.num_classes, device));
        let weights = dir.join(WEIGHTS_FILE);
        let tensors: Vec<_> = SafetensorsStore::from_file(&weights)
            .get_all_tensors()
            .map_err(|e| Error::format(&weights, format!("not a readable safetensors file: {e}")))?
            .values()
            .cloned()
            .collect();
        let expected = network::tensor_shapes(&backbone);
        let wrong: Vec<String> = tensors
            .iter()
            .filter(|t| expected.get(&t.name).is_none_or(|shape| shape.as_slice() != t.shape.as_slice()))
            .map(|t| format!("{} {:?}", t.name, t.shape.as_slice()))
            .collect();
        let names: BTreeSet<&str> = tensors.iter().map(|t| t.name.as_str()).collect();
        let missing: Vec<&str> = expected.keys().map(String::as_str).filter(|k| !names.contains(k)).collect();
        if !wrong.is_empty() || !missing.is_empty() {
            return Err(Error::format(
                &weights,
                format!(
                    "these weights do not fit a ResNet-50 with {} classes: not in the network: [{}]; missing: [{}]",
                    config.num_classes,
                    wrong.join(", "),
                    missing.join(", ")
                ),
            ));
        }
        network::install(&mut backbone, tensors, &weights)?;
        Ok(ImageNetEncoder { backbone, config, record })
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::format(path, format!("not {what}: {e}")))
}

impl Encoder for ImageNetEncoder {
    fn feature_dim(&self) -> usize {
        FEATURE_DIM
    }

    fn extract(&self, ctx: &mut StageContext, images: &ImageSet, output: FeatureOutput) -> Result<Features> {
        if output == FeatureOutput::Head {
            return Err(Error::stage(
                ctx.stage.name(),
                "the imagenet encoder has one output, `pooled` (the 2048-d ResNet-50 feature), and no projection \
                 head; set stages.features.output to pooled or default",
            ));
        }
        if !matches!(images.channels, 1 | 3) {
            return Err(Error::stage(
                ctx.stage.name(),
                format!("the imagenet encoder takes grey or RGB images, not {} channels", images.channels),
            ));
        }
        let (zero, one) = (vec![0.0; images.channels], vec![1.0; images.channels]);
        let preprocess = &self.record.preprocess;
        let bar = ctx.progress(images.len() as u64, "ImageNet ResNet-50 features");
        let start = Instant::now();
        let features =
            extract_with(&self.backbone, images, &zero, &one, self.record.batch_size, &ctx.device, |net, x| {
                let batch = x.dims()[0];
                let features = net.forward_features(preprocess.apply(x));
                bar.inc(batch as u64);
                features
            })?;
        bar.finish_and_clear();
        let seconds = start.elapsed().as_secs_f64();
        tracing::info!(images = images.len(), size = preprocess.size, "ImageNet features in {seconds:.1} s");
        ctx.log(serde_json::json!({ "images": images.len(), "size": preprocess.size, "extract_seconds": seconds }))?;
        Ok(features)
    }

    fn save(&self, dir: &Path) -> Result<()> {
        save_backbone(&self.backbone, &self.config, dir)?;
        write_json(&dir.join(ENCODER_FILE), &self.record)
    }

    fn backbone(&self) -> Option<(&Backbone, &BackboneConfig)> {
        Some((&self.backbone, &self.config))
    }
}
