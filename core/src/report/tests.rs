//! The report's tests: a synthetic run's report, an unfinished run, the multi-run table and the axis ticks.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::summary::format_seconds;
use super::svg::{nice_ticks, tick_label};
use super::*;

fn run_dir(root: &Path, name: &str, seed: u64, summary: Value, extra_config: &str) -> PathBuf {
    let dir = root.join(format!("{name}-seed{seed}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("config.yaml"),
        format!("name: {name}\nseed: {seed}\ndevice: {seed}\ndataset:\n  name: cifar10\n  labels_per_class: 4\n{extra_config}"),
    )
    .unwrap();
    std::fs::write(dir.join("summary.json"), serde_json::to_string_pretty(&summary).unwrap()).unwrap();
    dir
}

#[test]
fn report_from_a_synthetic_run() {
    let root = tempfile::tempdir().unwrap();
    let dir = run_dir(
        root.path(),
        "c10",
        1,
        serde_json::json!({
            "propagation_accuracy": 0.9123,
            "subset_precision": 0.97,
            "knn_accuracy": 0.88,
            "test_accuracy": {"best": 0.95, "last": 0.94, "median_last20": 0.945, "swa": 0.951},
            "seconds": {"pretrain": 3725.0, "train": 61.5},
            "num_labeled": 40
        }),
        "",
    );
    let mut lines = Vec::new();
    for e in 0..30 {
        lines.push(serde_json::json!({"stage": "pretrain", "epoch": e, "loss": 5.0 / (1.0 + e as f64), "lr": 0.1}));
        if e % 10 == 9 {
            lines.push(serde_json::json!({"stage": "pretrain", "epoch": e, "knn_accuracy": 0.5 + e as f64 / 100.0}));
        }
    }
    lines.push(serde_json::json!({"stage": "select", "precision": 0.97, "per_class_precision": [1.0, 0.9, 0.95, 1.0], "per_class_count": [50, 50, 50, 50]}));
    for s in 0..5000 {
        lines.push(serde_json::json!({"stage": "train", "step": s, "loss": 1.0 / (1.0 + s as f64).sqrt()}));
    }
    for e in 0..4 {
        lines.push(serde_json::json!({"stage": "train", "epoch": e, "test_accuracy": 0.8 + e as f64 / 50.0}));
    }
    // A resume re-logged epoch 3 and the last line was cut by a kill.
    lines.push(serde_json::json!({"stage": "train", "epoch": 3, "test_accuracy": 0.9}));
    let mut text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    text.push_str("{\"stage\": \"train\", \"ep");
    std::fs::write(dir.join("metrics.jsonl"), text).unwrap();

    write_report(&dir).unwrap();
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("# Run report: c10"), "{md}");
    assert!(md.contains("| propagation accuracy | 91.23 % |"), "{md}");
    assert!(md.contains("| test accuracy, SWA | 95.10 % |"), "{md}");
    assert!(md.contains("| time: pretrain | 3725 s (1h 02m) |"), "{md}");
    assert!(md.contains("| num labeled | 40 |"), "{md}");
    assert!(md.find("propagation accuracy").unwrap() < md.find("test accuracy, best").unwrap());
    assert!(md.find("num labeled").unwrap() < md.find("time: pretrain").unwrap());
    assert!(md.contains("1 line(s)"), "{md}");
    for f in [
        "pretrain-loss.svg",
        "pretrain-lr.svg",
        "pretrain-knn_accuracy.svg",
        "train-loss.svg",
        "train-test_accuracy.svg",
        "select-per_class_precision.svg",
    ] {
        assert!(md.contains(&format!("(plots/{f})")), "{f} not linked:\n{md}");
        let svg = std::fs::read_to_string(dir.join("plots").join(f)).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"), "{f}");
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{f}:\n{svg}");
    }
    // select logs a single point without x: in the table, not plotted.
    assert!(md.contains("| precision | – | 1 | 97.00 % |"), "{md}");
    assert!(!dir.join("plots/select-precision.svg").exists());
    // The resumed epoch keeps the last value, and accuracies plot as %.
    let acc = std::fs::read_to_string(dir.join("plots/train-test_accuracy.svg")).unwrap();
    assert!(acc.contains("4 points · last 90.00 %"), "{acc}");
    assert!(acc.contains("test_accuracy (%)"));
    let loss = std::fs::read_to_string(dir.join("plots/train-loss.svg")).unwrap();
    assert!(loss.contains("points · last"), "{loss}");
    assert!(loss.matches("<circle").count() == 0, "5000 points are drawn as a line only");
    let bars = std::fs::read_to_string(dir.join("plots/select-per_class_precision.svg")).unwrap();
    assert_eq!(bars.matches("<rect x=").count(), 4);
    assert!(bars.contains("class 1: 90.00 %, 50 samples"), "{bars}");
    // Nothing half-written is left behind.
    assert!(std::fs::read_dir(&dir).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().starts_with('.')));
}

