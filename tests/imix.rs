//! The `imix` SSL method through the pipeline on a tiny Fashion-MNIST prefix: the stage folder holds the encoder a
//! learner can load, the features stage gets the output the encoder records (or the one asked for), and a run
//! killed after its first checkpoint resumes to the same weights.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use relab_core::artifact::npy;
use relab_core::burn::tensor::{Device, Tensor, TensorData};
use relab_core::data::augment::{Image, Resize};
use relab_core::experiment::{self, ResolvedRun};
use relab_core::nn::load_backbone;
use relab_core::pipeline::{self, RunOptions, RunOutcome};
use relab_core::registry::Registry;
use serde_json::Value;

// Link the binary's plugins into this test.
use relab as _;

/// 16 × 16 views of 28 × 28 images keep it cheap and make the features stage resize; `encoder: best` keeps both.
const EXPERIMENT: &str = "\
name: imix-tiny
seed: 3
dataset: { name: fashion-mnist, labels_per_class: 2, train_limit: 96, test_limit: 40 }
stages:
  pretrain:
    plugin: imix
    backbone: wrn10_2
    epochs: 3
    images_per_epoch: 48
    batch_size: 16
    projection_dim: 32
    schedule: { lr: 0.05, milestones: [2], gamma: 0.1 }
    augment: [{resized_crop: {size: 16}}, flip, color_jitter, grayscale]
    monitor_every: 2
    knn_k: 20
    encoder: best
    eval_batch_size: 50
  propagate: { plugin: nearest-seed }
";

fn resolve(set: &[&str]) -> (ResolvedRun, Registry) {
    assert!(
        Path::new("/usr/share/datasets/fashion-mnist").is_dir() || std::env::var_os("RELAB_DATA").is_some(),
        "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"
    );
    let registry = Registry::with_static().unwrap();
    let set: Vec<String> = set.iter().map(|s| s.to_string()).collect();
    let mut runs = experiment::load_str(EXPERIMENT, Path::new("imix.yaml"), &set, &registry).unwrap();
    (runs.remove(0), registry)
}

fn run(out: &Path, set: &[&str], resume: bool, stop: Option<u64>) -> relab_core::Result<RunOutcome> {
    let (resolved, registry) = resolve(set);
    let opts = RunOptions { out: out.to_path_buf(), resume, cache: None, stop_after_checkpoints: stop };
    pipeline::run(&resolved, &registry, &opts)
}

/// Every tensor of a safetensors file by name, as raw bytes.
fn tensors(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let bytes = fs::read(path).unwrap();
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

fn json(path: &Path) -> Value {
    serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn imix_stage_folder_features_and_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let whole_dir = tmp.path().join("whole");
    let whole = run(&whole_dir, &[], false, None).unwrap();
    let pretrain = whole_dir.join("pretrain");

    // Metrics: one record per epoch, the monitor after epochs 2 and 3, the rate cut at 0-based epoch 2.
    let metrics: Vec<Value> = fs::read_to_string(pretrain.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(metrics.len(), 3);
    assert_eq!(metrics.iter().map(|m| m["steps"].as_u64().unwrap()).collect::<Vec<_>>(), vec![3, 3, 3]);
    assert!(metrics[0].get("knn_accuracy").is_none() && metrics[1]["knn_accuracy"].is_f64());
    assert!((metrics[2]["lr"].as_f64().unwrap() - 0.005).abs() < 1e-12 && metrics[1]["lr"].as_f64() == Some(0.05));
    assert!(metrics.iter().all(|m| m["loss"].as_f64().unwrap().is_finite()));

    // Summary: the kept encoder is the best one, and its accuracy is the headline.
    let best = &whole.summary["knn_best"];
    let best_epoch = best["epoch"].as_u64().unwrap();
    assert!(best_epoch == 2 || best_epoch == 3, "{best}");
    assert_eq!(whole.summary["knn_accuracy"], best["accuracy"]);
    assert_eq!(metrics[best_epoch as usize - 1]["knn_accuracy"], best["accuracy"]);

    // The stage folder: the backbone a learner loads, the head, and the record of the default output.
    for dir in [pretrain.clone(), pretrain.join("best"), pretrain.join("last")] {
        for file in ["model.json", "weights.safetensors", "head.safetensors", "imix.json"] {
            assert!(dir.join(file).is_file(), "{} missing", dir.join(file).display());
        }
    }
    let record = json(&pretrain.join("imix.json"));
    assert_eq!(record["default_output"], "head");
    assert_eq!(record["image_size"], serde_json::json!([16, 16]));
    assert_eq!(record["epoch"].as_u64(), Some(best_epoch));
    assert_eq!(json(&pretrain.join("last/imix.json"))["epoch"].as_u64(), Some(3));
    assert_eq!(tensors(&pretrain.join("weights.safetensors")), tensors(&pretrain.join("best/weights.safetensors")));

    // Default features are the 32-d head output, unit rows.
    let (shape, head) = npy::read_f32(&whole_dir.join("features/features.npy")).unwrap();
    assert_eq!(shape, vec![96, 32]);
    let norm: f32 = head[..32].iter().map(|v| v * v).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4, "{norm}");
    assert!(whole.summary["propagation_accuracy"].as_f64().unwrap() > 0.0);

    // Asking for the pooled output reuses the trained encoder and gives the backbone's 128-d features, the same
    // as the saved backbone computes on the resized images (what a learner gets from `load_backbone`).
    let pooled = run(&whole_dir, &["stages.features.output=pooled"], false, None).unwrap();
    assert!(pooled.reused.contains(&relab_core::component::StageKind::Pretrain));
    let (shape, pooled) = npy::read_f32(&whole_dir.join("features/features.npy")).unwrap();
    assert_eq!(shape, vec![96, 128]);
    let device = Device::flex();
    let (backbone, config) = load_backbone(&pretrain, &device).unwrap();
    assert_eq!((config.in_channels, config.num_classes), (1, 10));
    let data = relab_core::data::load(&resolve(&[]).0.experiment.dataset).unwrap();
    let mut img = Resize { size: 16 }.apply(Image::from_u8(1, 28, 28, data.train.image(0)));
    img.normalise(&data.mean, &data.std);
    let x = Tensor::<4>::from_data(TensorData::new(img.data, [1, 1, 16, 16]), &device);
    let direct: Vec<f32> = backbone.forward_features(x).into_data().try_into_vec_as::<f32>().unwrap();
    assert!(direct.iter().zip(&pooled[..128]).all(|(a, b)| (a - b).abs() < 1e-4), "pooled features differ");

    // Killed after its first checkpoint and resumed: the same weights, head and accuracies.
    let cut = tmp.path().join("cut");
    let err = run(&cut, &[], false, Some(1)).unwrap_err().to_string();
    assert!(err.contains("stopped after 1 checkpoints"), "{err}");
    let resumed = run(&cut, &[], true, None).unwrap();
    for file in ["weights.safetensors", "head.safetensors", "last/weights.safetensors"] {
        assert_eq!(tensors(&cut.join("pretrain").join(file)), tensors(&pretrain.join(file)), "{file}");
    }
    assert_eq!(resumed.summary["knn_best"], whole.summary["knn_best"]);
    assert_eq!(resumed.summary["propagation_accuracy"], whole.summary["propagation_accuracy"]);
}
