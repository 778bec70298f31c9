//! Phase 2b's training on the noisy labels (`docs/method.md` §4): a fresh backbone trained on the pool with the
//! carried labels, each tracked epoch followed by a pass that measures every pool image's loss, a checkpoint
//! (weights, optimiser, tracked losses, epoch, RNG) after every epoch.

use std::time::Instant;

use rand::seq::SliceRandom;
use relab_core::burn::module::Module;
use relab_core::burn::optim::GradientsParams;
use relab_core::burn::tensor::{Device, Tensor, TensorData};
use relab_core::component::StageContext;
use relab_core::data::{Dataset, LoaderConfig, for_each_batch};
use relab_core::nn::{Backbone, BackboneConfig};
use relab_core::train::losses::{cross_entropy_per_sample, labels_tensor};
use relab_core::train::{
    Optimiser, cross_entropy, finite_loss, load_module, load_optimiser, save_module, save_optimiser,
};
use relab_core::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::params::SmallLossParams;
use crate::pool::training_pool;
use crate::tracker::LossTracker;

/// What a checkpoint records beside the weights, the optimiser state and the tracked losses.
#[derive(Debug, Serialize, Deserialize)]
struct Progress {
    /// Epochs finished.
    epoch: usize,
    /// Optimiser steps taken.
    step: u64,
    /// The training indices trained on and ranked, ascending.
    pool: Vec<usize>,
}

const MODEL: &str = "model";
const OPTIMISER: &str = "optimiser";

/// The pool and each pool image's loss averaged over the tracked epochs, in pool order.
pub struct TrackedLosses {
    pub pool: Vec<usize>,
    pub mean: Vec<f64>,
}

/// A training in progress: fresh, or restored from the stage's checkpoint on `--resume`.
pub struct NoisyTraining<'a> {
    params: &'a SmallLossParams,
    data: &'a Dataset,
    /// The carried label of every training image.
    labels: &'a [u32],
    device: Device,
    model: Backbone,
    optimiser: Optimiser,
    progress: Progress,
    tracker: LossTracker,
}

impl<'a> NoisyTraining<'a> {
    pub fn start(
        ctx: &mut StageContext,
        params: &'a SmallLossParams,
        data: &'a Dataset,
        labels: &'a [u32],
        seeds: &[usize],
    ) -> Result<Self> {
        let p = params;
        let device = ctx.device.clone().autodiff();
        let config = BackboneConfig::new(p.backbone, data.train.channels, data.num_classes);
        let model: Backbone = ctx.init(|| config.init(&device));
        let optimiser = Optimiser::sgd(&p.optimizer);
        let Some((progress, dir)) = ctx.restore_checkpoint::<Progress>()? else {
            let pool = training_pool(data.train.len(), seeds, p.sample, &mut ctx.rng);
            let tracker = LossTracker::new(p.epochs, p.track_epochs, pool.len());
            let progress = Progress { epoch: 0, step: 0, pool };
            return Ok(NoisyTraining { params, data, labels, device, model, optimiser, progress, tracker });
        };
        let model = load_module(&dir, MODEL, model)?;
        let optimiser = load_optimiser(&dir, OPTIMISER, optimiser)?;
        let tracker = LossTracker::new(p.epochs, p.track_epochs, progress.pool.len()).load(&dir)?;
        if tracker.rows() != tracker.rows_after(progress.epoch) {
            return Err(Error::format(
                dir,
                format!(
                    "the checkpoint is at epoch {} but holds {} tracked epochs of losses (expected {})",
                    progress.epoch,
                    tracker.rows(),
                    tracker.rows_after(progress.epoch)
                ),
            ));
        }
        Ok(NoisyTraining { params, data, labels, device, model, optimiser, progress, tracker })
    }

