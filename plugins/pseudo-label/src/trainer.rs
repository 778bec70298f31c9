use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use rand::seq::SliceRandom;
use relab_core::artifact::{Classifier, LabeledSet, Propagation, TestAccuracy};
use relab_core::burn::module::Module;
use relab_core::burn::tensor::{Device, Tensor, TensorData};
use relab_core::component::{LearnerInput, PropagateStage, SemiSupervisedLearner, StageContext};
use relab_core::data::{Batch, BatchIter, Dataset, LoaderConfig, for_each_batch};
use relab_core::nn::{Backbone, BackboneConfig, save_backbone};
use relab_core::registry::{ParamError, PluginInfo};
use relab_core::train::guard::scalar;
use relab_core::train::views_accuracy;
use relab_core::train::{At, Fit, Phase, Recipe, Run, StepLoss, Trained};
use relab_core::train::{EvalInput, Mix, Optimiser, Views, extract_with, initial_weights, recompute_bn_stats};
use relab_core::{Error, Result};
use serde_json::{Value, json};

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

/// Run 1, on the labelled set alone, and run 2, semi-supervised.
const WARMUP: Phase = Phase { index: 0, name: "warmup" };
const SSL: Phase = Phase { index: 1, name: "ssl" };

/// The soft labels between epochs of the semi-supervised run (part of its checkpoints).
const LABELS: &str = "soft_labels.npy";
/// The predictions recorded in the epoch a mid-epoch checkpoint interrupts.
const RECORDED: &str = "recorded_predictions.npy";
/// The final pseudo-labels (N × C), beside the weights.
const PSEUDO_LABELS: &str = "pseudo_labels.npy";
const SWA: &str = "swa";

