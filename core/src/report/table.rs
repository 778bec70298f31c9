//! Many runs in one text table: runs that differ only by seed grouped as mean ± std (what `relab report RUN_DIR...`
//! prints).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::summary::{dir_name, is_fraction, is_seconds, rank, read_config, read_summary};
use crate::{Error, Result};

/// A deterministic text form of a YAML value, mappings sorted by key.
pub(super) fn canonical(v: &serde_yaml::Value) -> String {
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

/// The `config.yaml` keys that do not tell groups apart: the seed, the draw of the labels (a seed too) and the
/// device. `relab report` and the sweep report both leave them out of a group's key.
pub(super) const NOT_GROUPING: [&str; 3] = ["seed", "dataset.labels_seed", "device"];

/// Removes the value at a dotted key (`dataset.labels_seed`) from a mapping and returns it.
fn take(m: &mut serde_yaml::Mapping, key: &str) -> Option<serde_yaml::Value> {
    match key.split_once('.') {
        None => m.remove(key),
        Some((head, rest)) => take(m.get_mut(head)?.as_mapping_mut()?, rest),
    }
}

/// A run's name, seed and grouping key: its `config.yaml` without the [`NOT_GROUPING`] keys, in canonical form (a
/// run without a config is a group of its own). The two seeds are both the run's seed: `2/7` is seed 2 with the
/// labels drawn under 7, so the draws of a `dataset.labels_seed` sweep form one group.
pub(super) fn identity(dir: &Path, config: Option<serde_yaml::Value>) -> (String, Option<String>, String) {
    match config {
        Some(serde_yaml::Value::Mapping(mut m)) => {
            let [seed, labels_seed, _device] = NOT_GROUPING.map(|key| take(&mut m, key));
            let seed = seed.map(|s| canonical(&s));
            let seed = match labels_seed.filter(|s| !s.is_null()) {
                Some(l) => Some(format!("{}/{}", seed.as_deref().unwrap_or("?"), canonical(&l))),
                None => seed,
            };
            let name = m.get("name").and_then(serde_yaml::Value::as_str).map(str::to_string);
            (name.unwrap_or_else(|| dir_name(dir)), seed, canonical(&serde_yaml::Value::Mapping(m)))
        }
        _ => (dir_name(dir), None, format!("dir:{}", dir.display())),
    }
}

pub(super) struct Run {
    dir: PathBuf,
    name: String,
    seed: Option<String>,
    key: String,
    numbers: Vec<(String, f64)>,
}

pub(super) fn mean_std(xs: &[f64]) -> (f64, Option<f64>) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    if xs.len() < 2 {
        return (mean, None);
    }
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, Some(var.sqrt()))
}

pub(super) fn cell(key: &str, xs: &[f64], runs: usize) -> String {
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
        let (name, seed, key) = identity(dir, read_config(&dir.join("config.yaml"))?);
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
    out.push_str("\nmean ± sample std over the runs of a row (runs whose config differs only by seed, or by dataset.labels_seed: S/L); accuracies and precisions in %.\n");
    for f in footnotes {
        let _ = writeln!(out, "{f}");
    }
    if !unfinished.is_empty() {
        let _ = writeln!(out, "without summary.json (unfinished, not counted): {}", unfinished.join(", "));
    }
    Ok(out)
}
