//! A run stopped by SIGTERM, SIGUSR2 (what Slurm sends ahead of a time limit or preemption) or SIGINT mid-
//! epoch: the training loop checkpoints after its step in flight, the process exits with 128 + the signal's number,
//! and `--resume` ends with the very numbers and weights of a run that was never stopped. On real Fashion-MNIST
//! with the `supervised` learner, tiny.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

/// 10 labelled images cycled into 30 steps of 2 per epoch, so a signal sent once training has begun lands mid-epoch.
const TINY: &str = "\
name: interrupt-tiny
seed: 3
dataset: { name: fashion-mnist, labels_per_class: 1, train_limit: 100, test_limit: 20 }
stages:
  train:
    plugin: supervised
    backbone: wrn10_2
    epochs: 2
    batch_size: 2
    min_steps_per_epoch: 30
    schedule: { lr: 0.05 }
    eval_batch_size: 20
";

fn experiment(dir: &Path) -> PathBuf {
    assert!(
        Path::new("/usr/share/datasets/fashion-mnist").is_dir() || std::env::var_os("RELAB_DATA").is_some(),
        "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"
    );
    let path = dir.join("interrupt-tiny.yaml");
    fs::write(&path, TINY).unwrap();
    path
}

fn relab(experiment: &Path, out: &Path, resume: bool) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_relab"));
    command.args(["run", experiment.to_str().unwrap(), "--no-cache", "--out", out.to_str().unwrap()]);
    if resume {
        command.arg("--resume");
    }
    command.env("RUST_LOG", "info");
    command
}

/// `summary.json` without timings, every metrics record without its wall-clock fields, and the trained weights.
fn numbers(run: &Path) -> (Value, Vec<Value>, Tensors) {
    let mut summary: Value = serde_json::from_str(&fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    summary.as_object_mut().unwrap().remove("seconds");
    let metrics = fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().retain(|k, _| !k.contains("second"));
            v
        })
        .collect();
    (summary, metrics, tensors(&fs::read(run.join("train").join("weights.safetensors")).unwrap()))
}

/// Tensors by name: `[dtype, shape]` and raw bytes.
type Tensors = BTreeMap<String, (Value, Vec<u8>)>;

/// A safetensors file's tensors: its header's key order may vary.
fn tensors(bytes: &[u8]) -> Tensors {
    let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Map<String, Value> = serde_json::from_slice(&bytes[8..8 + len]).unwrap();
    let data = &bytes[8 + len..];
    header
        .into_iter()
        .filter(|(name, _)| name != "__metadata__")
        .map(|(name, entry)| {
            let at = |i: usize| entry["data_offsets"][i].as_u64().unwrap() as usize;
            let raw = data[at(0)..at(1)].to_vec();
            (name, (serde_json::json!([entry["dtype"], entry["shape"]]), raw))
        })
        .collect()
}

/// Starts the run, sends `signal` once the train stage has begun, and returns the exit code and the log.
fn stopped_run(experiment: &Path, out: &Path, signal: i32) -> (Option<i32>, String) {
    let mut child = relab(experiment, out, false).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut log = String::new();
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap();
            if line.contains("train: running") {
                let _ = tx.send(());
            }
            log.push_str(&line);
            log.push('\n');
        }
        log
    });
    rx.recv_timeout(Duration::from_secs(120)).expect("the train stage starts");
    // A few steps in: the first epoch's 30 steps take seconds.
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: kill(2) of the child this test started.
    assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
    let status = child.wait().unwrap();
    (status.code(), reader.join().unwrap())
}

#[test]
fn a_run_stopped_by_sigterm_sigusr2_or_sigint_mid_epoch_resumes_bit_identically() {
    let root = tempfile::tempdir().unwrap();
    let experiment = experiment(root.path());
    let through = root.path().join("through");
    let output = relab(&experiment, &through, false).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let expected = numbers(&through);
    assert_eq!(expected.1.len(), 2, "one record per epoch: {:?}", expected.1);

    for (signal, name, code) in
        [(libc::SIGTERM, "SIGTERM", 143), (libc::SIGUSR2, "SIGUSR2", 140), (libc::SIGINT, "SIGINT", 130)]
    {
        let out = root.path().join(name);
        let (exit, log) = stopped_run(&experiment, &out, signal);
        assert_eq!(exit, Some(code), "{name}: exits with 128 + its number, not killed by it:\n{log}");
        let warning = log.lines().find(|l| l.contains(&format!("{name} received"))).unwrap_or_else(|| panic!("{log}"));
        assert!(warning.contains("WARN") && warning.contains("train") && warning.contains("--resume"), "{warning}");
        let state = fs::read_to_string(out.join("train").join("checkpoint").join("state.json")).unwrap();
        let state: Value = serde_json::from_str(&state).unwrap();
        let done = state["state"]["mid_epoch"]["batches_done"].as_u64();
        assert!(done.is_some_and(|d| d > 0 && d < 30), "{name}: stopped mid-epoch, after step {done:?} of 30");
        let record: Value =
            serde_json::from_str(&fs::read_to_string(out.join("train").join("stage.json")).unwrap()).unwrap();
        assert_eq!(record["complete"], Value::Bool(false), "an interrupted stage is never recorded as done");

        let resumed = relab(&experiment, &out, true).output().unwrap();
        assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
        assert_eq!(numbers(&out), expected, "{name}: the resumed run's numbers and weights");
    }
}
