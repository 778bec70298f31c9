//! The one training loop every training plugin runs on. It owns epochs and steps, the loaders' per-epoch seeding,
//! the learning-rate schedule, the NaN guard, the evaluation cadence, metrics, progress bars and checkpoints (the
//! network, the optimiser, the EMA and SWA averages and the plugin's own state), and restores all of them
//! bit-identically on `--resume`. A plugin gives a [`Recipe`]: the order of an epoch's images and the loss of one
//! batch, plus optional hooks.
//!
//! ```ignore
//! let mut fit = Fit::start(ctx)?;                      // reads the stage's checkpoint once, on --resume
//! let model = fit.model(fresh, Ok)?;                   // the checkpoint's weights, or `init(fresh)`
//! let run = Run::new(data, model, Optimiser::sgd(&p.optimizer), p.epochs, p.batch_size, &p.schedule)
//!     .augment(&p.augment)
//!     .eval_every(p.eval_every);
//! let trained = fit.run(ctx, &mut MyRecipe { .. }, run)?;
//! ```
//!
//! A stop request ([`crate::interrupt`]: SIGTERM, SIGINT, SIGUSR2) is polled after every step: the loop then writes
//! a mid-epoch checkpoint (the step within the epoch, the epoch's order, its metric sums, and everything an epoch
//! checkpoint holds) and ends the stage with [`Error::Interrupted`]; `--resume` replays the epoch's remaining
//! batches exactly as an uninterrupted run would have.
//!
//! A stage may train in several runs (pseudo-label's warm-up, then its semi-supervised run): each is a [`Phase`],
//! and a checkpoint written in a later phase makes `run` skip the earlier ones on resume.
use std::path::Path;
use std::time::Instant;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::checkpoint::{load_module, load_optimiser, save_module, save_optimiser};
use super::{Ema, LrSchedule, Optimiser, Swa, finite_loss};
use crate::component::StageContext;
use crate::data::augment::Pipeline;
use crate::data::{Batch, Dataset, LoaderConfig, for_each_batch};
use crate::{Error, Result, interrupt};

const MODEL: &str = "model";
const OPTIMISER: &str = "optimiser";
const SWA: &str = "swa";
const EMA: &str = "ema";

/// What a training plugin gives the loop. Everything it keeps across epochs lives in the recipe and is checkpointed
/// through [`Recipe::state`] (written into `state.json`; floats round-trip exactly) and [`Recipe::save_files`].
pub trait Recipe {
    /// The networks trained together: one burn module (a plugin with several wraps them in one
    /// `#[derive(Module)]` struct).
    type Model: Module;
    /// The plugin's own checkpointed state (`()` for none).
    type State: Serialize + DeserializeOwned;

    /// The training indices of epoch `epoch` (1-based), in the order they are batched. Draws its shuffles from
    /// `ctx.rng`, which checkpoints restore.
    fn epoch_order(&mut self, ctx: &mut StageContext, epoch: usize) -> Result<Vec<usize>>;

    /// The loss of one batch, which the loop checks, differentiates and steps the optimiser on.
    fn step(&mut self, ctx: &mut StageContext, model: &Self::Model, batch: Batch, at: At) -> Result<StepLoss>;

    /// After each optimiser step, with the updated model (e.g. pseudo-label's predictions on the clean images).
    fn after_step(&mut self, _ctx: &mut StageContext, _model: &Self::Model, _indices: &[usize]) -> Result<()> {
        Ok(())
    }

    /// After an epoch's last step, before the SWA snapshot, the evaluation and the checkpoint: label swaps,
    /// repropagation, policy updates, monitors. Adds what it wants logged to `record` (a JSON object).
    fn end_epoch(
        &mut self,
        _ctx: &mut StageContext,
        _model: &Self::Model,
        _epoch: usize,
        _record: &mut Value,
    ) -> Result<()> {
        Ok(())
    }

    /// Whether the weights after `epoch` join the SWA average.
    fn swa_snapshot(&self, _epoch: usize) -> bool {
        false
    }

