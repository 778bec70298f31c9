//! Curves averaged over seeds: per x, the mean and sample standard deviation of the runs that logged it, drawn as a
//! line in a shaded band of ± one standard deviation, one colour per group of runs.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::summary::format_number;
use super::svg::{H, LEGEND_W, MB, ML, MR, MT, PALETTE, W, esc, frame, nice_ticks, svg_open, x_axis, y_axis};
use super::table::mean_std;

/// One point of an averaged curve: x, the mean over the runs that have x, their sample std (0 for one run), and
/// how many runs that is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct BandPoint {
    pub x: f64,
    pub mean: f64,
    pub std: f64,
    pub runs: usize,
}

/// The runs' curves (each a list of (x, y)) averaged per x, in increasing x.
pub(super) fn average(curves: &[Vec<(f64, f64)>]) -> Vec<BandPoint> {
    let mut at: BTreeMap<u64, (f64, Vec<f64>)> = BTreeMap::new();
    for curve in curves {
        for &(x, y) in curve {
            // Ordered by the float's total order; the key is only for grouping equal x.
            let key = x.to_bits() ^ if x.is_sign_negative() { u64::MAX } else { 1 << 63 };
            at.entry(key).or_insert((x, Vec::new())).1.push(y);
        }
    }
    at.into_values()
        .map(|(x, ys)| {
            let (mean, std) = mean_std(&ys);
            BandPoint { x, mean, std: std.unwrap_or(0.0), runs: ys.len() }
        })
        .collect()
}

/// One plot with a mean line and its ± std band per named group; `percent` shows fractions as percentages.
pub(super) fn band_svg(
    title: &str,
    x_label: &str,
    y_label: &str,
    groups: &[(String, Vec<BandPoint>)],
    percent: bool,
) -> String {
    let points = groups.iter().flat_map(|(_, p)| p.iter());
    let (xmin, xmax, ymin, ymax) = points
        .fold((f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY), |(a, b, c, d), p| {
            (a.min(p.x), b.max(p.x), c.min(p.mean - p.std), d.max(p.mean + p.std))
        });
    let scale = if percent { 100.0 } else { 1.0 };
    let (xt, xstep) = nice_ticks(xmin, xmax, 7);
    let (yt, ystep) = nice_ticks(ymin, ymax, 6);
    let (x0, x1) = (xt[0], xt[xt.len() - 1]);
    let (y0, y1) = (yt[0], yt[yt.len() - 1]);
    let sx = |x: f64| ML + (x - x0) / (x1 - x0) * (W - ML - MR);
    let sy = |y: f64| (H - MB) - (y - y0) / (y1 - y0) * (H - MT - MB);
    // Wide enough for the longest group name at about 6.5 px a character (11 px sans-serif).
    let longest = groups.iter().map(|(n, _)| n.chars().count()).max().unwrap_or(0);
    let w = W + LEGEND_W.max(34.0 + 6.5 * longest as f64);
    let fmt = |v: f64| if percent { format!("{:.2} %", v * 100.0) } else { format_number(v) };
    let subtitle =
        format!("mean ± sample std over seeds · {} group(s) · min {} · max {}", groups.len(), fmt(ymin), fmt(ymax));
    let mut out = String::new();
    svg_open(&mut out, w, H, title, &subtitle);
    y_axis(&mut out, W, &yt, ystep, scale, y_label, &sy);
    x_axis(&mut out, &xt, xstep, &sx);
    frame(&mut out, W, H, x_label);
    let row = ((H - MT) / groups.len().max(1) as f64).min(16.0);
    for (i, (name, band)) in groups.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let upper = band.iter().map(|p| format!("{:.2},{:.2}", sx(p.x), sy(p.mean + p.std)));
        let lower = band.iter().rev().map(|p| format!("{:.2},{:.2}", sx(p.x), sy(p.mean - p.std)));
        let outline: Vec<String> = upper.chain(lower).collect();
        let _ = writeln!(
            out,
            r##"<polygon fill="{colour}" fill-opacity="0.18" stroke="none" points="{}"/>"##,
            outline.join(" ")
        );
        let mean: Vec<String> = band.iter().map(|p| format!("{:.2},{:.2}", sx(p.x), sy(p.mean))).collect();
        let dash = if i >= PALETTE.len() { r#" stroke-dasharray="5,3""# } else { "" };
        let _ = writeln!(
            out,
            r##"<polyline fill="none" stroke="{colour}" stroke-width="1.6"{dash} points="{}"><title>{}</title></polyline>"##,
            mean.join(" "),
            esc(name)
        );
        let y = MT + row * (i as f64 + 0.5);
        let _ = writeln!(
            out,
            r##"<rect x="{:.2}" y="{:.2}" width="22" height="8" fill="{colour}" fill-opacity="0.35"/>"##,
            W + 4.0,
            y - 4.0
        );
        let _ =
            writeln!(out, r##"<text x="{:.2}" y="{y:.2}" dy="0.35em" font-size="11">{}</text>"##, W + 30.0, esc(name));
    }
    out.push_str("</svg>\n");
    out
}
