//! Sweeps as processes: every point of a sweep is its own `relab run --point` child on its own run folder (burn's
//! weight initialisation draws from one generator per process, so parallel points cannot share one), started by a
//! [`launcher::Launcher`], recorded in a manifest, and read back by `relab status` from the run folders alone.

pub mod launcher;
mod local;
pub mod manifest;
pub mod point_state;
pub mod report;
mod signals;
mod slurm;
pub mod slurm_script;
pub mod status;
mod threads;

use std::path::{Path, PathBuf};

use anyhow::Context;
use relab_core::experiment::{Launcher, ResolvedRun};
use relab_core::pipeline::RunFolder;

use launcher::Launched;
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
    /// `--dry-run`: print what would run (the Slurm scripts and `sbatch` lines), write and start nothing.
    pub dry_run: bool,
}

/// Writes the manifest, then runs (or submits) the points that are not done (all of them without `--resume`); the
/// sweep's report follows once they are all done (from an aggregation job, when a scheduler runs them).
pub fn run_sweep(req: &SweepRequest, runs: &[ResolvedRun]) -> anyhow::Result<()> {
    let manifest = Manifest::new(req, runs)?;
    if req.dry_run {
        let todo: Vec<&Point> = manifest.points.iter().collect();
        launcher::launcher(&manifest, req.jobs, true).launch(req.out, &manifest, &todo, req.resume)?;
        return Ok(());
    }
    // The sweep folder is relab's (marked) and this launcher's alone while it runs: a second one gets an error.
    let _folder = RunFolder::claim(req.out)?;
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
    finish(req.out, &manifest, &todo, req.jobs, req.resume)
}

/// Hands `todo` to the manifest's launcher; writes the report when they have all run here.
fn finish(dir: &Path, manifest: &Manifest, todo: &[&Point], jobs: usize, resume: bool) -> anyhow::Result<()> {
    match launcher::launcher(manifest, jobs, false).launch(dir, manifest, todo, resume)? {
        Launched::Finished => report::sweep_report(dir),
        Launched::Submitted => Ok(()),
    }
}

/// `relab resubmit SWEEP_DIR`: the points of the manifest that failed or never started, resumed from their
/// checkpoints by the sweep's own launcher; refused while any point runs.
/// `only_failed` leaves the points that never started to the sweep's own resumption (`relab run EXP --resume`).
pub fn resubmit(dir: &Path, jobs: usize, only_failed: bool) -> anyhow::Result<()> {
    let manifest = Manifest::read(dir)?;
    let _folder = RunFolder::claim(dir)?;
    let states: Vec<PointState> = manifest.points.iter().map(|p| PointState::of(dir, p)).collect();
    let running = states.iter().filter(|&&s| s == PointState::Running).count();
    anyhow::ensure!(running == 0, "{running} point(s) of {} are still running; wait for them first", dir.display());
    let wanted = |s: PointState| if only_failed { s == PointState::Failed } else { s != PointState::Done };
    let todo: Vec<&Point> = manifest.points.iter().zip(&states).filter(|(_, s)| wanted(**s)).map(|(p, _)| p).collect();
    let which = if only_failed { "failed" } else { "unfinished" };
    println!("resubmitting {} {which} point(s) of {}", todo.len(), dir.display());
    if todo.is_empty() {
        return Ok(());
    }
    finish(dir, &manifest, &todo, jobs, true)
}

/// The run of `label` among a sweep's points, for a child started with `--point`.
pub fn only_point(runs: Vec<ResolvedRun>, label: &str) -> anyhow::Result<ResolvedRun> {
    let labels: Vec<String> = runs.iter().map(|r| r.label.clone()).collect();
    runs.into_iter()
        .find(|r| r.label == label)
        .with_context(|| format!("--point {label}: the sweep has no such point (its points: {})", labels.join("; ")))
}