    /// The test accuracy of `model` (the EMA model when the run keeps one), when an evaluation is due
    /// ([`Run::eval_every`]); `None` when it cannot be measured (a test split without labels).
    fn evaluate(&mut self, _ctx: &mut StageContext, _model: &Self::Model) -> Result<Option<f64>> {
        Ok(None)
    }

    /// The plugin's state to checkpoint.
    fn state(&self) -> Self::State;

    /// Files of the plugin's state too large for `state.json`, written into the checkpoint folder `dir`.
    fn save_files(&self, _dir: &Path) -> Result<()> {
        Ok(())
    }

    /// Takes back what [`Recipe::state`] and [`Recipe::save_files`] saved (`dir` is the checkpoint folder).
    fn restore(&mut self, state: Self::State, dir: &Path) -> Result<()>;
}

/// Where the loop is, for [`Recipe::step`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct At {
    /// 1-based, within the run.
    pub epoch: usize,
    /// Optimiser steps taken in the run before this one.
    pub step: u64,
    /// This step's learning rate.
    pub lr: f64,
}

/// One step's loss, and the numbers to log as their mean over the epoch (e.g. the terms of the loss).
pub struct StepLoss {
    pub loss: Tensor<1>,
    pub logs: Vec<(&'static str, f64)>,
}

impl StepLoss {
    pub fn new(loss: Tensor<1>) -> Self {
        StepLoss { loss, logs: Vec::new() }
    }

    /// Logs `value` under `key` (the epoch's record holds the mean over its steps).
    pub fn log(mut self, key: &'static str, value: f64) -> Self {
        self.logs.push((key, value));
        self
    }
}

/// Which epoch number the learning-rate schedule sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleEpoch {
    /// The epoch in progress, 1-based (ReLaB's Pseudo-Labeling scripts).
    Current,
    /// The epochs finished, 0-based: PyTorch's `MultiStepLR` stepped after each epoch (iMix).
    Finished,
}

/// One of a stage's training runs, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Phase {
    pub index: u32,
    /// For progress bars and messages; empty for a stage's only run.
    pub name: &'static str,
}

impl Phase {
    pub const ONLY: Phase = Phase { index: 0, name: "" };
}

/// One run of the loop: the network and optimiser to train, and how.
pub struct Run<'a, M> {
    data: &'a Dataset,
    model: M,
    optimiser: Optimiser,
    epochs: usize,
    batch_size: usize,
    augment: Option<Pipeline>,
    schedule: LrSchedule,
    schedule_epoch: ScheduleEpoch,
    eval_every: usize,
    ema_decay: Option<f64>,
    loss_name: &'static str,
    phase: Phase,
    epoch_offset: usize,
}

impl<'a, M: Module> Run<'a, M> {
    /// `epochs` epochs over `data.train` in batches of `batch_size`, without augmentation, no evaluation.
    pub fn new(
        data: &'a Dataset,
        model: M,
        optimiser: Optimiser,
        epochs: usize,
        batch_size: usize,
        schedule: &LrSchedule,
    ) -> Self {
        Run {
            data,
            model,
            optimiser,
            epochs,
            batch_size,
            augment: None,
            schedule: schedule.clone(),
            schedule_epoch: ScheduleEpoch::Current,
            eval_every: 0,
            ema_decay: None,
            loss_name: "loss",
            phase: Phase::ONLY,
            epoch_offset: 0,
        }
    }

    /// The training augmentations the loader applies.
    pub fn augment(mut self, pipeline: &Pipeline) -> Self {
        self.augment = Some(pipeline.clone());
        self
    }

    pub fn schedule_epoch(mut self, epoch: ScheduleEpoch) -> Self {
        self.schedule_epoch = epoch;
        self
    }

    /// Evaluates every `n` epochs and after the last ([`Recipe::evaluate`]); 0 never.
    pub fn eval_every(mut self, n: usize) -> Self {
        self.eval_every = n;
        self
    }

    /// Keeps an EMA of the weights, updated after every step, checkpointed, and evaluated instead of the model.
    pub fn ema(mut self, decay: f64) -> Self {
        self.ema_decay = Some(decay);
        self
    }

    /// The loss's name in the NaN guard's message.
    pub fn loss_name(mut self, name: &'static str) -> Self {
        self.loss_name = name;
        self
    }

