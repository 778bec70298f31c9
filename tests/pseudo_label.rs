//! The `pseudo-label` learner end to end on real Fashion-MNIST (a 1,000-image prefix, 10 labels per class): both
//! runs train through the pipeline, the summary has the method's numbers, accuracy is well above chance, and a run
//! killed once in the warm-up and once in the semi-supervised run resumes to bit-identical weights, SWA weights and
//! pseudo-labels. With `initial_pseudo_labels: propagation` the semi-supervised run starts from the propagate stage's
//! labels, and without a propagate stage it stops with an error saying so; with `repropagate_after` the seeds are
//! propagated again over the network's features and every unlabelled image takes its new label, one-hot or, with
//! `propagated_targets: soft`, as its propagated scores normalised.
//!
//! The tests share one uninterrupted run and take turns: burn's weight generator is per process, so two runs on
//! two threads at once would not be reproducible.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

use relab_core::experiment;
use relab_core::pipeline::{self, RunOptions, RunOutcome};
use relab_core::registry::Registry;
use serde_json::Value;

// Link the binary's plugins into this test.
use relab as _;

/// Three warm-up and two semi-supervised epochs, SWA of both semi-supervised epochs.
const EXPERIMENT: &str = "\
name: pseudo-label-tiny
seed: 4
dataset: { name: fashion-mnist, labels_per_class: 10, train_limit: 1000, test_limit: 300 }
stages:
  train:
    plugin: pseudo-label
    backbone: wrn10_2
    warmup: { epochs: 3, batch_size: 10, schedule: { lr: 0.05 } }
    epochs: 2
    batch_size: 50
    labeled_per_batch: 10
    unlabeled_per_epoch: 400
    schedule: { lr: 0.05 }
    swa: { start: 0, every: 1 }
    eval_batch_size: 300
";

fn run(out: &Path, resume: bool, stop: Option<u64>) -> relab_core::Result<RunOutcome> {
    run_text(EXPERIMENT, out, resume, stop)
}

fn run_text(text: &str, out: &Path, resume: bool, stop: Option<u64>) -> relab_core::Result<RunOutcome> {
    assert!(
        Path::new("/usr/share/datasets/fashion-mnist").is_dir() || std::env::var_os("RELAB_DATA").is_some(),
        "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"
    );
    let registry = Registry::with_static().unwrap();
    let runs = experiment::load_str(text, Path::new("pseudo-label.yaml"), &[], &registry).unwrap();
    let opts = RunOptions { out: out.to_path_buf(), resume, cache: None, stop_after_checkpoints: stop };
    pipeline::run(&runs[0], &registry, &opts)
}

/// Why `relab` refuses the experiment `text` before running anything.
fn refused(text: &str) -> String {
    let registry = Registry::with_static().unwrap();
    experiment::load_str(text, Path::new("pseudo-label.yaml"), &[], &registry).unwrap_err().to_string()
}

/// One test at a time.
fn turn() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|p| p.into_inner())
}

/// The uninterrupted run, made once for all tests (in cargo's scratch folder for integration tests, emptied first).
fn whole_run() -> (MutexGuard<'static, ()>, &'static (PathBuf, RunOutcome)) {
    static WHOLE: OnceLock<(PathBuf, RunOutcome)> = OnceLock::new();
    let turn = turn();
    let whole = WHOLE.get_or_init(|| {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pseudo-label-whole");
        if out.exists() {
            fs::remove_dir_all(&out).unwrap();
        }
        let outcome = run(&out, false, None).unwrap();
        (out, outcome)
    });
    (turn, whole)
}

