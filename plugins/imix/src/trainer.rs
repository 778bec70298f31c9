use std::fs;
use std::path::Path;
use std::time::Instant;

use relab_core::artifact::atomic::remove_dir;
use relab_core::burn::tensor::Device;
use relab_core::component::{Encoder, SslMethod, StageContext};
use relab_core::data::{Batch, Dataset};
use relab_core::nn::BackboneConfig;
use relab_core::registry::{ParamError, PluginInfo};
use relab_core::train::{At, Fit, Mix, Optimiser, OptimiserSettings, Recipe, Run, ScheduleEpoch, StepLoss};
use relab_core::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

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
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct KnnProgress {
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
        let fresh = ctx.init(&device, |d| spec.init(d));
        let mut fit = Fit::start(ctx)?;
        let net = fit.model(fresh, Ok)?;
        let record = EncoderRecord {
            default_output: p.output,
            head_hidden: spec.head_hidden,
            head_output: spec.head_output,
            image_size: [h, w],
            mean: data.mean.clone(),
            std: data.std.clone(),
            epoch: 0,
            knn_accuracy: None,
        };
        let run = Run::new(data, net, Optimiser::sgd(&p.optimizer), p.epochs, 2 * p.batch_size, &p.schedule)
            .augment(&p.augment)
            .schedule_epoch(ScheduleEpoch::Finished)
            .loss_name("iMix loss");
        let mut recipe = ImixRecipe {
            p,
            data,
            spec: &spec,
            record: &record,
            monitor: monitor.as_ref(),
            device,
            progress: KnnProgress::default(),
        };
        let trained = fit.run(ctx, &mut recipe, run)?;
        let progress = recipe.progress;
        if let Some(best) = progress.best {
            ctx.set_summary("knn_best", json!({ "accuracy": best.accuracy, "epoch": best.epoch }));
        }
        let last_record = |knn: Option<Knn>| EncoderRecord {
            epoch: p.epochs,
            knn_accuracy: knn.filter(|k| k.epoch == p.epochs).map(|k| k.accuracy),
            ..record.clone()
        };
        let (encoder, knn) = match p.encoder {
            Keep::Last => {
                let knn = progress.last_knn.filter(|k| k.epoch == p.epochs);
                let record = last_record(knn);
                (ImixEncoder::new(trained.model, spec, record, &ctx.device, p.eval_batch_size), knn)
            }
            Keep::Best => {
                let record = last_record(progress.last_knn);
                let last = ImixEncoder::new(trained.model, spec, record, &ctx.device, p.eval_batch_size);
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

/// iMix's epochs: a fresh draw of the training images, two views of each, the N-pairs loss on the first view
/// mixed; the kNN monitor after the epochs it is due.
struct ImixRecipe<'a> {
    p: &'a ImixParams,
    data: &'a Dataset,
    spec: &'a NetSpec,
    record: &'a EncoderRecord,
    monitor: Option<&'a Monitor>,
    device: Device,
    progress: KnnProgress,
}

impl Recipe for ImixRecipe<'_> {
    type Model = ImixNet;
    type State = KnnProgress;

    fn epoch_order(&mut self, ctx: &mut StageContext, _epoch: usize) -> Result<Vec<usize>> {
        let p = self.p;
        let order = epoch_order(&mut ctx.rng, self.data.train.len(), p.images_per_epoch, p.batch_size);
        Ok(paired_order(&order, p.batch_size))
    }

    fn step(&mut self, ctx: &mut StageContext, net: &ImixNet, batch: Batch, _at: At) -> Result<StepLoss> {
        let p = self.p;
        let (view1, view2) = split_views(batch, &self.device);
        let [b, ..] = view1.dims();
        let mix = p.mix.then(|| Mix::per_batch(&mut ctx.rng, b, p.mix_alpha));
        Ok(StepLoss::new(imix_loss(|x| net.embed(x), view1, view2, p.temperature, mix.as_ref())))
    }

    fn end_epoch(&mut self, ctx: &mut StageContext, net: &ImixNet, epoch: usize, metrics: &mut Value) -> Result<()> {
        let Some(monitor) = self.monitor.filter(|m| m.due(epoch, self.p.epochs)) else {
            return Ok(());
        };
        let started = Instant::now();
        let record = EncoderRecord { epoch, ..self.record.clone() };
        let encoder = ImixEncoder::new(net.clone(), self.spec.clone(), record, &ctx.device, self.p.eval_batch_size);
        let accuracy = keep_if_best(ctx, monitor, encoder, self.data, &mut self.progress)?;
        metrics["knn_accuracy"] = accuracy.into();
        metrics["knn_seconds"] = started.elapsed().as_secs_f64().into();
        let loss = metrics["loss"].as_f64().unwrap_or(f64::NAN);
        tracing::info!("epoch {epoch}: loss {loss:.4}, kNN accuracy {:.2}%", 100.0 * accuracy);
        Ok(())
    }

    fn state(&self) -> KnnProgress {
        self.progress.clone()
    }

    fn restore(&mut self, state: KnnProgress, _dir: &Path) -> Result<()> {
        self.progress = state;
        Ok(())
    }
}

/// Runs the kNN monitor on `encoder` and, when it is the best so far, keeps it in `best/`. Returns the accuracy.
fn keep_if_best(
    ctx: &StageContext,
    monitor: &Monitor,
    mut encoder: ImixEncoder,
    data: &Dataset,
    progress: &mut KnnProgress,
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
