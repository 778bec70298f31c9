//! The learner: registration, the run on core's training loop, and one ReMixMatch step as a [`Recipe`].
use std::path::Path;

use rand::Rng;
use rand::seq::SliceRandom;
use relab_core::artifact::{Classifier, LabeledSet, TestAccuracy};
use relab_core::burn::tensor::activation::softmax;
use relab_core::burn::tensor::{Device, Tensor, TensorData};
use relab_core::component::{LearnerInput, SemiSupervisedLearner, StageContext};
use relab_core::data::augment::probe_accuracy;
use relab_core::data::augment::{Augment, CtAugment, CtAugmentConfig, Flip, PadMode, Pipeline, RandomCrop};
use relab_core::data::{Batch, Dataset};
use relab_core::nn::{BackboneConfig, save_backbone};
use relab_core::registry::{ParamError, PluginInfo};
use relab_core::train::guard::scalar;
use relab_core::train::losses::labels_tensor;
use relab_core::train::{At, Ema, EvalInput, Fit, Mix, Recipe, Run, StepLoss, Views};
use relab_core::train::{initial_weights, load_module, save_module, views_accuracy};
use relab_core::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::guess::{Alignment, guess_stats, sharpen};
use crate::loss::{Outputs, Weights, remixmatch_loss};
use crate::model::{RemixNet, optimiser};
use crate::params::RemixMatchParams;
use crate::rotation::rotate_quarters;
use crate::views::ViewSource;

/// ReMixMatch as ReLaB runs it.
#[derive(Debug, Clone)]
pub struct RemixMatch {
    params: RemixMatchParams,
}

impl PluginInfo for RemixMatch {
    const NAME: &'static str = "remixmatch";
    const SUMMARY: &'static str = "ReMixMatch as ReLaB runs it: CTAugment strong views, distribution alignment and \
                                   sharpening, mixup of everything with everything, rotation loss, Adam, EMA";
    type Params = RemixMatchParams;

    fn from_params(params: RemixMatchParams) -> Result<Self, ParamError> {
        params.check()?;
        Ok(RemixMatch { params })
    }
}

relab_core::submit_plugin!(train, RemixMatch);

/// The EMA model's weights in a checkpoint folder.
const EMA: &str = "remixmatch_ema";
/// A guess whose aligned probability passes this counts as confident (FixMatch's mask threshold).
const CONFIDENT: f32 = 0.95;

impl SemiSupervisedLearner for RemixMatch {
    fn train(&mut self, ctx: &mut StageContext, input: LearnerInput<'_, '_>) -> Result<Classifier> {
        let LearnerInput { data, labeled, encoder, .. } = input;
        let p = &self.params;
        let labels = labels_by_index(data, labeled)?;
        let device = ctx.device.clone().autodiff();
        let config = BackboneConfig::new(p.backbone, data.train.channels, data.num_classes);
        let fresh = ctx.init(&device, |d| RemixNet::new(&config, d));
        let mut fit = Fit::start(ctx)?;
        let model = fit.model(fresh, |m| {
            let backbone = initial_weights(&p.init, encoder, m.backbone, &config, &device)?;
            Ok(RemixNet { backbone, rotation: m.rotation })
        })?;
        let pad = p.weak_padding(data.train.height.min(data.train.width));
        let weak = Pipeline::new(vec![
            Augment::Flip(Flip::default()),
            Augment::Crop(RandomCrop { size: None, padding: pad, mode: PadMode::Reflect }),
        ]);
        let cta = CtAugment::new(CtAugmentConfig {
            depth: p.cta_depth,
            threshold: p.cta_threshold as f32,
            decay: p.cta_decay as f32,
        });
        tracing::info!(
            "remixmatch: {} labelled and {} unlabelled images; {} epochs of {} steps, {} + {}×{} images each",
            labeled.len(),
            data.train.len(),
            p.epochs,
            p.steps_per_epoch,
            p.batch_size,
            p.batch_size,
            p.strong_views + 1
        );
        let mut recipe = Steps {
            p,
            data,
            labeled: labeled.indices.clone(),
            labels,
            ema: Ema::new(&model, p.ema),
            alignment: Alignment::new(data.num_classes, p.dbuf),
            cta,
            weak,
            eval_device: ctx.device.clone(),
            device,
        };
        let run = Run::new(data, model, optimiser(&p.optimizer), p.epochs, 2 * p.batch_size, &p.schedule)
            .eval_every(p.eval_every)
            .loss_name("remixmatch loss");
        let trained = fit.run(ctx, &mut recipe, run)?;
        save_backbone(&recipe.ema.model().backbone, &config, ctx.dir())?;
        let test_accuracy = (!trained.history.is_empty()).then(|| TestAccuracy::from_history(&trained.history));
        Ok(Classifier { test_accuracy })
    }
}

