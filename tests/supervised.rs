//! The `supervised` learner on real Fashion-MNIST: it trains through the pipeline, checkpoints every epoch, and a
//! run killed after its first checkpoint resumes to bit-identical weights.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use relab_core::component::StageKind;
use relab_core::experiment;
use relab_core::pipeline::{self, RunOptions, RunOutcome};
use relab_core::registry::Registry;

// Link the binary's plugins into this test.
use relab as _;

const EXPERIMENT: &str = "\
name: supervised-tiny
seed: 2
dataset: { name: fashion-mnist, labels_per_class: 2, train_limit: 500, test_limit: 60 }
stages:
  train:
    plugin: supervised
    backbone: wrn28_2
    epochs: 3
    batch_size: 10
    min_steps_per_epoch: 2
    schedule: { lr: 0.05 }
    eval_batch_size: 60
";

/// burn's random generator is process-global and each stage seeds it: two runs on parallel test threads would draw
/// from each other's stream, so the tests of this file take turns.
static TURN: Mutex<()> = Mutex::new(());

fn take_turn() -> MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn run(out: &Path, resume: bool, stop: Option<u64>) -> relab_core::Result<RunOutcome> {
    run_with(out, resume, stop, &[])
}

fn run_with(out: &Path, resume: bool, stop: Option<u64>, overrides: &[String]) -> relab_core::Result<RunOutcome> {
    assert!(
        Path::new("/usr/share/datasets/fashion-mnist").is_dir() || std::env::var_os("RELAB_DATA").is_some(),
        "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"
    );
    let registry = Registry::with_static().unwrap();
    let runs = experiment::load_str(EXPERIMENT, Path::new("supervised.yaml"), overrides, &registry).unwrap();
    let opts = RunOptions { out: out.to_path_buf(), resume, cache: None, stop_after_checkpoints: stop };
    pipeline::run(&runs[0], &registry, &opts)
}

/// Every tensor of a safetensors file by name, as raw bytes (the header's key order is not stable, the data is).
fn tensors(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let bytes = fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
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
#[ignore = "over a minute on 2 cores; CI runs it with `cargo test --workspace -- --ignored`"]
fn a_killed_supervised_run_resumes_to_the_same_weights() {
    let _turn = take_turn();
    let tmp = tempfile::tempdir().unwrap();
    let whole = run(&tmp.path().join("whole"), false, None).unwrap();
    let accuracy = &whole.summary["test_accuracy"];
    for key in ["best", "last", "median_last20"] {
        let v = accuracy[key].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&v), "test_accuracy.{key} = {v}");
    }
    let weights = tmp.path().join("whole/train/weights.safetensors");
    assert!(weights.is_file() && tmp.path().join("whole/train/model.json").is_file());
    let epochs = fs::read_to_string(tmp.path().join("whole/train/metrics.jsonl")).unwrap().lines().count();
    assert_eq!(epochs, 3, "one metrics record per epoch");

    let cut = tmp.path().join("cut");
    let err = run(&cut, false, Some(1)).unwrap_err().to_string();
    assert!(err.contains("stopped after 1 checkpoints"), "{err}");
    let resumed = run(&cut, true, None).unwrap();
    assert!(resumed.reused.is_empty() || resumed.reused == vec![StageKind::Features]);
    assert_eq!(
        tensors(&cut.join("train/weights.safetensors")),
        tensors(&weights),
        "resumed weights must equal the uninterrupted run's bit for bit"
    );
    assert_eq!(resumed.summary["test_accuracy"], whole.summary["test_accuracy"]);
}

#[test]
#[ignore = "over a minute on 2 cores; CI runs it with `cargo test --workspace -- --ignored`"]
fn a_diverging_run_stops_with_a_clear_error_and_keeps_its_last_good_checkpoint() {
    let _turn = take_turn();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("nan");
    // Epoch 1 trains normally; from epoch 2 the learning rate overflows f32, so the weights become non-finite.
    let overrides = ["stages.train.schedule={lr: 0.05, milestones: [2], gamma: 1.0e300}".to_string()];
    let err = run_with(&out, false, None, &overrides).unwrap_err();
    assert!(matches!(err, relab_core::Error::NonFinite { .. }), "{err:?}");
    let message = err.to_string();
    let checkpoint = out.join("train/checkpoint");
    assert!(message.contains("train") && message.contains("epoch 2"), "{message}");
    assert!(message.contains(&checkpoint.display().to_string()), "the error names the checkpoint: {message}");
    let state: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(checkpoint.join("state.json")).unwrap()).unwrap();
    assert_eq!(state["state"]["epoch"], 1, "the last good checkpoint is epoch 1's: {state}");
    assert!(!out.join("train/weights.safetensors").exists(), "no final weights from a diverged run");
}
