//! The learner and its [`Recipe`] for core's training loop: one step is one forward pass over
//! `[α(x) | α(u) | 𝒜(u)]`, the pseudo-labels from the weak unlabelled rows, `ℓ_s + λ_u·ℓ_u`.
use std::collections::HashMap;
use std::path::Path;

use relab_core::artifact::{Classifier, LabeledSet, TestAccuracy};
use relab_core::burn::tensor::activation::softmax;
use relab_core::burn::tensor::{Device, Tensor, TensorData};
use relab_core::component::{LearnerInput, SemiSupervisedLearner, StageContext};
use relab_core::data::augment::{CtAugment, RandAugment, probe_accuracy};
use relab_core::data::{Batch, Dataset};
use relab_core::nn::{Backbone, BackboneConfig, save_backbone};
use relab_core::registry::{ParamError, PluginInfo};
use relab_core::train::guard::scalar;
use relab_core::train::losses::labels_tensor;
use relab_core::train::{At, Ema, EvalInput, Fit, Optimiser, Recipe, Run, StepLoss, Views};
use relab_core::train::{initial_weights, load_module, save_module, views_accuracy};
use relab_core::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::alignment::DistributionAlignment;
use crate::cosine::cosine_schedule;
use crate::loss::{supervised_loss, unlabeled_loss};
use crate::params::{FixMatchParams, Strong};
use crate::pseudo_labels::PseudoLabels;
use crate::sampler::Layout;
use crate::views::{StepViews, StrongAugment, WeakOnly};

/// FixMatch.
#[derive(Debug, Clone)]
pub struct FixMatch {
    params: FixMatchParams,
}

impl PluginInfo for FixMatch {
    const NAME: &'static str = "fixmatch";
    const SUMMARY: &'static str = "FixMatch: hard pseudo-labels from weak views where confident (≥ τ), trained on \
                                   strong views (CTAugment or RandAugment, Cutout); SGD with cosine decay, EMA model";
    type Params = FixMatchParams;

    fn from_params(params: FixMatchParams) -> Result<Self, ParamError> {
        params.check()?;
        Ok(FixMatch { params })
    }
}

relab_core::submit_plugin!(train, FixMatch);

/// The EMA weights in a checkpoint folder (the loop's own `ema` is not used: the probes need the average too).
const EMA: &str = "fixmatch_ema";

impl SemiSupervisedLearner for FixMatch {
    fn train(&mut self, ctx: &mut StageContext, input: LearnerInput<'_, '_>) -> Result<Classifier> {
        let LearnerInput { data, labeled, encoder, .. } = input;
        let p = &self.params;
        let labels = checked_labels(data, labeled)?;
        let device = ctx.device.clone().autodiff();
        let config = BackboneConfig::new(p.backbone, data.train.channels, data.num_classes);
        let fresh = ctx.init(&device, |d| config.init(d));
        let mut fit = Fit::start(ctx)?;
        let model = fit.model(fresh, |m| initial_weights(&p.init, encoder, m, &config, &device))?;
        let layout = Layout { labeled: p.labeled_batch_size, unlabeled: p.unlabeled_batch_size() };
        let side = data.train.height.min(data.train.width);
        let views = StepViews::new(p.weak_view(side), p.cutout_size(side), p.cutout_fill);
        tracing::info!(
            "fixmatch: {} labelled images, {} unlabelled; {} epochs of {} steps of {} + {} images (weak) + {} (strong)",
            labeled.len(),
            data.train.len(),
            p.epochs,
            p.steps_per_epoch,
            layout.labeled,
            layout.unlabeled,
            layout.unlabeled
        );
        let alignment = p
            .distribution_alignment
            .then(|| DistributionAlignment::new(&labeled.labels, data.num_classes, p.alignment_momentum));
        let schedule = cosine_schedule(p.lr, p.total_steps());
        let ema = Ema::new(&model, p.ema_decay);
        let cta = (p.strong == Strong::Ctaugment).then(|| CtAugment::new(p.ctaugment.clone()));
        let run = Run::new(data, model, Optimiser::sgd(&p.optimizer), p.epochs, layout.batch_size(), &schedule)
            .augment(&views.weak)
            .eval_every(p.eval_every)
            .loss_name("fixmatch loss");
        let mut recipe = Steps {
            p,
            data,
            labeled,
            labels,
            layout,
            views,
            ema,
            alignment,
            cta,
            randaugment: p.randaugment.op(),
            device,
            tally: Tally::default(),
            step: 0,
        };
        let trained = fit.run(ctx, &mut recipe, run)?;
        save_backbone(recipe.ema.model(), &config, ctx.dir())?;
        let test_accuracy = (!trained.history.is_empty()).then(|| TestAccuracy::from_history(&trained.history));
        Ok(Classifier { test_accuracy })
    }
}

