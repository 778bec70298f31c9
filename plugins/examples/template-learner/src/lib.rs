//! `entropy-min`: entropy minimisation (Grandvalet & Bengio, 2005). Each batch holds labelled and unlabelled images;
//! the loss is the labelled images' cross-entropy plus `entropy_weight` times the mean entropy of the unlabelled
//! images' predictions, which pushes the decision boundary away from dense regions of unlabelled data.
//!
//! The template for a learner: parameters (declared once), registration, and a [`Recipe`] that core's training
//! loop runs (epochs, checkpoints, resume, NaN guard, metrics, evaluation are the loop's). `relab new train NAME`
//! copies this file with the names replaced.

use std::collections::HashMap;
use std::path::Path;

use relab_core::artifact::{Classifier, LabeledSet, TestAccuracy};
use relab_core::burn::module::Module;
use relab_core::burn::tensor::{Device, Tensor, TensorData};
use relab_core::component::{LearnerInput, SemiSupervisedLearner, StageContext};
use relab_core::data::{Batch, Dataset};
use relab_core::nn::{Backbone, BackboneConfig, BackboneKind, save_backbone};
use relab_core::rand::seq::SliceRandom;
use relab_core::registry::{ParamError, PluginInfo};
use relab_core::train::guard::scalar;
use relab_core::train::losses::{entropy_loss, labels_tensor};
use relab_core::train::{At, EvalInput, Fit, LrSchedule, Optimiser, Recipe, Run, SgdSettings, StepLoss, Views};
use relab_core::train::{cross_entropy, views_accuracy};
use relab_core::{Error, Result};

/// The YAML parameters; each field's first doc paragraph is its help line in `relab plugins describe`.
#[relab_core::params]
#[derive(Debug, Clone, PartialEq)]
pub struct EntropyMinParams {
    /// wrn28_2, wrn16_2, wrn10_2, resnet18 or resnet50
    #[param(default = BackboneKind::Wrn28_2)]
    pub backbone: BackboneKind,
    /// training epochs (one pass over the unlabelled images each)
    #[param(default = 30, min = 1)]
    pub epochs: usize,
    /// labelled images per batch (the labelled set is cycled)
    #[param(default = 16, min = 1)]
    pub labeled_per_batch: usize,
    /// unlabelled images per batch
    #[param(default = 48, min = 1)]
    pub unlabeled_per_batch: usize,
    /// weight of the unlabelled images' mean prediction entropy in the loss
    #[param(default = 0.1, min = 0.0)]
    pub entropy_weight: f64,
    /// learning rate: {lr, milestones (epochs, 1-based), gamma, milestones_in, warmup_steps}
    #[param(default = LrSchedule::constant(0.03))]
    pub schedule: LrSchedule,
    /// SGD: {momentum, nesterov, weight_decay, dampening}
    #[param(default = SgdSettings { momentum: 0.9, nesterov: true, weight_decay: 5e-4, dampening: 0.0 })]
    pub optimizer: SgdSettings,
    /// epochs between test evaluations (and after the last)
    #[param(default = 1, min = 1)]
    pub eval_every: usize,
    /// images per batch when evaluating
    #[param(default = 500, min = 1)]
    pub eval_batch_size: usize,
}

/// The learner, built from its parameters by the registry.
#[derive(Debug, Clone)]
pub struct EntropyMin {
    params: EntropyMinParams,
}

impl PluginInfo for EntropyMin {
    const NAME: &'static str = "entropy-min";
    const SUMMARY: &'static str = "entropy minimisation: cross-entropy on the labelled images plus the entropy of the \
                                   unlabelled images' predictions (learner template)";
    type Params = EntropyMinParams;

    fn from_params(params: EntropyMinParams) -> Result<Self, ParamError> {
        Ok(EntropyMin { params })
    }
}

relab_core::submit_plugin!(train, EntropyMin);

