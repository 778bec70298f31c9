//! The report of a sweep: its runs grouped by everything but the seed, one table of their summary numbers (mean ±
//! sample std and the run count) as `report.md` and `summary.csv` in the sweep folder, the test accuracy and loss
//! curves of every group (mean in a band of ± one std over seeds) under `plots/`, and a TensorBoard event file in
//! each run folder.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_yaml::Value as Yaml;

use super::band::{BandPoint, average, band_svg};
use super::series::{collect_series, looks_fractional, read_metrics};
use super::summary::{dir_name, is_fraction, rank, read_config, read_summary};
use super::svg::file_part;
use super::table::{NOT_GROUPING, canonical, cell, identity, mean_std};
use super::tensorboard::write_event_file;
use crate::formats::atomic;
use crate::{Error, Result};

/// What [`write_sweep_report`] wrote.
#[derive(Debug, Clone)]
pub struct SweepReport {
    /// The summary table in Markdown (also in `report.md`).
    pub table: String,
    /// Every file written, the sweep's own first.
    pub files: Vec<PathBuf>,
}

struct Run {
    dir: PathBuf,
    seed: Option<String>,
    key: String,
    config: Option<Yaml>,
    numbers: Vec<(String, f64)>,
}

/// A group of runs that differ only by seed, with its name.
pub(super) struct Group<'a> {
    pub name: String,
    runs: Vec<&'a Run>,
}

/// Writes `sweep_dir/report.md`, `sweep_dir/summary.csv`, `sweep_dir/plots/*.svg` and each run folder's TensorBoard
/// event file from the finished runs among `run_dirs` (those with `summary.json`); the others are listed as
/// unfinished.
pub fn write_sweep_report(sweep_dir: &Path, run_dirs: &[PathBuf]) -> Result<SweepReport> {
    let mut runs = Vec::new();
    let mut unfinished = Vec::new();
    for dir in run_dirs {
        let Some((_, numbers)) = read_summary(&dir.join("summary.json"))? else {
            unfinished.push(dir_name(dir));
            continue;
        };
        let config = read_config(&dir.join("config.yaml"))?;
        let (_, seed, key) = identity(dir, config.clone());
        runs.push(Run { dir: dir.clone(), seed, key, config, numbers });
    }
    if runs.is_empty() {
        return Err(Error::stage(
            "report",
            format!("no run of {} has finished (no summary.json)", sweep_dir.display()),
        ));
    }
    let groups = group(&runs);
    let keys = columns(&runs);
    let title = runs[0]
        .config
        .as_ref()
        .and_then(|c| c.get("name"))
        .and_then(Yaml::as_str)
        .map_or_else(|| dir_name(sweep_dir), str::to_string);

    let table = markdown_table(&groups, &keys);
    let mut files = vec![sweep_dir.join("report.md"), sweep_dir.join("summary.csv")];
    atomic::write_text(&files[1], &csv(&groups, &keys))?;

    let mut md = String::new();
    let _ = writeln!(md, "# Sweep report: {title}\n");
    let _ = writeln!(
        md,
        "{} finished run(s) in {} group(s); a group is the runs whose configuration differs only by seed (or by \
         `dataset.labels_seed`: seed S with the labels drawn under L is S/L).\n",
        runs.len(),
        groups.len()
    );
    let _ = writeln!(md, "## Summary\n\n{table}");
    md.push_str(
        "Mean ± sample std over a group's runs (the value alone for one run); accuracies and precisions in %. ",
    );
    md.push_str("The same numbers unrounded: [summary.csv](summary.csv).\n\n");
    let plots = curves(sweep_dir, &groups)?;
    if !plots.is_empty() {
        md.push_str("## Curves\n\nMean over seeds, the band ± one sample std.\n\n");
    }
    for (name, file) in &plots {
        let _ = writeln!(md, "![{name}](plots/{})\n", file_part_name(file));
        files.push(file.clone());
    }
    for run in &runs {
        files.push(write_event_file(&run.dir)?);
    }
    md.push_str("Each run folder has a TensorBoard event file of its `metrics.jsonl`: `tensorboard --logdir` on this folder shows them all.\n");
    if !unfinished.is_empty() {
        let _ = writeln!(md, "\nNot finished, not counted: {}", unfinished.join(", "));
    }
    atomic::write_text(&files[0], &md)?;
    Ok(SweepReport { table, files })
}

