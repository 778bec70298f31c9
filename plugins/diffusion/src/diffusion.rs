//! The `diffusion` propagator (`docs/method.md` §3): label propagation by diffusion over the kNN graph of the
//! whitened features, after Iscen et al., with the released ReLaB code's defaults.

use std::time::Instant;

use relab_core::Result;
use relab_core::artifact::{Features, LabeledSet, Propagation};
use relab_core::burn::tensor::Device;
use relab_core::component::{Propagator, StageContext};
use relab_core::linalg::{
    Neighbours, Pca, device_knn_blocks, knn_tiles, l2_normalise_rows, nearest_neighbours, nearest_neighbours_on_device,
};
use relab_core::progress::ProgressBar;
use relab_core::registry::{ParamError, PluginInfo};
use serde::Serialize;
use serde_json::json;

use crate::class_mass::normalise_class_mass;
use crate::params::{Balance, DiffusionParams, KnnOn};
use crate::sinkhorn::balance_sinkhorn;
use crate::{cg, graph};

/// Wall-clock seconds of each phase, named as `shared/bench/labelprop_reference.py` prints them.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct PhaseSeconds {
    pub normalise_whiten: f64,
    pub knn: f64,
    pub graph: f64,
    pub cg: f64,
}

impl PhaseSeconds {
    pub fn total(&self) -> f64 {
        self.normalise_whiten + self.knn + self.graph + self.cg
    }
}

/// A propagation with what it took to make it.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub propagation: Propagation,
    pub seconds: PhaseSeconds,
    /// Non-zeros of the symmetrised graph.
    pub edges: usize,
    /// CG iterations and final relative residual per class.
    pub iterations: Vec<usize>,
    pub relative_residuals: Vec<f64>,
    /// Classes with no seed: they score 0 everywhere and receive no sample.
    pub classes_without_seeds: Vec<usize>,
    /// Samples no seed's diffusion reached (all scores 0).
    pub unreached: usize,
    /// Whether the kNN search ran on the device (else on the CPU cores).
    pub knn_on_device: bool,
}

#[derive(Debug, Clone)]
pub struct Diffusion {
    params: DiffusionParams,
}

impl PluginInfo for Diffusion {
    const NAME: &'static str = "diffusion";
    const SUMMARY: &'static str = "label propagation by diffusion over the kNN graph of the (whitened) features";
    type Params = DiffusionParams;

    fn from_params(params: DiffusionParams) -> Result<Self, ParamError> {
        params.check()?;
        Ok(Diffusion { params })
    }
}

relab_core::submit_plugin!(propagate, Diffusion);

impl Propagator for Diffusion {
    fn propagate(
        &mut self,
        ctx: &mut StageContext,
        features: &Features,
        seeds: &LabeledSet,
        num_classes: usize,
    ) -> Result<Propagation> {
        let device = ctx.device.clone();
        let outcome = self.run_on(features, seeds, num_classes, &device, &|len, what| ctx.progress(len, what))?;
        let s = outcome.seconds;
        ctx.log(json!({
            "phase_seconds": { "normalise_whiten": s.normalise_whiten, "knn": s.knn, "graph": s.graph, "cg": s.cg,
                               "total": s.total() },
            "knn_on": if outcome.knn_on_device { "device" } else { "cpu" },
            "graph_edges": outcome.edges,
            "cg_iterations": outcome.iterations,
            "cg_relative_residuals": outcome.relative_residuals,
            "classes_without_seeds": outcome.classes_without_seeds,
            "unreached": outcome.unreached,
        }))?;
        Ok(outcome.propagation)
    }
}

impl Diffusion {
    pub fn new(params: DiffusionParams) -> Result<Self, ParamError> {
        <Self as PluginInfo>::from_params(params)
    }

    pub fn params(&self) -> &DiffusionParams {
        &self.params
    }

    /// [`Diffusion::run_on`] with the CPU backend as the stage's device: under `knn: auto` the kNN search runs on
    /// the CPU cores, as before the device search existed.
    pub fn run(
        &self,
        features: &Features,
        seeds: &LabeledSet,
        num_classes: usize,
        bar: &dyn Fn(u64, &str) -> ProgressBar,
    ) -> Result<Outcome> {
        self.run_on(features, seeds, num_classes, &Device::flex(), bar)
    }