/// The label of each training image in the labelled set (`None` for the others); an index listed twice or outside
/// the training set is an error.
fn labels_by_index(data: &Dataset, labeled: &LabeledSet) -> Result<Vec<Option<u32>>> {
    let n = data.train.len();
    if labeled.is_empty() {
        return Err(Error::stage("train", "the labelled set is empty"));
    }
    let mut labels = vec![None; n];
    for (&i, &y) in labeled.indices.iter().zip(&labeled.labels) {
        let slot = labels
            .get_mut(i)
            .ok_or_else(|| Error::stage("train", format!("labelled index {i} outside the training set (0..{n})")))?;
        if slot.replace(y).is_some() {
            return Err(Error::stage("train", format!("training image {i} is listed twice in the labelled set")));
        }
        if y as usize >= data.num_classes {
            return Err(Error::stage(
                "train",
                format!("label {y} of image {i} is not one of {} classes", data.num_classes),
            ));
        }
    }
    Ok(labels)
}

/// What the loop runs: the epoch's batches and one ReMixMatch step, with the state kept across steps.
struct Steps<'a> {
    p: &'a RemixMatchParams,
    data: &'a Dataset,
    labeled: Vec<usize>,
    labels: Vec<Option<u32>>,
    /// The weights' moving average: the model evaluated, and the one that classifies the probes.
    ema: Ema<RemixNet>,
    alignment: Alignment,
    cta: CtAugment,
    weak: Pipeline,
    /// The device without autodiff, for the EMA model.
    eval_device: Device,
    device: Device,
}

/// The recipe's state in a checkpoint's `state.json` (the EMA weights are a file beside it).
#[derive(Serialize, Deserialize)]
struct State {
    alignment: Alignment,
    cta: CtAugment,
}

