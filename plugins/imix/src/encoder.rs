//! The encoder iMix hands on, and its folder:
//!
//! * `model.json` + `weights.safetensors` — the backbone, written by `relab_core::nn::save_backbone`, so that a
//!   learner can start from it with `load_backbone`;
//! * `head.safetensors` — the projection head;
//! * `imix.json` — the head's widths, the output meant for propagation, the input size and normalisation the
//!   network was trained with, and the epoch and kNN accuracy it was kept at.
use std::fs;
use std::path::Path;

use relab_core::artifact::Features;
use relab_core::artifact::atomic::{write_bytes, write_json};
use relab_core::burn::module::Module;
use relab_core::burn::store::{ModuleSnapshot, SafetensorsStore};
use relab_core::burn::tensor::{Device, Tensor, TensorData};
use relab_core::component::{Encoder, StageContext};
use relab_core::data::augment::{Augment, CenterCrop, Pipeline, Resize};
use relab_core::data::{ImageSet, LoaderConfig, for_each_batch};
use relab_core::experiment::FeatureOutput;
use relab_core::nn::seeded::to_overwrite;
use relab_core::nn::{Backbone, BackboneConfig, ProjectionHead, load_backbone, save_backbone};
use relab_core::{Error, Result};
use serde::{Deserialize, Serialize};

use crate::network::{ImixNet, NetSpec};
use crate::params::DefaultOutput;

pub const HEAD_FILE: &str = "head.safetensors";
pub const RECORD_FILE: &str = "imix.json";

/// What `imix.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncoderRecord {
    /// The output the features stage gets when it asks for the default.
    pub default_output: DefaultOutput,
    pub head_hidden: usize,
    pub head_output: usize,
    /// Height and width of the training views; other sizes are resized and centre-cropped to it (§2.2).
    pub image_size: [usize; 2],
    /// Per-channel normalisation on the `[0, 1]` scale.
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
    /// Epochs trained.
    pub epoch: usize,
    /// The kNN monitor's test accuracy of this encoder, when it was measured.
    pub knn_accuracy: Option<f64>,
}

/// A trained iMix network in evaluation mode.
pub struct ImixEncoder {
    net: ImixNet,
    spec: NetSpec,
    pub record: EncoderRecord,
    device: Device,
    batch_size: usize,
}

impl ImixEncoder {
    /// `net` in evaluation mode on `device` (without autodiff); `batch_size` images per extraction batch.
    pub fn new(net: ImixNet, spec: NetSpec, record: EncoderRecord, device: &Device, batch_size: usize) -> Self {
        ImixEncoder { net: net.valid(), spec, record, device: device.clone().without_autodiff(), batch_size }
    }

    /// Reads what [`Encoder::save`] wrote into `dir`.
    pub fn load(dir: &Path, device: &Device, batch_size: usize) -> Result<Self> {
        let device = device.clone().without_autodiff();
        let path = dir.join(RECORD_FILE);
        let text = fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let record: EncoderRecord = serde_json::from_str(&text)
            .map_err(|e| Error::format(&path, format!("not an iMix encoder description: {e}")))?;
        let (backbone, config) = load_backbone(dir, &device)?;
        let spec = NetSpec { backbone: config, head_hidden: record.head_hidden, head_output: record.head_output };
        let shell = to_overwrite(&device, || spec.head_config().init(&device));
        let head = load_head(&dir.join(HEAD_FILE), shell)?;
        Ok(ImixEncoder::new(ImixNet { backbone, head }, spec, record, &device, batch_size))
    }

    /// The network (evaluation mode).
    pub fn net(&self) -> &ImixNet {
        &self.net
    }

    fn output_dim(&self, output: DefaultOutput) -> usize {
        match output {
            DefaultOutput::Head => self.spec.head_output,
            DefaultOutput::Pooled => self.spec.backbone.feature_dim(),
        }
    }