/// Every labelled image's label by index, after checking the set against the dataset.
fn checked_labels(data: &Dataset, labeled: &LabeledSet) -> Result<HashMap<usize, u32>> {
    if labeled.is_empty() {
        return Err(Error::stage("train", "the labelled set is empty"));
    }
    let n = data.train.len();
    let mut labels = HashMap::with_capacity(labeled.len());
    for (&i, &y) in labeled.indices.iter().zip(&labeled.labels) {
        if i >= n {
            return Err(Error::stage("train", format!("labelled index {i} outside the training set (0..{n})")));
        }
        if y as usize >= data.num_classes {
            return Err(Error::stage(
                "train",
                format!("label {y} of image {i} is not one of {} classes", data.num_classes),
            ));
        }
        if labels.insert(i, y).is_some() {
            return Err(Error::stage("train", format!("training image {i} is listed twice in the labelled set")));
        }
    }
    Ok(labels)
}

/// Pseudo-label counts of an epoch, against the hidden true labels (a diagnostic, never used in training).
#[derive(Default, Serialize, Deserialize)]
struct Tally {
    rows: usize,
    correct: usize,
    used: usize,
    used_correct: usize,
}

/// What a checkpoint keeps beside the loop's state and the EMA weights.
#[derive(Serialize, Deserialize)]
struct Saved {
    alignment: Option<DistributionAlignment>,
    ctaugment: Option<CtAugment>,
    /// The counts of the epoch in progress: zero between epochs, kept by a mid-epoch checkpoint (a stop request).
    #[serde(default)]
    tally: Tally,
}

struct Steps<'a> {
    p: &'a FixMatchParams,
    data: &'a Dataset,
    labeled: &'a LabeledSet,
    labels: HashMap<usize, u32>,
    layout: Layout,
    views: StepViews,
    ema: Ema<Backbone>,
    alignment: Option<DistributionAlignment>,
    cta: Option<CtAugment>,
    randaugment: RandAugment,
    device: Device,
    tally: Tally,
    /// The step in progress, for the probes' seeds in `after_step`.
    step: u64,
}

