//! Phase 2b's training on the noisy labels (`docs/method.md` §4): a fresh backbone trained on the pool with the
//! carried labels through core's training loop, each tracked epoch followed by a pass that measures every pool
//! image's loss; the tracked losses are part of every checkpoint.

use std::path::Path;
use std::time::Instant;

use rand::seq::SliceRandom;
use relab_core::burn::module::Module;
use relab_core::burn::tensor::{Device, Tensor, TensorData};
use relab_core::component::StageContext;
use relab_core::data::{Batch, Dataset, LoaderConfig, for_each_batch};
use relab_core::nn::{Backbone, BackboneConfig};
use relab_core::train::losses::{cross_entropy_per_sample, labels_tensor};
use relab_core::train::{At, Fit, Optimiser, Recipe, Run, StepLoss, cross_entropy};
use relab_core::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::params::SmallLossParams;
use crate::pool::training_pool;
use crate::tracker::LossTracker;

/// The pool and each pool image's loss averaged over the tracked epochs, in pool order.
pub struct TrackedLosses {
    pub pool: Vec<usize>,
    pub mean: Vec<f64>,
}

/// What a checkpoint records beside the weights, the optimiser state and the tracked losses.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PoolState {
    /// The training indices trained on and ranked, ascending.
    pool: Vec<usize>,
    /// Epochs finished.
    epoch: usize,
}

/// Trains a fresh backbone on `labels` (the carried label of every training image) over a pool drawn around
/// `seeds`, and returns the pool's tracked losses. Resumes from the stage's checkpoint on `--resume`.
pub fn track_losses(
    ctx: &mut StageContext,
    p: &SmallLossParams,
    data: &Dataset,
    labels: &[u32],
    seeds: &[usize],
) -> Result<TrackedLosses> {
    let device = ctx.device.clone().autodiff();
    let config = BackboneConfig::new(p.backbone, data.train.channels, data.num_classes);
    let fresh: Backbone = ctx.init(&device, |d| config.init(d));
    let mut fit = Fit::start(ctx)?;
    let model = fit.model(fresh, Ok)?;
    // A resumed stage takes its pool from the checkpoint; drawing one would move the restored RNG.
    let pool = if fit.resumes() { Vec::new() } else { training_pool(data.train.len(), seeds, p.sample, &mut ctx.rng) };
    let mut recipe = NoisyLabels {
        p,
        data,
        labels,
        device,
        tracker: LossTracker::new(p.epochs, p.track_epochs, pool.len()),
        state: PoolState { pool, epoch: 0 },
    };
    let run = Run::new(data, model, Optimiser::sgd(&p.optimizer), p.epochs, p.batch_size, &p.schedule)
        .augment(&p.augment)
        .loss_name("cross-entropy loss");
    tracing::info!(
        "small-loss: training a fresh {} on {} of {} images for {} epochs, losses tracked from epoch {}",
        p.backbone,
        if fit.resumes() { "the checkpoint's pool".to_string() } else { recipe.state.pool.len().to_string() },
        data.train.len(),
        p.epochs,
        recipe.tracker.first_tracked()
    );
    fit.run(ctx, &mut recipe, run)?;
    let mean = recipe.tracker.mean().expect("every tracked epoch has run");
    Ok(TrackedLosses { pool: recipe.state.pool, mean })
}

/// Cross-entropy against the carried labels; after each tracked epoch, every pool image's loss.
struct NoisyLabels<'a> {
    p: &'a SmallLossParams,
    data: &'a Dataset,
    labels: &'a [u32],
    device: Device,
    tracker: LossTracker,
    state: PoolState,
}

impl NoisyLabels<'_> {
    /// The cross-entropy of every pool image against its carried label, un-augmented, the model in evaluation
    /// mode.
    fn measure_losses(&self, model: &Backbone) -> Result<Vec<f32>> {
        let eval = model.valid();
        let device = self.device.clone().without_autodiff();
        let loader = LoaderConfig::new(self.p.eval_batch_size, &self.data.mean, &self.data.std);
        let mut losses = Vec::with_capacity(self.state.pool.len());
        for_each_batch(&self.data.train, &self.state.pool, &loader, |batch| {
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

impl Recipe for NoisyLabels<'_> {
    type Model = Backbone;
    type State = PoolState;

    fn epoch_order(&mut self, ctx: &mut StageContext, _epoch: usize) -> Result<Vec<usize>> {
        let mut order = self.state.pool.clone();
        order.shuffle(&mut ctx.rng);
        Ok(order)
    }

    fn step(&mut self, _ctx: &mut StageContext, model: &Backbone, batch: Batch, _at: At) -> Result<StepLoss> {
        let y: Vec<u32> = batch.indices.iter().map(|&i| self.labels[i]).collect();
        let x = Tensor::<4>::from_data(TensorData::new(batch.images, batch.shape), &self.device);
        Ok(StepLoss::new(cross_entropy(model.forward(x).logits, labels_tensor(&y, &self.device))))
    }

    fn end_epoch(&mut self, ctx: &mut StageContext, model: &Backbone, epoch: usize, record: &mut Value) -> Result<()> {
        self.state.epoch = epoch;
        if !self.tracker.tracks(epoch) {
            return Ok(());
        }
        let started = Instant::now();
        let losses = self.measure_losses(model)?;
        record["track_seconds"] = started.elapsed().as_secs_f64().into();
        if let Some((k, &bad)) = losses.iter().enumerate().find(|(_, l)| !l.is_finite()) {
            let at = format!("epoch {epoch}, training image {}", self.state.pool[k]);
            ctx.check_finite("tracked loss", bad as f64, &at)?;
        }
        record["tracked_loss"] = (losses.iter().map(|&l| l as f64).sum::<f64>() / losses.len() as f64).into();
        self.tracker.record(epoch, &losses);
        Ok(())
    }

    fn state(&self) -> PoolState {
        self.state.clone()
    }

    fn save_files(&self, dir: &Path) -> Result<()> {
        self.tracker.save(dir)
    }

    fn restore(&mut self, state: PoolState, dir: &Path) -> Result<()> {
        let p = self.p;
        let tracker = LossTracker::new(p.epochs, p.track_epochs, state.pool.len()).load(dir)?;
        if tracker.rows() != tracker.rows_after(state.epoch) {
            return Err(Error::format(
                dir,
                format!(
                    "the checkpoint is at epoch {} but holds {} tracked epochs of losses (expected {})",
                    state.epoch,
                    tracker.rows(),
                    tracker.rows_after(state.epoch)
                ),
            ));
        }
        (self.tracker, self.state) = (tracker, state);
        Ok(())
    }
}