impl Recipe for Steps<'_> {
    type Model = RemixNet;
    type State = State;

    /// `steps_per_epoch` batches of `batch_size` labelled images (the labelled set cycled in shuffled passes) then
    /// `batch_size` unlabelled ones (every training image, in shuffled passes). Each epoch starts fresh passes.
    fn epoch_order(&mut self, ctx: &mut StageContext, _epoch: usize) -> Result<Vec<usize>> {
        let b = self.p.batch_size;
        let all: Vec<usize> = (0..self.data.train.len()).collect();
        let mut labeled = Passes::new(&self.labeled);
        let mut unlabeled = Passes::new(&all);
        let mut order = Vec::with_capacity(self.p.steps_per_epoch * 2 * b);
        for _ in 0..self.p.steps_per_epoch {
            labeled.take(&mut ctx.rng, b, &mut order);
            unlabeled.take(&mut ctx.rng, b, &mut order);
        }
        Ok(order)
    }

    fn step(&mut self, ctx: &mut StageContext, model: &RemixNet, batch: Batch, at: At) -> Result<StepLoss> {
        let (b, k, c) = (self.p.batch_size, self.p.strong_views, self.data.num_classes);
        let (labeled, unlabeled) = batch.indices.split_at(b);
        let y: Vec<u32> =
            labeled.iter().map(|&i| self.labels[i].expect("labelled batches hold labelled images")).collect();
        let source = ViewSource {
            set: &self.data.train,
            mean: &self.data.mean,
            std: &self.data.std,
            weak: &self.weak,
            cta: &self.cta,
        };
        let views = source.build(labeled, unlabeled, k, ctx.rng.random())?;

        // CTAugment's rates follow how well the EMA model classifies the probe images.
        let probe = tensor(views.probe, &self.eval_device);
        let probe_probs = rows(softmax(self.ema.model().forward(probe).logits, 1))?;
        let mut probe_sum = 0.0;
        for ((policy, row), &label) in views.probe_policies.iter().zip(probe_probs.chunks_exact(c)).zip(&y) {
            let accuracy = probe_accuracy(row, label as usize);
            self.cta.update(policy, accuracy);
            probe_sum += accuracy as f64;
        }

        // One forward pass: the mixed batch [x; u_0..u_K], then the unmixed weak view u_0 (label guess), the
        // unmixed first strong view u_1 (pre-mixup loss) and u_1 rotated by quarter (rotation loss).
        let shape = views.unlabeled.shape;
        let mut all = views.labeled.images;
        all.extend_from_slice(&views.unlabeled.images);
        let [_, ch, h, w] = shape;
        let all = tensor_of(all, [(k + 2) * b, ch, h, w], &self.device);
        let mix = Mix::per_sample(&mut ctx.rng, (k + 2) * b, self.p.beta);
        let weak = all.clone().narrow(0, b, b);
        let strong = all.clone().narrow(0, 2 * b, b);
        let mut parts = vec![mix.mix(all), weak, strong];
        let rotation_labels = if self.p.w_rot > 0.0 {
            let plane = ch * h * w;
            let mut rotated = views.unlabeled.images[b * plane..2 * b * plane].to_vec();
            let labels = rotate_quarters(&mut rotated, [b, ch, h, w])?;
            parts.push(tensor_of(rotated, [b, ch, h, w], &self.device));
            Some(labels)
        } else {
            None
        };
        let out = model.forward(Tensor::cat(parts, 0));
        let mixed = (k + 2) * b;
        let logits = |from: usize, len: usize| out.logits.clone().narrow(0, from, len);

        // The label guess from the weak view, aligned and sharpened, without gradient.
        let p_weak = rows(softmax(logits(mixed, b).detach(), 1))?;
        let aligned = if self.p.use_dm { self.alignment.align(&p_weak) } else { p_weak.clone() };
        let guess = sharpen(&aligned, c, self.p.temperature);
        let truth: Option<Vec<u32>> =
            self.data.train.labels.as_ref().map(|t| unlabeled.iter().map(|&i| t[i]).collect());
        let stats = guess_stats(&aligned, c, truth.as_deref(), CONFIDENT);

        let mut targets = vec![0f32; (k + 2) * b * c];
        for (row, &label) in targets.chunks_exact_mut(c).zip(&y) {
            row[label as usize] = 1.0;
        }
        for view in 1..k + 2 {
            targets[view * b * c..(view + 1) * b * c].copy_from_slice(&guess);
        }
        let targets = mix.mix(tensor_of(targets, [(k + 2) * b, c], &self.device));
        let rotation = rotation_labels.map(|labels| {
            let features = out.features.clone().narrow(0, mixed + 2 * b, b);
            (model.rotation_logits(features), labels_tensor(&labels, &self.device))
        });
        let outputs = Outputs {
            labeled_logits: logits(0, b),
            labeled_targets: targets.clone().narrow(0, 0, b),
            unlabeled_logits: logits(b, mixed - b),
            unlabeled_targets: targets.narrow(0, b, mixed - b),
            strong_logits: logits(mixed + b, b),
            guess: tensor_of(guess, [b, c], &self.device),
            rotation,
        };
        let ramp = self.p.ramp(at.step);
        let weights = Weights { w_match: self.p.w_match, w_kl: self.p.w_kl, w_rot: self.p.w_rot, ramp };
        let loss = remixmatch_loss(outputs, weights, self.p.use_xe);
        self.alignment.update(&p_weak, &y);

        let mut step = StepLoss::new(loss.total)
            .log("loss_x", scalar(&loss.x))
            .log("loss_u", scalar(&loss.u))
            .log("loss_kl", scalar(&loss.kl));
        if let Some(rot) = &loss.rot {
            step = step.log("loss_rot", scalar(rot));
        }
        step = step.log("ramp", ramp).log("probe_accuracy", probe_sum / b as f64);
        if let Some(accuracy) = stats.accuracy {
            step = step.log("guess_accuracy", accuracy);
        }
        Ok(step.log("guess_confident", stats.confident))
    }

    fn after_step(&mut self, _ctx: &mut StageContext, model: &RemixNet, _indices: &[usize]) -> Result<()> {
        self.ema.update(model);
        Ok(())
    }

    /// CTAugment's rate per op (the mean sampling weight of its bins), to plot how the augmentation adapts.
    fn end_epoch(
        &mut self,
        _ctx: &mut StageContext,
        _model: &RemixNet,
        _epoch: usize,
        record: &mut Value,
    ) -> Result<()> {
        for (op, rate) in self.cta.op_rates() {
            record[format!("cta/{op}")] = (rate as f64).into();
        }
        Ok(())
    }

    /// The EMA model's test accuracy (the loop hands over the training model: the EMA is the recipe's).
    fn evaluate(&mut self, _ctx: &mut StageContext, _model: &RemixNet) -> Result<Option<f64>> {
        let test = EvalInput::test_split(self.data, self.p.eval_batch_size, &self.eval_device);
        views_accuracy(self.ema.model(), test, Views::Plain, |m, x| m.forward(x).logits)
    }

    fn state(&self) -> State {
        State { alignment: self.alignment.clone(), cta: self.cta.clone() }
    }

    fn save_files(&self, dir: &Path) -> Result<()> {
        save_module(dir, EMA, self.ema.model())
    }

    fn restore(&mut self, state: State, dir: &Path) -> Result<()> {
        let average = load_module(dir, EMA, self.ema.model().clone())?;
        self.ema = Ema::resume(average, self.p.ema);
        self.alignment = state.alignment;
        self.cta = state.cta;
        Ok(())
    }
}

