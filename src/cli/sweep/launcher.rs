//! The interface every launcher implements: start a sweep's points as `relab run --point` processes, on this
//! machine (local: waits for them, reports which failed) or on a cluster (slurm: submits them and returns).

use std::path::Path;

use relab_core::experiment::Launcher as Choice;

use super::local::Local;
use super::manifest::{Manifest, Point};
use super::slurm::Slurm;

/// How `launch` left the points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Launched {
    /// Every point has ended, each done (a failure is an error).
    Finished,
    /// Handed to a scheduler, which runs them (and the sweep's report) later.
    Submitted,
}

pub trait Launcher {
    /// Runs or submits `points` of `manifest` (their run folders under `sweep_dir`), with `--resume` when `resume`;
    /// a launcher that waits gives an error naming every point that failed, after the others have finished.
    fn launch(
        &self,
        sweep_dir: &Path,
        manifest: &Manifest,
        points: &[&Point],
        resume: bool,
    ) -> anyhow::Result<Launched>;
}

/// The launcher of the manifest (the experiment's or the command line's choice), with its settings.
pub fn launcher(manifest: &Manifest, jobs: usize, dry_run: bool) -> Box<dyn Launcher> {
    match manifest.launcher {
        Choice::Local => Box::new(Local { jobs: jobs.max(1), dry_run }),
        Choice::Slurm => Box::new(Slurm { settings: manifest.slurm.clone().unwrap_or_default(), dry_run }),
    }
}