    /// Propagates the seeds' labels over `features`; `device` is the stage's, where `knn: auto|device` searches
    /// the neighbours (the other phases run on the CPU cores). `bar(len, what)` makes the progress bar of each
    /// phase.
    pub fn run_on(
        &self,
        features: &Features,
        seeds: &LabeledSet,
        num_classes: usize,
        device: &Device,
        bar: &dyn Fn(u64, &str) -> ProgressBar,
    ) -> Result<Outcome> {
        let p = &self.params;
        let (n, dim) = (features.rows, features.dim);
        let err = |m: String| relab_core::Error::stage("propagate", format!("diffusion: {m}"));
        if p.k >= n {
            return Err(err(format!("k = {} neighbours needs more than {} samples; lower `k`", p.k, n)));
        }
        features.check().map_err(err)?;
        if let Some((&i, &l)) =
            seeds.indices.iter().zip(&seeds.labels).find(|&(&i, &l)| i >= n || l as usize >= num_classes)
        {
            return Err(err(format!("seed {i} (label {l}) outside the {n} samples × {num_classes} classes")));
        }
        let mut seconds = PhaseSeconds::default();

        let start = Instant::now();
        let mut x = features.values.clone();
        l2_normalise_rows(&mut x, dim);
        if p.whiten {
            let pca = Pca::fit(&x, n, dim, dim).map_err(|e| err(format!("whitening: {e}")))?;
            x = pca.whiten(&x, n);
        }
        l2_normalise_rows(&mut x, dim);
        seconds.normalise_whiten = start.elapsed().as_secs_f64();
        tracing::info!(
            "diffusion: normalised{} {n} × {dim} features in {:.2}s",
            if p.whiten { ", whitened" } else { "" },
            seconds.normalise_whiten
        );

        let start = Instant::now();
        let on_device = match p.knn {
            KnnOn::Auto => *device != Device::flex(),
            KnnOn::Cpu => false,
            KnnOn::Device => true,
        };
        let nn = search(&x, n, dim, p.k, on_device.then_some(device), bar).map_err(err)?;
        seconds.knn = start.elapsed().as_secs_f64();
        tracing::info!(
            "diffusion: exact {}-NN of {n} samples on the {} in {:.2}s",
            p.k,
            if on_device { "device" } else { "CPU" },
            seconds.knn
        );

        let start = Instant::now();
        let squared_norms: Vec<f32> = x.chunks(dim).map(|r| r.iter().map(|v| v * v).sum()).collect();
        let g = graph::build(&nn, &squared_norms, p.weights, p.gamma);
        drop(nn);
        seconds.graph = start.elapsed().as_secs_f64();
        tracing::info!("diffusion: graph of {} edges in {:.2}s", g.normalised.nnz(), seconds.graph);
        if g.isolated > 0 {
            tracing::warn!("diffusion: {} samples have no edge of positive weight; no label reaches them", g.isolated);
        }

        let start = Instant::now();
        let (rhs, classes_without_seeds) = right_hand_sides(seeds, n, num_classes);
        for &c in &classes_without_seeds {
            tracing::warn!("diffusion: class {c} has no seed; it scores 0 everywhere and receives no sample");
        }
        let cg_bar = bar(p.iterations as u64, "CG");
        let solution =
            cg::solve(&g.normalised, p.alpha, &rhs, num_classes, p.iterations, p.tolerance, &|| cg_bar.inc(1));
        cg_bar.finish_and_clear();
        seconds.cg = start.elapsed().as_secs_f64();
        tracing::info!(
            "diffusion: CG for {num_classes} classes, {} iterations at most, in {:.2}s",
            solution.iterations.iter().max().unwrap_or(&0),
            seconds.cg
        );

        let (propagation, unreached) =
            scores_and_labels(solution.x, num_classes, &classes_without_seeds, p.balance, p.sinkhorn_power);
        if unreached > 0 {
            tracing::warn!("diffusion: {unreached} samples were reached by no seed; they take the first seeded class");
        }
        Ok(Outcome {
            propagation,
            seconds,
            edges: g.normalised.nnz(),
            iterations: solution.iterations,
            relative_residuals: solution.relative_residuals,
            classes_without_seeds,
            unreached,
            knn_on_device: on_device,
        })
    }
}

