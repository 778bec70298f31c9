use std::fs;
use std::path::Path;
use std::time::Instant;

use relab_core::artifact::atomic::remove_dir;
use relab_core::burn::optim::GradientsParams;
use relab_core::component::{Encoder, SslMethod, StageContext};
use relab_core::data::{Dataset, LoaderConfig, for_each_batch};
use relab_core::nn::BackboneConfig;
use relab_core::registry::{ParamError, PluginInfo};
use relab_core::train::{
    Mix, Optimiser, OptimiserSettings, finite_loss, load_module, load_optimiser, save_module, save_optimiser,
};
use relab_core::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::encoder::{EncoderRecord, ImixEncoder};
use crate::loss::imix_loss;
use crate::monitor::Monitor;
use crate::network::{ImixNet, NetSpec};
use crate::params::{ImixParams, Keep};
use crate::views::{epoch_order, paired_order, split_views};

/// iMix / N-pairs self-supervised pretraining.
#[derive(Debug, Clone)]
pub struct Imix {
    params: ImixParams,
}

impl PluginInfo for Imix {
    const NAME: &'static str = "imix";
    const SUMMARY: &'static str =
        "iMix / N-pairs contrastive pretraining (two views, the first mixed) with a kNN monitor on the test split";
    type Params = ImixParams;

    fn from_params(params: ImixParams) -> Result<Self, ParamError> {
        // Counts and the other single-value ranges are checked by their `min`/`above` in ImixParams.
        let bad = |key: &str, message: String| ParamError { path: vec![key.into()], message, known_keys: vec![] };
        params.schedule.check().map_err(|m| bad("schedule", m))?;
        OptimiserSettings::Sgd(params.optimizer.clone()).check().map_err(|m| bad("optimizer", m))?;
        if params.encoder == Keep::Best && params.monitor_every == 0 {
            return Err(bad("encoder", "`best` is chosen by the kNN monitor, which monitor_every: 0 turns off".into()));
        }
        Ok(Imix { params })
    }
}

relab_core::submit_plugin!(pretrain, Imix);

/// What a checkpoint records beside the weights and the optimiser state.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Progress {
    /// Epochs finished.
    epoch: usize,
    /// Optimiser steps taken.
    step: u64,
    /// The latest kNN accuracy and the epoch it was measured after.
    last_knn: Option<Knn>,
    /// The best kNN accuracy so far; its encoder is in `best/`.
    best: Option<Knn>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Knn {
    epoch: usize,
    accuracy: f64,
}

const MODEL: &str = "model";
const OPTIMISER: &str = "optimiser";
/// The stage's sub-folder holding the encoder with the best kNN accuracy.
pub const BEST_DIR: &str = "best";
/// With `encoder: best`, the sub-folder holding the encoder after the last epoch (otherwise the stage's own).
pub const LAST_DIR: &str = "last";

impl SslMethod for Imix {
    fn pretrain(&mut self, ctx: &mut StageContext, data: &Dataset) -> Result<Box<dyn Encoder>> {
        let p = &self.params;
        let train = &data.train;
        if train.len() < 2 {
            return Err(Error::stage(
                "pretrain",
                format!("iMix needs at least 2 training images, found {}", train.len()),
            ));
        }
        let (h, w) = p.augment.output_size(train.height, train.width).map_err(|e| {
            Error::stage(
                "pretrain",
                format!("stages.pretrain.augment cannot take {}×{} images: {e}", train.height, train.width),
            )
        })?;
        let monitor = Monitor::new(p.monitor_every, p.knn_k, p.knn_sigma as f32, data);
        if p.encoder == Keep::Best && monitor.is_none() {
            return Err(Error::stage(
                "pretrain",
                "encoder: best needs the kNN monitor, and this dataset has no labels for the training or test split",
            ));
        }
        let spec = NetSpec::new(
            BackboneConfig::new(p.backbone, train.channels, data.num_classes),
            p.projection_hidden,
            p.projection_dim,
        );
        let device = ctx.device.clone().autodiff();
        let mut net = ctx.init(|| spec.init(&device));
        let mut optimiser = Optimiser::sgd(&p.optimizer);
        let mut progress = Progress::default();
        if let Some((saved, dir)) = ctx.restore_checkpoint::<Progress>()? {
            net = load_module(&dir, MODEL, net)?;
            optimiser = load_optimiser(&dir, OPTIMISER, optimiser)?;
            progress = saved;
        }
        let (head_hidden, head_output) = (spec.head_hidden, spec.head_output);
        let record = |epoch: usize, knn_accuracy: Option<f64>| EncoderRecord {
            default_output: p.output,
            head_hidden,
            head_output,
            image_size: [h, w],
            mean: data.mean.clone(),
            std: data.std.clone(),
            epoch,
            knn_accuracy,
        };
        let bar = ctx.progress(p.epochs as u64, "epochs");
        bar.set_position(progress.epoch as u64);
        while progress.epoch < p.epochs {
            let epoch = progress.epoch + 1;
            // MultiStepLR is stepped after each epoch in the original: the 0-based epoch picks the rate.
            let lr = p.schedule.lr(progress.epoch as u64, progress.step);
            let started = Instant::now();
            let (loss, steps) = self.train_epoch(ctx, data, &mut net, &mut optimiser, &mut progress)?;
            let seconds = started.elapsed().as_secs_f64();
            let mut metrics = json!({ "epoch": epoch, "loss": loss, "lr": lr, "steps": steps, "seconds": seconds });
            if let Some(monitor) = monitor.as_ref().filter(|m| m.due(epoch, p.epochs)) {
                let started = Instant::now();
                let encoder =
                    ImixEncoder::new(net.clone(), spec.clone(), record(epoch, None), &ctx.device, p.eval_batch_size);
                let accuracy = keep_if_best(ctx, monitor, encoder, data, &mut progress)?;
                metrics["knn_accuracy"] = accuracy.into();
                metrics["knn_seconds"] = started.elapsed().as_secs_f64().into();
                tracing::info!("epoch {epoch}: loss {loss:.4}, kNN accuracy {:.2}%", 100.0 * accuracy);
            } else {
                tracing::debug!("epoch {epoch}: loss {loss:.4}");
            }
            ctx.log(metrics)?;
            progress.epoch = epoch;
            let (n, o) = (&net, &optimiser);
            ctx.save_checkpoint(&progress, |dir| {
                save_module(dir, MODEL, n)?;
                save_optimiser(dir, OPTIMISER, o)
            })?;
            bar.inc(1);
        }
        bar.finish_and_clear();
        if let Some(best) = progress.best {
            ctx.set_summary("knn_best", json!({ "accuracy": best.accuracy, "epoch": best.epoch }));
        }
        let (encoder, knn) = match p.encoder {
            Keep::Last => {
                let knn = progress.last_knn.filter(|k| k.epoch == p.epochs);
                let record = record(p.epochs, knn.map(|k| k.accuracy));
                (ImixEncoder::new(net, spec, record, &ctx.device, p.eval_batch_size), knn)
            }
            Keep::Best => {
                let knn = progress.last_knn.filter(|k| k.epoch == p.epochs).map(|k| k.accuracy);
                let last = ImixEncoder::new(net, spec, record(p.epochs, knn), &ctx.device, p.eval_batch_size);
                save_replacing(&last, &ctx.dir().join(LAST_DIR))?;
                let best = ImixEncoder::load(&ctx.dir().join(BEST_DIR), &ctx.device, p.eval_batch_size)?;
                (best, progress.best)
            }
        };
        if let Some(knn) = knn {
            ctx.set_summary("knn_accuracy", knn.accuracy);
        }
        Ok(Box::new(encoder))
    }

