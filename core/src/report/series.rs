//! Metric series: the lines of a run's `metrics.jsonl` read as one series per (stage, metric), and the last
//! per-class precision logged.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value};

use super::summary::is_fraction;
use crate::{Error, Result};

/// Keys that are an x axis, in order of preference.
pub(super) const X_KEYS: &[&str] = &["step", "epoch", "kimg", "iteration", "iter"];
/// Keys of metrics.jsonl lines that are never plotted as metrics.
pub(super) const NOT_METRICS: &[&str] = &["stage", "time", "timestamp", "seed"];
pub(super) const PER_CLASS: &str = "per_class_precision";
pub(super) const PER_CLASS_COUNT: &str = "per_class_count";
/// More points than this are averaged into buckets before plotting.
pub(super) const MAX_POINTS: usize = 2000;

/// The parsed lines (objects with a string `stage`) and how many lines were skipped.
pub(super) fn read_metrics(path: &Path) -> Result<(Vec<Map<String, Value>>, usize)> {
    let text = match std::fs::read(path) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(Error::io(path, e)),
    };
    let mut records = Vec::new();
    let mut skipped = 0;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(m)) if m.get("stage").is_some_and(Value::is_string) => records.push(m),
            _ => skipped += 1,
        }
    }
    if skipped > 0 {
        tracing::warn!("{}: skipped {skipped} line(s) that are not JSON objects with a \"stage\"", path.display());
    }
    Ok((records, skipped))
}

pub(super) struct Series {
    pub(super) stage: String,
    pub(super) metric: String,
    /// The x axis key, or `None` when the lines carry none (then only the last value is reported).
    pub(super) x_key: Option<&'static str>,
    pub(super) points: Vec<(f64, f64)>,
    /// The metric's values in line order (finite ones), for the last/min/max table.
    pub(super) values: Vec<f64>,
}

pub(super) fn number(v: Option<&Value>) -> Option<f64> {
    v.and_then(Value::as_f64).filter(|x| x.is_finite())
}

/// One series per (stage, metric), stages and metrics in order of first appearance.
pub(super) fn collect_series(records: &[Map<String, Value>]) -> Vec<Series> {
    let mut order: Vec<(String, String)> = Vec::new();
    let mut lines: BTreeMap<(String, String), Vec<&Map<String, Value>>> = BTreeMap::new();
    for r in records {
        let stage = r["stage"].as_str().unwrap_or_default().to_string();
        for (k, v) in r {
            if X_KEYS.contains(&k.as_str()) || NOT_METRICS.contains(&k.as_str()) || !v.is_number() {
                continue;
            }
            let id = (stage.clone(), k.clone());
            let entry = lines.entry(id.clone()).or_default();
            if entry.is_empty() {
                order.push(id);
            }
            entry.push(r);
        }
    }
    order
        .into_iter()
        .map(|(stage, metric)| {
            let rs = &lines[&(stage.clone(), metric.clone())];
            let has = |k: &str| rs.iter().filter(|r| number(r.get(k)).is_some()).count();
            let x_key = X_KEYS
                .iter()
                .copied()
                .find(|k| has(k) == rs.len())
                .or_else(|| X_KEYS.iter().copied().filter(|k| has(k) > 0).max_by_key(|k| has(k)));
            let values: Vec<f64> = rs.iter().filter_map(|r| number(r.get(&metric))).collect();
            let mut points: Vec<(f64, f64)> = match x_key {
                Some(xk) => rs.iter().filter_map(|r| Some((number(r.get(xk))?, number(r.get(&metric))?))).collect(),
                None => Vec::new(),
            };
            // A resumed run logs some x again: keep the last value logged for each x.
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            let mut dedup: Vec<(f64, f64)> = Vec::with_capacity(points.len());
            for p in points {
                match dedup.last_mut() {
                    Some(last) if last.0 == p.0 => *last = p,
                    _ => dedup.push(p),
                }
            }
            Series { stage, metric, x_key, points: downsample(dedup), values }
        })
        .collect()
}

/// Averages consecutive points into buckets when there are too many to draw.
pub(super) fn downsample(points: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    if points.len() <= MAX_POINTS {
        return points;
    }
    let per = points.len().div_ceil(MAX_POINTS / 2);
    points
        .chunks(per)
        .map(|c| {
            let n = c.len() as f64;
            (c.iter().map(|p| p.0).sum::<f64>() / n, c.iter().map(|p| p.1).sum::<f64>() / n)
        })
        .collect()
}

/// The last per-class precision logged (with counts when given), and the stage that logged it.
pub(super) fn per_class(
    records: &[Map<String, Value>],
    summary: Option<&Value>,
) -> Option<(String, Vec<f64>, Option<Vec<f64>>)> {
    let arr = |v: Option<&Value>| -> Option<Vec<f64>> {
        let a = v?.as_array()?;
        let out: Vec<f64> = a.iter().map(|x| x.as_f64().unwrap_or(f64::NAN)).collect();
        (!out.is_empty()).then_some(out)
    };
    for r in records.iter().rev() {
        if let Some(p) = arr(r.get(PER_CLASS)) {
            let stage = r["stage"].as_str().unwrap_or("select").to_string();
            return Some((stage, p, arr(r.get(PER_CLASS_COUNT))));
        }
    }
    let s = summary?;
    let p = arr(s.get(PER_CLASS)).or_else(|| arr(s.get("subset_precision_per_class")))?;
    Some(("select".to_string(), p, arr(s.get(PER_CLASS_COUNT))))
}

pub(super) fn looks_fractional(metric: &str, values: &[f64]) -> bool {
    (is_fraction(metric) || metric.ends_with("acc")) && values.iter().all(|v| (0.0..=1.0).contains(v))
}