    /// Features of every image of `images`, in order: normalised, resized and centre-cropped to the training size
    /// when they differ from it, through the network in evaluation mode.
    pub fn features(&self, ctx: &StageContext, images: &ImageSet, output: DefaultOutput) -> Result<Features> {
        let expected = self.spec.backbone.in_channels;
        if images.channels != expected {
            return Err(Error::stage(
                "features",
                format!(
                    "the iMix encoder takes {expected}-channel images, these have {} (set dataset.channels as when \
                     it was trained)",
                    images.channels
                ),
            ));
        }
        let mut cfg = LoaderConfig::new(self.batch_size, &self.record.mean, &self.record.std);
        cfg.augment = self.test_transform(images)?;
        let order: Vec<usize> = (0..images.len()).collect();
        let dim = self.output_dim(output);
        let mut values = Vec::with_capacity(images.len() * dim);
        let bar = ctx.progress(images.len() as u64, &format!("{} features", output_name(output)));
        for_each_batch(images, &order, &cfg, |batch| {
            let b = batch.shape[0];
            let x = Tensor::<4>::from_data(TensorData::new(batch.images, batch.shape), &self.device);
            let out = match output {
                DefaultOutput::Head => self.net.embed(x),
                DefaultOutput::Pooled => self.net.pooled(x),
            };
            let rows = out.into_data().try_into_vec_as::<f32>();
            values.extend(rows.map_err(|e| Error::stage("features", format!("cannot read the features: {e:?}")))?);
            bar.inc(b as u64);
            Ok(())
        })?;
        bar.finish_and_clear();
        Ok(Features::new(images.len(), dim, values))
    }

    /// The test-time transform of §2.2, Resize(size) then CenterCrop(size); nothing for images of the training
    /// size (CIFAR's case).
    fn test_transform(&self, images: &ImageSet) -> Result<Option<Pipeline>> {
        let [h, w] = self.record.image_size;
        if (images.height, images.width) == (h, w) {
            return Ok(None);
        }
        if h != w {
            return Err(Error::stage(
                "features",
                format!(
                    "the iMix encoder was trained on {h}×{w} views and these images are {}×{}; only square \
                     training sizes can be resized to",
                    images.height, images.width
                ),
            ));
        }
        Ok(Some(Pipeline::new(vec![Augment::Resize(Resize { size: h }), Augment::CenterCrop(CenterCrop { size: h })])))
    }
}

fn output_name(output: DefaultOutput) -> &'static str {
    match output {
        DefaultOutput::Head => "head",
        DefaultOutput::Pooled => "pooled",
    }
}

impl Encoder for ImixEncoder {
    fn feature_dim(&self) -> usize {
        self.output_dim(self.record.default_output)
    }

    fn extract(&self, ctx: &mut StageContext, images: &ImageSet, output: FeatureOutput) -> Result<Features> {
        let output = match output {
            FeatureOutput::Default => self.record.default_output,
            FeatureOutput::Head => DefaultOutput::Head,
            FeatureOutput::Pooled => DefaultOutput::Pooled,
        };
        self.features(ctx, images, output)
    }

    fn save(&self, dir: &Path) -> Result<()> {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        save_backbone(&self.net.backbone, &self.spec.backbone, dir)?;
        save_head(&dir.join(HEAD_FILE), &self.net.head)?;
        write_json(&dir.join(RECORD_FILE), &self.record)
    }

    fn backbone(&self) -> Option<(&Backbone, &BackboneConfig)> {
        Some((&self.net.backbone, &self.spec.backbone))
    }
}

fn save_head(path: &Path, head: &ProjectionHead) -> Result<()> {
    let mut store = SafetensorsStore::from_bytes(None);
    head.save_into(&mut store).map_err(|e| Error::format(path, format!("cannot serialise the head: {e}")))?;
    let bytes = store.get_bytes().map_err(|e| Error::format(path, format!("cannot serialise the head: {e}")))?;
    write_bytes(path, &bytes)
}

/// Every tensor of the head must be in the file with its shape, and nothing else.
fn load_head(path: &Path, mut head: ProjectionHead) -> Result<ProjectionHead> {
    let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
    let mut store = SafetensorsStore::from_bytes(Some(bytes));
    let applied = head.load_from(&mut store).map_err(|e| {
        Error::format(path, format!("these weights do not fit the projection head in {RECORD_FILE}: {e}"))
    })?;
    if !applied.unused.is_empty() || !applied.errors.is_empty() {
        return Err(Error::format(
            path,
            format!(
                "these weights do not fit the projection head in {RECORD_FILE}: tensors not in the head: [{}]; \
                 errors: [{}]",
                applied.unused.join(", "),
                applied.errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
            ),
        ));
    }
    Ok(head)
}