/// The exact kNN of the rows of `x`, on `device` when given, else on the CPU cores, with its progress bar.
fn search(
    x: &[f32],
    n: usize,
    dim: usize,
    k: usize,
    device: Option<&Device>,
    bar: &dyn Fn(u64, &str) -> ProgressBar,
) -> std::result::Result<Neighbours, String> {
    let Some(device) = device else {
        let knn_bar = bar(knn_tiles(n), "kNN tiles");
        let nn = nearest_neighbours(x, n, dim, k, &|tiles| knn_bar.inc(tiles));
        knn_bar.finish_and_clear();
        return Ok(nn);
    };
    let knn_bar = bar(device_knn_blocks(n), "kNN blocks on the device");
    let nn = nearest_neighbours_on_device(x, n, dim, k, device, &|blocks| knn_bar.inc(blocks));
    knn_bar.finish_and_clear();
    nn.map_err(|e| e.to_string())
}

/// `y_c[i] = 1 / |seeds of c|` on the seeds of class c, 0 elsewhere, as an `n × C` row-major block; and the
/// classes without a seed.
pub fn right_hand_sides(seeds: &LabeledSet, n: usize, num_classes: usize) -> (Vec<f64>, Vec<usize>) {
    let mut counts = vec![0usize; num_classes];
    for &l in &seeds.labels {
        counts[l as usize] += 1;
    }
    let mut y = vec![0.0f64; n * num_classes];
    for (&i, &l) in seeds.indices.iter().zip(&seeds.labels) {
        y[i * num_classes + l as usize] = 1.0 / counts[l as usize] as f64;
    }
    let without = (0..num_classes).filter(|&c| counts[c] == 0).collect();
    (y, without)
}

/// Scores: the solution clamped at 0 and each row scaled to unit L2 norm (the original's `F.normalize`), then
/// balanced as `balance` says. Labels: the argmax (ties to the lower class); a row of zeros, which no seed reached,
/// takes the first class that has a seed, so a class without seeds never receives a sample. Returns the count of
/// such rows too.
pub fn scores_and_labels(
    z: Vec<f64>,
    num_classes: usize,
    classes_without_seeds: &[usize],
    balance: Balance,
    sinkhorn_power: f64,
) -> (Propagation, usize) {
    let fallback = (0..num_classes).find(|c| !classes_without_seeds.contains(c)).unwrap_or(0) as u32;
    let mut scores = Vec::with_capacity(z.len());
    for row in z.chunks(num_classes) {
        let norm = row.iter().map(|&v| v.max(0.0).powi(2)).sum::<f64>().sqrt().max(1e-12);
        scores.extend(row.iter().map(|&v| (v.max(0.0) / norm) as f32));
    }
    match balance {
        Balance::None => {}
        Balance::ClassMass => normalise_class_mass(&mut scores, num_classes),
        Balance::Sinkhorn => balance_sinkhorn(&mut scores, num_classes, sinkhorn_power),
    }
    let mut labels = Vec::with_capacity(z.len() / num_classes);
    let mut unreached = 0;
    for row_scores in scores.chunks(num_classes) {
        let label = if row_scores.iter().all(|&v| v == 0.0) {
            unreached += 1;
            fallback
        } else {
            // First maximum: ties go to the lower class, as numpy's argmax.
            (0..num_classes).fold(0, |best, c| if row_scores[c] > row_scores[best] { c } else { best }) as u32
        };
        labels.push(label);
    }
    (Propagation { num_classes, scores, labels }, unreached)
}

#[cfg(test)]
// The reference computations index like the textbook formulas they check.
#[allow(clippy::needless_range_loop)]
mod tests {
    use super::*;
    use crate::Weights;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn no_bar(_: u64, _: &str) -> ProgressBar {
        ProgressBar::hidden()
    }

    /// `per` points around each of `centres` (Gaussian noise of scale `spread`), in `dim` dimensions.
    fn clusters(centres: &[Vec<f32>], per: usize, spread: f32, seed: u64) -> (Features, Vec<u32>) {
        let dim = centres[0].len();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut values = Vec::new();
        let mut truth = Vec::new();
        for i in 0..per * centres.len() {
            let c = i % centres.len();
            for d in 0..dim {
                // Sum of uniforms: near-Gaussian and enough here.
                let noise: f32 = (0..4).map(|_| rng.random_range(-1.0f32..1.0)).sum::<f32>() * 0.5;
                values.push(centres[c][d] + spread * noise);
            }
            truth.push(c as u32);
        }
        (Features::new(per * centres.len(), dim, values), truth)
    }

