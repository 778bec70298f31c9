use std::sync::Arc;
use std::time::Instant;

use rand::seq::SliceRandom;
use relab_core::artifact::{Classifier, LabeledSet, Propagation, TestAccuracy};
use relab_core::burn::module::Module;
use relab_core::burn::optim::GradientsParams;
use relab_core::burn::tensor::{Device, Tensor, TensorData};
use relab_core::component::{Encoder, PropagateStage, SemiSupervisedLearner, StageContext};
use relab_core::data::{Batch, BatchIter, Dataset, ImageSet, LoaderConfig, for_each_batch};
use relab_core::nn::seeded::to_overwrite;
use relab_core::nn::{Backbone, BackboneConfig, save_backbone};
use relab_core::registry::{ParamError, PluginInfo};
use relab_core::train::guard::scalar;
use relab_core::train::{EvalInput, views_accuracy};
use relab_core::train::{Mix, Optimiser, Swa, Views, extract_with, finite_loss, initial_weights, recompute_bn_stats};
use relab_core::train::{load_module, load_optimiser, save_module, save_optimiser};
use relab_core::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::freeze::freeze_leading_blocks;
use crate::images::{batch_tensor, clean_tensor, probabilities};
use crate::loss::{Regularisers, step_loss};
use crate::params::{InitialPseudoLabels, PseudoLabelParams};
use crate::sampler::TwoStream;
use crate::soft_labels::SoftLabels;

/// Pseudo-Labeling as ReLaB runs it.
#[derive(Debug, Clone)]
pub struct PseudoLabel {
    params: PseudoLabelParams,
}

impl PluginInfo for PseudoLabel {
    const NAME: &'static str = "pseudo-label";
    const SUMMARY: &'static str = "Pseudo-Labeling as ReLaB runs it: warm-up on the labelled set, then mixup on soft \
                                   pseudo-labels of all images with prior and entropy regularisers, SWA";
    type Params = PseudoLabelParams;

    fn from_params(params: PseudoLabelParams) -> Result<Self, ParamError> {
        params.check()?;
        Ok(PseudoLabel { params })
    }
}

relab_core::submit_plugin!(train, PseudoLabel);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Phase {
    Warmup,
    Ssl,
}

/// What a checkpoint records beside the weights, the optimiser, the soft labels and the SWA average.
#[derive(Debug, Serialize, Deserialize)]
struct Progress {
    phase: Phase,
    /// Epochs finished in this phase.
    epoch: usize,
    /// Optimiser steps taken in this phase.
    step: u64,
    /// Test accuracy after each evaluation of the warm-up, then of the semi-supervised run. Written as strings:
    /// serde_json's default float parser may be one ulp off, and a resumed run must report the same numbers.
    #[serde(with = "exact_f64s")]
    warmup_history: Vec<f64>,
    #[serde(with = "exact_f64s")]
    history: Vec<f64>,
    swa_snapshots: u64,
}

