use std::collections::HashMap;

use rand::seq::SliceRandom;
use relab_core::artifact::{Classifier, LabeledSet, TestAccuracy};
use relab_core::burn::module::Module;
use relab_core::burn::optim::GradientsParams;
use relab_core::burn::tensor::{Tensor, TensorData};
use relab_core::component::{Encoder, PropagateStage, SemiSupervisedLearner, StageContext};
use relab_core::data::{Dataset, LoaderConfig, for_each_batch};
use relab_core::nn::{Backbone, BackboneConfig, save_backbone};
use relab_core::registry::{ParamError, PluginInfo};
use relab_core::train::load_optimiser;
use relab_core::train::{
    EvalInput, Optimiser, cross_entropy, finite_loss, initial_weights, load_module, views_accuracy,
};
use relab_core::train::{losses::labels_tensor, save_module, save_optimiser};
use relab_core::{Error, Result};
use serde::{Deserialize, Serialize};

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

/// What a checkpoint records beside the weights and the optimiser state.
#[derive(Debug, Serialize, Deserialize)]
struct Progress {
    /// Epochs finished.
    epoch: usize,
    /// Optimiser steps taken.
    step: u64,
    /// Test accuracy after each evaluation.
    history: Vec<f64>,
}

const MODEL: &str = "model";
const OPTIMISER: &str = "optimiser";

impl SemiSupervisedLearner for Supervised {
    fn train(
        &mut self,
        ctx: &mut StageContext,
        data: &Dataset,
        labeled: &LabeledSet,
        init: Option<&dyn Encoder>,
        _propagation: Option<&mut PropagateStage<'_>>,
    ) -> Result<Classifier> {
        let p = &self.params;
        if labeled.is_empty() {
            return Err(Error::stage("train", "the labelled set is empty"));
        }
        let device = ctx.device.clone().autodiff();
        let config = BackboneConfig::new(p.backbone, data.train.channels, data.num_classes);
        let fresh = ctx.init(|| config.init(&device));
        let mut model: Backbone = initial_weights(&p.init, init, ctx.dir(), fresh, &config, &device)?;
        let mut optimiser = Optimiser::sgd(&p.optimizer);
        let mut progress = Progress { epoch: 0, step: 0, history: Vec::new() };
        if let Some((saved, dir)) = ctx.restore_checkpoint::<Progress>()? {
            model = load_module(&dir, MODEL, model)?;
            optimiser = load_optimiser(&dir, OPTIMISER, optimiser)?;
            progress = saved;
        }
        let label_of: HashMap<usize, u32> =
            labeled.indices.iter().copied().zip(labeled.labels.iter().copied()).collect();
        let bar = ctx.progress(p.epochs as u64, "epochs");
        bar.set_position(progress.epoch as u64);
        let test = EvalInput {
            set: &data.test,
            mean: &data.mean,
            std: &data.std,
            batch_size: p.eval_batch_size,
            device: &device,
        };
        while progress.epoch < p.epochs {
            let epoch = progress.epoch + 1;
            let order = self.epoch_order(ctx, labeled);
            let mut loader = LoaderConfig::new(p.batch_size, &data.mean, &data.std);
            loader.augment = Some(p.augment.clone());
            loader.seed = ctx.seed;
            loader.epoch = epoch as u64;
            let lr = p.schedule.lr(epoch as u64, progress.step);
            let (mut loss_sum, mut batches) = (0.0, 0usize);
            for_each_batch(&data.train, &order, &loader, |batch| {
                let labels: Vec<u32> = batch.indices.iter().map(|i| label_of[i]).collect();
                let x = Tensor::<4>::from_data(TensorData::new(batch.images, batch.shape), &device);
                let logits = model.forward(x).logits;
                let loss = cross_entropy(logits, labels_tensor(&labels, &device));
                let value =
                    finite_loss(ctx, "cross-entropy loss", &loss, format!("epoch {epoch} step {}", progress.step))?;
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                model = optimiser.step(p.schedule.lr(epoch as u64, progress.step), model.clone(), grads);
                progress.step += 1;
                loss_sum += value;
                batches += 1;
                Ok(())
            })?;
            let mut record = serde_json::json!({ "epoch": epoch, "loss": loss_sum / batches.max(1) as f64, "lr": lr });
            if (epoch.is_multiple_of(p.eval_every) || epoch == p.epochs)
                && let Some(acc) = views_accuracy(&model, test, p.test_views, |m, x| m.forward(x).logits)?
            {
                progress.history.push(acc);
                record["test_accuracy"] = acc.into();
            }
            ctx.log(record)?;
            progress.epoch = epoch;
            let (m, o) = (&model, &optimiser);
            ctx.save_checkpoint(&progress, |dir| {
                save_module(dir, MODEL, m)?;
                save_optimiser(dir, OPTIMISER, o)
            })?;
            bar.inc(1);
        }
        bar.finish_and_clear();
        save_backbone(&model.valid(), &config, ctx.dir())?;
        let test_accuracy = (!progress.history.is_empty()).then(|| TestAccuracy::from_history(&progress.history));
        Ok(Classifier { test_accuracy })
    }
}

impl Supervised {
    /// The training indices of one epoch: the labelled set shuffled, cycled (each pass reshuffled) until it fills
    /// `min_steps_per_epoch` batches and at least one whole batch.
    fn epoch_order(&self, ctx: &mut StageContext, labeled: &LabeledSet) -> Vec<usize> {
        let p = &self.params;
        let wanted = (p.min_steps_per_epoch * p.batch_size).max(p.batch_size.min(labeled.len())).max(labeled.len());
        let mut order = Vec::with_capacity(wanted + labeled.len());
        while order.len() < wanted {
            let mut pass = labeled.indices.clone();
            pass.shuffle(&mut ctx.rng);
            order.extend(pass);
        }
        order.truncate(wanted.div_ceil(p.batch_size) * p.batch_size);
        order
    }
}
