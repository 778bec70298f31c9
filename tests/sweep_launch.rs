//! Sweeps run as processes by the local launcher, on a 4-point tiny sweep of the `supervised` learner on real
//! Fashion-MNIST: `--jobs 2` gives each point the numbers `--jobs 1` gives; a point killed mid-run fails alone,
//! `relab status` shows it with its log, and `relab resubmit` redoes it and nothing else; SIGTERM to the launcher
//! stops every point and `--resume` finishes the sweep.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const SWEEP: &str = "\
name: sweep-tiny
seed: 1
dataset: { name: fashion-mnist, labels_per_class: 1, train_limit: 100, test_limit: 20 }
stages:
  train:
    plugin: supervised
    backbone: wrn10_2
    epochs: 2
    batch_size: 10
    min_steps_per_epoch: 2
    schedule: { lr: 0.05 }
    eval_batch_size: 20
sweep:
  seed: [1, 2]
  stages.train.schedule.lr: [0.05, 0.1]
";

const FOLDERS: [&str; 4] = [
    "seed=1,stages.train.schedule.lr=0.05",
    "seed=1,stages.train.schedule.lr=0.1",
    "seed=2,stages.train.schedule.lr=0.05",
    "seed=2,stages.train.schedule.lr=0.1",
];

fn experiment(dir: &Path) -> PathBuf {
    assert!(
        Path::new("/usr/share/datasets/fashion-mnist").is_dir() || std::env::var_os("RELAB_DATA").is_some(),
        "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"
    );
    let path = dir.join("sweep-tiny.yaml");
    fs::write(&path, SWEEP).unwrap();
    path
}

fn relab(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_relab"));
    command.args(args).env("RUST_LOG", "info");
    command
}

fn run(args: &[&str]) -> Output {
    relab(args).output().expect("relab runs")
}

fn arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// `summary.json` without the timings, and every metrics record without its wall-clock fields.
fn numbers(run_dir: &Path) -> (serde_json::Value, Vec<serde_json::Value>) {
    numbers_but(run_dir, &[])
}

fn numbers_but(run_dir: &Path, skip: &[&str]) -> (serde_json::Value, Vec<serde_json::Value>) {
    let mut summary: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(run_dir.join("summary.json")).unwrap()).unwrap();
    summary.as_object_mut().unwrap().remove("seconds");
    let metrics = fs::read_to_string(run_dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            let m = v.as_object_mut().unwrap();
            m.retain(|k, _| !k.contains("second") && k != "time" && k != "timestamp" && !skip.contains(&k.as_str()));
            v
        })
        .collect();
    (summary, metrics)
}

fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < Duration::from_secs(120), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn pid_of(sweep: &Path, folder: &str) -> Option<i32> {
    fs::read_to_string(sweep.join(format!("{folder}.pid"))).ok()?.trim().parse().ok()
}

fn alive(pid: i32) -> bool {
    // A zombie still answers kill(0); /proc tells the state.
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
}

