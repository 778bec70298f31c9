//! Run reports.
//!
//! [`write_report`] turns one run folder into `report.md` with hand-written SVG plots under `plots/`: a table of the
//! headline numbers of `summary.json`, a line plot per (stage, metric) series of `metrics.jsonl`, and a bar chart of
//! the per-class precision of the reliable subset. [`summary_table`] turns many run folders into one text table, runs
//! that differ only by seed grouped as mean ± std (what `relab report RUN_DIR...` prints).
//!
//! `summary.json` is read generically: every numeric leaf is a number, named by its dotted path
//! (`test_accuracy.median_last20`, `seconds.pretrain`). Numbers whose name mentions `accuracy` or `precision` are
//! fractions and shown as percentages; names mentioning `seconds` are durations. The usual ones come first:
//! `propagation_accuracy`, `subset_precision`, `knn_accuracy`, `test_accuracy.{best,last,median_last20,swa,ema}`,
//! then any others, then the timings.
//!
//! `metrics.jsonl` holds one JSON object per line with a `"stage"` string; numeric fields are metric values, plotted
//! against `step` (or `epoch`, `kimg`, `iteration`) when the line has one. A `"per_class_precision"` array (with an
//! optional `"per_class_count"` array) gives the bar chart. Lines that do not parse (e.g. the last line of a killed
//! run) are skipped and counted in the report.
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::formats::atomic;
use crate::{Error, Result};

/// Preferred order of the headline numbers; others follow, timings last.
const KNOWN: &[(&str, &str)] = &[
    ("propagation_accuracy", "propagation accuracy"),
    ("subset_precision", "reliable-subset precision"),
    ("knn_accuracy", "kNN accuracy (SSL features)"),
    ("test_accuracy.best", "test accuracy, best"),
    ("test_accuracy.last", "test accuracy, last"),
    ("test_accuracy.median_last20", "test accuracy, median of last 20"),
    ("test_accuracy.swa", "test accuracy, SWA"),
    ("test_accuracy.ema", "test accuracy, EMA"),
];

/// Keys that are an x axis, in order of preference.
const X_KEYS: &[&str] = &["step", "epoch", "kimg", "iteration", "iter"];
/// Keys of metrics.jsonl lines that are never plotted as metrics.
const NOT_METRICS: &[&str] = &["stage", "time", "timestamp", "seed"];
const PER_CLASS: &str = "per_class_precision";
const PER_CLASS_COUNT: &str = "per_class_count";
/// More points than this are averaged into buckets before plotting.
const MAX_POINTS: usize = 2000;

// -------------------------------------------------------------------------------------------------------------------
// Summary numbers
// -------------------------------------------------------------------------------------------------------------------

fn is_fraction(key: &str) -> bool {
    key.contains("accuracy") || key.contains("precision")
}

fn is_seconds(key: &str) -> bool {
    key.contains("seconds")
}

fn rank(key: &str) -> usize {
    match KNOWN.iter().position(|(k, _)| *k == key) {
        Some(i) => i,
        None if is_seconds(key) => 2000,
        None => 1000,
    }
}

fn label(key: &str) -> String {
    if let Some((_, l)) = KNOWN.iter().find(|(k, _)| *k == key) {
        return l.to_string();
    }
    if let Some(stage) = key.strip_prefix("seconds.") {
        return format!("time: {stage}");
    }
    key.replace('_', " ")
}

fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, f64)>) {
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
type Summary = (Value, Vec<(String, f64)>);

fn read_summary(path: &Path) -> Result<Option<Summary>> {
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

fn format_value(key: &str, v: f64) -> String {
    if is_fraction(key) {
        format!("{:.2} %", v * 100.0)
    } else if is_seconds(key) {
        format_seconds(v)
    } else {
        format_number(v)
    }
}

fn format_seconds(s: f64) -> String {
    if s >= 3600.0 {
        format!("{s:.0} s ({}h {:02}m)", (s / 3600.0).floor(), ((s % 3600.0) / 60.0).floor())
    } else if s >= 60.0 {
        format!("{s:.1} s ({}m {:02}s)", (s / 60.0).floor(), (s % 60.0).floor())
    } else {
        format!("{s:.2} s")
    }
}

fn format_number(v: f64) -> String {
    if v == v.trunc() && v.abs() < 1e12 {
        format!("{v:.0}")
    } else if v.abs() >= 1e5 || v.abs() < 1e-3 {
        format!("{v:.4e}")
    } else {
        format!("{v:.4}")
    }
}

// -------------------------------------------------------------------------------------------------------------------
// metrics.jsonl
// -------------------------------------------------------------------------------------------------------------------

/// The parsed lines (objects with a string `stage`) and how many lines were skipped.
fn read_metrics(path: &Path) -> Result<(Vec<Map<String, Value>>, usize)> {
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

struct Series {
    stage: String,
    metric: String,
    /// The x axis key, or `None` when the lines carry none (then only the last value is reported).
    x_key: Option<&'static str>,
    points: Vec<(f64, f64)>,
    /// The metric's values in line order (finite ones), for the last/min/max table.
    values: Vec<f64>,
}

fn number(v: Option<&Value>) -> Option<f64> {
    v.and_then(Value::as_f64).filter(|x| x.is_finite())
}

/// One series per (stage, metric), stages and metrics in order of first appearance.
fn collect_series(records: &[Map<String, Value>]) -> Vec<Series> {
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
fn downsample(points: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
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
fn per_class(records: &[Map<String, Value>], summary: Option<&Value>) -> Option<(String, Vec<f64>, Option<Vec<f64>>)> {
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

// -------------------------------------------------------------------------------------------------------------------
// SVG
// -------------------------------------------------------------------------------------------------------------------

const W: f64 = 640.0;
const H: f64 = 380.0;
const ML: f64 = 76.0;
const MR: f64 = 24.0;
const MT: f64 = 48.0;
const MB: f64 = 52.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn nice_num(x: f64, round: bool) -> f64 {
    let exp = x.log10().floor();
    let f = x / 10f64.powf(exp);
    let nf = if round {
        if f < 1.5 {
            1.0
        } else if f < 3.0 {
            2.0
        } else if f < 7.0 {
            5.0
        } else {
            10.0
        }
    } else if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    nf * 10f64.powf(exp)
}

/// Tick positions covering `[lo, hi]` at a 1/2/5 × 10^k step; the first and last are the axis limits.
fn nice_ticks(mut lo: f64, mut hi: f64, target: usize) -> (Vec<f64>, f64) {
    if !(lo.is_finite() && hi.is_finite()) {
        return (vec![0.0, 1.0], 1.0);
    }
    if hi <= lo {
        let d = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        lo -= d;
        hi += d;
    }
    let range = nice_num(hi - lo, false);
    let step = nice_num(range / (target.max(2) - 1) as f64, true);
    let start = (lo / step).floor() * step;
    let end = (hi / step).ceil() * step;
    let n = ((end - start) / step).round() as usize;
    ((0..=n).map(|i| start + i as f64 * step).collect(), step)
}

fn tick_label(v: f64, step: f64) -> String {
    if v.abs() >= 1e6 || (step < 1e-4 && v != 0.0) {
        return format!("{v:.1e}");
    }
    let decimals = (-step.log10().floor()).clamp(0.0, 6.0) as usize;
    let s = format!("{v:.decimals$}");
    if s.starts_with('-') && s.trim_start_matches(['-', '0', '.']).is_empty() { s[1..].to_string() } else { s }
}

fn svg_open(out: &mut String, w: f64, h: f64, title: &str, subtitle: &str) {
    let _ = writeln!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"##
    );
    let _ = writeln!(out, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
    let _ = writeln!(
        out,
        r##"<text x="{}" y="20" text-anchor="middle" font-size="15" font-weight="bold">{}</text>"##,
        w / 2.0,
        esc(title)
    );
    if !subtitle.is_empty() {
        let _ = writeln!(
            out,
            r##"<text x="{}" y="37" text-anchor="middle" font-size="11" fill="#555555">{}</text>"##,
            w / 2.0,
            esc(subtitle)
        );
    }
}

/// Y axis (grid, ticks, labels, title) for values mapped by `sy`.
/// Charts are all `H` high; `w` is the chart's width.
fn y_axis(out: &mut String, w: f64, ticks: &[f64], step: f64, scale: f64, y_label: &str, sy: &dyn Fn(f64) -> f64) {
    for &t in ticks {
        let y = sy(t);
        let _ = writeln!(out, r##"<line x1="{ML}" y1="{y:.2}" x2="{:.2}" y2="{y:.2}" stroke="#e6e6e6"/>"##, w - MR);
        let _ = writeln!(out, r##"<line x1="{:.2}" y1="{y:.2}" x2="{ML}" y2="{y:.2}" stroke="#333333"/>"##, ML - 5.0);
        let _ = writeln!(
            out,
            r##"<text x="{:.2}" y="{y:.2}" dy="0.35em" text-anchor="end">{}</text>"##,
            ML - 8.0,
            esc(&tick_label(t * scale, step * scale))
        );
    }
    let cy = (MT + H - MB) / 2.0;
    let _ = writeln!(
        out,
        r##"<text x="16" y="{cy:.2}" text-anchor="middle" transform="rotate(-90 16 {cy:.2})">{}</text>"##,
        esc(y_label)
    );
}

fn frame(out: &mut String, w: f64, h: f64, x_label: &str) {
    let _ = writeln!(out, r##"<path d="M{ML},{MT} V{:.2} H{:.2}" fill="none" stroke="#333333"/>"##, h - MB, w - MR);
    let _ = writeln!(
        out,
        r##"<text x="{:.2}" y="{:.2}" text-anchor="middle">{}</text>"##,
        (ML + w - MR) / 2.0,
        h - 10.0,
        esc(x_label)
    );
}

/// A line plot of `points` (sorted by x). `percent` shows fractions as percentages.
fn line_svg(title: &str, x_label: &str, y_label: &str, points: &[(f64, f64)], percent: bool) -> String {
    let scale = if percent { 100.0 } else { 1.0 };
    let (xmin, xmax) = points.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (ymin, ymax) = points.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| (a.min(p.1), b.max(p.1)));
    let (xt, xstep) = nice_ticks(xmin, xmax, 7);
    let (yt, ystep) = nice_ticks(ymin, ymax, 6);
    let (x0, x1) = (xt[0], xt[xt.len() - 1]);
    let (y0, y1) = (yt[0], yt[yt.len() - 1]);
    let sx = |x: f64| ML + (x - x0) / (x1 - x0) * (W - ML - MR);
    let sy = |y: f64| (H - MB) - (y - y0) / (y1 - y0) * (H - MT - MB);

    let fmt = |v: f64| {
        if percent { format!("{:.2} %", v * 100.0) } else { format_number(v) }
    };
    let last = points.last().map(|p| p.1).unwrap_or(f64::NAN);
    let subtitle = format!("{} points · last {} · min {} · max {}", points.len(), fmt(last), fmt(ymin), fmt(ymax));
    let mut out = String::new();
    svg_open(&mut out, W, H, title, &subtitle);
    y_axis(&mut out, W, &yt, ystep, scale, y_label, &sy);
    for &t in &xt {
        let x = sx(t);
        let _ = writeln!(out, r##"<line x1="{x:.2}" y1="{MT}" x2="{x:.2}" y2="{:.2}" stroke="#f0f0f0"/>"##, H - MB);
        let _ = writeln!(
            out,
            r##"<line x1="{x:.2}" y1="{:.2}" x2="{x:.2}" y2="{:.2}" stroke="#333333"/>"##,
            H - MB,
            H - MB + 5.0
        );
        let _ = writeln!(
            out,
            r##"<text x="{x:.2}" y="{:.2}" text-anchor="middle">{}</text>"##,
            H - MB + 18.0,
            esc(&tick_label(t, xstep))
        );
    }
    frame(&mut out, W, H, x_label);
    let pts: Vec<String> = points.iter().map(|&(x, y)| format!("{:.2},{:.2}", sx(x), sy(y))).collect();
    let _ = writeln!(
        out,
        r##"<polyline fill="none" stroke="#1f77b4" stroke-width="1.6" stroke-linejoin="round" points="{}"/>"##,
        pts.join(" ")
    );
    if points.len() <= 60 {
        for &(x, y) in points {
            let _ = writeln!(out, r##"<circle cx="{:.2}" cy="{:.2}" r="2.5" fill="#1f77b4"/>"##, sx(x), sy(y));
        }
    }
    out.push_str("</svg>\n");
    out
}

/// A bar chart of per-class precision (fractions), with the sample count of each class in its tooltip.
fn bar_svg(title: &str, values: &[f64], counts: Option<&[f64]>) -> String {
    let n = values.len();
    let w = (ML + MR + 14.0 * n as f64).max(W);
    let plot_w = w - ML - MR;
    let band = plot_w / n as f64;
    let sy = |y: f64| (H - MB) - y * (H - MT - MB);
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let mean = finite.iter().sum::<f64>() / finite.len().max(1) as f64;
    let worst = finite.iter().copied().fold(f64::INFINITY, f64::min);
    let subtitle = format!("{n} classes · mean {:.2} % · lowest {:.2} %", mean * 100.0, worst * 100.0);
    let mut out = String::new();
    svg_open(&mut out, w, H, title, &subtitle);
    let ticks: Vec<f64> = (0..=5).map(|i| i as f64 * 0.2).collect();
    y_axis(&mut out, w, &ticks, 0.2, 100.0, "precision (%)", &sy);
    let label_every = (n as f64 / 25.0).ceil().max(1.0) as usize;
    for (c, &v) in values.iter().enumerate() {
        let x = ML + c as f64 * band;
        if v.is_finite() {
            let v = v.clamp(0.0, 1.0);
            let count = counts.and_then(|cs| cs.get(c)).map(|k| format!(", {k} samples")).unwrap_or_default();
            let _ = writeln!(
                out,
                r##"<rect x="{:.2}" y="{:.2}" width="{:.2}" height="{:.2}" fill="#2ca02c"><title>class {c}: {:.2} %{count}</title></rect>"##,
                x + band * 0.1,
                sy(v),
                band * 0.8,
                (H - MB) - sy(v),
                v * 100.0
            );
        }
        if c % label_every == 0 {
            let _ = writeln!(
                out,
                r##"<text x="{:.2}" y="{:.2}" text-anchor="middle" font-size="10">{c}</text>"##,
                x + band / 2.0,
                H - MB + 16.0
            );
        }
    }
    if !finite.is_empty() {
        let y = sy(mean);
        let _ = writeln!(
            out,
            r##"<line x1="{ML}" y1="{y:.2}" x2="{:.2}" y2="{y:.2}" stroke="#d62728" stroke-dasharray="5,4"><title>mean {:.2} %</title></line>"##,
            w - MR,
            mean * 100.0
        );
    }
    frame(&mut out, w, H, "class");
    out.push_str("</svg>\n");
    out
}

fn file_part(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' }).collect()
}

fn looks_fractional(metric: &str, values: &[f64]) -> bool {
    (is_fraction(metric) || metric.ends_with("acc")) && values.iter().all(|v| (0.0..=1.0).contains(v))
}

// -------------------------------------------------------------------------------------------------------------------
// report.md
// -------------------------------------------------------------------------------------------------------------------

/// Writes `run_dir/report.md` and its plots (`run_dir/plots/*.svg`) from `summary.json` and `metrics.jsonl`. Either
/// file may be missing (an unfinished run); the report says so.
pub fn write_report(run_dir: &Path) -> Result<()> {
    if !run_dir.is_dir() {
        return Err(Error::io(run_dir, std::io::Error::new(std::io::ErrorKind::NotFound, "run folder not found")));
    }
    let summary_path = run_dir.join("summary.json");
    let metrics_path = run_dir.join("metrics.jsonl");
    let summary = read_summary(&summary_path)?;
    let (records, skipped) = read_metrics(&metrics_path)?;
    let config = read_config(&run_dir.join("config.yaml"))?;
    let name = config
        .as_ref()
        .and_then(|c| c.get("name"))
        .and_then(serde_yaml::Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| dir_name(run_dir));

    let mut md = String::new();
    let _ = writeln!(md, "# Run report: {name}\n");
    if let Some(seed) = config.as_ref().and_then(|c| c.get("seed")).and_then(serde_yaml::Value::as_u64) {
        let _ = writeln!(md, "Seed {seed}. Configuration: [config.yaml](config.yaml).\n");
    }

    let _ = writeln!(md, "## Summary\n");
    match &summary {
        Some((_, numbers)) if !numbers.is_empty() => {
            let _ = writeln!(md, "| metric | value |\n|---|---:|");
            for (k, v) in numbers {
                let _ = writeln!(md, "| {} | {} |", label(k), format_value(k, *v));
            }
            md.push('\n');
        }
        Some(_) => md.push_str("`summary.json` holds no numbers.\n\n"),
        None => md.push_str("No `summary.json` yet: the run has not finished.\n\n"),
    }

    let plots = run_dir.join("plots");
    if let Some((stage, values, counts)) = per_class(&records, summary.as_ref().map(|s| &s.0)) {
        let file = format!("{}-per_class_precision.svg", file_part(&stage));
        let svg = bar_svg(&format!("{stage}: reliable-subset precision per class"), &values, counts.as_deref());
        atomic::write_text(&plots.join(&file), &svg)?;
        let _ = writeln!(md, "## Per-class precision of the reliable subset\n\n![per-class precision](plots/{file})\n");
    }

    let series = collect_series(&records);
    let mut stages: Vec<&str> = Vec::new();
    for s in &series {
        if !stages.contains(&s.stage.as_str()) {
            stages.push(&s.stage);
        }
    }
    if !stages.is_empty() {
        let _ = writeln!(md, "## Curves\n");
    }
    for stage in stages {
        let _ = writeln!(md, "### {stage}\n");
        let _ = writeln!(md, "| metric | over | values | last | min | max |\n|---|---|---:|---:|---:|---:|");
        let mine: Vec<&Series> = series.iter().filter(|s| s.stage == stage).collect();
        for s in &mine {
            let pct = looks_fractional(&s.metric, &s.values);
            let f = |v: f64| {
                if pct { format!("{:.2} %", v * 100.0) } else { format_number(v) }
            };
            let (min, max) =
                s.values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
            let cell = |v: f64| {
                if v.is_finite() { f(v) } else { "–".to_string() }
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} |",
                s.metric,
                s.x_key.unwrap_or("–"),
                s.values.len(),
                cell(s.values.last().copied().unwrap_or(f64::NAN)),
                cell(min),
                cell(max)
            );
        }
        md.push('\n');
        for s in mine.iter().filter(|s| s.points.len() >= 2) {
            let file = format!("{}-{}.svg", file_part(&s.stage), file_part(&s.metric));
            let pct = looks_fractional(&s.metric, &s.values);
            let y_label = if pct { format!("{} (%)", s.metric) } else { s.metric.clone() };
            let svg = line_svg(&format!("{}: {}", s.stage, s.metric), s.x_key.unwrap_or(""), &y_label, &s.points, pct);
            atomic::write_text(&plots.join(&file), &svg)?;
            let _ = writeln!(md, "![{} {}](plots/{file})\n", s.stage, s.metric);
        }
    }
    if records.is_empty() && skipped == 0 {
        md.push_str("No `metrics.jsonl` lines were logged.\n");
    }
    if skipped > 0 {
        let _ = writeln!(md, "Note: {skipped} line(s) of `metrics.jsonl` could not be read and were skipped.");
    }
    atomic::write_text(&run_dir.join("report.md"), &md)
}

// -------------------------------------------------------------------------------------------------------------------
// Many runs: mean ± std over seeds
// -------------------------------------------------------------------------------------------------------------------

fn dir_name(dir: &Path) -> String {
    dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| dir.display().to_string())
}

fn read_config(path: &Path) -> Result<Option<serde_yaml::Value>> {
    match std::fs::read_to_string(path) {
        Ok(t) => serde_yaml::from_str(&t).map(Some).map_err(|e| Error::format(path, format!("not valid YAML: {e}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// A deterministic text form of a YAML value, mappings sorted by key.
fn canonical(v: &serde_yaml::Value) -> String {
    use serde_yaml::Value as Y;
    match v {
        Y::Null => "~".into(),
        Y::Bool(b) => b.to_string(),
        Y::Number(n) => n.to_string(),
        Y::String(s) => format!("{s:?}"),
        Y::Sequence(items) => format!("[{}]", items.iter().map(canonical).collect::<Vec<_>>().join(",")),
        Y::Mapping(m) => {
            let mut entries: Vec<String> =
                m.iter().map(|(k, v)| format!("{}:{}", canonical(k), canonical(v))).collect();
            entries.sort();
            format!("{{{}}}", entries.join(","))
        }
        Y::Tagged(t) => format!("{}({})", t.tag, canonical(&t.value)),
    }
}

struct Run {
    dir: PathBuf,
    name: String,
    seed: Option<String>,
    key: String,
    numbers: Vec<(String, f64)>,
}

fn mean_std(xs: &[f64]) -> (f64, Option<f64>) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    if xs.len() < 2 {
        return (mean, None);
    }
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, Some(var.sqrt()))
}

fn cell(key: &str, xs: &[f64], runs: usize) -> String {
    if xs.is_empty() {
        return "–".into();
    }
    let (scale, prec) = if is_fraction(key) {
        (100.0, 2)
    } else if is_seconds(key) {
        (1.0, 1)
    } else {
        (1.0, 4)
    };
    let (m, s) = mean_std(xs);
    let mut out = match s {
        Some(s) => format!("{:.prec$} ± {:.prec$}", m * scale, s * scale),
        None => format!("{:.prec$}", m * scale),
    };
    if xs.len() < runs {
        let _ = write!(out, " (n={})", xs.len());
    }
    out
}

/// One text table over `run_dirs`: runs whose `config.yaml` differs only by `seed` (or the device index) form one
/// row, with each `summary.json` number as mean ± sample std over the group (the plain value for a single run);
/// accuracies and precisions in percent. Folders without `summary.json` are listed below the table as unfinished.
pub fn summary_table(run_dirs: &[PathBuf]) -> Result<String> {
    if run_dirs.is_empty() {
        return Err(Error::stage("report", "no run folders given"));
    }
    let mut runs = Vec::new();
    let mut unfinished = Vec::new();
    for dir in run_dirs {
        let Some((_, numbers)) = read_summary(&dir.join("summary.json"))? else {
            unfinished.push(dir.display().to_string());
            continue;
        };
        let config = read_config(&dir.join("config.yaml"))?;
        let (name, seed, key) = match config {
            Some(serde_yaml::Value::Mapping(mut m)) => {
                let seed = m.remove("seed").map(|s| canonical(&s));
                m.remove("device");
                let name = m.get("name").and_then(serde_yaml::Value::as_str).map(str::to_string);
                (name.unwrap_or_else(|| dir_name(dir)), seed, canonical(&serde_yaml::Value::Mapping(m)))
            }
            _ => (dir_name(dir), None, format!("dir:{}", dir.display())),
        };
        runs.push(Run { dir: dir.clone(), name, seed, key, numbers });
    }
    if runs.is_empty() {
        return Err(Error::stage(
            "report",
            format!("none of the {} run folder(s) has a summary.json: {}", run_dirs.len(), unfinished.join(", ")),
        ));
    }

    // Groups in order of first appearance.
    let mut groups: Vec<Vec<&Run>> = Vec::new();
    for r in &runs {
        match groups.iter_mut().find(|g| g[0].key == r.key) {
            Some(g) => g.push(r),
            None => groups.push(vec![r]),
        }
    }
    // Columns: every number any run has, in report order.
    let mut keys: Vec<String> = Vec::new();
    for r in &runs {
        for (k, _) in &r.numbers {
            if !keys.contains(k) {
                keys.push(k.clone());
            }
        }
    }
    keys.sort_by_key(|k| rank(k));

    let mut header = vec!["name".to_string(), "runs".to_string(), "seeds".to_string()];
    header.extend(keys.iter().map(|k| if is_fraction(k) { format!("{k} (%)") } else { k.clone() }));
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut name_count: BTreeMap<&str, usize> = BTreeMap::new();
    for g in &groups {
        *name_count.entry(&g[0].name).or_default() += 1;
    }
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    let mut footnotes = Vec::new();
    for g in &groups {
        let base = g[0].name.as_str();
        let name = if name_count[base] > 1 {
            let i = seen.entry(base).or_default();
            *i += 1;
            let tagged = format!("{base} [{i}]");
            let dirs: Vec<String> = g.iter().map(|r| r.dir.display().to_string()).collect();
            footnotes.push(format!("{tagged}: {}", dirs.join(", ")));
            tagged
        } else {
            base.to_string()
        };
        let seeds: Vec<String> = g.iter().map(|r| r.seed.clone().unwrap_or_else(|| "?".into())).collect();
        let mut row = vec![name, g.len().to_string(), seeds.join(",")];
        for k in &keys {
            let xs: Vec<f64> =
                g.iter().filter_map(|r| r.numbers.iter().find(|(rk, _)| rk == k).map(|(_, v)| *v)).collect();
            row.push(cell(k, &xs, g.len()));
        }
        rows.push(row);
    }

    let widths: Vec<usize> = (0..header.len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).chain([header[c].chars().count()]).max().unwrap_or(0))
        .collect();
    let line = |cells: &[String]| -> String {
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(c, s)| {
                let pad = widths[c] - s.chars().count();
                if c == 0 || c == 2 { format!("{s}{}", " ".repeat(pad)) } else { format!("{}{s}", " ".repeat(pad)) }
            })
            .collect();
        format!("| {} |", parts.join(" | "))
    };
    let mut out = String::new();
    out.push_str(&line(&header));
    out.push('\n');
    // Each rule cell spans the cell's padding too, so a right-aligned column's colon ends the cell, where
    // Markdown looks for it.
    let rule: Vec<String> = widths
        .iter()
        .enumerate()
        .map(|(c, &w)| if c == 0 || c == 2 { "-".repeat(w + 2) } else { format!("{}:", "-".repeat(w + 1)) })
        .collect();
    let _ = writeln!(out, "|{}|", rule.join("|"));
    for r in &rows {
        out.push_str(&line(r));
        out.push('\n');
    }
    out.push_str("\nmean ± sample std over the runs of a row (runs whose config differs only by seed); accuracies and precisions in %.\n");
    for f in footnotes {
        let _ = writeln!(out, "{f}");
    }
    if !unfinished.is_empty() {
        let _ = writeln!(out, "without summary.json (unfinished, not counted): {}", unfinished.join(", "));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
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
                lines
                    .push(serde_json::json!({"stage": "pretrain", "epoch": e, "knn_accuracy": 0.5 + e as f64 / 100.0}));
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
}
