//! The `rotation` SSL method: the training loop of the pretext task, checkpointed after every epoch.

use std::path::Path;
use std::time::Instant;

use relab_core::burn;
use relab_core::burn::module::Module;
use relab_core::burn::optim::GradientsParams;
use relab_core::burn::tensor::{Tensor, TensorData};
use relab_core::component::{Encoder, SslMethod, StageContext};
use relab_core::data::{Dataset, LoaderConfig, for_each_batch};
use relab_core::nn::{Backbone, BackboneConfig, RotationHead, RotationHeadConfig};
use relab_core::rand::seq::SliceRandom;
use relab_core::registry::{ParamError, PluginInfo};
use relab_core::serde::{Deserialize, Serialize};
use relab_core::serde_json::json;
use relab_core::train::losses::labels_tensor;
use relab_core::train::metrics::argmax_rows;
use relab_core::train::{
    Optimiser, OptimiserSettings, cross_entropy, finite_loss, load_module, load_optimiser, save_module, save_optimiser,
};
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

/// What a checkpoint records beside the weights and the optimiser.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(crate = "relab_core::serde")]
struct Progress {
    epoch: usize,
    step: u64,
    /// Mean loss and rotation accuracy of the last epoch trained.
    last: Option<(f64, f64)>,
}

const MODEL: &str = "model";
const OPTIMISER: &str = "optimiser";

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
        let mut net = ctx.init(|| RotNet { backbone: config.init(&device), head: head.init(&device) });
        let mut optimiser = Optimiser::sgd(&p.optimizer);
        let mut progress = Progress::default();
        if let Some((saved, dir)) = ctx.restore_checkpoint::<Progress>()? {
            net = load_module(&dir, MODEL, net)?;
            optimiser = load_optimiser(&dir, OPTIMISER, optimiser)?;
            progress = saved;
        }
        let bar = ctx.progress(p.epochs as u64, "epochs");
        bar.set_position(progress.epoch as u64);
        while progress.epoch < p.epochs {
            let epoch = progress.epoch + 1;
            let started = Instant::now();
            let (loss, accuracy, steps) = self.train_epoch(ctx, data, &mut net, &mut optimiser, &mut progress)?;
            let lr = p.schedule.lr(progress.epoch as u64, progress.step);
            relab_core::tracing::info!("epoch {epoch}: loss {loss:.4}, rotations told right {:.1}%", 100.0 * accuracy);
            ctx.log(json!({
                "epoch": epoch, "loss": loss, "rotation_accuracy": accuracy, "lr": lr, "steps": steps,
                "seconds": started.elapsed().as_secs_f64(),
            }))?;
            progress.epoch = epoch;
            progress.last = Some((loss, accuracy));
            let (n, o) = (&net, &optimiser);
            ctx.save_checkpoint(&progress, |dir| {
                save_module(dir, MODEL, n)?;
                save_optimiser(dir, OPTIMISER, o)
            })?;
            bar.inc(1);
        }
        bar.finish_and_clear();
        if let Some((loss, accuracy)) = progress.last {
            ctx.set_summary("rotation_loss", loss);
            ctx.set_summary("rotation_accuracy", accuracy);
        }
        let norm = (data.mean.as_slice(), data.std.as_slice());
        Ok(Box::new(RotationEncoder::new(net.backbone, config, norm, &ctx.device, p.eval_batch_size)))
    }

    fn load_encoder(&self, ctx: &mut StageContext, dir: &Path) -> Result<Box<dyn Encoder>> {
        Ok(Box::new(RotationEncoder::load(dir, &ctx.device, self.params.eval_batch_size)?))
    }
}

impl RotationPrediction {
    /// One epoch over a fresh draw of the training images; returns the mean loss, the fraction of rotations told
    /// right (on the augmented inputs, before each step) and the number of steps.
    fn train_epoch(
        &self,
        ctx: &mut StageContext,
        data: &Dataset,
        net: &mut RotNet,
        optimiser: &mut Optimiser,
        progress: &mut Progress,
    ) -> Result<(f64, f64, usize)> {
        let p = &self.params;
        let (epoch, lr_epoch) = (progress.epoch + 1, progress.epoch as u64);
        let device = ctx.device.clone().autodiff();
        let mut order: Vec<usize> = (0..data.train.len()).collect();
        order.shuffle(&mut ctx.rng);
        order.truncate(p.images_per_epoch.unwrap_or(order.len()));
        let mut loader = LoaderConfig::new(p.batch_size, &data.mean, &data.std);
        loader.augment = Some(p.augment.clone());
        loader.seed = ctx.seed;
        loader.epoch = epoch as u64;
        let (mut loss_sum, mut right, mut seen, mut steps) = (0.0, 0usize, 0usize, 0usize);
        for_each_batch(&data.train, &order, &loader, |batch| {
            let x = Tensor::<4>::from_data(TensorData::new(batch.images, batch.shape), &device);
            let (x, truth) = four_rotations(x);
            let logits = net.head.forward(net.backbone.forward(x).features);
            let values = logits.clone().into_data().try_into_vec_as::<f32>();
            let values = values.map_err(|e| Error::stage("pretrain", format!("cannot read the logits: {e:?}")))?;
            let predicted = argmax_rows(&values, RotationHeadConfig::ROTATIONS);
            right += predicted.iter().zip(&truth).filter(|&(p, t)| p == t).count();
            seen += predicted.len();
            let loss = cross_entropy(logits, labels_tensor(&truth, &device));
            let value = finite_loss(ctx, "rotation loss", &loss, format!("epoch {epoch} step {}", progress.step))?;
            let grads = GradientsParams::from_grads(loss.backward(), &*net);
            *net = optimiser.step(p.schedule.lr(lr_epoch, progress.step), net.clone(), grads);
            progress.step += 1;
            loss_sum += value;
            steps += 1;
            Ok(())
        })?;
        Ok((loss_sum / steps.max(1) as f64, right as f64 / seen.max(1) as f64, steps))
    }
}