fn finish(mut child: Child) -> Output {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(start.elapsed() < Duration::from_secs(300), "the sweep did not end");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn two_jobs_give_each_point_the_numbers_of_one_job_and_a_manifest_logs_and_status() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = experiment(tmp.path());
    let (one, two) = (tmp.path().join("one"), tmp.path().join("two"));
    let o = run(&["run", arg(&exp), "--out", arg(&one), "--no-cache"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = run(&["run", arg(&exp), "--out", arg(&two), "--no-cache", "--jobs", "2", "--launcher", "local"]);
    assert!(o.status.success(), "{}", text(&o));
    for folder in FOLDERS {
        // The summary and every evaluation are the same; the training loss may differ in its last digits, since
        // the CPU kernels' reductions are split by the thread count (2 threads for --jobs 1, 1 each for --jobs 2).
        let (a, b) = (numbers_but(&one.join(folder), &["loss"]), numbers_but(&two.join(folder), &["loss"]));
        assert!(a.0["test_accuracy"]["last"].is_number(), "{folder}: {}", a.0);
        assert_eq!(a.1.len(), 2, "{folder}: one metrics record per epoch");
        assert!(a.1.iter().all(|m| m["test_accuracy"].is_number()), "{folder}: {:?}", a.1);
        assert_eq!(a, b, "{folder}: --jobs 2 must give the numbers of --jobs 1");
        let log = fs::read_to_string(two.join(format!("{folder}.log"))).unwrap();
        assert!(log.contains("train: done") && log.ends_with("ended: exit code 0\n"), "{log}");
        assert!(!log.contains('\u{1b}'), "no colour codes in a log file");
        assert!(!two.join(format!("{folder}.pid")).exists(), "pid files go with their processes");
    }
    // Seeds differ, so the points are not all the same run.
    assert_ne!(numbers(&one.join(FOLDERS[0])).1, numbers(&one.join(FOLDERS[2])).1);

    let manifest: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(two.join("sweep.json")).unwrap()).unwrap();
    let points = manifest["points"].as_array().unwrap();
    assert_eq!(points.len(), 4);
    assert_eq!(manifest["launcher"], "local");
    assert_eq!(points[1]["label"], "seed=1,stages.train.schedule.lr=0.1");
    assert_eq!(points[1]["folder"], FOLDERS[1]);
    let command: Vec<&str> = points[1]["command"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    let out = two.join(FOLDERS[1]);
    let tail = ["run", arg(&exp), "--no-cache", "--point", FOLDERS[1], "--out", arg(&out)];
    assert_eq!(command[1..], tail);

    // The sweep's report is written when every point is done.
    let csv = fs::read_to_string(two.join("summary.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 3, "one row per learning rate, the seeds averaged: {csv}");
    assert!(rows[1].starts_with("stages.train.schedule.lr=0.05,2,1 2,"), "{csv}");
    assert!(rows[2].starts_with("stages.train.schedule.lr=0.1,2,1 2,"), "{csv}");
    for plot in ["plots/train-test_accuracy.svg", "plots/train-loss.svg", "report.md"] {
        assert!(two.join(plot).is_file(), "{plot}");
    }
    for folder in FOLDERS {
        assert!(two.join(folder).join("events.out.tfevents.0.relab").is_file(), "{folder}");
    }
    let o = run(&["report", arg(&two)]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("| group | runs | seeds | test_accuracy.best (%) |"));

    let o = run(&["status", arg(&two)]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).ends_with("4 points: 4 done, 0 running, 0 failed, 0 not started\n"));
}

#[test]
fn a_killed_point_fails_alone_shows_in_status_and_resubmit_redoes_only_it() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = experiment(tmp.path());
    let sweep = tmp.path().join("sweep");
    let child = relab(&["run", arg(&exp), "--out", arg(&sweep), "--no-cache", "--jobs", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the first point's pid", || pid_of(&sweep, FOLDERS[0]).is_some_and(alive));
    let victim = pid_of(&sweep, FOLDERS[0]).unwrap();
    // While it runs, status says so.
    let o = run(&["status", arg(&sweep)]);
    assert!(String::from_utf8_lossy(&o.stdout).contains(&format!("running      {}\n", FOLDERS[0])), "{}", text(&o));
    // A second launcher into the same sweep folder is refused while this one runs.
    let o = run(&["resubmit", arg(&sweep)]);
    assert!(!o.status.success() && text(&o).contains("another relab process"), "{}", text(&o));
    // SAFETY: kill(2) of a process this test's sweep started.
    unsafe { libc_kill(victim, 9) };
    let o = finish(child);
    assert!(!o.status.success(), "a failed point makes the sweep fail: {}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("1 of 4 point(s) failed:\n  {} (killed by signal 9)", FOLDERS[0])), "{err}");
    for folder in &FOLDERS[1..] {
        assert!(sweep.join(folder).join("report.md").is_file(), "{folder} must finish despite the killed point");
    }

    let o = run(&["status", arg(&sweep)]);
    let status = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(status.contains(&format!("failed       {}\n", FOLDERS[0])), "{status}");
    assert!(
        status.contains("| relab sweep: seed=1,stages.train.schedule.lr=0.05 ended: killed by signal 9"),
        "{status}"
    );
    assert!(status.ends_with("4 points: 3 done, 0 running, 1 failed, 0 not started\n"), "{status}");

    let modified = |folder: &str| fs::metadata(sweep.join(folder).join("report.md")).unwrap().modified().unwrap();
    let before: Vec<_> = FOLDERS[1..].iter().map(|f| modified(f)).collect();
    let o = run(&["resubmit", arg(&sweep)]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out.matches("started ").count(), 1, "only the failed point runs again: {out}");
    let after: Vec<_> = FOLDERS[1..].iter().map(|f| modified(f)).collect();
    assert_eq!(before, after, "the finished points are left alone");
    let o = run(&["status", arg(&sweep)]);
    assert!(String::from_utf8_lossy(&o.stdout).ends_with("4 points: 4 done, 0 running, 0 failed, 0 not started\n"));
    let log = fs::read_to_string(sweep.join(format!("{}.log", FOLDERS[0]))).unwrap();
    assert!(log.contains("killed by signal 9") && log.contains("with --resume\n"), "{log}");
}

#[test]
fn sigterm_stops_every_point_and_resume_finishes_the_sweep() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = experiment(tmp.path());
    let sweep = tmp.path().join("sweep");
    let child = relab(&["run", arg(&exp), "--out", arg(&sweep), "--no-cache", "--jobs", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("two running points", || FOLDERS[..2].iter().all(|f| pid_of(&sweep, f).is_some_and(alive)));
    let pids: Vec<i32> = FOLDERS[..2].iter().map(|f| pid_of(&sweep, f).unwrap()).collect();
    // SAFETY: kill(2) of the process this test started.
    unsafe { libc_kill(child.id() as i32, 15) };
    let o = finish(child);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("stopped by signal 15"), "{}", text(&o));
    for pid in pids {
        assert!(!alive(pid), "point process {pid} must be gone with the launcher");
    }
    let o = run(&["status", arg(&sweep)]);
    let status = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(status.ends_with("0 running, 2 failed, 2 not started\n"), "{status}");

    // `resubmit --failed` redoes the two stopped points only; the sweep's --resume then runs the two never started.
    let o = run(&["resubmit", arg(&sweep), "--failed", "--jobs", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("resubmitting 2 failed point(s)"), "{}", text(&o));
    let o = run(&["status", arg(&sweep)]);
    let status = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(status.ends_with("2 done, 0 running, 0 failed, 2 not started\n"), "{status}");

    let o = run(&["run", arg(&exp), "--out", arg(&sweep), "--no-cache", "--jobs", "2", "--resume"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("--resume: 2 of 4 points to finish"), "{}", text(&o));
    let o = run(&["status", arg(&sweep)]);
    assert!(String::from_utf8_lossy(&o.stdout).ends_with("4 points: 4 done, 0 running, 0 failed, 0 not started\n"));
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, signal: i32) -> i32;
}

#[test]
fn one_run_under_a_slurm_launcher_runs_here_with_a_warning_and_dry_run_starts_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = experiment(tmp.path());
    let out = tmp.path().join("one");
    // `--point` is not used: pinning both sweep keys leaves a sweep of one run.
    let one = ["--set", "sweep.seed=[1]", "--set", "sweep.stages.train.schedule.lr=[0.05]"];
    let mut dry = vec!["run", arg(&exp), "--out", arg(&out), "--no-cache", "--launcher", "slurm", "--dry-run"];
    dry.extend(one);
    let o = run(&dry);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("is one run (no sweep), which would run here into"), "{}", text(&o));
    assert!(!out.exists(), "a dry run writes nothing");

    let mut real = vec!["run", arg(&exp), "--out", arg(&out), "--no-cache", "--launcher", "slurm"];
    real.extend(one);
    let o = run(&real);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("launcher slurm submits a sweep's points;"), "{}", text(&o));
    assert!(out.join("summary.json").is_file(), "{}", text(&o));
}