    fn params(k: usize) -> DiffusionParams {
        DiffusionParams { k, ..DiffusionParams::default() }
    }

    #[test]
    fn two_separated_clusters_with_one_seed_each_propagate_perfectly() {
        let centres = vec![vec![5.0, 1.0, 0.0, 0.0], vec![-1.0, 0.0, 5.0, 1.0]];
        let (f, truth) = clusters(&centres, 60, 0.3, 1);
        // Sample 0 is of class 0, sample 1 of class 1.
        let seeds = LabeledSet::new(vec![0, 1], vec![0, 1]);
        // The L2 weights favour the farthest neighbours (the released code's quirk): they separate the clusters
        // only while no kNN edge crosses between them, which whitening (it stretches the within-cluster
        // directions) does not guarantee here.
        for (weights, whiten) in [(Weights::Cosine, true), (Weights::Cosine, false), (Weights::L2, false)] {
            let d = Diffusion::new(DiffusionParams { weights, whiten, ..params(10) }).unwrap();
            let out = d.run(&f, &seeds, 2, &no_bar).unwrap();
            assert_eq!(out.propagation.labels, truth, "{weights:?}, whiten {whiten}");
            assert_eq!(out.unreached, 0);
            assert!(out.classes_without_seeds.is_empty());
            // Scores are clamped and L2-normalised per row.
            for i in 0..f.rows {
                let row = out.propagation.scores_of(i);
                let norm: f32 = row.iter().map(|v| v * v).sum::<f32>().sqrt();
                assert!(row.iter().all(|&v| v >= 0.0) && (norm - 1.0).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn a_class_without_seeds_receives_no_sample() {
        let centres = vec![vec![5.0, 0.0, 0.0], vec![0.0, 5.0, 0.0], vec![0.0, 0.0, 5.0]];
        let (f, _) = clusters(&centres, 30, 0.5, 2);
        // Seeds for classes 0 and 2 only (samples 0 and 2 lie in clusters 0 and 2).
        let seeds = LabeledSet::new(vec![0, 2], vec![0, 2]);
        let out = Diffusion::new(params(8)).unwrap().run(&f, &seeds, 3, &no_bar).unwrap();
        assert_eq!(out.classes_without_seeds, vec![1]);
        assert!(!out.propagation.labels.contains(&1));
        assert!((0..f.rows).all(|i| out.propagation.scores_of(i)[1] == 0.0));
        assert_eq!(out.iterations[1], 0);
    }

    #[test]
    fn unreached_samples_take_the_first_seeded_class() {
        // Row 1 is all zeros (no seed reached it); class 0 has no seed, so the fallback is class 1.
        let z = vec![0.0, 0.2, 0.5, 0.0, 0.0, 0.0, 0.0, -0.3, 0.0];
        let (p, unreached) = scores_and_labels(z, 3, &[0], Balance::None, 2.0);
        assert_eq!(unreached, 2, "a row with only negative entries is unreached too");
        assert_eq!(p.labels, vec![2, 1, 1]);
        let s = 0.2 / (0.04f64 + 0.25).sqrt();
        assert!((p.scores[1] as f64 - s).abs() < 1e-6 && p.scores[7] == 0.0);
    }

    #[test]
    fn each_balance_takes_the_argmax_of_its_balanced_scores() {
        // Two overlapping clusters of 90 and 30 points, one seed each: the plain diffusion gives class 1 most of
        // the points; both balances, which assume equal classes, move the counts towards 60 each. Their scores are
        // exactly the balancing of the plain ones. Here both end at 65: equal masses do not make equal counts.
        let (a, b) = (vec![1.0, 0.0, 0.0], vec![0.0, 1.0, 0.0]);
        let (f, _) = clusters(&[a.clone(), a.clone(), a, b], 30, 1.5, 7);
        let seeds = LabeledSet::new(vec![0, 3], vec![0, 1]);
        let run = |balance| {
            Diffusion::new(DiffusionParams { balance, ..params(8) }).unwrap().run(&f, &seeds, 2, &no_bar).unwrap()
        };
        let plain = run(Balance::None);
        let class_mass: fn(&mut [f32]) = |s| normalise_class_mass(s, 2);
        let sinkhorn: fn(&mut [f32]) = |s| balance_sinkhorn(s, 2, 2.0);
        for (balance, apply) in [(Balance::ClassMass, class_mass), (Balance::Sinkhorn, sinkhorn)] {
            let balanced = run(balance);
            let mut expected = plain.propagation.scores.clone();
            apply(&mut expected);
            assert_eq!(balanced.propagation.scores, expected, "{balance:?}");
            let relabelled = Propagation::from_scores(2, expected).labels;
            assert_eq!(balanced.propagation.labels, relabelled, "{balance:?}");
            let class_1 = |o: &Outcome| o.propagation.labels.iter().filter(|&&l| l == 1).count();
            assert_eq!((class_1(&plain), class_1(&balanced)), (105, 65), "{balance:?}");
        }
    }

    #[test]
    fn right_hand_sides_weigh_seeds_by_their_class_size() {
        let seeds = LabeledSet::new(vec![0, 3, 4], vec![1, 1, 0]);
        let (y, without) = right_hand_sides(&seeds, 5, 3);
        assert_eq!(y, vec![0.0, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.5, 0.0, 1.0, 0.0, 0.0]);
        assert_eq!(without, vec![2]);
    }

    #[test]
    fn the_same_input_gives_the_same_numbers() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let f = Features::new(300, 6, (0..1800).map(|_| rng.random_range(-1.0f32..1.0)).collect());
        let seeds = LabeledSet::new(vec![0, 1, 2, 3], vec![0, 1, 2, 0]);
        let d = Diffusion::new(params(12)).unwrap();
        let a = d.run(&f, &seeds, 3, &no_bar).unwrap();
        let b = d.run(&f, &seeds, 3, &no_bar).unwrap();
        assert_eq!(a.propagation, b.propagation);
    }

    #[test]
    fn knn_on_the_device_gives_the_labels_of_knn_on_the_cpu() {
        let centres =
            vec![vec![3.0, 1.0, 0.0, 0.0, 1.0], vec![-1.0, 0.0, 3.0, 1.0, 0.0], vec![0.0, -2.0, 0.0, 2.0, 1.0]];
        let (f, _) = clusters(&centres, 80, 1.0, 4);
        let seeds = LabeledSet::new(vec![0, 1, 2, 3, 4, 5], vec![0, 1, 2, 0, 1, 2]);
        let on =
            |knn| Diffusion::new(DiffusionParams { knn, ..params(10) }).unwrap().run(&f, &seeds, 3, &no_bar).unwrap();
        let (cpu, device, auto) = (on(KnnOn::Cpu), on(KnnOn::Device), on(KnnOn::Auto));
        assert!(device.knn_on_device && !cpu.knn_on_device);
        assert!(!auto.knn_on_device, "auto on the CPU backend searches on the CPU cores");
        assert_eq!(device.propagation.labels, cpu.propagation.labels);
        assert_eq!(device.edges, cpu.edges);
        for (d, c) in device.propagation.scores.iter().zip(&cpu.propagation.scores) {
            assert!((d - c).abs() < 1e-4, "score {d} with the device kNN, {c} with the CPU kNN");
        }
        assert_eq!(auto.propagation, cpu.propagation);
    }

    #[test]
    fn run_time_errors_name_the_problem() {
        let f = Features::new(3, 1, vec![1.0, 2.0, 3.0]);
        let seeds = LabeledSet::new(vec![0], vec![0]);
        let e = Diffusion::new(params(3)).unwrap().run(&f, &seeds, 1, &no_bar).unwrap_err().to_string();
        assert!(e.contains("k = 3") && e.contains("lower `k`"), "{e}");
        let bad_seed = LabeledSet::new(vec![0], vec![4]);
        let e = Diffusion::new(params(1)).unwrap().run(&f, &bad_seed, 2, &no_bar).unwrap_err().to_string();
        assert!(e.contains("label 4"), "{e}");
        let nan = Features::new(3, 1, vec![1.0, f32::NAN, 3.0]);
        let e = Diffusion::new(params(1)).unwrap().run(&nan, &seeds, 1, &no_bar).unwrap_err().to_string();
        assert!(e.contains("row 1"), "{e}");
    }
}