#[test]
fn ctaugment_rates_share_one_plot_per_stage() {
    let root = tempfile::tempdir().unwrap();
    let dir = run_dir(root.path(), "fm", 1, serde_json::json!({"test_accuracy": {"last": 0.8}}), "");
    let mut text = String::new();
    for e in 0..5 {
        // rotate falls from 1 to 0.6; invert stays at 1; the epoch's other metrics sit beside them.
        let line = serde_json::json!({
            "stage": "train", "epoch": e, "loss": 1.0 / (1.0 + e as f64),
            "cta/rotate": 1.0 - 0.1 * e as f64, "cta/invert": 1.0,
        });
        text.push_str(&format!("{line}\n"));
    }
    std::fs::write(dir.join("metrics.jsonl"), text).unwrap();
    write_report(&dir).unwrap();
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("#### CTAugment rates"), "{md}");
    assert!(md.contains("(plots/train-cta_rates.svg)"), "{md}");
    // No plot or table row per op, and the ops table lists the lowest last rate first.
    assert!(!md.contains("cta/") && !dir.join("plots/train-cta_rotate.svg").exists(), "{md}");
    assert!(md.contains("| loss | epoch | 5 |"), "{md}");
    assert!(md.find("| rotate | 0.600 | 0.600 |").unwrap() < md.find("| invert | 1.000 | 1.000 |").unwrap(), "{md}");
    let svg = std::fs::read_to_string(dir.join("plots/train-cta_rates.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<polyline").count(), 2, "{svg}");
    assert!(svg.contains(">rotate</text>") && svg.contains(">invert</text>"), "{svg}");
    assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
}

#[test]
fn report_of_an_unfinished_run() {
    let root = tempfile::tempdir().unwrap();
    write_report(root.path()).unwrap();
    let md = std::fs::read_to_string(root.path().join("report.md")).unwrap();
    assert!(md.contains("has not finished"), "{md}");
    assert!(write_report(&root.path().join("missing")).is_err());
    std::fs::write(root.path().join("summary.json"), "{ broken").unwrap();
    let e = write_report(root.path()).unwrap_err();
    assert!(matches!(e, Error::Format { .. }) && e.to_string().contains("summary.json"), "{e}");
}

#[test]
fn summary_table_rule_puts_colons_at_cell_ends() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_dir(dir.path(), "x", 1, serde_json::json!({"propagation_accuracy": 0.5}), "");
    let table = summary_table(&[run]).unwrap();
    let rule = table.lines().nth(1).unwrap();
    for cell in rule.trim_matches('|').split('|') {
        assert!(cell.chars().all(|c| c == '-' || c == ':'), "{rule}");
        assert!(!cell.trim_end_matches(':').contains(':'), "a colon inside a cell: {rule}");
    }
    assert_eq!(rule.len(), table.lines().next().unwrap().len(), "rule as wide as the header");
}

#[test]
fn summary_table_groups_seeds() {
    let root = tempfile::tempdir().unwrap();
    let mut dirs = Vec::new();
    for (seed, acc, prop) in [(1, 0.90, 0.80), (2, 0.92, 0.82), (3, 0.94, 0.84)] {
        dirs.push(run_dir(
            root.path(),
            "c10",
            seed,
            serde_json::json!({"propagation_accuracy": prop, "test_accuracy": {"best": acc, "last": acc}, "seconds": {"train": 10.0 * seed as f64}}),
            "",
        ));
    }
    // Same name but a different config: its own row.
    dirs.push(run_dir(
        root.path(),
        "c10",
        7,
        serde_json::json!({"propagation_accuracy": 0.5, "knn_accuracy": 0.7}),
        "stages:\n  select:\n    plugin: other\n",
    ));
    // Another experiment, one run.
    dirs.push(run_dir(root.path(), "c100", 1, serde_json::json!({"propagation_accuracy": 0.6}), ""));
    let unfinished = root.path().join("crashed");
    std::fs::create_dir_all(&unfinished).unwrap();
    dirs.push(unfinished);

    let table = summary_table(&dirs).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("| name") && lines[0].contains("propagation_accuracy (%)"), "{table}");
    assert!(lines[0].find("propagation_accuracy").unwrap() < lines[0].find("knn_accuracy").unwrap());
    assert!(lines[0].find("test_accuracy.last").unwrap() < lines[0].find("seconds.train").unwrap());
    let row = lines.iter().find(|l| l.starts_with("| c10 [1]")).expect(&table);
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    assert_eq!(&cells[2..4], &["3", "1,2,3"]);
    assert!(row.contains("82.00 ± 2.00"), "{row}"); // propagation accuracy
    assert!(row.contains("92.00 ± 2.00"), "{row}"); // test accuracy best and last
    assert!(row.contains("20.0 ± 10.0"), "{row}"); // seconds
    let other = lines.iter().find(|l| l.starts_with("| c10 [2]")).expect(&table);
    assert!(other.contains("50.00") && other.contains("70.00") && !other.contains('±'), "{other}");
    let single = lines.iter().find(|l| l.starts_with("| c100 ")).expect(&table);
    assert!(single.contains("60.00") && single.contains(" – "), "{single}");
    assert!(table.contains("c10 [2]: ") && table.contains("c10-seed7"), "{table}");
    assert!(table.contains("unfinished") && table.contains("crashed"), "{table}");
    // Every table line has the same width.
    let widths: Vec<usize> = lines.iter().take(5).map(|l| l.chars().count()).collect();
    assert!(widths.iter().all(|&w| w == widths[0]), "{table}");

    assert!(summary_table(&[]).is_err());
    assert!(summary_table(&[root.path().join("crashed")]).is_err());
}

#[test]
fn ticks_are_nice() {
    let (t, step) = nice_ticks(0.0, 0.95, 6);
    assert_eq!(step, 0.2);
    assert_eq!(t.first().copied(), Some(0.0));
    assert!((t.last().unwrap() - 1.0).abs() < 1e-12);
    let (t, _) = nice_ticks(3.0, 3.0, 6);
    assert!(t.len() >= 2 && t[0] < 3.0 && *t.last().unwrap() > 3.0);
    assert_eq!(tick_label(-0.0, 0.2), "0.0");
    assert_eq!(tick_label(2500.0, 500.0), "2500");
    assert_eq!(format_seconds(75.0), "75.0 s (1m 15s)");
}
