//! `relab bench propagate`: the diffusion propagator alone on `.npy` files, timed per phase, printed as one JSON
//! line in the shape of `shared/bench/labelprop_reference.py` (faiss + scipy + scikit-learn), so the two can be
//! run back to back on the same files and compared.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail, ensure};
use clap::Args;
use relab_core::artifact::{Features, LabeledSet, npy};
use relab_core::progress;
use relab_plugin_diffusion::{Balance, Diffusion, DiffusionParams, Weights};
use serde_json::json;

#[derive(Debug, Args)]
pub struct PropagateArgs {
    /// Features, f32 or f64, N × D.
    #[arg(long)]
    features: PathBuf,
    /// Ground-truth labels, integers, N: the seeds' labels come from here, and the accuracy is measured on it.
    #[arg(long)]
    labels: PathBuf,
    /// Indices of the seed samples, integers.
    #[arg(long)]
    seeds: PathBuf,
    #[arg(long, default_value_t = 200)]
    k: usize,
    #[arg(long, default_value_t = 3.0)]
    gamma: f64,
    #[arg(long, default_value_t = 0.99)]
    alpha: f64,
    /// Conjugate-gradient iterations at most (the reference's --maxiter).
    #[arg(long, visible_alias = "maxiter", default_value_t = 50)]
    iterations: usize,
    #[arg(long, default_value_t = 1e-6)]
    tolerance: f64,
    #[arg(long, value_enum, default_value = "cosine")]
    weights: WeightsArg,
    /// Balance the scores across classes before the argmax (class_mass: each class divided by its total; sinkhorn:
    /// scaled to equal class masses, Sinkhorn-Knopp on the squared scores).
    #[arg(long, value_enum, default_value = "none")]
    balance: BalanceArg,
    /// Skip the PCA whitening.
    #[arg(long)]
    no_whiten: bool,
    /// Propagated labels of another run (e.g. the reference's propagated.npy): prints the fraction of samples given
    /// the same label.
    #[arg(long)]
    compare: Option<PathBuf>,
    /// Folder to write propagated.npy (i64 labels) and scores.npy (f32 N × C) into, as the reference does.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum BalanceArg {
    None,
    ClassMass,
    Sinkhorn,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum WeightsArg {
    Cosine,
    L2,
}

pub fn propagate(args: PropagateArgs) -> anyhow::Result<()> {
    let features = Features::load(&args.features)?;
    let truth = read_labels(&args.labels, features.rows)?;
    let classes = truth.iter().max().map_or(0, |&m| m as usize + 1);
    let (_, seed_ids) = npy::read_i64(&args.seeds)?;
    let mut indices = Vec::with_capacity(seed_ids.len());
    for id in seed_ids {
        ensure!(
            id >= 0 && (id as usize) < features.rows,
            "{}: seed index {id} outside 0..{}",
            args.seeds.display(),
            features.rows
        );
        indices.push(id as usize);
    }
    let labels = indices.iter().map(|&i| truth[i]).collect();
    let seeds = LabeledSet::new(indices, labels);
    let params = DiffusionParams {
        k: args.k,
        gamma: args.gamma,
        alpha: args.alpha,
        iterations: args.iterations,
        tolerance: args.tolerance,
        weights: match args.weights {
            WeightsArg::Cosine => Weights::Cosine,
            WeightsArg::L2 => Weights::L2,
        },
        whiten: !args.no_whiten,
        balance: match args.balance {
            BalanceArg::None => Balance::None,
            BalanceArg::ClassMass => Balance::ClassMass,
            BalanceArg::Sinkhorn => Balance::Sinkhorn,
        },
        ..DiffusionParams::default()
    };
    let diffusion = Diffusion::new(params).map_err(|e| anyhow::anyhow!("{e}"))?;
    let outcome = diffusion.run(&features, &seeds, classes, &|len, what| progress::bar(len, what.to_string()))?;
    let p = &outcome.propagation;
    let s = outcome.seconds;
    let round = |v: f64| (v * 1000.0).round() / 1000.0;
    let mut result = json!({
        "n": features.rows, "d": features.dim, "classes": classes, "k": args.k, "seeds": seeds.len(),
        "accuracy": p.accuracy(&truth),
        "seconds": { "normalise_whiten": round(s.normalise_whiten), "knn": round(s.knn), "graph": round(s.graph),
                     "cg": round(s.cg), "total": round(s.total()) },
    });
    if let Some(reference) = &args.compare {
        let other = read_labels(reference, features.rows)?;
        let same = p.labels.iter().zip(&other).filter(|(a, b)| a == b).count();
        result["agreement"] = json!(same as f64 / features.rows as f64);
    }
    if let Some(out) = &args.out {
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        let labels: Vec<i64> = p.labels.iter().map(|&l| l as i64).collect();
        npy::write_i64(&out.join("propagated.npy"), &[labels.len()], &labels)?;
        npy::write_f32(&out.join("scores.npy"), &[p.len(), p.num_classes], &p.scores)?;
    }
    println!("{result}");
    Ok(())
}

fn read_labels(path: &Path, n: usize) -> anyhow::Result<Vec<u32>> {
    let (_, values) = npy::read_i64(path)?;
    if values.len() != n {
        bail!("{}: {} labels for {n} feature rows", path.display(), values.len());
    }
    values
        .into_iter()
        .map(|l| u32::try_from(l).with_context(|| format!("{}: label {l} is negative", path.display())))
        .collect()
}