impl SemiSupervisedLearner for PseudoLabel {
    fn train(&mut self, ctx: &mut StageContext, input: LearnerInput<'_, '_>) -> Result<Classifier> {
        let LearnerInput { data, labeled, encoder, propagation, .. } = input;
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
        let fresh = ctx.init(&device, |d| config.init(d));
        let mut fit = Fit::start(ctx)?;
        let mut model = fit.model(fresh, |m| initial_weights(&p.init, encoder, m, &config, &device))?;
        if p.freeze {
            model = freeze_leading_blocks(model);
        }
        let mut run = PseudoLabeling {
            p,
            data,
            two_stream: TwoStream { batch_size: p.batch_size, labeled_per_batch: p.labeled_per_batch },
            labels: SoftLabels::new(data.train.len(), data.num_classes, labeled),
            split,
            initial,
            propagate_stage: propagation,
            device,
            phase: WARMUP,
        };
        tracing::info!(
            "pseudo-label: {} labelled, {} unlabelled images; {} warm-up and {} semi-supervised epochs of {} steps",
            run.split.labeled.len(),
            run.split.unlabeled.len(),
            p.warmup.epochs,
            p.epochs,
            run.two_stream.steps(p.unlabeled_per_epoch.unwrap_or(usize::MAX).min(run.split.unlabeled.len()))
        );
        let w = &p.warmup;
        let warmup = Run::new(data, model, Optimiser::sgd(&p.optimizer), w.epochs, w.batch_size, &w.schedule)
            .augment(&p.augment)
            .eval_every(p.eval_every)
            .loss_name("pseudo-label loss")
            .phase(WARMUP, 0);
        let warm = fit.run(ctx, &mut run, warmup)?;
        if !fit.resumes_in(SSL) {
            run.begin_semi_supervised(ctx, &warm.model)?;
        }
        run.phase = SSL;
        // A fresh optimiser: run 2 is a new process in the original, loading only the weights.
        let ssl = Run::new(data, warm.model, Optimiser::sgd(&p.optimizer), p.epochs, p.batch_size, &p.schedule)
            .augment(&p.augment)
            .eval_every(p.eval_every)
            .loss_name("pseudo-label loss")
            .phase(SSL, w.epochs + 1);
        let trained = fit.run(ctx, &mut run, ssl)?;
        run.finish(ctx, trained, &config, &warm.history)
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

/// Pseudo-Labeling's two runs as one recipe: the warm-up on the labelled set, then two-stream batches on soft
/// pseudo-labels of every image, swapped in after each epoch.
struct PseudoLabeling<'a, 'p> {
    p: &'a PseudoLabelParams,
    data: &'a Dataset,
    split: Split,
    /// The propagation of every training image, when the first pseudo-labels come from it.
    initial: Option<&'a Propagation>,
    propagate_stage: Option<&'a mut PropagateStage<'p>>,
    two_stream: TwoStream,
    device: Device,
    labels: SoftLabels,
    phase: Phase,
}

impl Recipe for PseudoLabeling<'_, '_> {
    type Model = Backbone;
    type State = ();

    fn epoch_order(&mut self, ctx: &mut StageContext, _epoch: usize) -> Result<Vec<usize>> {
        if self.phase == WARMUP {
            let mut order = self.split.labeled.clone();
            order.shuffle(&mut ctx.rng);
            return Ok(order);
        }
        Ok(self.two_stream.epoch_order(
            &mut ctx.rng,
            &self.split.labeled,
            &self.split.unlabeled,
            self.p.unlabeled_per_epoch,
        ))
    }

    /// Mixup of images and soft targets, the loss (with the regularisers in run 2).
    fn step(&mut self, ctx: &mut StageContext, model: &Backbone, batch: Batch, _at: At) -> Result<StepLoss> {
        let b = batch.indices.len();
        let targets = Tensor::<2>::from_data(
            TensorData::new(self.labels.targets(&batch.indices), [b, self.labels.classes()]),
            &self.device,
        );
        let x = batch_tensor(batch, &self.device);
        let mix =
            if self.p.mixup_alpha > 0.0 { Mix::per_batch(&mut ctx.rng, b, self.p.mixup_alpha) } else { Mix::none(b) };
        let regularisers =
            (self.phase == SSL).then_some(Regularisers { prior: self.p.prior_weight, entropy: self.p.entropy_weight });
        let loss = step_loss(model.forward(mix.mix(x)).logits, mix.mix(targets), regularisers);
        let mut out = StepLoss::new(loss.total).log("cross_entropy", scalar(&loss.cross_entropy));
        if let Some((prior, entropy)) = &loss.regularisers {
            out = out.log("prior", scalar(prior)).log("entropy", scalar(entropy));
        }
        Ok(out)
    }

    /// Run 2: the updated model's predictions on the un-augmented images, still in training mode, recorded for
    /// the swap at the end of the epoch.
    fn after_step(&mut self, _ctx: &mut StageContext, model: &Backbone, indices: &[usize]) -> Result<()> {
        if self.phase == WARMUP {
            return Ok(());
        }
        let d = self.data;
        let clean = clean_tensor(&d.train, indices, &d.mean, &d.std, &self.device);
        let rows = probabilities(model.forward(clean).logits)?;
        self.labels.record(indices, &rows);
        Ok(())
    }

    /// Run 2: the recorded predictions swapped in or, after an epoch of `repropagate_after`, the seeds'
    /// propagation over the network's features.
    fn end_epoch(&mut self, ctx: &mut StageContext, model: &Backbone, epoch: usize, record: &mut Value) -> Result<()> {
        if self.phase == WARMUP {
            return Ok(());
        }
        record["pseudo_labels_updated"] = self.labels.swap().into();
        if self.p.repropagate_after.contains(&epoch) {
            let accuracy = self.repropagate(ctx, model)?;
            record["repropagation_accuracy"] = accuracy.map_or(Value::Null, Into::into);
        }
        if let Some(truth) = &self.data.train.labels {
            record["pseudo_label_accuracy"] = self.labels.accuracy(truth).into();
        }
        Ok(())
    }

    fn swa_snapshot(&self, epoch: usize) -> bool {
        self.phase == SSL && self.p.swa_after(epoch)
    }

    fn evaluate(&mut self, _ctx: &mut StageContext, model: &Backbone) -> Result<Option<f64>> {
        self.evaluate_views(model, self.p.test_views)
    }

    fn state(&self) {}

    fn save_files(&self, dir: &Path) -> Result<()> {
        if self.phase != SSL {
            return Ok(());
        }
        self.labels.save(&dir.join(LABELS))?;
        // Mid-epoch (a stop request): this epoch's predictions, swapped in when it ends.
        if self.labels.has_recorded() { self.labels.save_recorded(&dir.join(RECORDED)) } else { Ok(()) }
    }

    fn restore(&mut self, _: (), dir: &Path) -> Result<()> {
        if self.phase == SSL {
            self.labels = self.labels.clone().load(&dir.join(LABELS))?;
            if dir.join(RECORDED).is_file() {
                self.labels = self.labels.clone().load_recorded(&dir.join(RECORDED))?;
            }
        }
        Ok(())
    }
}

impl PseudoLabeling<'_, '_> {
    fn loader(&self, ctx: &StageContext, batch_size: usize, augment: bool, epoch: usize) -> LoaderConfig {
        let mut loader = LoaderConfig::new(batch_size, &self.data.mean, &self.data.std);
        if augment {
            loader.augment = Some(self.p.augment.clone());
        }
        loader.seed = ctx.seed;
        loader.epoch = epoch as u64;
        loader
    }

    /// Between the runs: pseudo-labels for every unlabelled image, from the propagation or predicted by the
    /// warm-up model.
    fn begin_semi_supervised(&mut self, ctx: &mut StageContext, model: &Backbone) -> Result<()> {
        let start = Instant::now();
        match self.initial {
            Some(propagated) => self.set_propagated(propagated),
            None => self.predict_pseudo_labels(ctx, model)?,
        }
        let mut record =
            json!({ "phase": "ssl", "epoch": self.p.warmup.epochs + 1, "seconds": start.elapsed().as_secs_f64() });
        if let Some(truth) = &self.data.train.labels {
            record["pseudo_label_accuracy"] = self.labels.accuracy(truth).into();
        }
        ctx.log(record)
    }

    /// Every unlabelled image's pseudo-label from the propagation, as `propagated_targets` says.
    fn set_propagated(&mut self, propagation: &Propagation) {
        let p = self.p;
        self.labels.set_propagated(&self.split.unlabeled, propagation, p.propagated_targets, p.soft_target_power);
    }

    /// The warm-up model's predictions for every unlabelled image, in evaluation mode.
    fn predict_pseudo_labels(&mut self, ctx: &mut StageContext, model: &Backbone) -> Result<()> {
        let eval = model.valid();
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

    /// The seeds propagated again over the network's pooled features (evaluation mode, un-augmented images); every
    /// unlabelled image's pseudo-label becomes its new propagated label (one-hot or soft). Returns the new
    /// propagation's accuracy on the training images when their labels are known.
    fn repropagate(&mut self, ctx: &mut StageContext, model: &Backbone) -> Result<Option<f64>> {
        let start = Instant::now();
        let d = self.data;
        let bar = ctx.progress(d.train.len() as u64, "features to propagate over");
        let features = extract_with(model, &d.train, &d.mean, &d.std, self.p.eval_batch_size, &self.device, |m, x| {
            bar.inc(x.dims()[0] as u64);
            m.forward(x).features
        })?;
        bar.finish_and_clear();
        let stage =
            self.propagate_stage.as_deref_mut().expect("checked before training: repropagate_after has a stage");
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

    fn evaluate_views(&self, model: &Backbone, views: Views) -> Result<Option<f64>> {
        let input = EvalInput::test_split(self.data, self.p.eval_batch_size, &self.device);
        views_accuracy(model, input, views, |m, x| m.forward(x).logits)
    }

    /// With test views other than plain, the summary also keeps the plain figure of `model`, so the two can be
    /// compared on the same weights.
    fn summarise_plain(&self, ctx: &mut StageContext, key: &str, model: &Backbone) -> Result<()> {
        if self.p.test_views != Views::Plain
            && let Some(acc) = self.evaluate_views(model, Views::Plain)?
        {
            tracing::info!("{key}: {:.2} % with plain test views", 100.0 * acc);
            ctx.set_summary(key, acc);
        }
        Ok(())
    }

    /// Saves the last weights (and the SWA weights in `swa/`) and the final pseudo-labels; the SWA model gets its
    /// batch-norm statistics recomputed over one semi-supervised epoch of augmented batches, as torchcontrib's
    /// `bn_update` does, before its evaluation.
    fn finish(
        mut self,
        ctx: &mut StageContext,
        trained: Trained<Backbone>,
        config: &BackboneConfig,
        warmup_history: &[f64],
    ) -> Result<Classifier> {
        save_backbone(&trained.model.valid(), config, ctx.dir())?;
        self.labels.save(&ctx.dir().join(PSEUDO_LABELS))?;
        if let Some(truth) = &self.data.train.labels {
            ctx.set_summary("pseudo_label_accuracy", self.labels.accuracy(truth));
        }
        if let Some(&last) = warmup_history.last() {
            ctx.set_summary("warmup_test_accuracy", last);
        }
        let history = &trained.history;
        let mut test_accuracy = TestAccuracy::from_history(history);
        if !history.is_empty() {
            self.summarise_plain(ctx, "plain_test_accuracy_last", &trained.model)?;
        }
        let swa = &trained.swa;
        if swa.count() > 0 {
            let start = Instant::now();
            let model = swa.write_into(trained.model.clone());
            let order = self.epoch_order(ctx, self.p.epochs + 1)?;
            let epoch = self.p.warmup.epochs + 1 + self.p.epochs + 1;
            let loader = self.loader(ctx, self.p.batch_size, true, epoch);
            let batches = BatchIter::new(Arc::new(self.data.train.clone()), order, loader)?;
            let device = self.device.clone();
            let (model, report) = recompute_bn_stats(model, batches, |m, batch| {
                let b = batch.indices.len();
                let _ = m.forward(batch_tensor(batch, &device));
                b
            });
            tracing::info!(
                "SWA of {} snapshots: batch-norm statistics recomputed over {} images in {:.1}s",
                swa.count(),
                report.samples,
                start.elapsed().as_secs_f64()
            );
            save_backbone(&model.valid(), config, &ctx.dir().join(SWA))?;
            test_accuracy.swa = self.evaluate_views(&model, self.p.test_views)?;
            self.summarise_plain(ctx, "plain_test_accuracy_swa", &model)?;
        }
        Ok(Classifier { test_accuracy: (!history.is_empty()).then_some(test_accuracy) })
    }
}
