//! The sweep report on hand-made run folders with known numbers: groups, exact means and sample stds, the CSV, the
//! averaged curves, the group names and the TensorBoard scalars.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::band::{BandPoint, average};
use super::series::read_metrics;
use super::sweep::distinguishing_names;
use super::tensorboard::scalars;
use super::write_sweep_report;
use crate::formats::tfevents::Scalar;

/// A finished run folder: its config (seed, learning rate), summary and one metrics line per (epoch, accuracy, loss).
fn run(root: &Path, folder: &str, seed: u64, lr: f64, last: f64, curve: &[(u64, f64, f64)]) -> PathBuf {
    let dir = root.join(folder);
    fs::create_dir_all(&dir).unwrap();
    let config = format!(
        "name: tiny\nseed: {seed}\ndataset: {{name: fashion-mnist}}\nstages:\n  train: {{plugin: supervised, lr: {lr}}}\n"
    );
    fs::write(dir.join("config.yaml"), config).unwrap();
    let summary = json!({"test_accuracy": {"last": last}, "seconds": {"train": 2.0}});
    fs::write(dir.join("summary.json"), summary.to_string()).unwrap();
    let lines: Vec<String> = curve
        .iter()
        .map(|&(epoch, acc, loss)| {
            json!({"stage": "train", "epoch": epoch, "test_accuracy": acc, "loss": loss, "time": 100.0 + epoch as f64})
                .to_string()
        })
        .collect();
    fs::write(dir.join("metrics.jsonl"), lines.join("\n") + "\n").unwrap();
    dir
}

#[test]
fn groups_by_all_but_the_seed_with_exact_mean_std_and_count() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let dirs = vec![
        run(root, "a1", 1, 0.1, 0.25, &[(1, 0.25, 2.0), (2, 0.25, 1.0)]),
        run(root, "b1", 1, 0.2, 0.5, &[(1, 0.5, 2.5), (2, 0.5, 1.5)]),
        run(root, "a2", 2, 0.1, 0.5, &[(1, 0.5, 2.0), (2, 0.5, 1.0)]),
        run(root, "a3", 3, 0.1, 0.75, &[(1, 0.75, 2.0), (2, 0.75, 1.0)]),
        run(root, "b2", 2, 0.2, 0.5, &[(1, 0.5, 2.5), (2, 0.5, 1.5)]),
        root.join("unfinished"),
    ];
    fs::create_dir_all(&dirs[5]).unwrap();
    let report = write_sweep_report(root, &dirs).unwrap();

    // Group a: 0.25, 0.5, 0.75 → mean 0.5, sample std 0.25; group b: 0.5, 0.5 → mean 0.5, std 0.
    let lines: Vec<&str> = report.table.lines().collect();
    assert_eq!(lines[0], "| group | runs | seeds | test_accuracy.last (%) | seconds.train |");
    assert_eq!(lines[2], "| stages.train.lr=0.1 | 3 | 1 2 3 | 50.00 ± 25.00 | 2.0 ± 0.0 |");
    assert_eq!(lines[3], "| stages.train.lr=0.2 | 2 | 1 2 | 50.00 ± 0.00 | 2.0 ± 0.0 |");
    let csv = fs::read_to_string(root.join("summary.csv")).unwrap();
    assert_eq!(
        csv,
        "group,runs,seeds,test_accuracy.last.mean,test_accuracy.last.std,test_accuracy.last.n,\
         seconds.train.mean,seconds.train.std,seconds.train.n\n\
         stages.train.lr=0.1,3,1 2 3,0.5,0.25,3,2,0,3\n\
         stages.train.lr=0.2,2,1 2,0.5,0,2,2,0,2\n"
    );
    let md = fs::read_to_string(root.join("report.md")).unwrap();
    assert!(md.starts_with("# Sweep report: tiny\n\n5 finished run(s) in 2 group(s)"), "{md}");
    assert!(md.contains("Not finished, not counted: unfinished"), "{md}");
    for plot in ["train-test_accuracy.svg", "train-loss.svg"] {
        let svg = fs::read_to_string(root.join("plots").join(plot)).unwrap();
        assert!(md.contains(&format!("(plots/{plot})")), "{md}");
        assert_eq!(svg.matches("<polygon").count(), 2, "one band per group in {plot}");
        assert!(svg.contains("<title>stages.train.lr=0.2</title>"), "{svg}");
    }
    for dir in &dirs[..5] {
        assert!(dir.join(super::EVENT_FILE).is_file());
        assert!(report.files.contains(&dir.join(super::EVENT_FILE)));
    }
    assert!(!dirs[5].join(super::EVENT_FILE).exists());
}

