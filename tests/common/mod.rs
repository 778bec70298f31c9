//! Small but real plugins used only by the tests, so the pipeline can be run end to end on Fashion-MNIST in
//! seconds: a random-projection encoder (on the burn device), nearest-centroid propagation, top-score selection and
//! a nearest-centroid learner that checkpoints every epoch.
#![allow(dead_code)]

use std::path::Path;

use rand::Rng;
use rand::seq::SliceRandom;
use relab::cli;
use relab_core::artifact::{Classifier, Features, LabeledSet, Propagation, TestAccuracy, npy};
use relab_core::burn::tensor::{Tensor, TensorData};
use relab_core::component::{
    Encoder, LearnerInput, Propagator, Selector, SelectorInput, SemiSupervisedLearner, SslMethod, StageContext,
};
use relab_core::data::{Dataset, ImageSet};
use relab_core::experiment::FeatureOutput;
use relab_core::registry::{ParamError, PluginInfo, PluginParams};
use relab_core::{Error, Result, submit_plugin};
use serde::{Deserialize, Serialize};

/// Runs the CLI in this process (so the test plugins are registered) and returns its exit code.
pub fn relab(args: &[&str]) -> u8 {
    let code = cli::main(std::iter::once("relab").chain(args.iter().copied()));
    if code == std::process::ExitCode::SUCCESS { 0 } else { 1 }
}

/// Fashion-MNIST must be installed for the end-to-end tests: `apt-get install dataset-fashion-mnist`.
pub fn require_fashion_mnist() {
    assert!(
        Path::new("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").exists()
            || std::env::var_os("RELAB_DATA").is_some(),
        "the end-to-end tests need Fashion-MNIST: apt-get install dataset-fashion-mnist (or set RELAB_DATA)"
    );
}

fn pixels(images: &ImageSet) -> Vec<f32> {
    images.pixels.iter().map(|&p| p as f32 / 255.0).collect()
}

// ---- pretrain: a seeded Gaussian random projection, applied with burn on the stage's device ----

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProjectionParams {
    pub dim: usize,
}

impl Default for ProjectionParams {
    fn default() -> Self {
        ProjectionParams { dim: 32 }
    }
}

impl PluginParams for ProjectionParams {
    fn help() -> &'static [(&'static str, &'static str)] {
        &[("dim", "output dimension")]
    }
}

pub struct TestProjection {
    dim: usize,
}

impl PluginInfo for TestProjection {
    const NAME: &'static str = "test-projection";
    const SUMMARY: &'static str = "test only: a seeded random projection of the pixels";
    type Params = ProjectionParams;
    fn from_params(p: ProjectionParams) -> Result<Self, ParamError> {
        if p.dim == 0 {
            return Err(ParamError { path: vec!["dim".into()], message: "must be > 0".into(), known_keys: vec![] });
        }
        Ok(TestProjection { dim: p.dim })
    }
}

struct ProjectionEncoder {
    input: usize,
    dim: usize,
    matrix: Vec<f32>,
}

impl SslMethod for TestProjection {
    fn pretrain(&mut self, ctx: &mut StageContext, data: &Dataset) -> Result<Box<dyn Encoder>> {
        let input = data.train.image_len();
        let scale = 1.0 / (input as f32).sqrt();
        let matrix = (0..input * self.dim).map(|_| (ctx.rng.random::<f32>() - 0.5) * scale).collect();
        ctx.log(serde_json::json!({ "epoch": 1, "loss": 1.0 }))?;
        ctx.set_summary("knn_accuracy", 0.5);
        Ok(Box::new(ProjectionEncoder { input, dim: self.dim, matrix }))
    }

    fn load_encoder(&self, _ctx: &mut StageContext, dir: &Path) -> Result<Box<dyn Encoder>> {
        let (shape, matrix) = npy::read_f32(&dir.join("projection.npy"))?;
        Ok(Box::new(ProjectionEncoder { input: shape[0], dim: shape[1], matrix }))
    }
}

impl Encoder for ProjectionEncoder {
    fn feature_dim(&self) -> usize {
        self.dim
    }