    fn load_encoder(&self, ctx: &mut StageContext, dir: &Path) -> Result<Box<dyn Encoder>> {
        Ok(Box::new(ImixEncoder::load(dir, &ctx.device, self.params.eval_batch_size)?))
    }
}

impl Imix {
    /// One epoch: a fresh draw of the training images, two views of each, one optimiser step per batch. Returns
    /// the mean loss and the number of steps.
    fn train_epoch(
        &self,
        ctx: &mut StageContext,
        data: &Dataset,
        net: &mut ImixNet,
        optimiser: &mut Optimiser,
        progress: &mut Progress,
    ) -> Result<(f64, usize)> {
        let p = &self.params;
        let (epoch, lr_epoch) = (progress.epoch + 1, progress.epoch as u64);
        let device = ctx.device.clone().autodiff();
        let order = epoch_order(&mut ctx.rng, data.train.len(), p.images_per_epoch, p.batch_size);
        let mut loader = LoaderConfig::new(2 * p.batch_size, &data.mean, &data.std);
        loader.augment = Some(p.augment.clone());
        loader.seed = ctx.seed;
        loader.epoch = epoch as u64;
        let (mut loss_sum, mut steps) = (0.0, 0usize);
        for_each_batch(&data.train, &paired_order(&order, p.batch_size), &loader, |batch| {
            let (view1, view2) = split_views(batch, &device);
            let [b, ..] = view1.dims();
            let mix = p.mix.then(|| Mix::per_batch(&mut ctx.rng, b, p.mix_alpha));
            let loss = imix_loss(|x| net.embed(x), view1, view2, p.temperature, mix.as_ref());
            let value = finite_loss(ctx, "iMix loss", &loss, format!("epoch {epoch} step {}", progress.step))?;
            let grads = GradientsParams::from_grads(loss.backward(), &*net);
            *net = optimiser.step(p.schedule.lr(lr_epoch, progress.step), net.clone(), grads);
            progress.step += 1;
            loss_sum += value;
            steps += 1;
            Ok(())
        })?;
        Ok((loss_sum / steps.max(1) as f64, steps))
    }
}

/// Runs the kNN monitor on `encoder` and, when it is the best so far, keeps it in `best/`. Returns the accuracy.
fn keep_if_best(
    ctx: &StageContext,
    monitor: &Monitor,
    mut encoder: ImixEncoder,
    data: &Dataset,
    progress: &mut Progress,
) -> Result<f64> {
    let accuracy = monitor.accuracy(ctx, &encoder, data)?;
    let epoch = encoder.record.epoch;
    encoder.record.knn_accuracy = Some(accuracy);
    progress.last_knn = Some(Knn { epoch, accuracy });
    // Ties go to the later epoch, as the original's `if self.best <= acc`.
    if progress.best.is_none_or(|b| accuracy >= b.accuracy) {
        save_replacing(&encoder, &ctx.dir().join(BEST_DIR))?;
        progress.best = Some(Knn { epoch, accuracy });
    }
    Ok(accuracy)
}

/// Writes `encoder` into `dir` through a fresh sibling folder renamed over it, so `dir` always holds a whole
/// encoder (the previous best until the new one is complete).
fn save_replacing(encoder: &ImixEncoder, dir: &Path) -> Result<()> {
    let fresh = dir.with_extension("new");
    remove_dir(&fresh)?;
    encoder.save(&fresh)?;
    remove_dir(dir)?;
    fs::rename(&fresh, dir).map_err(|e| Error::io(&fresh, e))
}