#[test]
fn curves_average_per_x_over_the_runs_that_have_it() {
    let band = average(&[vec![(1.0, 0.25), (2.0, 0.5)], vec![(1.0, 0.75), (2.0, 0.5)], vec![(1.0, 0.5)]]);
    assert_eq!(
        band,
        [BandPoint { x: 1.0, mean: 0.5, std: 0.25, runs: 3 }, BandPoint { x: 2.0, mean: 0.5, std: 0.0, runs: 2 }]
    );
    let negative = average(&[vec![(-1.0, 1.0), (0.5, 2.0), (-3.0, 3.0)]]);
    assert_eq!(negative.iter().map(|p| p.x).collect::<Vec<_>>(), [-3.0, -1.0, 0.5]);
}

#[test]
fn groups_are_named_by_the_keys_that_tell_them_apart_a_plugin_swap_by_the_plugin_alone() {
    let leaves = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let names = distinguishing_names(&[
        leaves(&[("name", "x"), ("stages.train.plugin", "fixmatch"), ("stages.train.mu", "7"), ("k", "1")]),
        leaves(&[("name", "x"), ("stages.train.plugin", "supervised"), ("stages.train.epochs", "3"), ("k", "1")]),
        leaves(&[("name", "x"), ("stages.train.plugin", "supervised"), ("stages.train.epochs", "3"), ("k", "2")]),
    ]);
    assert_eq!(
        names,
        [
            "stages.train.plugin=fixmatch, k=1",
            "stages.train.plugin=supervised, k=1",
            "stages.train.plugin=supervised, k=2"
        ]
    );
}

#[test]
fn tensorboard_scalars_are_the_numeric_fields_per_stage_at_the_lines_step() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("metrics.jsonl");
    fs::write(
        &path,
        "{\"stage\":\"select\",\"precision\":0.9,\"per_class_precision\":[1,0.8]}\n\
         {\"stage\":\"train\",\"epoch\":3,\"loss\":1.5,\"time\":12.5,\"lr\":0.1}\n\
         {\"stage\":\"train\",\"kimg\":0.5,\"loss\":0.25}\n",
    )
    .unwrap();
    let (records, _) = read_metrics(&path).unwrap();
    let s = |tag: &str, step, value, wall_time| Scalar { tag: tag.into(), step, value, wall_time };
    assert_eq!(
        scalars(&records),
        [
            s("select/precision", 0, 0.9, 0.0),
            s("train/loss", 3, 1.5, 12.5),
            s("train/lr", 3, 0.1, 12.5),
            // kimg 0.5 is no step: the line's position among the stage's lines.
            s("train/loss", 1, 0.25, 0.0),
        ]
    );
}

#[test]
fn draws_of_the_labels_are_seeds_too_one_group_named_seed_slash_labels_seed() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let mut dirs = Vec::new();
    for (labels_seed, acc) in [(1, 0.25), (2, 0.5), (3, 0.75)] {
        let dir = run(root, &format!("d{labels_seed}"), 2, 0.1, acc, &[(1, acc, 1.0)]);
        let config = fs::read_to_string(dir.join("config.yaml")).unwrap();
        let config =
            config.replace("{name: fashion-mnist}", &format!("{{name: fashion-mnist, labels_seed: {labels_seed}}}"));
        fs::write(dir.join("config.yaml"), config).unwrap();
        dirs.push(dir);
    }
    let report = write_sweep_report(root, &dirs).unwrap();
    let lines: Vec<&str> = report.table.lines().collect();
    assert_eq!(lines[2], "| tiny | 3 | 2/1 2/2 2/3 | 50.00 ± 25.00 | 2.0 ± 0.0 |", "{}", report.table);
    let table = super::summary_table(&dirs).unwrap();
    assert!(table.contains(" 3 ") && table.contains("2/1,2/2,2/3"), "{table}");
}
