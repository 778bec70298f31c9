//! The run summary: the numeric leaves of a run's `summary.json` in report order, their labels and formats, and
//! the run folder's `config.yaml`.

use std::path::Path;

use serde_json::Value;

use crate::{Error, Result};

/// Preferred order of the headline numbers; others follow, timings last.
pub(super) const KNOWN: &[(&str, &str)] = &[
    ("propagation_accuracy", "propagation accuracy"),
    ("subset_precision", "reliable-subset precision"),
    ("knn_accuracy", "kNN accuracy"),
    ("test_accuracy.best", "test accuracy, best"),
    ("test_accuracy.last", "test accuracy, last"),
    ("test_accuracy.median_last20", "test accuracy, median of last 20"),
    ("test_accuracy.swa", "test accuracy, SWA"),
    ("test_accuracy.ema", "test accuracy, EMA"),
];

pub(super) fn is_fraction(key: &str) -> bool {
    key.contains("accuracy") || key.contains("precision")
}

pub(super) fn is_seconds(key: &str) -> bool {
    key.contains("seconds")
}

pub(super) fn rank(key: &str) -> usize {
    match KNOWN.iter().position(|(k, _)| *k == key) {
        Some(i) => i,
        None if is_seconds(key) => 2000,
        None => 1000,
    }
}

pub(super) fn label(key: &str) -> String {
    if let Some((_, l)) = KNOWN.iter().find(|(k, _)| *k == key) {
        return l.to_string();
    }
    if let Some(stage) = key.strip_prefix("seconds.") {
        return format!("time: {stage}");
    }
    key.replace('_', " ")
}

pub(super) fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, f64)>) {
    match v {
        Value::Number(n) => {
            if let Some(x) = n.as_f64() {
                out.push((prefix.to_string(), x));
            }
        }
        Value::Object(m) => {
            for (k, v) in m {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&key, v, out);
            }
        }
        _ => {}
    }
}

/// The numeric leaves of `summary.json` in report order; `None` when the file does not exist.
/// `summary.json` as parsed, and its numeric leaves in report order.
pub(super) type Summary = (Value, Vec<(String, f64)>);

pub(super) fn read_summary(path: &Path) -> Result<Option<Summary>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    let value: Value = serde_json::from_str(&text).map_err(|e| Error::format(path, format!("not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(Error::format(path, "expected a JSON object of headline numbers"));
    }
    let mut numbers = Vec::new();
    flatten("", &value, &mut numbers);
    numbers.sort_by_key(|(k, _)| rank(k)); // stable: the file's order within a rank
    Ok(Some((value, numbers)))
}

pub(super) fn format_value(key: &str, v: f64) -> String {
    if is_fraction(key) {
        format!("{:.2} %", v * 100.0)
    } else if is_seconds(key) {
        format_seconds(v)
    } else {
        format_number(v)
    }
}

pub(super) fn format_seconds(s: f64) -> String {
    if s >= 3600.0 {
        format!("{s:.0} s ({}h {:02}m)", (s / 3600.0).floor(), ((s % 3600.0) / 60.0).floor())
    } else if s >= 60.0 {
        format!("{s:.1} s ({}m {:02}s)", (s / 60.0).floor(), (s % 60.0).floor())
    } else {
        format!("{s:.2} s")
    }
}

pub(super) fn format_number(v: f64) -> String {
    if v == v.trunc() && v.abs() < 1e12 {
        format!("{v:.0}")
    } else if v.abs() >= 1e5 || v.abs() < 1e-3 {
        format!("{v:.4e}")
    } else {
        format!("{v:.4}")
    }
}

pub(super) fn dir_name(dir: &Path) -> String {
    dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| dir.display().to_string())
}

pub(super) fn read_config(path: &Path) -> Result<Option<serde_yaml::Value>> {
    match std::fs::read_to_string(path) {
        Ok(t) => serde_yaml::from_str(&t).map(Some).map_err(|e| Error::format(path, format!("not valid YAML: {e}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}
