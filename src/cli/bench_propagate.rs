//! `relab bench propagate`: a propagator plugin alone on `.npy` files, built through the registry as a run builds it
//! (the diffusion propagator unless `--propagator` names another), timed per phase, printed as one JSON line in the
//! shape of `shared/bench/labelprop_reference.py` (faiss + scipy + scikit-learn), so the two can be run back to back
//! on the same files and compared.
//!
//! The options below are the propagator's parameters of the same names. The phase times are those the propagator
//! logs as `phase_seconds` (an object of seconds per phase); one that logs none gets its wall time as `total`.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail, ensure};
use clap::Args;
use relab_core::artifact::{Features, LabeledSet, npy};
use relab_core::burn::tensor::Device;
use relab_core::component::{MetricsSink, StageContext, StageKind};
use relab_core::registry::{Factory, Registry, Slot};
use serde_json::{Map, Value, json};

#[derive(Debug, Args)]
pub struct PropagateArgs {
    /// The propagator plugin to run (any compiled-in one that takes the parameters below).
    #[arg(long, default_value = "diffusion")]
    propagator: String,
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
    // The options as the propagator's parameters, in the spelling its YAML takes.
    let params: serde_yaml::Value = serde_yaml::to_value(json!({
        "k": args.k,
        "gamma": args.gamma,
        "alpha": args.alpha,
        "iterations": args.iterations,
        "tolerance": args.tolerance,
        "weights": match args.weights {
            WeightsArg::Cosine => "cosine",
            WeightsArg::L2 => "l2",
        },
        "whiten": !args.no_whiten,
        "balance": match args.balance {
            BalanceArg::None => "none",
            BalanceArg::ClassMass => "class_mass",
            BalanceArg::Sinkhorn => "sinkhorn",
        },
    }))?;
    let registry = Registry::with_static()?;
    let entry = registry.get(Slot::Propagate, &args.propagator)?;
    let Factory::Propagate(build) = entry.factory else { unreachable!("slot checked by get") };
    let mut propagator = build(&params).map_err(|e| anyhow::anyhow!("{}: {e}", args.propagator))?;
    let (p, s) = run_in_scratch(|ctx| propagator.propagate(ctx, &features, &seeds, classes))?;
    let p = &p;
    let round = |v: f64| (v * 1000.0).round() / 1000.0;
    let mut result = json!({
        "n": features.rows, "d": features.dim, "classes": classes, "k": args.k, "seeds": seeds.len(),
        "accuracy": p.accuracy(&truth),
        "seconds": s.iter().map(|(phase, v)| (phase.clone(), json!(v.as_f64().map_or(f64::NAN, round)))).collect::<Map<_, _>>(),
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

/// Runs `propagate` with a propagate stage's context on the CPU backend in a scratch folder (removed afterwards);
/// returns its result and the seconds per phase it logged as `phase_seconds` (else its wall time as `total`).
fn run_in_scratch<T>(
    propagate: impl FnOnce(&mut StageContext) -> relab_core::Result<T>,
) -> anyhow::Result<(T, Map<String, Value>)> {
    let dir = std::env::temp_dir().join(format!("relab-bench-propagate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let result = (|| {
        let metrics = MetricsSink::open(&dir.join("metrics.jsonl"))?;
        let mut ctx = StageContext::new(StageKind::Propagate, Device::flex(), "cpu", 0, dir.clone(), metrics, false);
        let start = std::time::Instant::now();
        let value = propagate(&mut ctx)?;
        let wall = start.elapsed().as_secs_f64();
        drop(ctx);
        let logged = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap_or_default();
        let phases = logged
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter_map(|record| record.get("phase_seconds").and_then(Value::as_object).cloned())
            .next_back()
            .unwrap_or_else(|| Map::from_iter([("total".to_string(), json!(wall))]));
        anyhow::Ok((value, phases))
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
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
