//! The local launcher: `--jobs N` points at once as child processes of this one, each pinned to its share of the
//! cores, its output in a log beside its run folder. A failing point does not stop the others; SIGINT or SIGTERM
//! stops them all (each child gets SIGTERM and is waited for), and a child dies with the launcher if it is killed.

use std::collections::VecDeque;
use std::fs::OpenOptions;
use std::io::Write as _;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::Context;

use super::launcher::{Launched, Launcher};
use super::manifest::{Manifest, Point};
use super::point_state::log_tail;
use super::{signals, threads};

pub struct Local {
    pub jobs: usize,
    /// Print each point's command instead of running it.
    pub dry_run: bool,
}

struct Running<'a> {
    point: &'a Point,
    child: Child,
    slot: usize,
}

impl Launcher for Local {
    fn launch(
        &self,
        sweep_dir: &Path,
        _manifest: &Manifest,
        points: &[&Point],
        resume: bool,
    ) -> anyhow::Result<Launched> {
        if self.dry_run {
            for p in points {
                let words: Vec<String> = p.command.iter().map(|w| super::slurm_script::quote(w)).collect();
                println!("{}{}", words.join(" "), if resume { " --resume" } else { "" });
            }
            println!("# dry run: nothing started ({} point(s), {} at once)", points.len(), self.jobs);
            return Ok(Launched::Finished);
        }
        signals::catch();
        let cpus = threads::allowed_cpus();
        let jobs = self.jobs.min(points.len()).max(1);
        let mut queue: VecDeque<&Point> = points.iter().copied().collect();
        let mut running: Vec<Running> = Vec::new();
        let mut free: Vec<usize> = (0..jobs).rev().collect();
        let mut failed: Vec<(&Point, String)> = Vec::new();
        let mut stopping = None;
        loop {
            if stopping.is_none()
                && let Some(signal) = signals::received()
            {
                eprintln!("signal {signal}: stopping {} running point(s)", running.len());
                for r in &running {
                    // SAFETY: a plain kill(2) of our own child's pid.
                    unsafe { libc::kill(r.child.id() as i32, libc::SIGTERM) };
                }
                stopping = Some(signal);
                queue.clear();
            }
            while stopping.is_none()
                && let Some(slot) = free.pop()
            {
                let Some(point) = queue.pop_front() else {
                    free.push(slot);
                    break;
                };
                let cpus = threads::share(&cpus, jobs, slot);
                match start(sweep_dir, point, &cpus, resume) {
                    Ok(child) => {
                        println!("started {} (pid {}, {} cpu(s))", point.label, child.id(), cpus.len());
                        running.push(Running { point, child, slot });
                    }
                    Err(e) => {
                        free.push(slot);
                        failed.push((point, format!("{e:#}")));
                    }
                }
            }
            let mut i = 0;
            while i < running.len() {
                match running[i].child.try_wait()? {
                    None => i += 1,
                    Some(status) => {
                        let r = running.swap_remove(i);
                        free.push(r.slot);
                        let _ = std::fs::remove_file(r.point.pid_file(sweep_dir));
                        note_exit(sweep_dir, r.point, status);
                        if status.success() {
                            println!("done    {} → {}", r.point.label, r.point.run_dir(sweep_dir).display());
                        } else {
                            println!(
                                "failed  {} ({}), log {}",
                                r.point.label,
                                describe(status),
                                r.point.log(sweep_dir).display()
                            );
                            failed.push((r.point, describe(status)));
                        }
                    }
                }
            }
            if running.is_empty() && (queue.is_empty() || stopping.is_some()) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if let Some(signal) = stopping {
            anyhow::bail!(
                "stopped by signal {signal}; `relab run ... --resume` or `relab resubmit` finishes the sweep"
            );
        }
        if failed.is_empty() {
            return Ok(Launched::Finished);
        }
        let mut message = format!("{} of {} point(s) failed:", failed.len(), points.len());
        for (point, why) in &failed {
            message.push_str(&format!("\n  {} ({why}), log {}", point.label, point.log(sweep_dir).display()));
            for line in log_tail(&point.log(sweep_dir), 3) {
                message.push_str(&format!("\n    | {line}"));
            }
        }
        message.push_str("\n`relab resubmit SWEEP_DIR` (or `relab run ... --resume`) redoes only these.");
        anyhow::bail!(message)
    }
}

/// Starts `point`'s process with its output appended to its log, pinned to `cpus`, and records its pid.
fn start(sweep_dir: &Path, point: &Point, cpus: &[usize], resume: bool) -> anyhow::Result<Child> {
    let log_path = point.log(sweep_dir);
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot open the log {}", log_path.display()))?;
    writeln!(log, "relab sweep: starting {}{}", point.label, if resume { " with --resume" } else { "" })?;
    let mut command = Command::new(&point.command[0]);
    command
        .args(&point.command[1..])
        .args(resume.then_some("--resume"))
        .env("RAYON_NUM_THREADS", cpus.len().to_string())
        // A log file is no terminal: no colour codes in it.
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    let cpus = cpus.to_vec();
    // SAFETY: between fork and exec the closure only makes two system calls.
    unsafe {
        command.pre_exec(move || {
            // The child goes when the launcher goes, even when the launcher is killed outright.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            threads::pin(&cpus)
        });
    }
    let child = command.spawn().with_context(|| format!("cannot start {}", point.command[0]))?;
    std::fs::write(point.pid_file(sweep_dir), format!("{}\n", child.id()))?;
    Ok(child)
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => status.to_string(),
    }
}

/// Ends the log with how the process ended: a killed process writes nothing of its own.
fn note_exit(sweep_dir: &Path, point: &Point, status: ExitStatus) {
    if let Ok(mut log) = OpenOptions::new().append(true).open(point.log(sweep_dir)) {
        let _ = writeln!(log, "relab sweep: {} ended: {}", point.label, describe(status));
    }
}
