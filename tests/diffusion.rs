//! The `diffusion` propagator and the features stage's PCA on real Fashion-MNIST (a 3000-image prefix): the
//! pipeline propagates 40 seed labels far better than chance, a changed `pca` recomputes the features while a
//! changed propagator reuses them, and `relab bench propagate` on the run's own files gives the pipeline's labels.

use std::path::Path;
use std::process::Command;

use relab_core::artifact::{Features, npy};
use relab_core::component::StageKind;
use relab_core::experiment;
use relab_core::pipeline::{self, RunOptions, RunOutcome};
use relab_core::registry::Registry;

// Link the binary's plugins into this test.
use relab as _;

const N: usize = 3000;

fn experiment(pca: usize, k: usize) -> String {
    format!(
        "name: diffusion-tiny\nseed: 1\n\
         dataset: {{ name: fashion-mnist, labels_per_class: 4, train_limit: {N}, test_limit: 10 }}\n\
         stages:\n  features: {{ source: pixels, pca: {pca} }}\n  propagate: {{ plugin: diffusion, k: {k} }}\n"
    )
}

fn run(out: &Path, text: &str) -> RunOutcome {
    assert!(
        Path::new("/usr/share/datasets/fashion-mnist").is_dir() || std::env::var_os("RELAB_DATA").is_some(),
        "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"
    );
    let registry = Registry::with_static().unwrap();
    let runs = experiment::load_str(text, Path::new("diffusion.yaml"), &[], &registry).unwrap();
    let opts = RunOptions { out: out.to_path_buf(), resume: false, cache: None, stop_after_checkpoints: None };
    pipeline::run(&runs[0], &registry, &opts).unwrap()
}

#[test]
fn pixel_pca_diffusion_through_the_pipeline_and_the_bench() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let first = run(&out, &experiment(32, 20));
    let accuracy = first.summary["propagation_accuracy"].as_f64().unwrap();
    // 10 classes: chance is 10%; 40 labels on pixels reach about 60% on this prefix.
    assert!(accuracy > 0.5, "propagation accuracy {accuracy}");
    let features = Features::load(&out.join("features/features.npy")).unwrap();
    assert_eq!((features.rows, features.dim), (N, 32));
    assert!(out.join("propagate/labels_relab.npz").is_file());
    let metrics = std::fs::read_to_string(out.join("propagate/metrics.jsonl")).unwrap();
    let record: serde_json::Value = serde_json::from_str(metrics.lines().next().unwrap()).unwrap();
    for phase in ["normalise_whiten", "knn", "graph", "cg"] {
        assert!(record["phase_seconds"][phase].as_f64().unwrap() >= 0.0, "{phase} in {record}");
    }
    assert_eq!(record["cg_iterations"].as_array().unwrap().len(), 10);

    // Another propagator setting reuses the features; another PCA size recomputes them.
    let second = run(&out, &experiment(32, 25));
    assert_eq!(second.reused, vec![StageKind::Features]);
    let third = run(&out, &experiment(16, 25));
    assert!(third.reused.is_empty(), "pca 16 must not reuse the pca 32 features: {:?}", third.reused);
    assert_eq!(Features::load(&out.join("features/features.npy")).unwrap().dim, 16);

    // The bench on the run's files (features, seeds, the prefix's true labels) gives the pipeline's labels.
    let data: relab_core::experiment::DatasetConfig =
        serde_yaml::from_str(&format!("{{ name: fashion-mnist, train_limit: {N} }}")).unwrap();
    let truth: Vec<i64> =
        relab_core::data::load(&data).unwrap().train.labels.unwrap().iter().map(|&l| l as i64).collect();
    let labels = tmp.path().join("labels.npy");
    npy::write_i64(&labels, &[N], &truth).unwrap();
    let bench_out = tmp.path().join("bench");
    let arg = |p: &Path| p.to_string_lossy().into_owned();
    let output = Command::new(env!("CARGO_BIN_EXE_relab"))
        .args(["bench", "propagate", "--k", "25", "--features", &arg(&out.join("features/features.npy"))])
        .args(["--labels", &arg(&labels), "--seeds", &arg(&out.join("seeds.npy"))])
        .args(["--compare", &arg(&out.join("propagate/labels.npy")), "--out", &arg(&bench_out)])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let line: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(line["agreement"].as_f64(), Some(1.0), "{line}");
    assert_eq!(line["n"].as_u64(), Some(N as u64));
    assert_eq!(line["classes"].as_u64(), Some(10));
    assert!(
        (line["accuracy"].as_f64().unwrap() - third.summary["propagation_accuracy"].as_f64().unwrap()).abs() < 1e-12
    );
    for phase in ["normalise_whiten", "knn", "graph", "cg", "total"] {
        assert!(line["seconds"][phase].is_number(), "{phase} missing in {line}");
    }
    let (_, propagated) = npy::read_i64(&bench_out.join("propagated.npy")).unwrap();
    let (_, pipeline_labels) = npy::read_i64(&out.join("propagate/labels.npy")).unwrap();
    assert_eq!(propagated, pipeline_labels);
}
