//! The Slurm launcher: the sweep's points as one `sbatch --array` (several when the sweep outgrows the cluster's
//! `MaxArraySize`), each task one `relab run --point` that checkpoints and requeues itself on the configured signal,
//! then an aggregation job (`--dependency=afterany`) writing the sweep's report. It submits and returns: the run
//! folders, read by `relab status`, tell how the points fare.

use std::path::Path;
use std::process::Command;

use anyhow::Context;
use relab_core::experiment::SlurmSettings;

use super::launcher::{Launched, Launcher};
use super::manifest::{Manifest, Point};
use super::slurm_script::{self as script, Array};

pub struct Slurm {
    pub settings: SlurmSettings,
    /// Print the scripts and the `sbatch` command lines instead of submitting.
    pub dry_run: bool,
}

/// The path of `program` on `PATH`, or an error saying what to do.
fn find(program: &str) -> anyhow::Result<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|d| d.join(program)).find(|p| p.is_file()).with_context(|| {
        format!(
            "`{program}` is not on PATH: the Slurm launcher needs Slurm's commands (install Slurm, e.g. Debian's \
             slurm-client, or load its module), or run the sweep with `launcher: local` (`--launcher local`)"
        )
    })
}

fn output(command: &mut Command) -> anyhow::Result<String> {
    let o = command.output().with_context(|| format!("cannot run {command:?}"))?;
    anyhow::ensure!(
        o.status.success(),
        "{command:?} failed ({}): {}",
        o.status,
        String::from_utf8_lossy(&o.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

/// The cluster's `MaxArraySize`.
fn max_array_size() -> anyhow::Result<usize> {
    let scontrol = find("scontrol")?;
    let config = output(Command::new(scontrol).args(["show", "config"]))?;
    Ok(script::max_array_size(&config))
}

impl Launcher for Slurm {
    fn launch(
        &self,
        sweep_dir: &Path,
        manifest: &Manifest,
        points: &[&Point],
        resume: bool,
    ) -> anyhow::Result<Launched> {
        let sweep_dir = std::path::absolute(sweep_dir)?;
        let name = sweep_dir.file_name().map_or("sweep".into(), |n| n.to_string_lossy().into_owned());
        let indices: Vec<usize> = manifest
            .points
            .iter()
            .enumerate()
            .filter(|(_, p)| points.iter().any(|q| q.folder == p.folder))
            .map(|(i, _)| i)
            .collect();
        let dir = sweep_dir.join(script::DIR);
        let (task_path, report_path) = (dir.join(script::TASK_SCRIPT), dir.join(script::REPORT_SCRIPT));
        let task = script::task_script(&sweep_dir, &name, &manifest.points, &self.settings);
        let relab = &manifest.points[0].command[0];
        let report = script::report_script(&sweep_dir, &name, relab, &self.settings);
        let max = if self.dry_run {
            max_array_size().unwrap_or_else(|e| {
                println!("# (no MaxArraySize from the cluster, Slurm's default 1001 assumed: {e:#})");
                1001
            })
        } else {
            find("sbatch")?;
            max_array_size()?
        };
        let arrays = script::arrays(&indices, max, self.settings.parallel);
        if self.dry_run {
            print!("# {}\n{task}\n# {}\n{report}\n", task_path.display(), report_path.display());
            let mut jobs = Vec::new();
            for (i, array) in arrays.iter().enumerate() {
                println!("sbatch {}", words(&script::array_args(array, &task_path, resume)));
                jobs.push(format!("ARRAY{}_JOB_ID", i + 1));
            }
            println!("sbatch {}", words(&script::report_args(&jobs, &report_path)));
            println!("# dry run: nothing submitted ({} point(s), {} array(s))", indices.len(), arrays.len());
            return Ok(Launched::Submitted);
        }
        let queued = still_queued(&dir)?;
        anyhow::ensure!(
            queued.is_empty(),
            "job(s) {} of this sweep are still queued or running (`squeue`): wait for them to end, or `scancel` them, \
             before submitting its points again",
            queued.join(", ")
        );
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        std::fs::write(&task_path, task)?;
        std::fs::write(&report_path, report)?;
        for p in points {
            // A resubmitted point gets its full allowance of time-limit requeues again.
            let _ = std::fs::remove_file(sweep_dir.join(format!("{}.timeouts", p.folder)));
        }
        let jobs = submit(&arrays, &task_path, &report_path, resume, &dir)?;
        println!(
            "submitted {} point(s) as Slurm job array(s) {} (script {}), the report as job {}; `relab status {}` follows them",
            indices.len(),
            jobs[..jobs.len() - 1].join(", "),
            task_path.display(),
            jobs[jobs.len() - 1],
            sweep_dir.display()
        );
        Ok(Launched::Submitted)
    }
}

/// The jobs recorded in `slurm/jobs` that the scheduler still holds: their tasks would run a second time beside a
/// resubmission (`relab status` cannot tell a queued point from one never submitted).
fn still_queued(dir: &Path) -> anyhow::Result<Vec<String>> {
    let Ok(record) = std::fs::read_to_string(dir.join("jobs")) else { return Ok(Vec::new()) };
    let ours: Vec<&str> = record.lines().filter_map(|l| l.split_whitespace().nth(1)).collect();
    // %F: an array task's array job id, a plain job's own id.
    let queue = output(Command::new(find("squeue")?).args(["-h", "-o", "%F"]))?;
    let mut queued: Vec<String> =
        queue.lines().map(str::trim).filter(|id| ours.contains(id)).map(str::to_string).collect();
    queued.sort_by_key(|id| id.parse::<u64>().unwrap_or(u64::MAX));
    queued.dedup();
    Ok(queued)
}

fn words(args: &[String]) -> String {
    args.iter().map(|a| script::quote(a)).collect::<Vec<_>>().join(" ")
}

/// Submits the arrays, then the aggregation job after them; records every job id in `slurm/jobs`.
fn submit(arrays: &[Array], task: &Path, report: &Path, resume: bool, dir: &Path) -> anyhow::Result<Vec<String>> {
    let sbatch = find("sbatch")?;
    let mut jobs = Vec::new();
    let mut record = String::new();
    for array in arrays {
        let out = output(Command::new(&sbatch).args(script::array_args(array, task, resume)))?;
        // `--parsable` prints `ID` or `ID;CLUSTER`.
        let id = out.trim().split(';').next().unwrap_or_default().to_string();
        anyhow::ensure!(!id.is_empty(), "sbatch printed no job id");
        record.push_str(&format!("array {id} {} offset {}\n", array.spec, array.offset));
        jobs.push(id);
    }
    let out = output(Command::new(&sbatch).args(script::report_args(&jobs, report)))?;
    let id = out.trim().split(';').next().unwrap_or_default().to_string();
    record.push_str(&format!("report {id}\n"));
    jobs.push(id);
    let path = dir.join("jobs");
    let mut old = std::fs::read_to_string(&path).unwrap_or_default();
    old.push_str(&record);
    std::fs::write(&path, old)?;
    Ok(jobs)
}