fn file_part_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Runs grouped by key in order of first appearance, each group named by the configuration keys whose values tell
/// the groups apart (the experiment's name when there is one group).
fn group(runs: &[Run]) -> Vec<Group<'_>> {
    let mut groups: Vec<Group> = Vec::new();
    for r in runs {
        match groups.iter_mut().find(|g| g.runs[0].key == r.key) {
            Some(g) => g.runs.push(r),
            None => groups.push(Group { name: String::new(), runs: vec![r] }),
        }
    }
    let leaves: Vec<Vec<(String, String)>> = groups.iter().map(|g| config_leaves(g.runs[0].config.as_ref())).collect();
    let names = distinguishing_names(&leaves);
    for (g, name) in groups.iter_mut().zip(names) {
        g.name = if name.is_empty() { dir_name(&g.runs[0].dir) } else { name };
    }
    if groups.len() == 1 {
        let config_name = runs[0].config.as_ref().and_then(|c| c.get("name")).and_then(Yaml::as_str);
        groups[0].name = config_name.map_or_else(|| dir_name(&runs[0].dir), str::to_string);
    }
    groups
}

/// A configuration's leaves as (dotted key, canonical value), without the keys that do not tell groups apart.
pub(super) fn config_leaves(config: Option<&Yaml>) -> Vec<(String, String)> {
    fn walk(prefix: &str, v: &Yaml, out: &mut Vec<(String, String)>) {
        match v {
            Yaml::Mapping(m) if !m.is_empty() => {
                for (k, v) in m {
                    let k = k.as_str().map_or_else(|| canonical(k), str::to_string);
                    walk(&if prefix.is_empty() { k } else { format!("{prefix}.{k}") }, v, out);
                }
            }
            Yaml::String(s) => out.push((prefix.to_string(), s.clone())),
            other => out.push((prefix.to_string(), canonical(other))),
        }
    }
    let mut out = Vec::new();
    if let Some(c) = config {
        walk("", c, &mut out);
    }
    out.retain(|(k, _)| !NOT_GROUPING.contains(&k.as_str()));
    out
}

/// For each group's leaves, `key=value, …` over the keys whose values are not the same in every group. Where a
/// stage's `plugin` differs, that alone names the stage (its other parameters differ with it).
pub(super) fn distinguishing_names(leaves: &[Vec<(String, String)>]) -> Vec<String> {
    let value = |g: &[(String, String)], k: &str| g.iter().find(|(gk, _)| gk == k).map(|(_, v)| v.clone());
    let mut keys: Vec<String> = Vec::new();
    for g in leaves {
        for (k, _) in g {
            if !keys.contains(k) && leaves.iter().any(|o| value(o, k) != value(g, k)) {
                keys.push(k.clone());
            }
        }
    }
    let plugins: Vec<String> = keys.iter().filter_map(|k| k.strip_suffix(".plugin")).map(|p| format!("{p}.")).collect();
    keys.retain(|k| k.ends_with(".plugin") || !plugins.iter().any(|p| k.starts_with(p.as_str())));
    leaves
        .iter()
        .map(|g| {
            let parts: Vec<String> =
                keys.iter().map(|k| format!("{k}={}", value(g, k).unwrap_or_else(|| "–".into()))).collect();
            parts.join(", ")
        })
        .collect()
}

/// Every summary number any run has, in report order (timings last).
fn columns(runs: &[Run]) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for r in runs {
        for (k, _) in &r.numbers {
            if !keys.contains(k) {
                keys.push(k.clone());
            }
        }
    }
    keys.sort_by_key(|k| rank(k));
    keys
}

fn values(g: &Group, key: &str) -> Vec<f64> {
    g.runs.iter().filter_map(|r| r.numbers.iter().find(|(k, _)| k == key).map(|(_, v)| *v)).collect()
}

fn seeds(g: &Group) -> String {
    g.runs.iter().map(|r| r.seed.clone().unwrap_or_else(|| "?".into())).collect::<Vec<_>>().join(" ")
}

