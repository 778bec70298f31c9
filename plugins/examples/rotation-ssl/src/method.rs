//! The `rotation` SSL method: the pretext task's recipe for core's training loop.

use std::path::Path;

use relab_core::burn;
use relab_core::burn::module::Module;
use relab_core::burn::tensor::{Device, Tensor, TensorData};
use relab_core::component::{Encoder, SslMethod, StageContext};
use relab_core::data::{Batch, Dataset};
use relab_core::nn::{Backbone, BackboneConfig, RotationHead, RotationHeadConfig};
use relab_core::rand::seq::SliceRandom;
use relab_core::registry::{ParamError, PluginInfo};
use relab_core::serde::{Deserialize, Serialize};
use relab_core::serde_json::Value;
use relab_core::train::losses::labels_tensor;
use relab_core::train::metrics::argmax_rows;
use relab_core::train::{At, Fit, Optimiser, OptimiserSettings, Recipe, Run, ScheduleEpoch, StepLoss, cross_entropy};
use relab_core::{Error, Result};

use crate::encoder::RotationEncoder;
use crate::params::RotationParams;
use crate::rotate::four_rotations;

/// Rotation-prediction pretraining.
#[derive(Debug, Clone)]
pub struct RotationPrediction {
    params: RotationParams,
}

impl PluginInfo for RotationPrediction {
    const NAME: &'static str = "rotation";
    const SUMMARY: &'static str = "rotation prediction (RotNet): features learnt by telling which of four rotations an image shows (example \
         plugin library)";
    type Params = RotationParams;

    fn from_params(params: RotationParams) -> Result<Self, ParamError> {
        // Counts are checked by their `min = 1` in RotationParams.
        let bad = |key: &str, message: String| ParamError { path: vec![key.into()], message, known_keys: vec![] };
        params.schedule.check().map_err(|m| bad("schedule", m))?;
        OptimiserSettings::Sgd(params.optimizer.clone()).check().map_err(|m| bad("optimizer", m))?;
        Ok(RotationPrediction { params })
    }
}

/// The backbone and the 4-way rotation classifier on its pooled feature.
#[derive(Module, Debug)]
pub struct RotNet {
    pub backbone: Backbone,
    pub head: RotationHead,
}

/// The last epoch's mean loss and rotation accuracy, for the summary, and the counts of the epoch in progress.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(crate = "relab_core::serde")]
struct LastEpoch {
    last: Option<(f64, f64)>,
    /// Rotations told right and shown in the epoch in progress (or just ended), which a mid-epoch checkpoint keeps.
    #[serde(default)]
    counts: (usize, usize),
}

impl SslMethod for RotationPrediction {
    fn pretrain(&mut self, ctx: &mut StageContext, data: &Dataset) -> Result<Box<dyn Encoder>> {
        let p = &self.params;
        let (h, w) = (data.train.height, data.train.width);
        if h != w {
            return Err(Error::stage("pretrain", format!("rotation needs square images, these are {h}×{w}")));
        }
        let config = BackboneConfig::new(p.backbone, data.train.channels, data.num_classes);
        let head = RotationHeadConfig::new(config.feature_dim());
        let device = ctx.device.clone().autodiff();
        let fresh = ctx.init(&device, |d| RotNet { backbone: config.init(d), head: head.init(d) });
        let mut fit = Fit::start(ctx)?;
        let net = fit.model(fresh, Ok)?;
        let run = Run::new(data, net, Optimiser::sgd(&p.optimizer), p.epochs, p.batch_size, &p.schedule)
            .augment(&p.augment)
            .schedule_epoch(ScheduleEpoch::Finished)
            .loss_name("rotation loss");
        let mut recipe = Rotations { p, n: data.train.len(), device, right: 0, seen: 0, last: LastEpoch::default() };
        let trained = fit.run(ctx, &mut recipe, run)?;
        if let Some((loss, accuracy)) = recipe.last.last {
            ctx.set_summary("rotation_loss", loss);
            ctx.set_summary("rotation_accuracy", accuracy);
        }
        let norm = (data.mean.as_slice(), data.std.as_slice());
        Ok(Box::new(RotationEncoder::new(trained.model.backbone, config, norm, &ctx.device, p.eval_batch_size)))
    }

    fn load_encoder(&self, ctx: &mut StageContext, dir: &Path) -> Result<Box<dyn Encoder>> {
        Ok(Box::new(RotationEncoder::load(dir, &ctx.device, self.params.eval_batch_size)?))
    }
}

/// Each image of a fresh draw shown in its four rotations, the network asked which one it sees.
struct Rotations<'a> {
    p: &'a RotationParams,
    /// Training images.
    n: usize,
    device: Device,
    /// Rotations told right and shown this epoch (on the augmented inputs, before each step).
    right: usize,
    seen: usize,
    last: LastEpoch,
}

impl Recipe for Rotations<'_> {
    type Model = RotNet;
    type State = LastEpoch;

    fn epoch_order(&mut self, ctx: &mut StageContext, _epoch: usize) -> Result<Vec<usize>> {
        let mut order: Vec<usize> = (0..self.n).collect();
        order.shuffle(&mut ctx.rng);
        order.truncate(self.p.images_per_epoch.unwrap_or(order.len()));
        (self.right, self.seen) = (0, 0);
        Ok(order)
    }

    fn step(&mut self, _ctx: &mut StageContext, net: &RotNet, batch: Batch, _at: At) -> Result<StepLoss> {
        let x = Tensor::<4>::from_data(TensorData::new(batch.images, batch.shape), &self.device);
        let (x, truth) = four_rotations(x);
        let logits = net.head.forward(net.backbone.forward(x).features);
        let values = logits.clone().into_data().try_into_vec_as::<f32>();
        let values = values.map_err(|e| Error::stage("pretrain", format!("cannot read the logits: {e:?}")))?;
        let predicted = argmax_rows(&values, RotationHeadConfig::ROTATIONS);
        self.right += predicted.iter().zip(&truth).filter(|&(p, t)| p == t).count();
        self.seen += predicted.len();
        Ok(StepLoss::new(cross_entropy(logits, labels_tensor(&truth, &self.device))))
    }

    fn end_epoch(&mut self, _ctx: &mut StageContext, _net: &RotNet, epoch: usize, record: &mut Value) -> Result<()> {
        let loss = record["loss"].as_f64().unwrap_or(f64::NAN);
        let accuracy = self.right as f64 / self.seen.max(1) as f64;
        relab_core::tracing::info!("epoch {epoch}: loss {loss:.4}, rotations told right {:.1}%", 100.0 * accuracy);
        record["rotation_accuracy"] = accuracy.into();
        self.last.last = Some((loss, accuracy));
        Ok(())
    }

    fn state(&self) -> LastEpoch {
        LastEpoch { counts: (self.right, self.seen), ..self.last.clone() }
    }

    fn restore(&mut self, state: LastEpoch, _dir: &Path) -> Result<()> {
        (self.right, self.seen) = state.counts;
        self.last = state;
        Ok(())
    }
}