    fn extract(&self, ctx: &mut StageContext, images: &ImageSet, output: FeatureOutput) -> Result<Features> {
        if output == FeatureOutput::Head {
            return Err(Error::stage("features", "test-projection has no projection head; its one output is `pooled`"));
        }
        let x = Tensor::<2>::from_data(TensorData::new(pixels(images), [images.len(), self.input]), &ctx.device);
        let w = Tensor::<2>::from_data(TensorData::new(self.matrix.clone(), [self.input, self.dim]), &ctx.device);
        let values =
            x.matmul(w).into_data().try_to_vec::<f32>().map_err(|e| Error::stage("features", format!("{e:?}")))?;
        Ok(Features::new(images.len(), self.dim, values))
    }

    fn save(&self, dir: &Path) -> Result<()> {
        npy::write_f32(&dir.join("projection.npy"), &[self.input, self.dim], &self.matrix)
    }
}

submit_plugin!(pretrain, TestProjection);

// ---- propagate: cosine similarity to the seed centroid of each class ----

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NoParams {}

impl PluginParams for NoParams {
    fn help() -> &'static [(&'static str, &'static str)] {
        &[]
    }
}

pub struct TestNearestCentroid;

impl PluginInfo for TestNearestCentroid {
    const NAME: &'static str = "test-nearest-centroid";
    const SUMMARY: &'static str = "test only: label by the nearest seed centroid";
    type Params = NoParams;
    fn from_params(_: NoParams) -> Result<Self, ParamError> {
        Ok(TestNearestCentroid)
    }
}

fn centroids(rows: impl Iterator<Item = (Vec<f32>, u32)>, dim: usize, classes: usize) -> Vec<f32> {
    let mut sums = vec![0.0f32; dim * classes];
    let mut counts = vec![0usize; classes];
    for (row, c) in rows {
        counts[c as usize] += 1;
        for (s, v) in sums[c as usize * dim..][..dim].iter_mut().zip(row) {
            *s += v;
        }
    }
    for (c, &n) in counts.iter().enumerate() {
        sums[c * dim..][..dim].iter_mut().for_each(|s| *s /= n.max(1) as f32);
    }
    sums
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb).max(1e-12)
}

impl Propagator for TestNearestCentroid {
    fn propagate(
        &mut self,
        _ctx: &mut StageContext,
        f: &Features,
        seeds: &LabeledSet,
        classes: usize,
    ) -> Result<Propagation> {
        let c =
            centroids(seeds.indices.iter().zip(&seeds.labels).map(|(&i, &l)| (f.row(i).to_vec(), l)), f.dim, classes);
        let scores = (0..f.rows)
            .flat_map(|i| (0..classes).map(move |k| (i, k)))
            .map(|(i, k)| cosine(f.row(i), &c[k * f.dim..][..f.dim]))
            .collect();
        Ok(Propagation::from_scores(classes, scores))
    }
}

submit_plugin!(propagate, TestNearestCentroid);

// ---- select: the seeds, then the highest-scoring samples of each propagated class ----

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TopScoreParams {
    pub per_class: usize,
}

impl Default for TopScoreParams {
    fn default() -> Self {
        TopScoreParams { per_class: 10 }
    }
}

impl PluginParams for TopScoreParams {
    fn help() -> &'static [(&'static str, &'static str)] {
        &[("per_class", "samples kept per propagated class")]
    }
}

pub struct TestTopScore {
    per_class: usize,
}

impl PluginInfo for TestTopScore {
    const NAME: &'static str = "test-top-score";
    const SUMMARY: &'static str = "test only: keep the highest-scoring samples per class";
    type Params = TopScoreParams;
    fn from_params(p: TopScoreParams) -> Result<Self, ParamError> {
        Ok(TestTopScore { per_class: p.per_class })
    }
}

