//! The sweep's manifest, `sweep.json` in the sweep folder, written before any point starts: each point's label,
//! run folder, log and the exact command that runs it, so `relab status` and `relab resubmit` need nothing else.

use std::path::{Path, PathBuf};

use anyhow::Context;
use relab_core::experiment::{Launcher, ResolvedRun, SlurmSettings};
use relab_core::formats::atomic;
use serde::{Deserialize, Serialize};

use super::SweepRequest;

pub const FILE: &str = "sweep.json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The experiment file, absolute.
    pub experiment: PathBuf,
    pub launcher: Launcher,
    /// The Slurm launcher's settings (the first point's `slurm:`), which a resubmission uses again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm: Option<SlurmSettings>,
    pub points: Vec<Point>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Point {
    /// `seed=1,stages.train.plugin=supervised`.
    pub label: String,
    /// The run folder's name inside the sweep folder.
    pub folder: String,
    /// Program and arguments of the point's `relab run` (without `--resume`, which a resumption adds).
    pub command: Vec<String>,
}

impl Point {
    pub fn run_dir(&self, sweep_dir: &Path) -> PathBuf {
        sweep_dir.join(&self.folder)
    }

    /// The point's log (stdout and stderr of every attempt), beside its run folder.
    pub fn log(&self, sweep_dir: &Path) -> PathBuf {
        sweep_dir.join(format!("{}.log", self.folder))
    }

    /// The pid of the point's live process, beside its run folder; removed when the process has ended.
    pub fn pid_file(&self, sweep_dir: &Path) -> PathBuf {
        sweep_dir.join(format!("{}.pid", self.folder))
    }
}

fn text(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

impl Manifest {
    pub fn new(req: &SweepRequest, runs: &[ResolvedRun]) -> anyhow::Result<Manifest> {
        let exe = std::env::current_exe().context("cannot find the relab executable to start the points with")?;
        let experiment = std::path::absolute(req.experiment)?;
        let out = std::path::absolute(req.out)?;
        let mut head = vec![text(&exe)];
        for p in req.plugins {
            head.extend(["--plugin".into(), text(&std::path::absolute(p)?)]);
        }
        head.extend(["run".into(), text(&experiment)]);
        for s in req.overrides {
            head.extend(["--set".into(), s.clone()]);
        }
        if req.no_cache {
            head.push("--no-cache".into());
        } else if let Some(dir) = req.cache_dir {
            head.extend(["--cache-dir".into(), text(&std::path::absolute(dir)?)]);
        }
        let points = runs
            .iter()
            .map(|r| {
                let mut command = head.clone();
                command.extend(["--point".into(), r.label.clone(), "--out".into(), text(&out.join(&r.folder))]);
                Point { label: r.label.clone(), folder: r.folder.clone(), command }
            })
            .collect();
        let launcher = req.launcher.or(runs[0].experiment.launcher).unwrap_or_default();
        let slurm = (launcher == Launcher::Slurm).then(|| runs[0].experiment.slurm.clone().unwrap_or_default());
        Ok(Manifest { experiment, launcher, slurm, points })
    }

    pub fn write(&self, sweep_dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(sweep_dir).with_context(|| format!("cannot create {}", sweep_dir.display()))?;
        atomic::write_json(&sweep_dir.join(FILE), self)?;
        Ok(())
    }

    pub fn read(sweep_dir: &Path) -> anyhow::Result<Manifest> {
        let path = sweep_dir.join(FILE);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!("{} is not a sweep folder: no {FILE} (written by `relab run`)", sweep_dir.display())
        })?;
        serde_json::from_str(&text).with_context(|| format!("{}: not a sweep manifest", path.display()))
    }
}