/// `Vec<f64>` as shortest round-trip decimal strings, which Rust parses back to the identical value.
mod exact_f64s {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(values: &[f64], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(values.iter().map(|v| v.to_string()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|v| v.parse::<f64>().map_err(|e| serde::de::Error::custom(format!("`{v}`: {e}"))))
            .collect()
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn round_trips_bit_for_bit() {
            #[derive(serde::Serialize, serde::Deserialize)]
            struct H(#[serde(with = "super")] Vec<f64>);
            let values = vec![0.23333333333333336, 0.1 + 0.2, 7.0 / 30.0, 1e-300, 0.0];
            let text = serde_json::to_string(&H(values.clone())).unwrap();
            let back: H = serde_json::from_str(&text).unwrap();
            assert_eq!(
                back.0.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                values.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            );
        }
    }
}

const MODEL: &str = "model";
const OPTIMISER: &str = "optimiser";
const SWA: &str = "swa";
const LABELS: &str = "soft_labels.npy";
/// The final pseudo-labels (N × C), beside the weights.
const PSEUDO_LABELS: &str = "pseudo_labels.npy";

impl SemiSupervisedLearner for PseudoLabel {
    fn train(
        &mut self,
        ctx: &mut StageContext,
        data: &Dataset,
        labeled: &LabeledSet,
        init: Option<&dyn Encoder>,
        mut propagation: Option<&mut PropagateStage<'_>>,
    ) -> Result<Classifier> {
        let p = &self.params;
        let split = Split::new(data, labeled, p)?;
        if !p.repropagate_after.is_empty() && !propagation.as_ref().is_some_and(|s| s.can_propagate_again()) {
            return Err(Error::stage(
                "train",
                "repropagate_after needs a propagate stage run by a plugin (the experiment has none, or reads it \
                 with `from:`); add one or drop repropagate_after",
            ));
        }
        let initial = match p.initial_pseudo_labels {
            InitialPseudoLabels::Propagation => {
                Some(checked_propagation(propagation.as_ref().map(|s| s.output), data)?)
            }
            InitialPseudoLabels::Augmented | InitialPseudoLabels::Clean => None,
        };
        let device = ctx.device.clone().autodiff();
        let config = BackboneConfig::new(p.backbone, data.train.channels, data.num_classes);
        let fresh = ctx.init(|| config.init(&device));
        let mut run = Run {
            p,
            data,
            two_stream: TwoStream { batch_size: p.batch_size, labeled_per_batch: p.labeled_per_batch },
            model: fresh,
            config,
            optimiser: Optimiser::sgd(&p.optimizer),
            labels: SoftLabels::new(data.train.len(), data.num_classes, labeled),
            swa: Swa::new(),
            progress: Progress {
                phase: Phase::Warmup,
                epoch: 0,
                step: 0,
                warmup_history: Vec::new(),
                history: Vec::new(),
                swa_snapshots: 0,
            },
            split,
            propagation: initial,
            device,
        };
        match ctx.restore_checkpoint::<Progress>()? {
            Some((saved, dir)) => {
                run.model = load_module(&dir, MODEL, run.model)?;
                run.optimiser = load_optimiser(&dir, OPTIMISER, run.optimiser)?;
                if saved.phase == Phase::Ssl {
                    run.labels = run.labels.load(&dir.join(LABELS))?;
                }
                if saved.swa_snapshots > 0 {
                    let shell = to_overwrite(&ctx.device, || run.config.init(&ctx.device));
                    let average = load_module(&dir, SWA, shell)?;
                    run.swa = Swa::resume(average, saved.swa_snapshots);
                }
                run.progress = saved;
            }
            None => {
                run.model = initial_weights(&p.init, init, ctx.dir(), run.model, &run.config, &run.device)?;
            }
        }
        if p.freeze {
            run.model = freeze_leading_blocks(run.model);
        }
        tracing::info!(
            "pseudo-label: {} labelled, {} unlabelled images; {} warm-up and {} semi-supervised epochs of {} steps",
            run.split.labeled.len(),
            run.split.unlabeled.len(),
            p.warmup.epochs,
            p.epochs,
            run.two_stream.steps(p.unlabeled_per_epoch.unwrap_or(usize::MAX).min(run.split.unlabeled.len()))
        );

        if run.progress.phase == Phase::Warmup {
            let bar = ctx.progress(p.warmup.epochs as u64, "warm-up epochs");
            bar.set_position(run.progress.epoch as u64);
            while run.progress.epoch < p.warmup.epochs {
                run.warmup_epoch(ctx)?;
                bar.inc(1);
            }
            bar.finish_and_clear();
            run.begin_semi_supervised(ctx)?;
        }
        let bar = ctx.progress(p.epochs as u64, "semi-supervised epochs");
        bar.set_position(run.progress.epoch as u64);
        while run.progress.epoch < p.epochs {
            run.semi_supervised_epoch(ctx, propagation.as_deref_mut())?;
            bar.inc(1);
        }
        bar.finish_and_clear();
        run.finish(ctx)
    }
}

/// The propagate stage's output, checked against the dataset, for `initial_pseudo_labels: propagation`.
fn checked_propagation<'a>(propagation: Option<&'a Propagation>, data: &Dataset) -> Result<&'a Propagation> {
    let p = propagation.ok_or_else(|| {
        Error::stage(
            "train",
            "initial_pseudo_labels: propagation needs the propagated labels, but the experiment has no propagate \
             stage; add one or choose augmented or clean",
        )
    })?;
    if p.len() != data.train.len() || p.num_classes != data.num_classes {
        return Err(Error::stage(
            "train",
            format!(
                "the propagation has {} images × {} classes, the training set {} × {}",
                p.len(),
                p.num_classes,
                data.train.len(),
                data.num_classes
            ),
        ));
    }
    Ok(p)
}

