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
//! against `step` (or `epoch`, `kimg`, `iteration`) when the line has one; CTAugment's per-op rates (`cta/<op>`)
//! share one plot per stage. A `"per_class_precision"` array (with an
//! optional `"per_class_count"` array) gives the bar chart. Lines that do not parse (e.g. the last line of a killed
//! run) are skipped and counted in the report.

mod cta;
mod series;
mod summary;
mod svg;
mod table;
#[cfg(test)]
mod tests;

use std::fmt::Write as _;
use std::path::Path;

use crate::formats::atomic;
use crate::{Error, Result};
use series::{Series, collect_series, looks_fractional, per_class, read_metrics};
use summary::{dir_name, format_number, format_value, label, read_config, read_summary};
use svg::{bar_svg, file_part, line_svg};
pub use table::summary_table;

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
        let (rates, mine): (Vec<&Series>, Vec<&Series>) =
            series.iter().filter(|s| s.stage == stage).partition(|s| cta::is_rate(&s.metric));
        if !mine.is_empty() {
            let _ = writeln!(md, "| metric | over | values | last | min | max |\n|---|---|---:|---:|---:|---:|");
        }
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
        cta::write_section(&mut md, &plots, stage, &rates)?;
    }
    if records.is_empty() && skipped == 0 {
        md.push_str("No `metrics.jsonl` lines were logged.\n");
    }
    if skipped > 0 {
        let _ = writeln!(md, "Note: {skipped} line(s) of `metrics.jsonl` could not be read and were skipped.");
    }
    atomic::write_text(&run_dir.join("report.md"), &md)
}