fn markdown_table(groups: &[Group], keys: &[String]) -> String {
    let esc = |s: &str| s.replace('|', "\\|");
    let mut out = String::from("| group | runs | seeds |");
    for k in keys {
        let _ = write!(out, " {} |", if is_fraction(k) { format!("{k} (%)") } else { k.clone() });
    }
    out.push_str("\n|---|---:|---|");
    out.push_str(&"---:|".repeat(keys.len()));
    out.push('\n');
    for g in groups {
        let _ = write!(out, "| {} | {} | {} |", esc(&g.name), g.runs.len(), seeds(g));
        for k in keys {
            let _ = write!(out, " {} |", cell(k, &values(g, k), g.runs.len()));
        }
        out.push('\n');
    }
    out
}

/// The table unrounded: per number its mean and sample std (empty for one run) as fractions, as written in
/// `summary.json`, and how many runs have it.
fn csv(groups: &[Group], keys: &[String]) -> String {
    let field = |s: &str| {
        if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
    };
    let mut header = vec!["group".to_string(), "runs".into(), "seeds".into()];
    for k in keys {
        header.extend([format!("{k}.mean"), format!("{k}.std"), format!("{k}.n")]);
    }
    let mut out = header.iter().map(|h| field(h)).collect::<Vec<_>>().join(",");
    out.push('\n');
    for g in groups {
        let mut row = vec![field(&g.name), g.runs.len().to_string(), field(&seeds(g))];
        for k in keys {
            let xs = values(g, k);
            if xs.is_empty() {
                row.extend([String::new(), String::new(), "0".into()]);
                continue;
            }
            let (mean, std) = mean_std(&xs);
            row.extend([mean.to_string(), std.map(|s| s.to_string()).unwrap_or_default(), xs.len().to_string()]);
        }
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

/// Whether a metric is one of the curves the sweep report plots.
fn is_curve(metric: &str) -> bool {
    metric == "loss" || metric.starts_with("test_accuracy")
}

/// One curve metric of one stage: per group, its runs' (x, y) points.
struct Curve {
    stage: String,
    metric: String,
    x_key: &'static str,
    per_group: Vec<Vec<Vec<(f64, f64)>>>,
}

/// One plot per (stage, curve metric): every group's mean over its runs in a band of ± one std.
fn curves(sweep_dir: &Path, groups: &[Group]) -> Result<Vec<(String, PathBuf)>> {
    // In order of first appearance.
    let mut found: Vec<Curve> = Vec::new();
    for (gi, g) in groups.iter().enumerate() {
        for r in &g.runs {
            let (records, _) = read_metrics(&r.dir.join("metrics.jsonl"))?;
            for s in collect_series(&records) {
                let Some(x_key) = s.x_key.filter(|_| is_curve(&s.metric) && !s.points.is_empty()) else { continue };
                let at = match found.iter().position(|f| f.stage == s.stage && f.metric == s.metric) {
                    Some(i) => i,
                    None => {
                        let per_group = vec![Vec::new(); groups.len()];
                        found.push(Curve { stage: s.stage.clone(), metric: s.metric.clone(), x_key, per_group });
                        found.len() - 1
                    }
                };
                found[at].per_group[gi].push(s.points);
            }
        }
    }
    let mut written = Vec::new();
    for Curve { stage, metric, x_key, per_group } in found {
        let bands: Vec<(String, Vec<BandPoint>)> = groups
            .iter()
            .zip(&per_group)
            .filter(|(_, curves)| !curves.is_empty())
            .map(|(g, curves)| (g.name.clone(), average(curves)))
            .collect();
        if bands.iter().all(|(_, b)| b.len() < 2) {
            continue;
        }
        let means: Vec<f64> = bands.iter().flat_map(|(_, b)| b.iter().map(|p| p.mean)).collect();
        let percent = looks_fractional(&metric, &means);
        let y_label = if percent { format!("{metric} (%)") } else { metric.clone() };
        let svg = band_svg(&format!("{stage}: {metric}"), x_key, &y_label, &bands, percent);
        let path = sweep_dir.join("plots").join(format!("{}-{}.svg", file_part(&stage), file_part(&metric)));
        atomic::write_text(&path, &svg)?;
        written.push((format!("{stage} {metric}"), path));
    }
    Ok(written)
}
