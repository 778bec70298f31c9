//! The `small-loss` selector on real Fashion-MNIST (a 600-image prefix, pixel features, `nearest-seed` labels):
//! the subset it writes honours the contract and beats a random subset of the same propagated classes, and a run
//! killed mid-selection resumes to the same subset.

use std::collections::HashSet;
use std::path::Path;

use relab_core::artifact::npy;
use relab_core::component::StageKind;
use relab_core::experiment;
use relab_core::pipeline::{self, RunOptions, RunOutcome};
use relab_core::registry::Registry;
use serde_json::{Map, Value, json};

// Link the binary's plugins into this test.
use relab as _;

const EXPERIMENT: &str = "\
name: small-loss-tiny
seed: 1
dataset: { name: fashion-mnist, labels_per_class: 4, train_limit: 600, test_limit: 100 }
stages:
  features: { source: pixels }
  propagate: { plugin: nearest-seed, metric: cosine }
  select: { plugin: small-loss, backbone: wrn10_2, epochs: 4, track_epochs: 2, batch_size: 16, per_class: 10 }
";

fn run(out: &Path, overrides: &[&str], resume: bool, stop: Option<u64>) -> relab_core::Result<RunOutcome> {
    assert!(
        Path::new("/usr/share/datasets/fashion-mnist").is_dir() || std::env::var_os("RELAB_DATA").is_some(),
        "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"
    );
    let registry = Registry::with_static().unwrap();
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    let runs = experiment::load_str(EXPERIMENT, Path::new("small-loss.yaml"), &overrides, &registry).unwrap();
    let opts = RunOptions { out: out.to_path_buf(), resume, cache: None, stop_after_checkpoints: stop };
    pipeline::run(&runs[0], &registry, &opts)
}

fn indices(path: &Path) -> Vec<usize> {
    npy::read_i64(path).unwrap().1.into_iter().map(|i| i as usize).collect()
}

fn truth(n: usize) -> Vec<u32> {
    let registry = Registry::with_static().unwrap();
    let runs = experiment::load_str(EXPERIMENT, Path::new("small-loss.yaml"), &[], &registry).unwrap();
    let labels = relab_core::data::load(&runs[0].experiment.dataset).unwrap().train.labels.unwrap();
    assert_eq!(labels.len(), n);
    labels
}

fn without_seconds(mut summary: Map<String, Value>) -> Map<String, Value> {
    summary.remove("seconds");
    summary
}

#[test]
#[ignore = "about 3 minutes on 2 cores; CI runs it with `cargo test --workspace -- --ignored`"]
fn selects_per_class_seeds_first_and_beats_a_random_subset_of_the_same_classes() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let outcome = run(&out, &[], false, None).unwrap();
    let truth = truth(600);
    let propagated = indices(&out.join("propagate/labels.npy"));
    let seeds = indices(&out.join("seeds.npy"));
    let subset = indices(&out.join("select/subset.npy"));
    let labels = indices(&out.join("select/subset_labels.npy"));
    assert!(out.join("select/subset_relab.npz").is_file());

    // The contract: 10 per class, class-major, each class led by its seeds, no index twice, seeds with their true
    // label and every other sample with its propagated one.
    let expected: Vec<usize> = (0..10).flat_map(|c| [c; 10]).collect();
    assert_eq!(labels, expected);
    assert_eq!(subset.iter().collect::<HashSet<_>>().len(), 100);
    let carried = |i: usize| if seeds.contains(&i) { truth[i] as usize } else { propagated[i] };
    assert!(subset.iter().zip(&labels).all(|(&i, &l)| carried(i) == l));
    for c in 0..10 {
        let class_seeds: Vec<usize> = seeds.iter().copied().filter(|&s| truth[s] as usize == c).collect();
        assert_eq!(subset[c * 10..c * 10 + class_seeds.len()], class_seeds, "class {c} starts with its seeds");
    }
    assert_eq!(outcome.summary["subset_size"], 100);
    assert_eq!(outcome.summary["selection_pool"], 600);
    assert_eq!(outcome.summary["subset_short_classes"], json!([]));
    assert_eq!(outcome.summary["subset_precision_per_class"].as_array().unwrap().len(), 10);

    // A random subset with the same number of samples per class (seeds first) has this expected precision: each
    // seed is right, and each other slot of class c is right with the frequency of truth among c's candidates.
    let others: Vec<usize> = (0..600).filter(|i| !seeds.contains(i)).collect();
    let mut expected_correct = 0.0;
    for c in 0..10 {
        let candidates: Vec<usize> = others.iter().copied().filter(|&i| propagated[i] == c).collect();
        let right = candidates.iter().filter(|&&i| truth[i] as usize == c).count() as f64 / candidates.len() as f64;
        let class_seeds = seeds.iter().filter(|&&s| truth[s] as usize == c).count();
        expected_correct += class_seeds as f64 + (10 - class_seeds) as f64 * right;
    }
    let random = expected_correct / 100.0;
    let precision = outcome.summary["subset_precision"].as_f64().unwrap();
    let correct = subset.iter().zip(&labels).filter(|&(&i, &l)| truth[i] as usize == l).count();
    assert_eq!(precision, correct as f64 / 100.0);
    assert!(precision > random, "small-loss precision {precision} vs a random subset's {random}");

    // The premise of the method on the whole pool: correctly propagated samples have the smaller mean loss.
    let pool = indices(&out.join("select/pool.npy"));
    let (_, mean) = npy::read_f32(&out.join("select/mean_loss.npy")).unwrap();
    let average = |right: bool| {
        let losses: Vec<f64> = pool
            .iter()
            .zip(&mean)
            .filter(|&(&i, _)| (carried(i) == truth[i] as usize) == right)
            .map(|(_, &l)| l as f64)
            .collect();
        losses.iter().sum::<f64>() / losses.len() as f64
    };
    assert!(average(true) < 0.85 * average(false), "right {} vs wrong {}", average(true), average(false));
}

#[test]
#[ignore = "about 3 minutes on 2 cores; CI runs it with `cargo test --workspace -- --ignored`"]
fn a_killed_selection_resumes_to_the_same_subset() {
    // Smaller and shorter: epochs 2 and 3 are tracked, and the kill comes after epoch 2, so the checkpoint holds
    // one tracked epoch of losses.
    let quick = ["dataset.train_limit=300", "stages.select.epochs=3", "stages.select.batch_size=32"];
    let tmp = tempfile::tempdir().unwrap();
    let whole = run(&tmp.path().join("whole"), &quick, false, None).unwrap();

    let cut = tmp.path().join("cut");
    let err = run(&cut, &quick, false, Some(2)).unwrap_err().to_string();
    assert!(err.contains("stopped after 2 checkpoints"), "{err}");
    let (shape, _) = npy::read_f32(&cut.join("select/checkpoint/tracked_losses.npy")).unwrap();
    assert_eq!(shape, vec![1, 300]);
    let resumed = run(&cut, &quick, true, None).unwrap();
    assert_eq!(resumed.reused, vec![StageKind::Features, StageKind::Propagate]);
    for file in ["select/subset.npy", "select/subset_labels.npy", "select/mean_loss.npy"] {
        let read = |dir: &Path| std::fs::read(dir.join(file)).unwrap();
        assert_eq!(read(&cut), read(&tmp.path().join("whole")), "{file} differs after resuming");
    }
    assert_eq!(without_seconds(resumed.summary), without_seconds(whole.summary));
}