    /// A run of a stage that trains in several: `epoch_offset` is added to the run's epochs for the loader's
    /// augmentation seeds and for the metrics' `epoch`, so the runs draw distinct augmentations and plot as one
    /// curve.
    pub fn phase(mut self, phase: Phase, epoch_offset: usize) -> Self {
        self.phase = phase;
        self.epoch_offset = epoch_offset;
        self
    }
}

/// What a run ends with.
pub struct Trained<M: Module> {
    pub model: M,
    pub optimiser: Optimiser,
    /// Empty unless [`Recipe::swa_snapshot`] took snapshots.
    pub swa: Swa<M>,
    pub ema: Option<Ema<M>>,
    /// The test accuracy after each evaluation of this run.
    pub history: Vec<f64>,
    /// Optimiser steps taken.
    pub steps: u64,
}

/// The loop's part of a checkpoint's `state.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Saved {
    /// The run's [`Phase::name`], for a reader of `state.json`.
    phase: String,
    phase_index: u32,
    /// Epochs finished in `phase`.
    epoch: usize,
    /// Optimiser steps taken in `phase`.
    step: u64,
    /// The test accuracies of every run so far, by phase.
    histories: Vec<Vec<f64>>,
    swa_snapshots: u64,
    /// The recipe's [`Recipe::state`].
    state: Value,
    /// Present when the checkpoint was written within epoch `epoch + 1` on a stop request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mid_epoch: Option<MidEpoch>,
}

/// Where an interrupted epoch stood. Floats are kept as their bits: exact, and NaN-safe.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct MidEpoch {
    /// Batches of the epoch already stepped on.
    batches_done: usize,
    /// The epoch's order ([`Recipe::epoch_order`] drew it from `ctx.rng` before the checkpoint's RNG state).
    order: Vec<usize>,
    /// The learning rate at the epoch's start, which its record logs.
    first_lr_bits: u64,
    sums: SavedSums,
}

/// [`Sums`] in a checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SavedSums {
    steps: usize,
    loss_bits: u64,
    logs: Vec<(String, u64)>,
}

/// A stage's training: its checkpoint, read once, and the runs that continue from it.
pub struct Fit {
    saved: Option<(Saved, std::path::PathBuf)>,
    histories: Vec<Vec<f64>>,
}

impl Fit {
    /// On `--resume`, reads the stage's checkpoint (and restores `ctx.rng` from it); otherwise starts afresh.
    pub fn start(ctx: &mut StageContext) -> Result<Self> {
        let saved = ctx.restore_checkpoint::<Saved>()?;
        let histories = saved.as_ref().map(|(s, _)| s.histories.clone()).unwrap_or_default();
        Ok(Fit { saved, histories })
    }

    /// Whether the stage continues from a checkpoint.
    pub fn resumes(&self) -> bool {
        self.saved.is_some()
    }

    /// Whether the checkpoint was written in `phase` or a later one, so that what comes before `phase` already ran.
    pub fn resumes_in(&self, phase: Phase) -> bool {
        self.saved.as_ref().is_some_and(|(s, _)| s.phase_index >= phase.index)
    }

    /// The network to train: `fresh` with the checkpoint's weights when the stage resumes, otherwise `init(fresh)`
    /// (e.g. the pretrain stage's weights).
    pub fn model<M: Module>(&self, fresh: M, init: impl FnOnce(M) -> Result<M>) -> Result<M> {
        match &self.saved {
            Some((_, dir)) => load_module(dir, MODEL, fresh),
            None => init(fresh),
        }
    }