impl Recipe for Steps<'_> {
    type Model = Backbone;
    type State = Saved;

    fn epoch_order(&mut self, ctx: &mut StageContext, _epoch: usize) -> Result<Vec<usize>> {
        Ok(self.layout.epoch_order(&mut ctx.rng, &self.labeled.indices, self.data.train.len(), self.p.steps_per_epoch))
    }

    fn step(&mut self, ctx: &mut StageContext, model: &Backbone, batch: Batch, at: At) -> Result<StepLoss> {
        let (b, ub) = (self.layout.labeled, self.layout.unlabeled);
        let y: Vec<u32> = batch.indices[..b].iter().map(|i| self.labels[i]).collect();
        let unlabeled = batch.indices[b..].to_vec();
        self.step = at.step;
        let strong: &dyn StrongAugment = match (&self.cta, self.p.strong) {
            (Some(cta), _) => cta,
            (None, Strong::Randaugment) => &self.randaugment,
            (None, _) => &WeakOnly,
        };
        let strong = self.views.strong(self.data, &unlabeled, ctx.seed, at.step, strong)?;
        let weak = Tensor::<4>::from_data(TensorData::new(batch.images, batch.shape), &self.device);
        let strong = Tensor::<4>::from_data(TensorData::new(strong.images, strong.shape), &self.device);
        // One pass over all rows: batch-norm statistics over labelled, weak and strong images together, as TF.
        let logits = model.forward(Tensor::cat(vec![weak, strong], 0)).logits;
        let logits_x = logits.clone().narrow(0, 0, b);
        let logits_weak = logits.clone().narrow(0, b, ub).detach();
        let logits_strong = logits.narrow(0, b + ub, ub);
        let q = softmax(logits_weak, 1)
            .into_data()
            .try_into_vec_as::<f32>()
            .map_err(|e| Error::stage("train", format!("cannot read the predictions back: {e:?}")))?;
        let q = match &mut self.alignment {
            Some(a) => a.update_and_align(&q),
            None => q,
        };
        let pseudo = PseudoLabels::new(&q, self.data.num_classes, self.p.threshold as f32);
        if let Some(truth) = &self.data.train.labels {
            let truth: Vec<u32> = unlabeled.iter().map(|&i| truth[i]).collect();
            let (correct, used_correct) = pseudo.correct(&truth);
            let t = &mut self.tally;
            (t.rows, t.correct, t.used, t.used_correct) =
                (t.rows + ub, t.correct + correct, t.used + pseudo.used(), t.used_correct + used_correct);
        }
        let mask = Tensor::<1>::from_data(TensorData::new(pseudo.mask.clone(), [ub]), &self.device);
        let loss_x = supervised_loss(logits_x, labels_tensor(&y, &self.device));
        let loss_u = unlabeled_loss(logits_strong, labels_tensor(&pseudo.labels, &self.device), mask);
        let (lx, lu) = (scalar(&loss_x), scalar(&loss_u));
        Ok(StepLoss::new(loss_x + loss_u.mul_scalar(self.p.lambda_u))
            .log("loss_x", lx)
            .log("loss_u", lu)
            .log("mask", pseudo.mask_rate()))
    }

    /// CTAugment's rate update from probes through the EMA model as it was during the step (TF runs the probe in
    /// the training step's session call), then the EMA update.
    fn after_step(&mut self, ctx: &mut StageContext, model: &Backbone, indices: &[usize]) -> Result<()> {
        if let Some(cta) = &mut self.cta {
            let labeled = &indices[..self.layout.labeled];
            let (batch, policies) = self.views.probes(self.data, labeled, ctx.seed, self.step, cta)?;
            let plain = self.device.clone().without_autodiff();
            let x = Tensor::<4>::from_data(TensorData::new(batch.images, batch.shape), &plain);
            let probs = softmax(self.ema.model().forward(x).logits, 1)
                .into_data()
                .try_into_vec_as::<f32>()
                .map_err(|e| Error::stage("train", format!("cannot read the probes' predictions back: {e:?}")))?;
            for ((row, policy), i) in probs.chunks_exact(self.data.num_classes).zip(&policies).zip(labeled) {
                cta.update(policy, probe_accuracy(row, self.labels[i] as usize));
            }
        }
        self.ema.update(model);
        Ok(())
    }

    fn end_epoch(
        &mut self,
        _ctx: &mut StageContext,
        _model: &Backbone,
        _epoch: usize,
        record: &mut Value,
    ) -> Result<()> {
        let t = std::mem::take(&mut self.tally);
        if t.rows > 0 {
            record["pseudo_label_accuracy"] = (t.correct as f64 / t.rows as f64).into();
            record["masked_pseudo_label_accuracy"] =
                if t.used > 0 { (t.used_correct as f64 / t.used as f64).into() } else { Value::Null };
        }
        if let Some(cta) = &self.cta {
            for (op, rate) in cta.op_rates() {
                record[format!("cta/{op}")] = f64::from(rate).into();
            }
        }
        Ok(())
    }

    /// The EMA model's test accuracy, whichever model the loop hands over.
    fn evaluate(&mut self, _ctx: &mut StageContext, _model: &Backbone) -> Result<Option<f64>> {
        let test = EvalInput::test_split(self.data, self.p.eval_batch_size, &self.device);
        views_accuracy(self.ema.model(), test, Views::Plain, |m, x| m.forward(x).logits)
    }

    fn state(&self) -> Saved {
        let t = &self.tally;
        let tally = Tally { rows: t.rows, correct: t.correct, used: t.used, used_correct: t.used_correct };
        Saved { alignment: self.alignment.clone(), ctaugment: self.cta.clone(), tally }
    }

    fn save_files(&self, dir: &Path) -> Result<()> {
        save_module(dir, EMA, self.ema.model())
    }

    fn restore(&mut self, state: Saved, dir: &Path) -> Result<()> {
        self.alignment = state.alignment;
        self.cta = state.ctaugment;
        self.tally = state.tally;
        let average = load_module(dir, EMA, self.ema.model().clone())?;
        self.ema = Ema::resume(average, self.p.ema_decay);
        Ok(())
    }
}
