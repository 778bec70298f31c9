//! The encoder `rotation` hands on: the backbone's pooled feature. Its folder holds the backbone as
//! `relab_core::nn::save_backbone` writes it (so a learner can start from it) and `rotation.json` with the
//! normalisation it was trained with.

use std::path::Path;

use relab_core::artifact::Features;
use relab_core::artifact::atomic::write_json;
use relab_core::burn::module::Module;
use relab_core::burn::tensor::Device;
use relab_core::component::{Encoder, StageContext};
use relab_core::data::ImageSet;
use relab_core::experiment::FeatureOutput;
use relab_core::nn::{Backbone, BackboneConfig, load_backbone, save_backbone};
use relab_core::serde::{Deserialize, Serialize};
use relab_core::train::extract_with;
use relab_core::{Error, Result};

const RECORD_FILE: &str = "rotation.json";

/// What `rotation.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(crate = "relab_core::serde", deny_unknown_fields)]
struct Record {
    mean: Vec<f32>,
    std: Vec<f32>,
}

pub struct RotationEncoder {
    backbone: Backbone,
    config: BackboneConfig,
    record: Record,
    device: Device,
    batch_size: usize,
}

impl RotationEncoder {
    /// `backbone` in evaluation mode on `device`, fed images normalised with `mean`/`std`, `batch_size` at a time.
    pub fn new(
        backbone: Backbone,
        config: BackboneConfig,
        norm: (&[f32], &[f32]),
        device: &Device,
        batch_size: usize,
    ) -> Self {
        let record = Record { mean: norm.0.to_vec(), std: norm.1.to_vec() };
        let device = device.clone().without_autodiff();
        RotationEncoder { backbone: backbone.valid(), config, record, device, batch_size }
    }

    /// Reads what [`Encoder::save`] wrote into `dir`.
    pub fn load(dir: &Path, device: &Device, batch_size: usize) -> Result<Self> {
        let path = dir.join(RECORD_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let record: Record = relab_core::serde_json::from_str(&text)
            .map_err(|e| Error::format(&path, format!("not a rotation encoder description: {e}")))?;
        let (backbone, config) = load_backbone(dir, &device.clone().without_autodiff())?;
        Ok(RotationEncoder::new(backbone, config, (&record.mean, &record.std), device, batch_size))
    }
}

impl Encoder for RotationEncoder {
    fn feature_dim(&self) -> usize {
        self.config.feature_dim()
    }

    fn extract(&self, _ctx: &mut StageContext, images: &ImageSet, output: FeatureOutput) -> Result<Features> {
        if output == FeatureOutput::Head {
            return Err(Error::stage("features", "the rotation encoder has one output, `pooled` (or `default`)"));
        }
        if images.channels != self.config.in_channels {
            return Err(Error::stage(
                "features",
                format!("the encoder takes {}-channel images, these have {}", self.config.in_channels, images.channels),
            ));
        }
        let (mean, std) = (&self.record.mean, &self.record.std);
        extract_with(&self.backbone, images, mean, std, self.batch_size, &self.device, |net, x| net.forward(x).features)
    }

    fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        save_backbone(&self.backbone, &self.config, dir)?;
        write_json(&dir.join(RECORD_FILE), &self.record)
    }

    fn backbone(&self) -> Option<(&Backbone, &BackboneConfig)> {
        Some((&self.backbone, &self.config))
    }
}
