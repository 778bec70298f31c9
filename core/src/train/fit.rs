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
use crate::{Error, Result};

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
            let order = recipe.epoch_order(ctx, e)?;
            let mut loader = LoaderConfig::new(run.batch_size, &data.mean, &data.std);
            loader.augment = run.augment.clone();
            loader.seed = ctx.seed;
            loader.epoch = (run.epoch_offset + e) as u64;
            let first_lr = run.schedule.lr(schedule_epoch, step);
            let mut sums = Sums::default();
            // The model moves through the optimiser by value; the slot is empty only inside one step.
            let mut slot = Some(model);
            for_each_batch(&data.train, &order, &loader, |batch| {
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
                after
            })?;
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
            let saved = Saved {
                phase: run.phase.name.to_string(),
                phase_index: run.phase.index,
                epoch,
                step,
                histories: self.histories.clone(),
                swa_snapshots: swa.count(),
                state: serde_json::to_value(recipe.state())
                    .map_err(|e| Error::stage(ctx.stage.name(), format!("cannot record the plugin's state: {e}")))?,
            };
            let (m, o, s, a, r) = (&model, &optimiser, &swa, &ema, &*recipe);
            ctx.save_checkpoint(&saved, |dir| {
                save_module(dir, MODEL, m)?;
                save_optimiser(dir, OPTIMISER, o)?;
                if let Some(average) = s.average() {
                    save_module(dir, SWA, average)?;
                }
                if let Some(ema) = a {
                    save_module(dir, EMA, ema.model())?;
                }
                r.save_files(dir)
            })?;
            bar.inc(1);
        }
        bar.finish_and_clear();
        Ok(Trained { model, optimiser, swa, ema, history: self.histories[phase].clone(), steps: step })
    }
}

/// One epoch's sums of step losses and logged numbers, in the order the keys first came.
#[derive(Default)]
struct Sums {
    steps: usize,
    loss: f64,
    logs: Vec<(&'static str, f64)>,
}

impl Sums {
    fn add(&mut self, loss: f64, logs: &[(&'static str, f64)]) {
        self.steps += 1;
        self.loss += loss;
        for &(key, value) in logs {
            match self.logs.iter_mut().find(|(k, _)| *k == key) {
                Some((_, sum)) => *sum += value,
                None => self.logs.push((key, value)),
            }
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
            record[*key] = (sum / n).into();
        }
        record
    }
}
