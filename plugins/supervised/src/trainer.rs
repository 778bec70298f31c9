use std::collections::HashMap;
use std::path::Path;

use rand::seq::SliceRandom;
use relab_core::artifact::{Classifier, LabeledSet, TestAccuracy};
use relab_core::burn::module::Module;
use relab_core::burn::tensor::{Device, Tensor, TensorData};
use relab_core::component::{LearnerInput, SemiSupervisedLearner, StageContext};
use relab_core::data::{Batch, Dataset};
use relab_core::nn::{Backbone, BackboneConfig, save_backbone};
use relab_core::registry::{ParamError, PluginInfo};
use relab_core::train::losses::labels_tensor;
use relab_core::train::{At, EvalInput, Fit, Optimiser, Recipe, Run, StepLoss};
use relab_core::train::{cross_entropy, initial_weights, views_accuracy};
use relab_core::{Error, Result};

use crate::params::SupervisedParams;

/// A backbone trained on the labelled set only.
#[derive(Debug, Clone)]
pub struct Supervised {
    params: SupervisedParams,
}

impl PluginInfo for Supervised {
    const NAME: &'static str = "supervised";
    const SUMMARY: &'static str = "train a backbone on the labelled set only (the baseline of every ablation)";
    type Params = SupervisedParams;

    fn from_params(params: SupervisedParams) -> Result<Self, ParamError> {
        // Counts are checked by their `min = 1` in SupervisedParams.
        let bad = |key: &str, message: String| ParamError { path: vec![key.into()], message, known_keys: vec![] };
        params.schedule.check().map_err(|m| bad("schedule", m))?;
        params.init.validate().map_err(|m| bad("init", m))?;
        Ok(Supervised { params })
    }
}

relab_core::submit_plugin!(train, Supervised);

impl SemiSupervisedLearner for Supervised {
    fn train(&mut self, ctx: &mut StageContext, input: LearnerInput<'_, '_>) -> Result<Classifier> {
        let LearnerInput { data, labeled, encoder, .. } = input;
        let p = &self.params;
        if labeled.is_empty() {
            return Err(Error::stage("train", "the labelled set is empty"));
        }
        let device = ctx.device.clone().autodiff();
        let config = BackboneConfig::new(p.backbone, data.train.channels, data.num_classes);
        let fresh = ctx.init(&device, |d| config.init(d));
        let mut fit = Fit::start(ctx)?;
        let model = fit.model(fresh, |m| initial_weights(&p.init, encoder, m, &config, &device))?;
        let run = Run::new(data, model, Optimiser::sgd(&p.optimizer), p.epochs, p.batch_size, &p.schedule)
            .augment(&p.augment)
            .eval_every(p.eval_every)
            .loss_name("cross-entropy loss");
        let label_of = labeled.indices.iter().copied().zip(labeled.labels.iter().copied()).collect();
        let trained = fit.run(ctx, &mut LabeledOnly { p, data, labeled, label_of, device }, run)?;
        save_backbone(&trained.model.valid(), &config, ctx.dir())?;
        let test_accuracy = (!trained.history.is_empty()).then(|| TestAccuracy::from_history(&trained.history));
        Ok(Classifier { test_accuracy })
    }
}

/// Cross-entropy on the labelled set, cycled to fill an epoch.
struct LabeledOnly<'a> {
    p: &'a SupervisedParams,
    data: &'a Dataset,
    labeled: &'a LabeledSet,
    label_of: HashMap<usize, u32>,
    device: Device,
}

impl Recipe for LabeledOnly<'_> {
    type Model = Backbone;
    type State = ();

    /// The labelled set shuffled, cycled (each pass reshuffled) until it fills `min_steps_per_epoch` batches and
    /// at least one whole batch.
    fn epoch_order(&mut self, ctx: &mut StageContext, _epoch: usize) -> Result<Vec<usize>> {
        let (p, labeled) = (self.p, self.labeled);
        let wanted = (p.min_steps_per_epoch * p.batch_size).max(p.batch_size.min(labeled.len())).max(labeled.len());
        let mut order = Vec::with_capacity(wanted + labeled.len());
        while order.len() < wanted {
            let mut pass = labeled.indices.clone();
            pass.shuffle(&mut ctx.rng);
            order.extend(pass);
        }
        order.truncate(wanted.div_ceil(p.batch_size) * p.batch_size);
        Ok(order)
    }

    fn step(&mut self, _ctx: &mut StageContext, model: &Backbone, batch: Batch, _at: At) -> Result<StepLoss> {
        let device = &self.device;
        let labels: Vec<u32> = batch.indices.iter().map(|i| self.label_of[i]).collect();
        let x = Tensor::<4>::from_data(TensorData::new(batch.images, batch.shape), device);
        Ok(StepLoss::new(cross_entropy(model.forward(x).logits, labels_tensor(&labels, device))))
    }

    fn evaluate(&mut self, _ctx: &mut StageContext, model: &Backbone) -> Result<Option<f64>> {
        let test = EvalInput::test_split(self.data, self.p.eval_batch_size, &self.device);
        views_accuracy(model, test, self.p.test_views, |m, x| m.forward(x).logits)
    }

    fn state(&self) {}

    fn restore(&mut self, _: (), _: &Path) -> Result<()> {
        Ok(())
    }
}