impl SemiSupervisedLearner for EntropyMin {
    fn train(&mut self, ctx: &mut StageContext, input: LearnerInput<'_, '_>) -> Result<Classifier> {
        let LearnerInput { data, labeled, .. } = input;
        let p = &self.params;
        if labeled.is_empty() {
            return Err(Error::stage("train", "the labelled set is empty"));
        }
        let labels: HashMap<usize, u32> = labeled.indices.iter().copied().zip(labeled.labels.iter().copied()).collect();
        let unlabeled: Vec<usize> = (0..data.train.len()).filter(|i| !labels.contains_key(i)).collect();
        if unlabeled.len() < p.unlabeled_per_batch {
            return Err(Error::stage("train", format!("{} unlabelled images fill no batch", unlabeled.len())));
        }
        let device = ctx.device.clone().autodiff();
        let config = BackboneConfig::new(p.backbone, data.train.channels, data.num_classes);
        let fresh = ctx.init(&device, |d| config.init(d));
        let mut fit = Fit::start(ctx)?;
        let model = fit.model(fresh, Ok)?;
        let batch_size = p.labeled_per_batch + p.unlabeled_per_batch;
        let run = Run::new(data, model, Optimiser::sgd(&p.optimizer), p.epochs, batch_size, &p.schedule)
            .eval_every(p.eval_every)
            .loss_name("entropy-min loss");
        let mut recipe = Steps { p, data, labeled, labels, unlabeled, device };
        let trained = fit.run(ctx, &mut recipe, run)?;
        save_backbone(&trained.model.valid(), &config, ctx.dir())?;
        let test_accuracy = (!trained.history.is_empty()).then(|| TestAccuracy::from_history(&trained.history));
        Ok(Classifier { test_accuracy })
    }
}

/// What the loop asks of the learner: an epoch's order, one batch's loss, an evaluation.
struct Steps<'a> {
    p: &'a EntropyMinParams,
    data: &'a Dataset,
    labeled: &'a LabeledSet,
    labels: HashMap<usize, u32>,
    unlabeled: Vec<usize>,
    device: Device,
}

impl Recipe for Steps<'_> {
    type Model = Backbone;
    /// Nothing beyond what the loop keeps: the order is drawn from `ctx.rng`, which checkpoints restore.
    type State = ();

    /// Batches of `labeled_per_batch` labelled images (cycled, reshuffled each pass) then `unlabeled_per_batch`
    /// unlabelled ones (shuffled, the last incomplete batch dropped).
    fn epoch_order(&mut self, ctx: &mut StageContext, _epoch: usize) -> Result<Vec<usize>> {
        let (l, u) = (self.p.labeled_per_batch, self.p.unlabeled_per_batch);
        let mut unlabeled = self.unlabeled.clone();
        unlabeled.shuffle(&mut ctx.rng);
        let mut labeled: Vec<usize> = Vec::new();
        let mut order = Vec::with_capacity((unlabeled.len() / u) * (l + u));
        for chunk in unlabeled.chunks_exact(u) {
            while labeled.len() < l {
                let mut pass = self.labeled.indices.clone();
                pass.shuffle(&mut ctx.rng);
                labeled.extend(pass);
            }
            order.extend(labeled.drain(..l));
            order.extend_from_slice(chunk);
        }
        Ok(order)
    }

    fn step(&mut self, _ctx: &mut StageContext, model: &Backbone, batch: Batch, _at: At) -> Result<StepLoss> {
        let l = self.p.labeled_per_batch;
        let y: Vec<u32> = batch.indices[..l].iter().map(|i| self.labels[i]).collect();
        let x = Tensor::<4>::from_data(TensorData::new(batch.images, batch.shape), &self.device);
        let logits = model.forward(x).logits;
        let [b, _] = logits.dims();
        let supervised = cross_entropy(logits.clone().narrow(0, 0, l), labels_tensor(&y, &self.device));
        let entropy = entropy_loss(logits.narrow(0, l, b - l));
        let (ce, h) = (scalar(&supervised), scalar(&entropy));
        Ok(StepLoss::new(supervised + entropy.mul_scalar(self.p.entropy_weight))
            .log("cross_entropy", ce)
            .log("entropy", h))
    }

    fn evaluate(&mut self, _ctx: &mut StageContext, model: &Backbone) -> Result<Option<f64>> {
        let test = EvalInput::test_split(self.data, self.p.eval_batch_size, &self.device);
        views_accuracy(model, test, Views::Plain, |m, x| m.forward(x).logits)
    }

    fn state(&self) {}

    fn restore(&mut self, _: (), _: &Path) -> Result<()> {
        Ok(())
    }
}
