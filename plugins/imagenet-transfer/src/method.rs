//! The `imagenet` SSL method: loads the weights; trains nothing.
use std::path::Path;

use relab_core::component::{Encoder, SslMethod, StageContext};
use relab_core::data::Dataset;
use relab_core::registry::{ParamError, PluginInfo};
use relab_core::{Error, Result};

use crate::encoder::{EncoderRecord, ImageNetEncoder};
use crate::params::ImageNetParams;
use crate::preprocess::Preprocess;
use crate::{network, torchvision};

/// torchvision's ImageNet ResNet-50 as a fixed encoder.
#[derive(Debug, Clone)]
pub struct ImageNetTransfer {
    params: ImageNetParams,
}

impl PluginInfo for ImageNetTransfer {
    const NAME: &'static str = "imagenet";
    const SUMMARY: &'static str =
        "torchvision's ImageNet ResNet-50 as a fixed encoder: pooled 2048-d features of upsampled images (no training)";
    type Params = ImageNetParams;

    fn from_params(params: ImageNetParams) -> Result<Self, ParamError> {
        params.check()?;
        Ok(ImageNetTransfer { params })
    }
}

relab_core::submit_plugin!(pretrain, ImageNetTransfer);

impl SslMethod for ImageNetTransfer {
    fn pretrain(&mut self, ctx: &mut StageContext, data: &Dataset) -> Result<Box<dyn Encoder>> {
        let p = &self.params;
        let weights = p.weights.clone().ok_or_else(|| Error::stage("pretrain", "weights: required"))?;
        // The head (torchvision's `fc` is not loaded) keeps its seeded draw; the file is read outside the lock.
        let device = ctx.device.clone();
        let fresh = ctx.init(&device, |d| network::resnet50(p.stem, data.num_classes, d).0);
        let config = network::resnet50_config(data.num_classes);
        let (backbone, config, ignored) = torchvision::load_resnet50(&weights, (fresh, config))?;
        tracing::info!("ImageNet ResNet-50 loaded from {} ({} tensors ignored)", weights.display(), ignored.len());
        ctx.log(serde_json::json!({ "weights": weights, "ignored": ignored }))?;
        let record = EncoderRecord {
            weights,
            stem: p.stem,
            preprocess: Preprocess::for_dataset(p.size, p.normalise, data)?,
            batch_size: p.batch_size,
        };
        Ok(Box::new(ImageNetEncoder::new(backbone, config, record)))
    }

    fn load_encoder(&self, ctx: &mut StageContext, dir: &Path) -> Result<Box<dyn Encoder>> {
        Ok(Box::new(ImageNetEncoder::load(dir, &ctx.device)?))
    }
}
