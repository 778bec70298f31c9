//! `relab status SWEEP_DIR`: per point of the manifest, done, running, failed (with the last lines of its log) or
//! not started, read from the run folders.

use std::fmt::Write as _;
use std::path::Path;

use super::manifest::Manifest;
use super::point_state::{PointState, log_tail};

/// Lines of a failed point's log shown.
const TAIL: usize = 5;

/// The status text of the sweep in `dir`, and whether every point is done.
pub fn status_text(dir: &Path) -> anyhow::Result<(String, bool)> {
    let manifest = Manifest::read(dir)?;
    let mut out = String::new();
    let mut counts = [0usize; 4];
    for point in &manifest.points {
        let state = PointState::of(dir, point);
        counts[state as usize] += 1;
        let _ = write!(out, "{:<12} {}", state.name(), point.label);
        if point.folder != point.label {
            let _ = write!(out, "  ({})", point.folder);
        }
        out.push('\n');
        if state == PointState::Failed {
            for line in log_tail(&point.log(dir), TAIL) {
                let _ = writeln!(out, "             | {line}");
            }
        }
    }
    let _ = writeln!(
        out,
        "{} points: {} done, {} running, {} failed, {} not started",
        manifest.points.len(),
        counts[PointState::Done as usize],
        counts[PointState::Running as usize],
        counts[PointState::Failed as usize],
        counts[PointState::NotStarted as usize]
    );
    Ok((out, counts[PointState::Done as usize] == manifest.points.len()))
}

pub fn status(dir: &Path) -> anyhow::Result<()> {
    let (text, _) = status_text(dir)?;
    print!("{text}");
    Ok(())
}