    /// Trains `run` with `recipe` to its last epoch, from the checkpoint when it was written in this run's phase.
    pub fn run<R: Recipe>(
        &mut self,
        ctx: &mut StageContext,
        recipe: &mut R,
        run: Run<'_, R::Model>,
    ) -> Result<Trained<R::Model>> {
        let phase = run.phase.index as usize;
        if self.histories.len() <= phase {
            self.histories.resize(phase + 1, Vec::new());
        }
        let mut model = run.model;
        let mut optimiser = run.optimiser;
        let mut swa = Swa::new();
        let mut ema = run.ema_decay.map(|d| Ema::new(&model, d));
        let (mut epoch, mut step) = (0, 0);
        let mut in_flight: Option<MidEpoch> = None;
        if let Some((saved, dir)) = &self.saved {
            if saved.phase_index as usize > phase {
                let history = self.histories[phase].clone();
                return Ok(Trained { model, optimiser, swa, ema, history, steps: 0 });
            }
            if saved.phase_index as usize == phase {
                if saved.epoch > run.epochs {
                    return Err(Error::format(
                        dir.join("state.json"),
                        format!(
                            "the checkpoint is at epoch {} but this run has {} epochs; delete {} to run the stage \
                             from its start",
                            saved.epoch,
                            run.epochs,
                            dir.display()
                        ),
                    ));
                }
                optimiser = load_optimiser(dir, OPTIMISER, optimiser)?;
                if saved.swa_snapshots > 0 {
                    swa = Swa::resume(load_module(dir, SWA, model.valid())?, saved.swa_snapshots);
                }
                if let Some(d) = run.ema_decay {
                    ema = Some(Ema::resume(load_module(dir, EMA, model.valid())?, d));
                }
                let state = serde_json::from_value(saved.state.clone()).map_err(|e| {
                    Error::format(dir.join("state.json"), format!("not this plugin's checkpoint state: {e}"))
                })?;
                recipe.restore(state, dir)?;
                (epoch, step) = (saved.epoch, saved.step);
                in_flight = saved.mid_epoch.clone();
            }
        }
        let data = run.data;
        let label = if run.phase.name.is_empty() { "epochs".to_string() } else { format!("{} epochs", run.phase.name) };
        let at_phase = if run.phase.name.is_empty() { String::new() } else { format!("{} ", run.phase.name) };
        let bar = ctx.progress(run.epochs as u64, &label);
        bar.set_position(epoch as u64);
        while epoch < run.epochs {
            let e = epoch + 1;
            let started = Instant::now();
            let schedule_epoch = match run.schedule_epoch {
                ScheduleEpoch::Current => e as u64,
                ScheduleEpoch::Finished => epoch as u64,
            };
            let (order, first_lr, mut sums, skip) = match in_flight.take() {
                Some(mid) => (mid.order, f64::from_bits(mid.first_lr_bits), Sums::restore(mid.sums), mid.batches_done),
                None => (recipe.epoch_order(ctx, e)?, run.schedule.lr(schedule_epoch, step), Sums::default(), 0),
            };
            let mut loader = LoaderConfig::new(run.batch_size, &data.mean, &data.std);
            loader.augment = run.augment.clone();
            loader.seed = ctx.seed;
            loader.epoch = (run.epoch_offset + e) as u64;
            // The model moves through the optimiser by value; the slot is empty only inside one step.
            let mut slot = Some(model);
            let (mut batches_done, mut stop) = (0usize, None);
            let stepped = for_each_batch(&data.train, &order, &loader, |batch| {
                // A resumed epoch passes over the batches stepped on before the checkpoint: the loader seeds each
                // sample's augmentation by its position in the epoch, so the rest come out as they would have.
                if batches_done < skip {
                    batches_done += 1;
                    return Ok(());
                }
                let current = slot.take().expect("the model is back in its slot after every step");
                let at = At { epoch: e, step, lr: run.schedule.lr(schedule_epoch, step) };
                let indices = batch.indices.clone();
                let out = recipe.step(ctx, &current, batch, at)?;
                let value = finite_loss(ctx, run.loss_name, &out.loss, format_args!("{at_phase}epoch {e} step {step}"));
                let value = match value {
                    Ok(v) => v,
                    Err(err) => {
                        slot = Some(current);
                        return Err(err);
                    }
                };
                let grads = GradientsParams::from_grads(out.loss.backward(), &current);
                let updated = optimiser.step(at.lr, current, grads);
                step += 1;
                sums.add(value, &out.logs);
                if let Some(ema) = &mut ema {
                    ema.update(&updated);
                }
                let after = recipe.after_step(ctx, &updated, &indices);
                slot = Some(updated);
                after?;
                batches_done += 1;
                stop = ctx.stop_requested_after_step();
                // Ends the loader; the sentinel is told apart from a real error by `stop`.
                if let Some(signal) = stop { Err(Error::Interrupted { signal }) } else { Ok(()) }
            });
            match (stepped, stop) {
                (Err(Error::Interrupted { .. }), Some(signal)) => {
                    let model = slot.expect("the model is back in its slot after a step");
                    let batches = order_batches(order.len(), run.batch_size);
                    let mid = MidEpoch { batches_done, order, first_lr_bits: first_lr.to_bits(), sums: sums.save() };
                    let saved = self.saved_state(ctx, &run.phase, epoch, step, &swa, recipe, Some(mid))?;
                    write_checkpoint(ctx, &saved, &model, &optimiser, &swa, &ema, recipe)?;
                    bar.finish_and_clear();
                    tracing::warn!(
                        "{}: {} received: checkpointed {at_phase}epoch {e} after step {batches_done} of {batches} \
                         into {}; `relab run ... --resume` continues from there",
                        ctx.stage,
                        interrupt::signal_name(signal),
                        ctx.checkpoint_dir().display()
                    );
                    return Err(Error::Interrupted { signal });
                }
                (result, _) => result?,
            }
            model = slot.expect("the model is back in its slot after the epoch");
            let mut record = sums.record(run.phase.name, run.epoch_offset + e, first_lr);
            recipe.end_epoch(ctx, &model, e, &mut record)?;
            if recipe.swa_snapshot(e) {
                swa.update(&model);
            }
            if run.eval_every > 0 && (e.is_multiple_of(run.eval_every) || e == run.epochs) {
                let evaluated = match &ema {
                    Some(ema) => recipe.evaluate(ctx, ema.model())?,
                    None => recipe.evaluate(ctx, &model)?,
                };
                if let Some(accuracy) = evaluated {
                    self.histories[phase].push(accuracy);
                    record["test_accuracy"] = accuracy.into();
                }
            }
            record["seconds"] = started.elapsed().as_secs_f64().into();
            ctx.log(record)?;
            epoch = e;
            let saved = self.saved_state(ctx, &run.phase, epoch, step, &swa, recipe, None)?;
            write_checkpoint(ctx, &saved, &model, &optimiser, &swa, &ema, recipe)?;
            bar.inc(1);
            // A stop asked for during the epoch's end (evaluation, label swaps) finds this checkpoint whole.
            if let Some(signal) = interrupt::requested() {
                bar.finish_and_clear();
                tracing::warn!(
                    "{}: {} received: checkpointed {at_phase}epoch {e} at its end into {}; `relab run ... --resume` \
                     continues from there",
                    ctx.stage,
                    interrupt::signal_name(signal),
                    ctx.checkpoint_dir().display()
                );
                return Err(Error::Interrupted { signal });
            }
        }
        bar.finish_and_clear();
        Ok(Trained { model, optimiser, swa, ema, history: self.histories[phase].clone(), steps: step })
    }