/// The labelled images (with their labels) and the unlabelled ones: every training image not in the labelled set.
struct Split {
    labeled: Vec<usize>,
    unlabeled: Vec<usize>,
}

impl Split {
    fn new(data: &Dataset, labeled: &LabeledSet, p: &PseudoLabelParams) -> Result<Self> {
        let n = data.train.len();
        if labeled.is_empty() {
            return Err(Error::stage("train", "the labelled set is empty"));
        }
        let mut is_labeled = vec![false; n];
        for &i in &labeled.indices {
            let slot = is_labeled.get_mut(i).ok_or_else(|| {
                Error::stage("train", format!("labelled index {i} outside the training set (0..{n})"))
            })?;
            if std::mem::replace(slot, true) {
                return Err(Error::stage("train", format!("training image {i} is listed twice in the labelled set")));
            }
        }
        let unlabeled: Vec<usize> = (0..n).filter(|&i| !is_labeled[i]).collect();
        let per_batch = p.unlabeled_per_batch();
        if unlabeled.len() < per_batch {
            return Err(Error::stage(
                "train",
                format!(
                    "{} unlabelled images do not fill one semi-supervised batch ({per_batch} = batch_size − \
                     labeled_per_batch); lower batch_size or use more training images",
                    unlabeled.len()
                ),
            ));
        }
        Ok(Split { labeled: labeled.indices.clone(), unlabeled })
    }
}

/// Sums of one epoch's per-step losses, for its metrics record.
#[derive(Debug, Default)]
struct EpochLosses {
    steps: usize,
    total: f64,
    cross_entropy: f64,
    prior: f64,
    entropy: f64,
}

impl EpochLosses {
    fn record(&self, phase: Phase, epoch: usize, lr: f64, seconds: f64) -> serde_json::Value {
        let n = self.steps.max(1) as f64;
        let mut record = json!({
            "phase": match phase { Phase::Warmup => "warmup", Phase::Ssl => "ssl" },
            "epoch": epoch,
            "steps": self.steps,
            "loss": self.total / n,
            "cross_entropy": self.cross_entropy / n,
            "lr": lr,
            "seconds": seconds,
        });
        if phase == Phase::Ssl {
            record["prior"] = (self.prior / n).into();
            record["entropy"] = (self.entropy / n).into();
        }
        record
    }
}

/// One training run's state: what a checkpoint holds, plus what it is computed from.
struct Run<'a> {
    p: &'a PseudoLabelParams,
    data: &'a Dataset,
    split: Split,
    /// The propagation of every training image, when the first pseudo-labels come from it.
    propagation: Option<&'a Propagation>,
    two_stream: TwoStream,
    device: Device,
    config: BackboneConfig,
    model: Backbone,
    optimiser: Optimiser,
    labels: SoftLabels,
    swa: Swa<Backbone>,
    progress: Progress,
}