/// An endless stream of shuffled passes over a list, drawn in batches.
struct Passes<'a> {
    items: &'a [usize],
    pass: Vec<usize>,
    next: usize,
}

impl<'a> Passes<'a> {
    fn new(items: &'a [usize]) -> Self {
        Passes { items, pass: Vec::new(), next: 0 }
    }

    /// Appends the next `n` items to `out`, starting a freshly shuffled pass whenever one runs out.
    fn take(&mut self, rng: &mut impl Rng, n: usize, out: &mut Vec<usize>) {
        for _ in 0..n {
            if self.next == self.pass.len() {
                self.pass = self.items.to_vec();
                self.pass.shuffle(rng);
                self.next = 0;
            }
            out.push(self.pass[self.next]);
            self.next += 1;
        }
    }
}

fn tensor(batch: Batch, device: &Device) -> Tensor<4> {
    tensor_of(batch.images, batch.shape, device)
}

fn tensor_of<const D: usize>(values: Vec<f32>, shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// A probability matrix read back row-major.
fn rows(probs: Tensor<2>) -> Result<Vec<f32>> {
    probs
        .into_data()
        .try_into_vec_as::<f32>()
        .map_err(|e| Error::stage("train", format!("cannot read the predictions back: {e:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn passes_cycle_every_item_before_repeating() {
        let items = [3, 5, 7];
        let mut passes = Passes::new(&items);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut out = Vec::new();
        passes.take(&mut rng, 2, &mut out);
        passes.take(&mut rng, 4, &mut out);
        let (mut first, mut second) = (out[..3].to_vec(), out[3..].to_vec());
        first.sort();
        second.sort();
        assert_eq!((first, second), (vec![3, 5, 7], vec![3, 5, 7]));
    }

    #[test]
    fn labels_by_index_refuses_bad_sets() {
        let data = relab_core::testing::tiny_dataset(&Default::default());
        let ok = labels_by_index(&data, &LabeledSet::new(vec![2, 0], vec![1, 2])).unwrap();
        assert_eq!(&ok[..3], &[Some(2), None, Some(1)]);
        assert!(labels_by_index(&data, &LabeledSet::new(vec![], vec![])).is_err());
        assert!(labels_by_index(&data, &LabeledSet::new(vec![1, 1], vec![0, 0])).is_err());
        assert!(labels_by_index(&data, &LabeledSet::new(vec![99], vec![0])).is_err());
        assert!(labels_by_index(&data, &LabeledSet::new(vec![1], vec![3])).is_err());
    }
}
