//! CTAugment's rates in a run report: the `cta/<op>` metrics a learner logs each epoch from
//! `CtAugment::op_rates` (docs/augmentations.md), drawn as one plot per stage with a line per op and a table of
//! their last values, instead of a plot each.

use std::fmt::Write as _;
use std::path::Path;

use super::series::Series;
use super::svg::{file_part, multi_line_svg};
use crate::Result;
use crate::formats::atomic;

const PREFIX: &str = "cta/";

/// Whether a metric is one of CTAugment's per-op rates.
pub(super) fn is_rate(metric: &str) -> bool {
    metric.starts_with(PREFIX)
}

/// Appends `stage`'s CTAugment section to `md` and writes its plot under `plots`; nothing when `rates` is empty.
pub(super) fn write_section(md: &mut String, plots: &Path, stage: &str, rates: &[&Series]) -> Result<()> {
    if rates.is_empty() {
        return Ok(());
    }
    let op = |s: &Series| s.metric[PREFIX.len()..].to_string();
    let _ = writeln!(
        md,
        "#### CTAugment rates\n\nPer op, the mean sampling weight of its magnitude bins (`CtAugment::op_rates`): 1 while \
         every magnitude is drawn alike, lower as bins fall below the threshold.\n"
    );
    let x_key = rates.iter().find_map(|s| s.x_key).unwrap_or("");
    let lines: Vec<(String, Vec<(f64, f64)>)> =
        rates.iter().filter(|s| !s.points.is_empty()).map(|s| (op(s), s.points.clone())).collect();
    if lines.iter().any(|(_, p)| p.len() >= 2) {
        let file = format!("{}-cta_rates.svg", file_part(stage));
        let svg = multi_line_svg(&format!("{stage}: CTAugment rates per op"), x_key, "rate", &lines);
        atomic::write_text(&plots.join(&file), &svg)?;
        let _ = writeln!(md, "![{stage} CTAugment rates](plots/{file})\n");
    }
    let mut last: Vec<(String, f64, f64)> = rates
        .iter()
        .filter_map(|s| {
            let min = s.values.iter().copied().fold(f64::INFINITY, f64::min);
            Some((op(s), *s.values.last()?, min))
        })
        .collect();
    last.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    let _ = writeln!(md, "| op | last | min |\n|---|---:|---:|");
    for (name, l, m) in last {
        let _ = writeln!(md, "| {name} | {l:.3} | {m:.3} |");
    }
    md.push('\n');
    Ok(())
}
