//! The interface every launcher implements: start a sweep's points as `relab run --point` processes and report
//! which failed. Only the local launcher exists; a Slurm one (job arrays, requeue on preemption) is planned.

use std::path::Path;

use relab_core::experiment::Launcher as Choice;

use super::local::Local;
use super::manifest::{Manifest, Point};

pub trait Launcher {
    /// Runs `points` of `manifest` (their run folders under `sweep_dir`), with `--resume` when `resume`, until all
    /// have ended; an error names every point that failed, after the others have finished.
    fn launch(&self, sweep_dir: &Path, manifest: &Manifest, points: &[&Point], resume: bool) -> anyhow::Result<()>;
}

/// The launcher the experiment or the command line chose.
pub fn launcher(choice: Choice, jobs: usize) -> Box<dyn Launcher> {
    match choice {
        Choice::Local => Box::new(Local { jobs: jobs.max(1) }),
    }
}
