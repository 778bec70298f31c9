//! Sweeps as processes: every point of a sweep is its own `relab run --point` child on its own run folder (burn's
//! weight initialisation draws from one generator per process, so parallel points cannot share one), started by a
//! [`launcher::Launcher`], recorded in a manifest, and read back by `relab status` from the run folders alone.

pub mod launcher;
mod local;
pub mod manifest;
pub mod point_state;
pub mod report;
mod signals;
pub mod status;
mod threads;

use std::path::{Path, PathBuf};

use anyhow::Context;
use relab_core::experiment::{Launcher, ResolvedRun};
use relab_core::pipeline::RunFolder;

use manifest::{Manifest, Point};
use point_state::PointState;

/// What `relab run` hands over for a sweep.
pub struct SweepRequest<'a> {
    pub experiment: &'a Path,
    pub overrides: &'a [String],
    pub plugins: &'a [PathBuf],
    pub out: &'a Path,
    pub resume: bool,
    pub no_cache: bool,
    pub cache_dir: Option<&'a Path>,
    pub jobs: usize,
    /// `--launcher`, which wins over the experiment's `launcher:`.
    pub launcher: Option<Launcher>,
}

/// Writes the manifest, then runs the points that are not done (all of them without `--resume`).
pub fn run_sweep(req: &SweepRequest, runs: &[ResolvedRun]) -> anyhow::Result<()> {
    let choice = req.launcher.or(runs[0].experiment.launcher).unwrap_or_default();
    // The sweep folder is relab's (marked) and this launcher's alone while it runs: a second one gets an error.
    let _folder = RunFolder::claim(req.out)?;
    let manifest = Manifest::new(req, runs)?;
    manifest.write(req.out)?;
    println!("sweep of {} points in {} (manifest {})", runs.len(), req.out.display(), manifest::FILE);
    let todo: Vec<&Point> = if req.resume {
        let todo: Vec<&Point> =
            manifest.points.iter().filter(|p| PointState::of(req.out, p) != PointState::Done).collect();
        println!("--resume: {} of {} points to finish", todo.len(), manifest.points.len());
        todo
    } else {
        manifest.points.iter().collect()
    };
    launcher::launcher(choice, req.jobs).launch(req.out, &manifest, &todo, req.resume)?;
    report::sweep_report(req.out)
}

/// `relab resubmit SWEEP_DIR`: the points of the manifest that failed or never started, resumed from their
/// checkpoints; refused while any point runs.
pub fn resubmit(dir: &Path, jobs: usize) -> anyhow::Result<()> {
    let manifest = Manifest::read(dir)?;
    let _folder = RunFolder::claim(dir)?;
    let states: Vec<PointState> = manifest.points.iter().map(|p| PointState::of(dir, p)).collect();
    let running = states.iter().filter(|&&s| s == PointState::Running).count();
    anyhow::ensure!(running == 0, "{running} point(s) of {} are still running; wait for them first", dir.display());
    let todo: Vec<&Point> =
        manifest.points.iter().zip(&states).filter(|(_, s)| **s != PointState::Done).map(|(p, _)| p).collect();
    println!("resubmitting {} unfinished point(s) of {}", todo.len(), dir.display());
    launcher::launcher(manifest.launcher, jobs).launch(dir, &manifest, &todo, true)?;
    report::sweep_report(dir)
}

/// The run of `label` among a sweep's points, for a child started with `--point`.
pub fn only_point(runs: Vec<ResolvedRun>, label: &str) -> anyhow::Result<ResolvedRun> {
    let labels: Vec<String> = runs.iter().map(|r| r.label.clone()).collect();
    runs.into_iter()
        .find(|r| r.label == label)
        .with_context(|| format!("--point {label}: the sweep has no such point (its points: {})", labels.join("; ")))
}
