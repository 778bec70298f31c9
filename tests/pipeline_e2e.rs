//! The whole pipeline on real Fashion-MNIST (a 2,000-image prefix), with the test plugins of `common`.

mod common;

use std::fs;
use std::path::Path;

use common::{relab, require_fashion_mnist};
use relab_core::component::StageKind;
use relab_core::experiment;
use relab_core::pipeline::{self, RunOptions, StageCache};
use relab_core::registry::Registry;
use serde_json::Value;

const EXPERIMENT: &str = "\
name: e2e
seed: 3
dataset: { name: fashion-mnist, labels_per_class: 4, train_limit: 2000, test_limit: 500 }
stages:
  pretrain: { plugin: test-projection, dim: 48 }
  features: { source: encoder }
  propagate: { plugin: test-nearest-centroid }
  select: { plugin: test-top-score, per_class: 20 }
  train: { plugin: test-centroid, epochs: 3 }
";

fn write_experiment(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("e2e.yaml");
    fs::write(&path, EXPERIMENT).unwrap();
    path
}

fn summary(dir: &Path) -> serde_json::Map<String, Value> {
    serde_json::from_str(&fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

fn read_i64(path: &Path) -> Vec<i64> {
    relab_core::artifact::npy::read_i64(path).unwrap().1
}

#[test]
fn relab_run_fills_the_run_folder_contract() {
    require_fashion_mnist();
    let tmp = tempfile::tempdir().unwrap();
    let exp = write_experiment(tmp.path());
    let out = tmp.path().join("run");
    assert_eq!(relab(&["run", exp.to_str().unwrap(), "--out", out.to_str().unwrap(), "--no-cache"]), 0);

    for file in ["config.yaml", "seeds.npy", "metrics.jsonl", "summary.json", "report.md"] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    let (shape, _) = relab_core::artifact::npy::read_f32(&out.join("features/features.npy")).unwrap();
    assert_eq!(shape, vec![2000, 48]);
    assert_eq!(read_i64(&out.join("propagate/labels.npy")).len(), 2000);
    let (shape, _) = relab_core::artifact::npy::read_f32(&out.join("propagate/scores.npy")).unwrap();
    assert_eq!(shape, vec![2000, 10]);
    let subset = read_i64(&out.join("select/subset.npy"));
    assert_eq!(subset.len(), 200);
    assert_eq!(read_i64(&out.join("select/subset_labels.npy")).len(), 200);
    let seeds = read_i64(&out.join("seeds.npy"));
    assert_eq!(seeds.len(), 40);
    assert!(seeds.iter().all(|s| subset.contains(s)), "the selector keeps every seed");
    assert!(out.join("propagate/labels_relab.npz").is_file());
    assert!(out.join("select/subset_relab.npz").is_file());

    // The resolved config is a valid experiment again.
    let config: serde_yaml::Value =
        serde_yaml::from_str(&fs::read_to_string(out.join("config.yaml")).unwrap()).unwrap();
    assert_eq!(config["stages"]["select"]["per_class"], serde_yaml::Value::from(20));

    let s = summary(&out);
    // Nearest seed centroid on random projections of pixels: well above the 10% of chance.
    let propagation = s["propagation_accuracy"].as_f64().unwrap();
    assert!(propagation > 0.4, "propagation accuracy {propagation}");
    assert!(s["subset_precision"].as_f64().unwrap() > 0.4);
    let test = &s["test_accuracy"];
    for key in ["best", "last", "median_last20"] {
        assert!(test[key].as_f64().unwrap() > 0.4, "test_accuracy.{key} = {}", test[key]);
    }
    assert_eq!(s["knn_accuracy"].as_f64(), Some(0.5));
    for stage in ["pretrain", "features", "propagate", "select", "train"] {
        assert!(s["seconds"][stage].is_number(), "seconds.{stage}");
    }
    let metrics = fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    let records: Vec<Value> = metrics.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(records.iter().filter(|r| r["stage"] == "train").count(), 3);
    assert!(records.iter().any(|r| r["stage"] == "select" && r["per_class_precision"].is_array()));
}

fn run_in_process(
    out: &Path,
    cache: Option<&Path>,
    overrides: &[&str],
    resume: bool,
    stop: Option<u64>,
) -> relab_core::Result<pipeline::RunOutcome> {
    let tmp = tempfile::tempdir().unwrap();
    let exp = write_experiment(tmp.path());
    let registry = Registry::with_static().unwrap();
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    let runs = experiment::load(&exp, &overrides, &registry).unwrap();
    let opts = RunOptions {
        out: out.to_path_buf(),
        resume,
        cache: cache.map(|c| StageCache::new(c.to_path_buf())),
        stop_after_checkpoints: stop,
    };
    pipeline::run(&runs[0], &registry, &opts)
}

#[test]
fn a_second_run_that_changes_only_select_reuses_the_earlier_stages() {
    require_fashion_mnist();
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let first = run_in_process(&tmp.path().join("a"), Some(&cache), &[], false, None).unwrap();
    assert!(first.reused.is_empty());

    // Same folder, new selector parameter: everything before select is reused, select and train rerun.
    let again =
        run_in_process(&tmp.path().join("a"), Some(&cache), &["stages.select.per_class=30"], false, None).unwrap();
    assert_eq!(again.reused, vec![StageKind::Pretrain, StageKind::Features, StageKind::Propagate]);
    assert_eq!(read_i64(&tmp.path().join("a/select/subset.npy")).len(), 300);

    // A fresh folder finds every stage of the first run in the shared cache, with identical artifacts.
    let fresh = run_in_process(&tmp.path().join("b"), Some(&cache), &[], false, None).unwrap();
    assert_eq!(fresh.reused.len(), 5);
    assert_eq!(fresh.summary["test_accuracy"], first.summary["test_accuracy"]);
    assert_eq!(
        fs::read(tmp.path().join("b/features/features.npy")).unwrap(),
        fs::read(tmp.path().join("a/features/features.npy")).unwrap()
    );
}

#[test]
fn a_stage_with_its_own_resize_sees_the_images_as_read_at_that_size() {
    require_fashion_mnist();
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let shape =
        |run: &str, file: &str| relab_core::artifact::npy::read_f32(&tmp.path().join(run).join(file)).unwrap().0;
    let small = run_in_process(&tmp.path().join("a"), Some(&cache), &["dataset.resize=8"], false, None).unwrap();
    assert_eq!(shape("a", "pretrain/projection.npy"), [64, 48]);
    assert_eq!(shape("a", "train/centroids.npy"), [10, 64]);

    // The learner on the 28×28 images as read, not on the 8×8 ones scaled back up; the stages before it unchanged.
    let overrides = ["dataset.resize=8", "stages.train.resize=28"];
    let full = run_in_process(&tmp.path().join("b"), Some(&cache), &overrides, false, None).unwrap();
    let before_train = [StageKind::Pretrain, StageKind::Features, StageKind::Propagate, StageKind::Select];
    assert_eq!(full.reused, before_train);
    assert_eq!(shape("b", "train/centroids.npy"), [10, 784]);
    // Its images are the 28×28 originals: a run that is 28×28 throughout, given b's subset, learns the same centroids.
    let subset = format!("stages.select.from={}", tmp.path().join("b/select").display());
    let overrides = [subset.as_str(), "stages.select.plugin=~", "stages.select.per_class=~"];
    let unresized = run_in_process(&tmp.path().join("c"), None, &overrides, false, None).unwrap();
    assert_eq!(unresized.summary["test_accuracy"], full.summary["test_accuracy"]);
    let centroids = |run: &str| fs::read(tmp.path().join(run).join("train/centroids.npy")).unwrap();
    assert_eq!(centroids("c"), centroids("b"));
    assert_ne!(full.summary["test_accuracy"], small.summary["test_accuracy"]);

    // A stage asking for the run's own size sees the run's images: the same stage, found in the cache.
    let overrides = ["dataset.resize=8", "stages.train.resize=8"];
    let same = run_in_process(&tmp.path().join("d"), Some(&cache), &overrides, false, None).unwrap();
    assert_eq!(same.reused.len(), 5);
    assert_eq!(same.summary["test_accuracy"], small.summary["test_accuracy"]);
    let config = fs::read_to_string(tmp.path().join("d/config.yaml")).unwrap();
    assert!(config.contains("resize: 8"), "{config}");
}

#[test]
fn same_config_and_seed_give_the_same_numbers() {
    require_fashion_mnist();
    let tmp = tempfile::tempdir().unwrap();
    let a = run_in_process(&tmp.path().join("a"), None, &[], false, None).unwrap();
    let b = run_in_process(&tmp.path().join("b"), None, &[], false, None).unwrap();
    let strip = |mut s: serde_json::Map<String, Value>| {
        s.remove("seconds");
        s
    };
    assert_eq!(strip(a.summary), strip(b.summary));
    for file in ["features/features.npy", "propagate/scores.npy", "select/subset.npy", "train/centroids.npy"] {
        assert_eq!(
            fs::read(tmp.path().join("a").join(file)).unwrap(),
            fs::read(tmp.path().join("b").join(file)).unwrap(),
            "{file}"
        );
    }
}

#[test]
fn an_interrupted_stage_resumes_from_its_checkpoint_to_the_same_result() {
    require_fashion_mnist();
    let tmp = tempfile::tempdir().unwrap();
    let whole = run_in_process(&tmp.path().join("whole"), None, &[], false, None).unwrap();

    let cut = tmp.path().join("cut");
    // Every stage that checkpoints stops after its second checkpoint, as if killed: only the learner does here.
    let err = run_in_process(&cut, None, &[], false, Some(2)).unwrap_err().to_string();
    assert!(err.contains("stopped after 2 checkpoints"), "{err}");
    let record: Value = serde_json::from_str(&fs::read_to_string(cut.join("train/stage.json")).unwrap()).unwrap();
    assert_eq!(record["complete"], Value::Bool(false));
    assert!(cut.join("train/checkpoint/state.json").is_file());

    let resumed = run_in_process(&cut, None, &[], true, None).unwrap();
    assert_eq!(resumed.reused, vec![StageKind::Pretrain, StageKind::Features, StageKind::Propagate, StageKind::Select]);
    assert_eq!(
        fs::read(cut.join("train/centroids.npy")).unwrap(),
        fs::read(tmp.path().join("whole/train/centroids.npy")).unwrap(),
        "resumed weights must equal the uninterrupted run's bit for bit"
    );
    assert_eq!(resumed.summary["test_accuracy"], whole.summary["test_accuracy"]);
    let epochs: Vec<u64> = fs::read_to_string(cut.join("train/metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["epoch"].as_u64().unwrap())
        .collect();
    assert_eq!(epochs, vec![1, 2, 3], "the resumed stage keeps its earlier metrics and does not redo epochs");
}

#[test]
fn pixel_features_need_no_pretrain_stage() {
    require_fashion_mnist();
    let tmp = tempfile::tempdir().unwrap();
    let out = run_in_process(
        &tmp.path().join("px"),
        None,
        &["stages.pretrain=~", "stages.features.source=pixels"],
        false,
        None,
    )
    .unwrap();
    let (shape, _) = relab_core::artifact::npy::read_f32(&tmp.path().join("px/features/features.npy")).unwrap();
    assert_eq!(shape, vec![2000, 784]);
    assert!(out.summary["propagation_accuracy"].as_f64().unwrap() > 0.4);
}

#[test]
fn stages_can_be_fed_from_the_original_relabs_files() {
    require_fashion_mnist();
    let tmp = tempfile::tempdir().unwrap();
    let first = tmp.path().join("first");
    run_in_process(&first, None, &[], false, None).unwrap();
    let labels = first.join("propagate/labels_relab.npz");
    let subset = first.join("select/subset_relab.npz");
    let second = tmp.path().join("second");
    let overrides = [
        format!("stages.propagate={{from: {}}}", labels.display()),
        format!("stages.select={{from: {}}}", subset.display()),
    ];
    let overrides: Vec<&str> = overrides.iter().map(String::as_str).collect();
    let out = run_in_process(&second, None, &overrides, false, None).unwrap();
    assert_eq!(read_i64(&second.join("propagate/labels.npy")), read_i64(&first.join("propagate/labels.npy")));
    // The original's subset file is class-major; relab's own order is the selector's, so compare as sets.
    let mut a = read_i64(&second.join("select/subset.npy"));
    let mut b = read_i64(&first.join("select/subset.npy"));
    a.sort();
    b.sort();
    assert_eq!(a, b);
    assert!(out.summary["subset_precision"].as_f64().unwrap() > 0.4);
}
