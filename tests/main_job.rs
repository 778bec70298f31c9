//! The README's main job, `experiments/fashion-mnist-40.yaml`, shortened with `--set` overrides so that it runs in
//! about a minute: the same file, the same plugins and the same stage order (iMix → features → diffusion →
//! small-loss → pseudo-label) on a Fashion-MNIST prefix. It checks the run-folder contract and an accuracy floor
//! well above the 10 % of chance, so that the main job cannot rot while its full run is too long for CI.

mod common;

use std::fs;
use std::path::Path;

use common::{relab, require_fashion_mnist};
use serde_json::Value;

/// Each stage cut to a few optimiser steps; everything not named here is the main job's own setting.
const SHORTEN: &[&str] = &[
    "dataset.train_limit=3000",
    "dataset.test_limit=1000",
    "stages.pretrain.epochs=3",
    "stages.pretrain.images_per_epoch=1024",
    "stages.pretrain.schedule.milestones=[2]",
    "stages.pretrain.monitor_every=3",
    "stages.select.sample=1000",
    "stages.select.epochs=3",
    "stages.select.track_epochs=2",
    "stages.select.per_class=20",
    "stages.train.warmup.epochs=4",
    "stages.train.warmup.schedule.milestones=[3]",
    "stages.train.epochs=2",
    "stages.train.repropagate_after=[1]",
    "stages.train.unlabeled_per_epoch=800",
    "stages.train.schedule.milestones=[2]",
    "stages.train.swa.start=0",
    "stages.train.eval_every=1",
];

fn npy_len(path: &Path) -> usize {
    relab_core::artifact::npy::read_i64(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).1.len()
}

#[test]
#[ignore = "a few minutes on 2 cores; CI runs it with `cargo test --workspace -- --ignored`"]
fn the_main_job_shortened_fills_the_run_folder_and_beats_chance() {
    require_fashion_mnist();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let exp = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/fashion-mnist-40.yaml");
    let mut args = vec!["run", exp.to_str().unwrap(), "--out", out.to_str().unwrap(), "--no-cache"];
    for set in SHORTEN {
        args.extend(["--set", set]);
    }
    assert_eq!(relab(&args), 0, "relab {}", args.join(" "));

    for file in ["config.yaml", "seeds.npy", "metrics.jsonl", "summary.json", "report.md"] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    for file in [
        "pretrain/best/model.json",
        "pretrain/best/weights.safetensors",
        "features/features.npy",
        "propagate/labels.npy",
        "propagate/scores.npy",
        "propagate/labels_relab.npz",
        "select/subset.npy",
        "select/subset_labels.npy",
        "select/subset_relab.npz",
        "train/model.json",
        "train/weights.safetensors",
    ] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    assert_eq!(npy_len(&out.join("seeds.npy")), 40);
    assert_eq!(npy_len(&out.join("propagate/labels.npy")), 3000);
    eprintln!("{}", fs::read_to_string(out.join("summary.json")).unwrap());
    let summary: Value = serde_json::from_str(&fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    // 20 per class, less what a class short of candidates in the 1,000-image pool could not give (reported).
    let shortfall: u64 = summary["subset_short_classes"]
        .as_array()
        .expect("subset_short_classes")
        .iter()
        .map(|short| short["quota"].as_u64().unwrap() - short["kept"].as_u64().unwrap())
        .sum();
    assert_eq!(npy_len(&out.join("select/subset.npy")) as u64, 200 - shortfall);
    assert_eq!(summary["subset_size"].as_u64(), Some(200 - shortfall));
    assert!(shortfall <= 50, "{shortfall} of 200 samples missing");
    let (shape, _) = relab_core::artifact::npy::read_f32(&out.join("features/features.npy")).unwrap();
    assert_eq!(shape, vec![3000, 128], "the WRN-10-2's pooled feature");

    let s: serde_json::Map<String, Value> =
        serde_json::from_str(&fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    for stage in ["pretrain", "features", "propagate", "select", "train"] {
        assert!(s["seconds"][stage].is_number(), "seconds.{stage}");
    }
    // Floors well above chance (10 %), a margin below what this shortened, seeded run measures.
    let floors = [
        ("knn_accuracy", 0.4),
        ("propagation_accuracy", 0.35),
        ("subset_precision", 0.5),
        ("warmup_test_accuracy", 0.3),
    ];
    for (key, floor) in floors {
        let value = s[key].as_f64().unwrap_or_else(|| panic!("{key} missing from summary.json"));
        assert!(value > floor, "{key} = {value}, floor {floor}");
    }
    for key in ["best", "last", "median_last20", "swa"] {
        let value = s["test_accuracy"][key].as_f64().unwrap_or_else(|| panic!("test_accuracy.{key} missing"));
        assert!(value > 0.3, "test_accuracy.{key} = {value}");
    }
    // The learner propagated the seeds again over its own features after its first semi-supervised epoch.
    let metrics = fs::read_to_string(out.join("train/metrics.jsonl")).unwrap();
    let again: Vec<f64> = metrics
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).unwrap()["repropagation_accuracy"].as_f64())
        .collect();
    assert!(again.len() == 1 && again[0] > 0.35, "repropagation accuracies {again:?}");
    let report = fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("test accuracy, SWA"), "{report}");
}