    /// The loop's `state.json` after `epoch` finished epochs and `step` steps of `phase`.
    #[allow(clippy::too_many_arguments)]
    fn saved_state<R: Recipe>(
        &self,
        ctx: &StageContext,
        phase: &Phase,
        epoch: usize,
        step: u64,
        swa: &Swa<R::Model>,
        recipe: &R,
        mid_epoch: Option<MidEpoch>,
    ) -> Result<Saved> {
        Ok(Saved {
            phase: phase.name.to_string(),
            phase_index: phase.index,
            epoch,
            step,
            histories: self.histories.clone(),
            swa_snapshots: swa.count(),
            state: serde_json::to_value(recipe.state())
                .map_err(|e| Error::stage(ctx.stage.name(), format!("cannot record the plugin's state: {e}")))?,
            mid_epoch,
        })
    }
}

/// Batches of an epoch of `n` images (the loop keeps the short last batch).
fn order_batches(n: usize, batch_size: usize) -> usize {
    n.div_ceil(batch_size.max(1))
}

/// Writes the stage's checkpoint: `saved`, the network, the optimiser, the SWA and EMA averages, the recipe's files.
fn write_checkpoint<R: Recipe>(
    ctx: &mut StageContext,
    saved: &Saved,
    model: &R::Model,
    optimiser: &Optimiser,
    swa: &Swa<R::Model>,
    ema: &Option<Ema<R::Model>>,
    recipe: &R,
) -> Result<()> {
    ctx.save_checkpoint(saved, |dir| {
        save_module(dir, MODEL, model)?;
        save_optimiser(dir, OPTIMISER, optimiser)?;
        if let Some(average) = swa.average() {
            save_module(dir, SWA, average)?;
        }
        if let Some(ema) = ema {
            save_module(dir, EMA, ema.model())?;
        }
        recipe.save_files(dir)
    })
}

