//! The `imagenet` method in the pipeline on real Fashion-MNIST: the weights path is relative to the experiment file,
//! the features stage gets 2048-d features, and a rerun reads the encoder back from its stage folder.

mod support;

use std::path::Path;

use relab_core::artifact::Features;
use relab_core::component::StageKind;
use relab_core::experiment;
use relab_core::pipeline::{self, RunOptions};
use relab_core::registry::{Registry, Slot};
// Link the plugin's registration into this test.
use relab_plugin_imagenet_transfer as _;

const EXPERIMENT: &str = "\
seed: 3
dataset: { name: fashion-mnist, labels_per_class: 1, train_limit: 30, test_limit: 2 }
stages:
  pretrain: { plugin: imagenet, weights: weights/resnet50.safetensors, size: 32, batch_size: 4 }
";

#[test]
fn imagenet_features_through_the_pipeline() {
    assert!(
        Path::new("/usr/share/datasets/fashion-mnist").is_dir() || std::env::var_os("RELAB_DATA").is_some(),
        "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"
    );
    let registry = Registry::with_static().unwrap();
    assert!(registry.contains(Slot::Pretrain, "imagenet"));
    let tmp = tempfile::tempdir().unwrap();
    let experiments = tmp.path().join("experiments");
    std::fs::create_dir_all(experiments.join("weights")).unwrap();
    let weights = experiments.join("weights/resnet50.safetensors");
    support::write_safetensors(&weights, &support::resnet50_state_dict(21));

    let load = |features: &str| {
        let text = format!("{EXPERIMENT}  features: {{ output: {features} }}\n");
        experiment::load_str(&text, &experiments.join("imagenet.yaml"), &[], &registry).unwrap().remove(0)
    };
    let run = load("default");
    let resolved = &run.value["stages"]["pretrain"]["weights"];
    assert_eq!(resolved.as_str(), Some(weights.to_str().unwrap()), "relative to the experiment file");

    let out = tmp.path().join("run");
    let options = RunOptions { out: out.clone(), ..RunOptions::default() };
    let first = pipeline::run(&run, &registry, &options).unwrap();
    assert!(first.reused.is_empty());
    let features = Features::load(&out.join("features/features.npy")).unwrap();
    assert_eq!((features.rows, features.dim), (30, 2048));
    assert!(features.values.iter().all(|v| v.is_finite()));
    assert!(out.join("pretrain/imagenet.json").is_file());

    // Asking for the pooled output by name recomputes the features from the encoder read back from its folder.
    let second = pipeline::run(&load("pooled"), &registry, &options).unwrap();
    assert_eq!(second.reused, vec![StageKind::Pretrain]);
    let again = Features::load(&out.join("features/features.npy")).unwrap();
    assert_eq!(again.values, features.values);
}