    /// Trains the remaining epochs, checkpointing after each, and returns the tracked losses.
    pub fn run(mut self, ctx: &mut StageContext) -> Result<TrackedLosses> {
        let p = self.params;
        tracing::info!(
            "small-loss: training a fresh {} on {} of {} images for {} epochs, losses tracked from epoch {}",
            p.backbone,
            self.progress.pool.len(),
            self.data.train.len(),
            p.epochs,
            self.tracker.first_tracked()
        );
        let bar = ctx.progress(p.epochs as u64, "epochs");
        bar.set_position(self.progress.epoch as u64);
        while self.progress.epoch < p.epochs {
            let epoch = self.progress.epoch + 1;
            let mut record = self.train_epoch(ctx, epoch)?;
            if self.tracker.tracks(epoch) {
                let started = Instant::now();
                let losses = self.measure_losses()?;
                record["track_seconds"] = started.elapsed().as_secs_f64().into();
                if let Some((k, &bad)) = losses.iter().enumerate().find(|(_, l)| !l.is_finite()) {
                    let at = format!("epoch {epoch}, training image {}", self.progress.pool[k]);
                    ctx.check_finite("tracked loss", bad as f64, &at)?;
                }
                record["tracked_loss"] = (losses.iter().map(|&l| l as f64).sum::<f64>() / losses.len() as f64).into();
                self.tracker.record(epoch, &losses);
            }
            ctx.log(record)?;
            self.progress.epoch = epoch;
            let (m, o, t) = (&self.model, &self.optimiser, &self.tracker);
            ctx.save_checkpoint(&self.progress, |dir| {
                save_module(dir, MODEL, m)?;
                save_optimiser(dir, OPTIMISER, o)?;
                t.save(dir)
            })?;
            bar.inc(1);
        }
        bar.finish_and_clear();
        let mean = self.tracker.mean().expect("every tracked epoch has run");
        Ok(TrackedLosses { pool: self.progress.pool, mean })
    }

    /// One pass over the shuffled pool, augmented; returns the epoch's metrics record.
    fn train_epoch(&mut self, ctx: &mut StageContext, epoch: usize) -> Result<Value> {
        let p = self.params;
        let mut order = self.progress.pool.clone();
        order.shuffle(&mut ctx.rng);
        let mut loader = LoaderConfig::new(p.batch_size, &self.data.mean, &self.data.std);
        loader.augment = Some(p.augment.clone());
        loader.seed = ctx.seed;
        loader.epoch = epoch as u64;
        let lr = p.schedule.lr(epoch as u64, self.progress.step);
        let (mut loss_sum, mut batches) = (0.0, 0usize);
        let started = Instant::now();
        for_each_batch(&self.data.train, &order, &loader, |batch| {
            let y: Vec<u32> = batch.indices.iter().map(|&i| self.labels[i]).collect();
            let x = Tensor::<4>::from_data(TensorData::new(batch.images, batch.shape), &self.device);
            let loss = cross_entropy(self.model.forward(x).logits, labels_tensor(&y, &self.device));
            let at = format!("epoch {epoch} step {}", self.progress.step);
            let value = finite_loss(ctx, "cross-entropy loss", &loss, at)?;
            let grads = GradientsParams::from_grads(loss.backward(), &self.model);
            let lr = p.schedule.lr(epoch as u64, self.progress.step);
            self.model = self.optimiser.step(lr, self.model.clone(), grads);
            self.progress.step += 1;
            loss_sum += value;
            batches += 1;
            Ok(())
        })?;
        Ok(json!({
            "epoch": epoch, "loss": loss_sum / batches.max(1) as f64, "lr": lr,
            "train_seconds": started.elapsed().as_secs_f64(),
        }))
    }

    /// The cross-entropy of every pool image against its carried label, un-augmented, the model in evaluation
    /// mode.
    fn measure_losses(&self) -> Result<Vec<f32>> {
        let eval = self.model.valid();
        let device = self.device.clone().without_autodiff();
        let loader = LoaderConfig::new(self.params.eval_batch_size, &self.data.mean, &self.data.std);
        let mut losses = Vec::with_capacity(self.progress.pool.len());
        for_each_batch(&self.data.train, &self.progress.pool, &loader, |batch| {
            let y: Vec<u32> = batch.indices.iter().map(|&i| self.labels[i]).collect();
            let x = Tensor::<4>::from_data(TensorData::new(batch.images, batch.shape), &device);
            let per_sample = cross_entropy_per_sample(eval.forward(x).logits, labels_tensor(&y, &device));
            let values = per_sample.into_data().try_into_vec_as::<f32>();
            losses
                .extend(values.map_err(|e| Error::stage("select", format!("cannot read the tracked losses: {e:?}")))?);
            Ok(())
        })?;
        Ok(losses)
    }
}
