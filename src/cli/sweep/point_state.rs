//! Where a sweep point stands, read from its run folder and the pid file beside it (never from a scheduler):
//! done, running, failed or not started.

use std::path::Path;

use super::manifest::Point;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointState {
    /// The run folder is complete: every stage's `stage.json` says so and the run's `report.md` is written.
    Done,
    /// The pid recorded beside the run folder is a live `relab run` of this point.
    Running,
    /// Started (a log or run folder exists) but neither done nor running.
    Failed,
    NotStarted,
}

impl PointState {
    pub fn of(sweep_dir: &Path, point: &Point) -> PointState {
        let dir = point.run_dir(sweep_dir);
        if live_pid(&point.pid_file(sweep_dir), &dir).is_some() || on_other_node(sweep_dir, point) {
            PointState::Running
        } else if finished(&dir) {
            PointState::Done
        } else if dir.exists() || point.log(sweep_dir).exists() {
            PointState::Failed
        } else {
            PointState::NotStarted
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            PointState::Done => "done",
            PointState::Running => "running",
            PointState::Failed => "failed",
            PointState::NotStarted => "not started",
        }
    }
}

/// A Slurm task runs the point on another machine: its `<point>.node` file (host and task, removed when the task
/// ends) names a host other than this one, whose processes this one cannot see.
fn on_other_node(sweep_dir: &Path, point: &Point) -> bool {
    let Ok(text) = std::fs::read_to_string(sweep_dir.join(format!("{}.node", point.folder))) else { return false };
    let host = text.split_whitespace().next().unwrap_or_default();
    !host.is_empty() && host != hostname()
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer and its length are passed together; the name is NUL-terminated within it.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// The run folder holds a finished run: `report.md` (written last) and no stage left incomplete.
pub fn finished(run_dir: &Path) -> bool {
    if !run_dir.join("report.md").is_file() || !run_dir.join("summary.json").is_file() {
        return false;
    }
    let Ok(entries) = std::fs::read_dir(run_dir) else { return false };
    entries.flatten().all(|e| {
        let record = e.path().join("stage.json");
        match std::fs::read_to_string(&record) {
            Err(_) => true,
            Ok(text) => serde_json::from_str::<serde_json::Value>(&text)
                .is_ok_and(|v| v.get("complete").and_then(serde_json::Value::as_bool) == Some(true)),
        }
    })
}

/// The pid in `pid_file` when that process is alive and runs into `run_dir` (a reused pid does not count).
pub fn live_pid(pid_file: &Path, run_dir: &Path) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(pid_file).ok()?.trim().parse().ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let dir = std::path::absolute(run_dir).ok()?;
    let wanted = dir.to_string_lossy();
    let args: Vec<String> = cmdline.split(|&b| b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
    args.iter().any(|a| *a == wanted).then_some(pid)
}

/// The last `n` lines of `log` (empty when it cannot be read).
pub fn log_tail(log: &Path, n: usize) -> Vec<String> {
    let Ok(bytes) = std::fs::read(log) else { return Vec::new() };
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].iter().map(|l| l.to_string()).collect()
}
