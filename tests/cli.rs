//! The `relab` binary as a user runs it.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

fn relab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_relab")).args(args).env("RUST_LOG", "warn").output().expect("relab runs")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn every_experiment_file_validates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
    let mut files = Vec::new();
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "yaml") {
                files.push(p.to_string_lossy().into_owned());
            }
        }
    }
    assert!(!files.is_empty());
    let mut args = vec!["validate"];
    args.extend(files.iter().map(String::as_str));
    let out = relab(&args);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn a_broken_experiment_names_file_line_and_column() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("broken.yaml");
    fs::write(&file, "name: broken\ndataset: { name: fashion-mnist, labels_per_class: 4 }\nstagez: {}\n").unwrap();
    let out = relab(&["validate", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let msg = text(&out);
    assert!(msg.contains("broken.yaml:3:1"), "{msg}");
    assert!(msg.contains("stages"), "suggests the nearest key: {msg}");
}

#[test]
fn an_unknown_plugin_lists_the_known_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("x.yaml");
    fs::write(
        &file,
        "dataset: { name: fashion-mnist, labels_per_class: 4 }\nstages:\n  propagate: { plugin: difusion }\n",
    )
    .unwrap();
    let out = relab(&["validate", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let msg = text(&out);
    assert!(msg.contains("difusion") && msg.contains("known"), "{msg}");
}

/// The four mistakes of issue 30 that `relab validate` once let through: each is refused (exit status ≠ 0) at the
/// offending key's file:line, and `relab run` refuses it before any stage runs.
#[test]
fn validate_refuses_what_would_fail_later_at_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        ("dataset: { name: cifar11 }\n", ":1:18: dataset.name: unknown value `cifar11`", "did you mean `cifar10`?"),
        ("dataset:\n  name: fashion-mnist\n  labels_per_class: 0\n", ":3:21: dataset.labels_per_class: ", "at least 1"),
        (
            "dataset: { name: fashion-mnist, labels_per_class: 4 }\nstages:\n  train:\n    plugin: supervised\n    \
             init: pretrain\n",
            ":5:5: stages.train.init: ",
            "has no pretrain stage",
        ),
        (
            "dataset: { name: fashion-mnist, labels_per_class: 4 }\nstages:\n  train:\n    plugin: pseudo-label\n    \
             init: pretrain\n",
            ":5:5: stages.train.init: ",
            "has no pretrain stage",
        ),
        (
            "dataset: { name: fashion-mnist, labels_per_class: 4 }\nstages:\n  train:\n    plugin: pseudo-label\n    \
             repropagate_after: [1]\n",
            ":5:5: stages.train.repropagate_after: ",
            "has no propagate stage",
        ),
        (
            "dataset: { name: fashion-mnist, labels_per_class: 4 }\nstages:\n  train:\n    plugin: pseudo-label\n    \
             initial_pseudo_labels: propagation\n",
            ":5:5: stages.train.initial_pseudo_labels: ",
            "has no propagate stage",
        ),
        (
            "dataset: { name: fashion-mnist, labels_per_class: 4 }\nstages:\n  train: { plugin: supervised, epochs: 0 }\n",
            ":3:40: stages.train.epochs: ",
            "at least 1",
        ),
    ];
    for (i, (yaml, at, says)) in cases.into_iter().enumerate() {
        let file = tmp.path().join(format!("case{i}.yaml"));
        fs::write(&file, yaml).unwrap();
        let out = relab(&["validate", file.to_str().unwrap()]);
        let msg = text(&out);
        assert!(!out.status.success(), "{yaml}: {msg}");
        assert!(msg.contains(&format!("case{i}.yaml{at}")) && msg.contains(says), "{yaml}: {msg}");
        let run = tmp.path().join(format!("run{i}"));
        let out = relab(&["run", file.to_str().unwrap(), "--out", run.to_str().unwrap()]);
        assert!(!out.status.success(), "{yaml}: {}", text(&out));
        assert!(text(&out).contains(&format!("case{i}.yaml{at}")), "{}", text(&out));
        assert!(!run.join("pretrain").exists() && !run.join("train").exists(), "no stage ran");
    }
}

#[test]
fn plugins_list_and_describe() {
    let out = relab(&["plugins", "list"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("stage"));
    let out = relab(&["plugins", "describe", "no-such-plugin"]);
    assert!(!out.status.success());
}

#[test]
fn data_check_reports_where_it_looked() {
    let out = relab(&["data", "check", "cifar10", "--root", "/nonexistent-relab-root"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("/nonexistent-relab-root"), "{}", text(&out));
}

#[test]
fn a_bad_command_line_fails() {
    assert!(!relab(&["frobnicate"]).status.success());
    assert!(!relab(&["run"]).status.success());
}

#[test]
fn cuda_on_a_build_without_it_is_a_clear_error_not_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("cuda.yaml");
    fs::write(
        &file,
        "backend: cuda\ndataset: { name: fashion-mnist, labels_per_class: 1, train_limit: 100, test_limit: 10 }\n",
    )
    .unwrap();
    let out = relab(&["run", file.to_str().unwrap(), "--out", tmp.path().join("o").to_str().unwrap(), "--no-cache"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let msg = text(&out);
    if cfg!(not(feature = "cuda")) {
        assert!(msg.contains("--features cuda"), "{msg}");
    }
    assert!(!msg.contains("panicked"), "{msg}");
}