/// The records of a `metrics.jsonl` file, in order.
fn records(path: &Path) -> Vec<Value> {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Every tensor of a safetensors file by name, as raw bytes (the header's key order is not stable, the data is).
fn tensors(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Map<String, Value> = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let data = &bytes[8 + n..];
    header
        .into_iter()
        .filter(|(k, _)| k != "__metadata__")
        .map(|(k, v)| {
            let at = |i: usize| v["data_offsets"][i].as_u64().unwrap() as usize;
            (k, data[at(0)..at(1)].to_vec())
        })
        .collect()
}

#[test]
#[ignore = "about 2 minutes on 2 cores; CI runs it with `cargo test --workspace -- --ignored`"]
fn trains_both_runs_and_reports_the_method_s_numbers() {
    let (_turn, (out, outcome)) = whole_run();
    let accuracy = &outcome.summary["test_accuracy"];
    for key in ["best", "last", "median_last20", "swa"] {
        let v = accuracy[key].as_f64().unwrap_or_else(|| panic!("test_accuracy.{key} missing: {accuracy}"));
        // 100 labels, a few dozen steps: far from converged (about 35%), but well above the 10% of chance.
        assert!(v > 0.25 && v <= 1.0, "test_accuracy.{key} = {v}");
    }
    for key in ["warmup_test_accuracy", "pseudo_label_accuracy"] {
        let v = outcome.summary[key].as_f64().unwrap_or_else(|| panic!("{key} missing"));
        // Three warm-up epochs on 100 labels give about 23%; chance is 10%.
        assert!(v > 0.15, "{key} = {v}");
    }
    let train = out.join("train");
    for file in ["weights.safetensors", "model.json", "swa/weights.safetensors", "swa/model.json"] {
        assert!(train.join(file).is_file(), "train/{file} missing");
    }
    let (shape, labels) = relab_core::artifact::npy::read_f32(&train.join("pseudo_labels.npy")).unwrap();
    assert_eq!(shape, vec![1000, 10]);
    assert!(labels.chunks(10).all(|row| (row.iter().sum::<f32>() - 1.0).abs() < 1e-4), "rows are distributions");

    // One record per epoch of each run, plus the initial pseudo-labels; epochs number the two runs as one curve.
    let records = records(&train.join("metrics.jsonl"));
    let epochs: Vec<(String, u64)> =
        records.iter().map(|r| (r["phase"].as_str().unwrap().to_string(), r["epoch"].as_u64().unwrap())).collect();
    let want: Vec<(String, u64)> = [("warmup", 1), ("warmup", 2), ("warmup", 3), ("ssl", 4), ("ssl", 5), ("ssl", 6)]
        .iter()
        .map(|(p, e)| (p.to_string(), *e))
        .collect();
    assert_eq!(epochs, want);
    // Warm-up: 100 labelled images in batches of 10. Semi-supervised: 400 sampled unlabelled images, 40 a batch.
    assert_eq!(records[0]["steps"], 10);
    assert_eq!(records[4]["steps"], 10);
    assert!(records[0].get("prior").is_none(), "no regularisers in the warm-up");
    for key in ["prior", "entropy", "pseudo_label_accuracy", "test_accuracy"] {
        assert!(records[4][key].is_number(), "ssl record lacks {key}: {}", records[4]);
    }
    assert_eq!(records[4]["pseudo_labels_updated"], 400);
}

#[test]
#[ignore = "about 2 minutes on 2 cores; CI runs it with `cargo test --workspace -- --ignored`"]
fn a_run_killed_in_each_phase_resumes_bit_identically() {
    let (_turn, (whole, outcome)) = whole_run();
    let tmp = tempfile::tempdir().unwrap();
    let cut = tmp.path().join("cut");
    // Killed after warm-up epoch 2, then after warm-up epoch 3 and semi-supervised epoch 1.
    let err = run(&cut, false, Some(2)).unwrap_err().to_string();
    assert!(err.contains("stopped after 2 checkpoints"), "{err}");
    let err = run(&cut, true, Some(2)).unwrap_err().to_string();
    assert!(err.contains("stopped after 2 checkpoints"), "{err}");
    let state: Value =
        serde_json::from_str(&fs::read_to_string(cut.join("train/checkpoint/state.json")).unwrap()).unwrap();
    assert_eq!((state["state"]["phase"].as_str(), state["state"]["epoch"].as_u64()), (Some("ssl"), Some(1)));
    let resumed = run(&cut, true, None).unwrap();

    for file in ["weights.safetensors", "swa/weights.safetensors"] {
        assert_eq!(
            tensors(&cut.join("train").join(file)),
            tensors(&whole.join("train").join(file)),
            "resumed train/{file} must equal the uninterrupted run's bit for bit"
        );
    }
    assert_eq!(
        fs::read(cut.join("train/pseudo_labels.npy")).unwrap(),
        fs::read(whole.join("train/pseudo_labels.npy")).unwrap()
    );
    for key in ["test_accuracy", "warmup_test_accuracy", "pseudo_label_accuracy"] {
        assert_eq!(resumed.summary[key], outcome.summary[key], "{key}");
    }
}

/// Pixel features and diffusion in front of a one-epoch learner whose first pseudo-labels are the propagated ones.
const FROM_PROPAGATION: &str = "\
name: pseudo-label-from-propagation
seed: 4
dataset: { name: fashion-mnist, labels_per_class: 10, train_limit: 1000, test_limit: 300 }
stages:
  features: { source: pixels, pca: 32 }
  propagate: { plugin: diffusion, k: 20 }
  train:
    plugin: pseudo-label
    backbone: wrn10_2
    initial_pseudo_labels: propagation
    warmup: { epochs: 1, batch_size: 10, schedule: { lr: 0.05 } }
    epochs: 1
    batch_size: 50
    labeled_per_batch: 10
    unlabeled_per_epoch: 200
    schedule: { lr: 0.05 }
    swa: ~
    eval_batch_size: 300
";

#[test]
#[ignore = "about 30 s on 2 cores; CI runs it with `cargo test --workspace -- --ignored`"]
fn the_first_pseudo_labels_can_be_the_propagated_labels() {
    let _turn = turn();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    run_text(FROM_PROPAGATION, &out, false, None).unwrap();

    let read = |file: &str| relab_core::artifact::npy::read_i64(&out.join(file)).unwrap().1;
    let (propagated, seeds) = (read("propagate/labels.npy"), read("seeds.npy"));
    let cfg = experiment::load_str(FROM_PROPAGATION, Path::new("x.yaml"), &[], &Registry::with_static().unwrap())
        .unwrap()
        .remove(0);
    let truth = relab_core::data::load(&cfg.experiment.dataset).unwrap().train.labels.unwrap();
    let unlabeled: Vec<usize> = (0..1000).filter(|i| !seeds.contains(&(*i as i64))).collect();
    assert_eq!(unlabeled.len(), 900);
    let right = unlabeled.iter().filter(|&&i| propagated[i] == truth[i] as i64).count();

    // The record between the runs (epoch 2, after the one warm-up epoch) measures the propagated labels.
    let records = records(&out.join("train/metrics.jsonl"));
    let first = records.iter().find(|r| r["epoch"] == 2).expect("a record for the initial pseudo-labels");
    assert_eq!(first["pseudo_label_accuracy"].as_f64().unwrap(), right as f64 / 900.0, "{first}");

    // The one semi-supervised epoch visited 200 unlabelled images; the other 700 keep their one-hot propagated label.
    let (shape, rows) = relab_core::artifact::npy::read_f32(&out.join("train/pseudo_labels.npy")).unwrap();
    assert_eq!(shape, vec![1000, 10]);
    let one_hot_as_propagated = unlabeled
        .iter()
        .filter(|&&i| {
            let row = &rows[i * 10..(i + 1) * 10];
            row.iter().enumerate().all(|(c, &v)| v == if c as i64 == propagated[i] { 1.0 } else { 0.0 })
        })
        .count();
    assert_eq!(one_hot_as_propagated, 700);

    // Without a propagate stage there is nothing to start from: the experiment is refused before any stage runs.
    let without = FROM_PROPAGATION
        .replace("  features: { source: pixels, pca: 32 }\n", "")
        .replace("  propagate: { plugin: diffusion, k: 20 }\n", "");
    let err = refused(&without);
    assert!(err.contains("stages.train.initial_pseudo_labels: "), "{err}");
    assert!(err.contains("initial_pseudo_labels: propagation needs the propagated labels"), "{err}");
    assert!(err.contains("no propagate stage"), "{err}");
}

#[test]
#[ignore = "about 30 s on 2 cores; CI runs it with `cargo test --workspace -- --ignored`"]
fn repropagation_relabels_every_unlabelled_image_by_the_networks_features() {
    let _turn = turn();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let text = FROM_PROPAGATION.replace("    epochs: 1\n", "    epochs: 1\n    repropagate_after: [1]\n");
    run_text(&text, &out, false, None).unwrap();

    let (expected, seeds, truth) = propagation_over_the_saved_network(&text, &out);
    let first = relab_core::artifact::npy::read_i64(&out.join("propagate/labels.npy")).unwrap().1;
    let (_, rows) = relab_core::artifact::npy::read_f32(&out.join("train/pseudo_labels.npy")).unwrap();
    let unlabeled: Vec<usize> = (0..1000).filter(|i| !seeds.contains(&(*i as i64))).collect();
    for &i in &unlabeled {
        let row = &rows[i * 10..(i + 1) * 10];
        let one_hot: Vec<f32> = (0..10).map(|c| if c == expected.labels[i] as usize { 1.0 } else { 0.0 }).collect();
        assert_eq!(row, one_hot.as_slice(), "image {i}");
    }
    let moved = unlabeled.iter().filter(|&&i| first[i] != expected.labels[i] as i64).count();
    assert!(moved > 0, "the network's features gave the same labels as the pixels'");

    // The epoch's record holds the new propagation's accuracy.
    let records = records(&out.join("train/metrics.jsonl"));
    let ssl = records.iter().find(|r| r["repropagation_accuracy"].is_number()).expect("a repropagation record");
    assert_eq!(ssl["repropagation_accuracy"].as_f64().unwrap(), expected.accuracy(&truth), "{ssl}");

    // Without a propagate plugin there is nothing to propagate again: the experiment is refused before any stage runs.
    let without = text
        .replace("  features: { source: pixels, pca: 32 }\n", "")
        .replace("  propagate: { plugin: diffusion, k: 20 }\n", "")
        .replace("    initial_pseudo_labels: propagation\n", "");
    let err = refused(&without);
    assert!(err.contains("stages.train.repropagate_after: "), "{err}");
    assert!(err.contains("repropagate_after needs a propagate stage"), "{err}");
}

#[test]
#[ignore = "about 30 s on 2 cores; CI runs it with `cargo test --workspace -- --ignored`"]
fn soft_propagated_targets_are_the_propagated_scores_normalised() {
    let _turn = turn();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let text = FROM_PROPAGATION
        .replace("    epochs: 1\n", "    epochs: 1\n    repropagate_after: [1]\n    propagated_targets: soft\n");
    run_text(&text, &out, false, None).unwrap();

    // Every unlabelled image's pseudo-label is its row of the new propagation's scores, negative ones as zero,
    // divided by their sum; the labelled images keep their one-hot labels.
    let (expected, seeds, truth) = propagation_over_the_saved_network(&text, &out);
    let (_, rows) = relab_core::artifact::npy::read_f32(&out.join("train/pseudo_labels.npy")).unwrap();
    let mut torn = 0;
    for i in 0..1000 {
        let row = &rows[i * 10..(i + 1) * 10];
        if seeds.contains(&(i as i64)) {
            let one_hot: Vec<f32> = (0..10).map(|c| if c == truth[i] as usize { 1.0 } else { 0.0 }).collect();
            assert_eq!(row, one_hot.as_slice(), "seed {i}");
            continue;
        }
        let scores: Vec<f64> = expected.scores[i * 10..(i + 1) * 10].iter().map(|&v| f64::from(v.max(0.0))).collect();
        let total: f64 = scores.iter().sum();
        for (c, (&got, score)) in row.iter().zip(&scores).enumerate() {
            // A row the propagation did not reach says nothing of the class: uniform.
            let want = if total > 0.0 { score / total } else { 0.1 };
            assert!((f64::from(got) - want).abs() < 1e-6, "image {i} class {c}: {got} against {want}");
        }
        torn += usize::from(row.iter().filter(|&&v| v > 0.05).count() > 1);
    }
    assert!(torn > 0, "no pseudo-label spreads over two classes: the targets are not soft");
}

#[test]
#[ignore = "about 20 s on 2 cores; CI runs it with `cargo test --workspace -- --ignored`"]
fn mirror_test_views_average_each_test_image_with_its_mirror_and_change_only_the_evaluation() {
    let _turn = turn();
    let tmp = tempfile::tempdir().unwrap();
    let plain_text = EXPERIMENT
        .replace("epochs: 3, batch_size: 10", "epochs: 1, batch_size: 10")
        .replace("    epochs: 2\n", "    epochs: 1\n");
    let mirror_text =
        plain_text.replace("    eval_batch_size: 300\n", "    eval_batch_size: 300\n    test_views: mirror\n");
    let (plain_out, mirror_out) = (tmp.path().join("plain"), tmp.path().join("mirror"));
    let plain = run_text(&plain_text, &plain_out, false, None).unwrap();
    let mirror = run_text(&mirror_text, &mirror_out, false, None).unwrap();

    // The views are an evaluation choice: the same weights, and the plain figures of the mirror run are the plain
    // run's own.
    for file in ["weights.safetensors", "swa/weights.safetensors"] {
        assert_eq!(
            tensors(&plain_out.join("train").join(file)),
            tensors(&mirror_out.join("train").join(file)),
            "{file}"
        );
    }
    assert_eq!(mirror.summary["plain_test_accuracy_last"], plain.summary["test_accuracy"]["last"]);
    assert_eq!(mirror.summary["plain_test_accuracy_swa"], plain.summary["test_accuracy"]["swa"]);
    assert!(plain.summary.get("plain_test_accuracy_last").is_none(), "a plain run reports its figures once");

    // The mirror figure recomputed by hand from the saved weights: each test image's softmax and its mirror image's
    // (every row of pixels reversed) averaged.
    let (by_hand_plain, by_hand_mirror) = accuracies_by_hand(&mirror_text, &mirror_out.join("train"));
    let close = |v: &Value, want: f64| (v.as_f64().unwrap() - want).abs() <= 1.0 / 300.0 + 1e-12;
    // One image of 300 may tip the other way between burn's f32 softmax and this f64 one.
    assert!(close(&mirror.summary["plain_test_accuracy_last"], by_hand_plain), "{by_hand_plain} {:?}", mirror.summary);
    assert!(close(&mirror.summary["test_accuracy"]["last"], by_hand_mirror), "{by_hand_mirror} {:?}", mirror.summary);
}

/// Test accuracy of the backbone saved in `dir`, of the plain images and of each image averaged with its mirror.
fn accuracies_by_hand(text: &str, dir: &Path) -> (f64, f64) {
    let registry = Registry::with_static().unwrap();
    let cfg = experiment::load_str(text, Path::new("x.yaml"), &[], &registry).unwrap().remove(0);
    let data = relab_core::data::load(&cfg.experiment.dataset).unwrap();
    let device = relab_core::burn::tensor::Device::flex();
    let (model, _) = relab_core::nn::load_backbone(dir, &device).unwrap();
    let mut mirrored = data.test.clone();
    let w = mirrored.width;
    for row in mirrored.pixels.chunks_exact_mut(w) {
        row.reverse();
    }
    let softmax_rows = |set| {
        let logits = relab_core::train::extract_with(&model, set, &data.mean, &data.std, 300, &device, |m, x| {
            m.forward(x).logits
        })
        .unwrap();
        logits
            .values
            .chunks_exact(10)
            .map(|row| {
                let top = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let e: Vec<f64> = row.iter().map(|&v| f64::from(v - top).exp()).collect();
                let z: f64 = e.iter().sum();
                e.into_iter().map(|v| v / z).collect::<Vec<f64>>()
            })
            .collect::<Vec<_>>()
    };
    let (a, b) = (softmax_rows(&data.test), softmax_rows(&mirrored));
    let truth = data.test.labels.as_deref().unwrap();
    let argmax = |row: Vec<f64>| (0..10).max_by(|&i, &j| row[i].total_cmp(&row[j])).unwrap() as u32;
    let acc = |pred: Vec<u32>| pred.iter().zip(truth).filter(|(p, t)| p == t).count() as f64 / truth.len() as f64;
    let plain = acc(a.iter().map(|r| argmax(r.clone())).collect());
    let both =
        acc(a.iter().zip(&b).map(|(x, y)| argmax(x.iter().zip(y).map(|(p, q)| (p + q) / 2.0).collect())).collect());
    (plain, both)
}

/// The seeds propagated, as the stage's diffusion (k = 20) does, over the pooled features of the network the run
/// saved, with the seeds and the training labels. After a last epoch that propagated again, every unlabelled
/// image's pseudo-label must come from this.
fn propagation_over_the_saved_network(
    text: &str,
    out: &Path,
) -> (relab_core::artifact::Propagation, Vec<i64>, Vec<u32>) {
    let registry = Registry::with_static().unwrap();
    let cfg = experiment::load_str(text, Path::new("x.yaml"), &[], &registry).unwrap().remove(0);
    let data = relab_core::data::load(&cfg.experiment.dataset).unwrap();
    let device = relab_core::burn::tensor::Device::flex();
    let (model, _) = relab_core::nn::load_backbone(&out.join("train"), &device).unwrap();
    let features = relab_core::train::extract_with(&model, &data.train, &data.mean, &data.std, 300, &device, |m, x| {
        m.forward(x).features
    })
    .unwrap();
    let seeds = relab_core::artifact::npy::read_i64(&out.join("seeds.npy")).unwrap().1;
    let truth = data.train.labels.clone().unwrap();
    let seed_set = relab_core::artifact::LabeledSet::new(
        seeds.iter().map(|&i| i as usize).collect(),
        seeds.iter().map(|&i| truth[i as usize]).collect(),
    );
    let params = relab_plugin_diffusion::DiffusionParams { k: 20, ..Default::default() };
    let propagation = relab_plugin_diffusion::Diffusion::new(params)
        .unwrap()
        .run(&features, &seed_set, 10, &|_, _| relab_core::progress::ProgressBar::hidden())
        .unwrap()
        .propagation;
    (propagation, seeds, truth)
}