/// One epoch's sums of step losses and logged numbers, in the order the keys first came.
#[derive(Default)]
struct Sums {
    steps: usize,
    loss: f64,
    logs: Vec<(String, f64)>,
}

impl Sums {
    fn add(&mut self, loss: f64, logs: &[(&'static str, f64)]) {
        self.steps += 1;
        self.loss += loss;
        for &(key, value) in logs {
            match self.logs.iter_mut().find(|(k, _)| k == key) {
                Some((_, sum)) => *sum += value,
                None => self.logs.push((key.to_string(), value)),
            }
        }
    }

    fn save(&self) -> SavedSums {
        SavedSums {
            steps: self.steps,
            loss_bits: self.loss.to_bits(),
            logs: self.logs.iter().map(|(k, v)| (k.clone(), v.to_bits())).collect(),
        }
    }

    fn restore(saved: SavedSums) -> Self {
        Sums {
            steps: saved.steps,
            loss: f64::from_bits(saved.loss_bits),
            logs: saved.logs.into_iter().map(|(k, v)| (k, f64::from_bits(v))).collect(),
        }
    }

    /// The epoch's metrics record: its number, the means, the learning rate at its start.
    fn record(&self, phase: &str, epoch: usize, lr: f64) -> Value {
        let n = self.steps.max(1) as f64;
        let mut record = json!({ "epoch": epoch, "steps": self.steps, "loss": self.loss / n, "lr": lr });
        if !phase.is_empty() {
            record["phase"] = phase.into();
        }
        for (key, sum) in &self.logs {
            record[key.as_str()] = (sum / n).into();
        }
        record
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::{Device, TensorData};
    use rand::Rng;
    use rand::seq::SliceRandom;

    use super::*;
    use crate::component::StageKind;
    use crate::testing::{TinySpec, stage_context, tiny_dataset};
    use crate::train::SgdSettings;
    use crate::train::losses::{cross_entropy, labels_tensor};

    /// A linear classifier on the raw pixels that also draws from `ctx.rng` every step and keeps a step count and
    /// a running sum as its own state, so a resume that forgets any of them shows.
    struct Linear3 {
        device: Device,
        seen: (u64, f64),
    }

    impl Recipe for Linear3 {
        type Model = Linear;
        type State = (u64, f64);

        fn epoch_order(&mut self, ctx: &mut StageContext, _epoch: usize) -> Result<Vec<usize>> {
            let mut order: Vec<usize> = (0..24).collect();
            order.shuffle(&mut ctx.rng);
            Ok(order)
        }

        fn step(&mut self, ctx: &mut StageContext, model: &Linear, batch: Batch, _at: At) -> Result<StepLoss> {
            let [b, c, h, w] = batch.shape;
            let x = Tensor::<2>::from_data(TensorData::new(batch.images, [b, c * h * w]), &self.device);
            let y = labels_tensor(batch.labels.as_deref().expect("tiny data is labelled"), &self.device);
            let noise: f64 = ctx.rng.random();
            self.seen = (self.seen.0 + 1, self.seen.1 + noise);
            Ok(StepLoss::new(cross_entropy(model.forward(x), y)).log("noise", noise))
        }

        fn state(&self) -> (u64, f64) {
            self.seen
        }

        fn restore(&mut self, state: (u64, f64), _dir: &Path) -> Result<()> {
            self.seen = state;
            Ok(())
        }
    }

    /// Trains 3 epochs of 6 batches (24 images, batches of 4) with an EMA in `dir`; the hook stops it after
    /// `interrupt_after` steps. Returns the outcome and the recipe's state.
    fn train(dir: &Path, resume: bool, interrupt_after: Option<u64>) -> (Result<Vec<u8>>, (u64, f64)) {
        let data = tiny_dataset(&TinySpec::default());
        let mut ctx = stage_context(dir, StageKind::Train, 3, resume).unwrap();
        ctx.interrupt_after_steps(interrupt_after);
        let device = ctx.device.clone().autodiff();
        let mut recipe = Linear3 { device: device.clone(), seen: (0, 0.0) };
        let result = (|| {
            let mut fit = Fit::start(&mut ctx)?;
            let fresh = ctx.init(&device, |d| LinearConfig::new(64, 3).init(d));
            let model = fit.model(fresh, Ok)?;
            let sgd = SgdSettings { momentum: 0.9, ..SgdSettings::default() };
            let run = Run::new(&data, model, Optimiser::sgd(&sgd), 3, 4, &LrSchedule::constant(0.1)).ema(0.5);
            let trained = fit.run(&mut ctx, &mut recipe, run)?;
            let weights = trained.ema.expect("the run keeps an EMA").model().weight.val().into_data();
            Ok(weights.as_bytes().to_vec())
        })();
        (result, recipe.seen)
    }

    fn metrics(dir: &Path) -> Vec<Value> {
        let text = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
        let mut records: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        for r in &mut records {
            r.as_object_mut().unwrap().remove("seconds");
        }
        records
    }

    fn saved(dir: &Path) -> Value {
        let path: PathBuf = dir.join("checkpoint").join("state.json");
        serde_json::from_str::<Value>(&std::fs::read_to_string(path).unwrap()).unwrap()["state"].clone()
    }

    #[test]
    fn a_stop_request_checkpoints_after_the_step_in_flight() {
        let dir = tempfile::tempdir().unwrap();
        let (result, seen) = train(dir.path(), false, Some(8));
        assert!(matches!(result, Err(Error::Interrupted { signal: 15 })), "{:?}", result.err());
        // Epoch 1's 6 steps and 2 of epoch 2: the loop stopped right after the 8th step.
        assert_eq!(seen.0, 8);
        let state = saved(dir.path());
        assert_eq!((state["epoch"].as_u64(), state["step"].as_u64()), (Some(1), Some(8)));
        assert_eq!(state["mid_epoch"]["batches_done"].as_u64(), Some(2));
        assert_eq!(state["mid_epoch"]["sums"]["steps"].as_u64(), Some(2));
        assert_eq!(state["mid_epoch"]["order"].as_array().unwrap().len(), 24);
        assert_eq!(state["state"][0].as_u64(), Some(8));
        // Only epoch 1 is logged; the one in flight is logged when it ends.
        assert_eq!(metrics(dir.path()).len(), 1);
    }

    #[test]
    fn a_run_stopped_mid_epoch_resumes_bit_identically() {
        let through = tempfile::tempdir().unwrap();
        let (expected, expected_seen) = train(through.path(), false, None);
        let expected = expected.unwrap();
        assert_eq!(expected_seen.0, 18);
        // Mid-epoch 1, mid-epoch 3, and after an epoch's last step (the resumed epoch replays no batch).
        for stop in [3, 15, 12] {
            let dir = tempfile::tempdir().unwrap();
            assert!(matches!(train(dir.path(), false, Some(stop)).0, Err(Error::Interrupted { .. })));
            let (resumed, seen) = train(dir.path(), true, None);
            assert_eq!(resumed.unwrap(), expected, "EMA weights after a stop at step {stop}");
            assert_eq!(seen.0.to_le_bytes(), expected_seen.0.to_le_bytes());
            assert_eq!(seen.1.to_bits(), expected_seen.1.to_bits(), "the recipe's state after a stop at step {stop}");
            assert_eq!(metrics(dir.path()), metrics(through.path()), "metrics after a stop at step {stop}");
            assert_eq!(saved(dir.path()), saved(through.path()), "the last checkpoint after a stop at step {stop}");
        }
    }
}