impl Run<'_> {
    /// The loader's epoch number for augmentation seeds, distinct for every pass over the data: warm-up epochs
    /// `1..=W`, the initial pseudo-labels `W + 1`, semi-supervised epoch `e` at `W + 1 + e`, the SWA batch-norm
    /// pass after them. It is also the `epoch` of the metrics, so the two runs plot as one curve.
    fn global_epoch(&self, phase: Phase, epoch: usize) -> usize {
        match phase {
            Phase::Warmup => epoch,
            Phase::Ssl => self.p.warmup.epochs + 1 + epoch,
        }
    }

    fn loader(&self, ctx: &StageContext, batch_size: usize, augment: bool, epoch: usize) -> LoaderConfig {
        let mut loader = LoaderConfig::new(batch_size, &self.data.mean, &self.data.std);
        if augment {
            loader.augment = Some(self.p.augment.clone());
        }
        loader.seed = ctx.seed;
        loader.epoch = epoch as u64;
        loader
    }

    /// One optimiser step on a loader batch: mixup of images and soft targets, the loss, SGD.
    fn step(
        &mut self,
        ctx: &mut StageContext,
        batch: Batch,
        lr: f64,
        regularisers: Option<Regularisers>,
        sums: &mut EpochLosses,
    ) -> Result<()> {
        let b = batch.indices.len();
        let targets = Tensor::<2>::from_data(
            TensorData::new(self.labels.targets(&batch.indices), [b, self.labels.classes()]),
            &self.device,
        );
        let x = batch_tensor(batch, &self.device);
        let mix =
            if self.p.mixup_alpha > 0.0 { Mix::per_batch(&mut ctx.rng, b, self.p.mixup_alpha) } else { Mix::none(b) };
        let logits = self.model.forward(mix.mix(x)).logits;
        let loss = step_loss(logits, mix.mix(targets), regularisers);
        let (phase, epoch, step) = (self.progress.phase, self.progress.epoch + 1, self.progress.step);
        let total =
            finite_loss(ctx, "pseudo-label loss", &loss.total, format_args!("{phase:?} epoch {epoch} step {step}"))?;
        sums.steps += 1;
        sums.total += total;
        sums.cross_entropy += scalar(&loss.cross_entropy);
        if let Some((prior, entropy)) = &loss.regularisers {
            sums.prior += scalar(prior);
            sums.entropy += scalar(entropy);
        }
        let grads = GradientsParams::from_grads(loss.total.backward(), &self.model);
        self.model = self.optimiser.step(lr, self.model.clone(), grads);
        self.progress.step += 1;
        Ok(())
    }

    /// Run 1: the labelled set alone, shuffled, in batches of `warmup.batch_size`, without the regularisers.
    fn warmup_epoch(&mut self, ctx: &mut StageContext) -> Result<()> {
        let start = Instant::now();
        let epoch = self.progress.epoch + 1;
        let mut order = self.split.labeled.clone();
        order.shuffle(&mut ctx.rng);
        let loader = self.loader(ctx, self.p.warmup.batch_size, true, self.global_epoch(Phase::Warmup, epoch));
        let lr = self.p.warmup.schedule.lr(epoch as u64, self.progress.step);
        let mut sums = EpochLosses::default();
        let data = self.data;
        for_each_batch(&data.train, &order, &loader, |batch| {
            let lr = self.p.warmup.schedule.lr(epoch as u64, self.progress.step);
            self.step(ctx, batch, lr, None, &mut sums)
        })?;
        let mut record = sums.record(Phase::Warmup, epoch, lr, start.elapsed().as_secs_f64());
        if let Some(acc) = self.evaluate_if_due(epoch, self.p.warmup.epochs, &self.model)? {
            self.progress.warmup_history.push(acc);
            record["test_accuracy"] = acc.into();
        }
        ctx.log(record)?;
        self.progress.epoch = epoch;
        self.checkpoint(ctx)
    }

    /// Between the runs: pseudo-labels for every unlabelled image, and a fresh optimiser (run 2 is a new process in
    /// the original, loading only the weights).
    fn begin_semi_supervised(&mut self, ctx: &mut StageContext) -> Result<()> {
        let start = Instant::now();
        match self.propagation {
            Some(propagated) => self.set_propagated(propagated),
            None => self.predict_pseudo_labels(ctx)?,
        }
        let mut record = json!({ "phase": "ssl", "epoch": self.global_epoch(Phase::Ssl, 0), "seconds": start.elapsed().as_secs_f64() });
        if let Some(truth) = &self.data.train.labels {
            record["pseudo_label_accuracy"] = self.labels.accuracy(truth).into();
        }
        ctx.log(record)?;
        self.optimiser = Optimiser::sgd(&self.p.optimizer);
        self.progress.phase = Phase::Ssl;
        self.progress.epoch = 0;
        self.progress.step = 0;
        Ok(())
    }

    /// Every unlabelled image's pseudo-label from the propagation, as `propagated_targets` says.
    fn set_propagated(&mut self, propagation: &Propagation) {
        let p = self.p;
        self.labels.set_propagated(&self.split.unlabeled, propagation, p.propagated_targets, p.soft_target_power);
    }

    /// The warm-up model's predictions for every unlabelled image, in evaluation mode.
    fn predict_pseudo_labels(&mut self, ctx: &mut StageContext) -> Result<()> {
        let eval = self.model.valid();
        let plain = self.device.clone().without_autodiff();
        let augment = self.p.initial_pseudo_labels == InitialPseudoLabels::Augmented;
        let loader = self.loader(ctx, self.p.eval_batch_size, augment, self.p.warmup.epochs + 1);
        let bar = ctx.progress(self.split.unlabeled.len().div_ceil(self.p.eval_batch_size) as u64, "pseudo-labels");
        let labels = &mut self.labels;
        for_each_batch(&self.data.train, &self.split.unlabeled, &loader, |batch| {
            let indices = batch.indices.clone();
            let rows = probabilities(eval.forward(batch_tensor(batch, &plain)).logits)?;
            labels.set_now(&indices, &rows);
            bar.inc(1);
            Ok(())
        })?;
        bar.finish_and_clear();
        Ok(())
    }

    /// Run 2, one epoch: two-stream batches, the regularised loss, then pseudo-label predictions from the
    /// un-augmented images by the updated model, still in training mode; swapped in at the end of the epoch, or,
    /// after an epoch of `repropagate_after`, replaced by the seeds' propagation over the network's features.
    fn semi_supervised_epoch(
        &mut self,
        ctx: &mut StageContext,
        propagate_stage: Option<&mut PropagateStage<'_>>,
    ) -> Result<()> {
        let start = Instant::now();
        let epoch = self.progress.epoch + 1;
        let order = self.two_stream.epoch_order(
            &mut ctx.rng,
            &self.split.labeled,
            &self.split.unlabeled,
            self.p.unlabeled_per_epoch,
        );
        let loader = self.loader(ctx, self.p.batch_size, true, self.global_epoch(Phase::Ssl, epoch));
        let lr = self.p.schedule.lr(epoch as u64, self.progress.step);
        let regularisers = Some(Regularisers { prior: self.p.prior_weight, entropy: self.p.entropy_weight });
        let mut sums = EpochLosses::default();
        let data = self.data;
        for_each_batch(&data.train, &order, &loader, |batch| {
            let indices = batch.indices.clone();
            let lr = self.p.schedule.lr(epoch as u64, self.progress.step);
            self.step(ctx, batch, lr, regularisers, &mut sums)?;
            let clean = clean_tensor(&data.train, &indices, &data.mean, &data.std, &self.device);
            let rows = probabilities(self.model.forward(clean).logits)?;
            self.labels.record(&indices, &rows);
            Ok(())
        })?;
        let swapped = self.labels.swap();
        if self.p.swa_after(epoch) {
            self.swa.update(&self.model);
            self.progress.swa_snapshots = self.swa.count();
        }
        let mut record =
            sums.record(Phase::Ssl, self.global_epoch(Phase::Ssl, epoch), lr, start.elapsed().as_secs_f64());
        record["pseudo_labels_updated"] = swapped.into();
        if let Some(stage) = propagate_stage.filter(|_| self.p.repropagate_after.contains(&epoch)) {
            let accuracy = self.repropagate(ctx, stage)?;
            record["repropagation_accuracy"] = accuracy.map_or(serde_json::Value::Null, Into::into);
        }
        if let Some(truth) = &self.data.train.labels {
            record["pseudo_label_accuracy"] = self.labels.accuracy(truth).into();
        }
        if let Some(acc) = self.evaluate_if_due(epoch, self.p.epochs, &self.model)? {
            self.progress.history.push(acc);
            record["test_accuracy"] = acc.into();
        }
        ctx.log(record)?;
        self.progress.epoch = epoch;
        self.checkpoint(ctx)
    }

    /// The seeds propagated again over the network's pooled features (evaluation mode, un-augmented images); every
    /// unlabelled image's pseudo-label becomes its new propagated label (one-hot or soft). Returns the new propagation's
    /// accuracy on the training images when their labels are known.
    fn repropagate(&mut self, ctx: &mut StageContext, stage: &mut PropagateStage<'_>) -> Result<Option<f64>> {
        let start = Instant::now();
        let d = self.data;
        let bar = ctx.progress(d.train.len() as u64, "features to propagate over");
        let features =
            extract_with(&self.model, &d.train, &d.mean, &d.std, self.p.eval_batch_size, &self.device, |m, x| {
                bar.inc(x.dims()[0] as u64);
                m.forward(x).features
            })?;
        bar.finish_and_clear();
        let propagation = stage.propagate_again(ctx, &features)?;
        self.set_propagated(&propagation);
        let accuracy = d.train.labels.as_deref().map(|truth| propagation.accuracy(truth));
        tracing::info!(
            "pseudo-label: propagated again over the network's features in {:.1}s{}",
            start.elapsed().as_secs_f64(),
            accuracy.map_or(String::new(), |a| format!(", {:.2}% of the training images right", 100.0 * a))
        );
        Ok(accuracy)
    }

    /// Test accuracy of `model` in evaluation mode after `epoch` of `epochs`, when an evaluation is due and the test
    /// split has labels.
    fn evaluate_if_due(&self, epoch: usize, epochs: usize, model: &Backbone) -> Result<Option<f64>> {
        if !(epoch.is_multiple_of(self.p.eval_every) || epoch == epochs) {
            return Ok(None);
        }
        self.evaluate(&self.data.test, model)
    }

    fn evaluate(&self, set: &ImageSet, model: &Backbone) -> Result<Option<f64>> {
        self.evaluate_views(set, model, self.p.test_views)
    }

    fn evaluate_views(&self, set: &ImageSet, model: &Backbone, views: Views) -> Result<Option<f64>> {
        let d = self.data;
        let input =
            EvalInput { set, mean: &d.mean, std: &d.std, batch_size: self.p.eval_batch_size, device: &self.device };
        views_accuracy(model, input, views, |m, x| m.forward(x).logits)
    }

    /// With test views other than plain, the summary also keeps the plain figure of `model`, so the two can be
    /// compared on the same weights.
    fn summarise_plain(&self, ctx: &mut StageContext, key: &str, model: &Backbone) -> Result<()> {
        if self.p.test_views != Views::Plain
            && let Some(acc) = self.evaluate_views(&self.data.test, model, Views::Plain)?
        {
            tracing::info!("{key}: {:.2} % with plain test views", 100.0 * acc);
            ctx.set_summary(key, acc);
        }
        Ok(())
    }

    fn checkpoint(&self, ctx: &mut StageContext) -> Result<()> {
        ctx.save_checkpoint(&self.progress, |dir| {
            save_module(dir, MODEL, &self.model)?;
            save_optimiser(dir, OPTIMISER, &self.optimiser)?;
            if self.progress.phase == Phase::Ssl {
                self.labels.save(&dir.join(LABELS))?;
            }
            match self.swa.average() {
                Some(average) => save_module(dir, SWA, average),
                None => Ok(()),
            }
        })
    }

    /// Saves the last weights (and the SWA weights in `swa/`) and the final pseudo-labels; the SWA model gets its
    /// batch-norm statistics recomputed over one semi-supervised epoch of augmented batches, as torchcontrib's
    /// `bn_update` does, before its evaluation.
    fn finish(self, ctx: &mut StageContext) -> Result<Classifier> {
        save_backbone(&self.model.valid(), &self.config, ctx.dir())?;
        self.labels.save(&ctx.dir().join(PSEUDO_LABELS))?;
        if let Some(truth) = &self.data.train.labels {
            ctx.set_summary("pseudo_label_accuracy", self.labels.accuracy(truth));
        }
        if let Some(&last) = self.progress.warmup_history.last() {
            ctx.set_summary("warmup_test_accuracy", last);
        }
        let mut test_accuracy = TestAccuracy::from_history(&self.progress.history);
        if !self.progress.history.is_empty() {
            self.summarise_plain(ctx, "plain_test_accuracy_last", &self.model)?;
        }
        if self.swa.count() > 0 {
            let start = Instant::now();
            let model = self.swa.write_into(self.model.clone());
            let order = self.two_stream.epoch_order(
                &mut ctx.rng,
                &self.split.labeled,
                &self.split.unlabeled,
                self.p.unlabeled_per_epoch,
            );
            let loader = self.loader(ctx, self.p.batch_size, true, self.global_epoch(Phase::Ssl, self.p.epochs + 1));
            let batches = BatchIter::new(Arc::new(self.data.train.clone()), order, loader)?;
            let device = self.device.clone();
            let (model, report) = recompute_bn_stats(model, batches, |m, batch| {
                let b = batch.indices.len();
                let _ = m.forward(batch_tensor(batch, &device));
                b
            });
            tracing::info!(
                "SWA of {} snapshots: batch-norm statistics recomputed over {} images in {:.1}s",
                self.swa.count(),
                report.samples,
                start.elapsed().as_secs_f64()
            );
            save_backbone(&model.valid(), &self.config, &ctx.dir().join(SWA))?;
            test_accuracy.swa = self.evaluate(&self.data.test, &model)?;
            self.summarise_plain(ctx, "plain_test_accuracy_swa", &model)?;
        }
        Ok(Classifier { test_accuracy: (!self.progress.history.is_empty()).then_some(test_accuracy) })
    }
}