impl Selector for TestTopScore {
    fn select(&mut self, _: &mut StageContext, input: SelectorInput<'_>) -> Result<LabeledSet> {
        let SelectorInput { data, propagation: p, seeds, .. } = input;
        let mut out = LabeledSet::default();
        for class in 0..data.num_classes as u32 {
            let mut taken: Vec<usize> =
                seeds.indices.iter().zip(&seeds.labels).filter(|(_, l)| **l == class).map(|(i, _)| *i).collect();
            let mut rest: Vec<usize> = (0..p.len()).filter(|&i| p.labels[i] == class && !taken.contains(&i)).collect();
            rest.sort_by(|&a, &b| p.scores_of(b)[class as usize].total_cmp(&p.scores_of(a)[class as usize]));
            taken.extend(rest.into_iter().take(self.per_class.saturating_sub(taken.len())));
            out.labels.extend(std::iter::repeat_n(class, taken.len()));
            out.indices.extend(taken);
        }
        Ok(out)
    }
}

submit_plugin!(select, TestTopScore);

// ---- train: nearest class centroid over pixels, refined over epochs on random halves, checkpointed ----

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CentroidParams {
    pub epochs: usize,
}

impl Default for CentroidParams {
    fn default() -> Self {
        CentroidParams { epochs: 3 }
    }
}

impl PluginParams for CentroidParams {
    fn help() -> &'static [(&'static str, &'static str)] {
        &[("epochs", "refinement epochs, one checkpoint each")]
    }
}

pub struct TestCentroid {
    epochs: usize,
}

impl PluginInfo for TestCentroid {
    const NAME: &'static str = "test-centroid";
    const SUMMARY: &'static str = "test only: a nearest-centroid classifier on pixels";
    type Params = CentroidParams;
    fn from_params(p: CentroidParams) -> Result<Self, ParamError> {
        Ok(TestCentroid { epochs: p.epochs })
    }
}

#[derive(Serialize, Deserialize)]
struct CentroidState {
    epoch: usize,
    history: Vec<f64>,
}

impl SemiSupervisedLearner for TestCentroid {
    fn train(&mut self, ctx: &mut StageContext, input: LearnerInput<'_, '_>) -> Result<Classifier> {
        let LearnerInput { data, labeled, .. } = input;
        let dim = data.train.image_len();
        let classes = data.num_classes;
        let train = pixels(&data.train);
        let (mut state, mut model) = match ctx.restore_checkpoint::<CentroidState>()? {
            Some((state, dir)) => (state, npy::read_f32(&dir.join("centroids.npy"))?.1),
            None => (CentroidState { epoch: 0, history: vec![] }, vec![0.0; dim * classes]),
        };
        let test = pixels(&data.test);
        let truth = data.test.labels.as_ref().expect("Fashion-MNIST has test labels");
        let bar = ctx.progress(self.epochs as u64, "epochs");
        bar.set_position(state.epoch as u64);
        while state.epoch < self.epochs {
            let mut order: Vec<usize> = (0..labeled.len()).collect();
            order.shuffle(&mut ctx.rng);
            order.truncate(labeled.len().div_ceil(2));
            let rows = order.iter().map(|&j| (train[labeled.indices[j] * dim..][..dim].to_vec(), labeled.labels[j]));
            let fresh = centroids(rows, dim, classes);
            let w = 1.0 / (state.epoch + 1) as f32;
            model.iter_mut().zip(fresh).for_each(|(m, f)| *m = (1.0 - w) * *m + w * f);
            let correct = (0..data.test.len())
                .filter(|&i| {
                    let row = &test[i * dim..][..dim];
                    let best = (0..classes)
                        .max_by(|&a, &b| {
                            cosine(row, &model[a * dim..][..dim]).total_cmp(&cosine(row, &model[b * dim..][..dim]))
                        })
                        .unwrap();
                    best as u32 == truth[i]
                })
                .count();
            let accuracy = correct as f64 / data.test.len() as f64;
            state.epoch += 1;
            state.history.push(accuracy);
            ctx.log(serde_json::json!({ "epoch": state.epoch, "test_accuracy": accuracy, "loss": 1.0 - accuracy }))?;
            let m = model.clone();
            ctx.save_checkpoint(&state, |dir| npy::write_f32(&dir.join("centroids.npy"), &[classes, dim], &m))?;
            bar.inc(1);
        }
        bar.finish_and_clear();
        npy::write_f32(&ctx.dir().join("centroids.npy"), &[classes, dim], &model)?;
        Ok(Classifier { test_accuracy: Some(TestAccuracy::from_history(&state.history)) })
    }
}

submit_plugin!(train, TestCentroid);
