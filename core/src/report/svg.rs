//! Hand-written SVG charts: a line plot of one metric series, several named series on one plot, and a bar chart
//! of per-class precision.

use std::fmt::Write as _;

use super::summary::format_number;

pub(super) const W: f64 = 640.0;
pub(super) const H: f64 = 380.0;
pub(super) const ML: f64 = 76.0;
pub(super) const MR: f64 = 24.0;
pub(super) const MT: f64 = 48.0;
pub(super) const MB: f64 = 52.0;

pub(super) fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

pub(super) fn nice_num(x: f64, round: bool) -> f64 {
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
pub(super) fn nice_ticks(mut lo: f64, mut hi: f64, target: usize) -> (Vec<f64>, f64) {
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

pub(super) fn tick_label(v: f64, step: f64) -> String {
    if v.abs() >= 1e6 || (step < 1e-4 && v != 0.0) {
        return format!("{v:.1e}");
    }
    let decimals = (-step.log10().floor()).clamp(0.0, 6.0) as usize;
    let s = format!("{v:.decimals$}");
    if s.starts_with('-') && s.trim_start_matches(['-', '0', '.']).is_empty() { s[1..].to_string() } else { s }
}

pub(super) fn svg_open(out: &mut String, w: f64, h: f64, title: &str, subtitle: &str) {
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
pub(super) fn y_axis(
    out: &mut String,
    w: f64,
    ticks: &[f64],
    step: f64,
    scale: f64,
    y_label: &str,
    sy: &dyn Fn(f64) -> f64,
) {
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

pub(super) fn frame(out: &mut String, w: f64, h: f64, x_label: &str) {
    let _ = writeln!(out, r##"<path d="M{ML},{MT} V{:.2} H{:.2}" fill="none" stroke="#333333"/>"##, h - MB, w - MR);
    let _ = writeln!(
        out,
        r##"<text x="{:.2}" y="{:.2}" text-anchor="middle">{}</text>"##,
        (ML + w - MR) / 2.0,
        h - 10.0,
        esc(x_label)
    );
}

/// X axis grid, ticks and labels for values mapped by `sx`.
fn x_axis(out: &mut String, ticks: &[f64], step: f64, sx: &dyn Fn(f64) -> f64) {
    for &t in ticks {
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
            esc(&tick_label(t, step))
        );
    }
}

/// Ten distinguishable colours (matplotlib's tab10); lines past the tenth are dashed.
const PALETTE: [&str; 10] =
    ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

/// Width of the legend column right of a multi-line plot.
const LEGEND_W: f64 = 150.0;

/// Several named series on one plot (each sorted by x), with a legend on the right.
pub(super) fn multi_line_svg(title: &str, x_label: &str, y_label: &str, lines: &[(String, Vec<(f64, f64)>)]) -> String {
    let all = lines.iter().flat_map(|(_, p)| p.iter());
    let (xmin, xmax, ymin, ymax) = all
        .fold((f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY), |(a, b, c, d), p| {
            (a.min(p.0), b.max(p.0), c.min(p.1), d.max(p.1))
        });
    let (xt, xstep) = nice_ticks(xmin, xmax, 7);
    let (yt, ystep) = nice_ticks(ymin, ymax, 6);
    let (x0, x1) = (xt[0], xt[xt.len() - 1]);
    let (y0, y1) = (yt[0], yt[yt.len() - 1]);
    let sx = |x: f64| ML + (x - x0) / (x1 - x0) * (W - ML - MR);
    let sy = |y: f64| (H - MB) - (y - y0) / (y1 - y0) * (H - MT - MB);
    let w = W + LEGEND_W;
    let subtitle = format!("{} series · min {} · max {}", lines.len(), format_number(ymin), format_number(ymax));
    let mut out = String::new();
    svg_open(&mut out, w, H, title, &subtitle);
    y_axis(&mut out, W, &yt, ystep, 1.0, y_label, &sy);
    x_axis(&mut out, &xt, xstep, &sx);
    frame(&mut out, W, H, x_label);
    let row = ((H - MT) / lines.len().max(1) as f64).min(16.0);
    for (i, (name, points)) in lines.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let dash = if i >= PALETTE.len() { r#" stroke-dasharray="5,3""# } else { "" };
        let pts: Vec<String> = points.iter().map(|&(x, y)| format!("{:.2},{:.2}", sx(x), sy(y))).collect();
        let _ = writeln!(
            out,
            r##"<polyline fill="none" stroke="{colour}" stroke-width="1.4"{dash} points="{}"><title>{}</title></polyline>"##,
            pts.join(" "),
            esc(name)
        );
        let y = MT + row * (i as f64 + 0.5);
        let _ = writeln!(
            out,
            r##"<line x1="{:.2}" y1="{y:.2}" x2="{:.2}" y2="{y:.2}" stroke="{colour}" stroke-width="2"{dash}/>"##,
            W + 4.0,
            W + 26.0
        );
        let _ =
            writeln!(out, r##"<text x="{:.2}" y="{y:.2}" dy="0.35em" font-size="11">{}</text>"##, W + 30.0, esc(name));
    }
    out.push_str("</svg>\n");
    out
}

/// A line plot of `points` (sorted by x). `percent` shows fractions as percentages.
pub(super) fn line_svg(title: &str, x_label: &str, y_label: &str, points: &[(f64, f64)], percent: bool) -> String {
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
    x_axis(&mut out, &xt, xstep, &sx);
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
pub(super) fn bar_svg(title: &str, values: &[f64], counts: Option<&[f64]>) -> String {
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

pub(super) fn file_part(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' }).collect()
}
