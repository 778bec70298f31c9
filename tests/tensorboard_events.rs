//! The TensorBoard event files relab writes, read back by the `tensorboard` Python package: the same scalars (tag,
//! step, value as f32, wall time) as `metrics.jsonl`, and every record's masked CRC-32C as TensorFlow computes it.
//!
//! The package comes from `RELAB_TENSORBOARD_PYTHON` (a Python that imports `tensorboard`), else the virtual
//! environment `target/tensorboard-venv` (`.ci/run` makes it; this test makes it when missing). Without `python3`
//! the test is skipped with a message.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use relab_core::report::{EVENT_FILE, write_event_file};

const READ_BACK: &str = r#"
import json, struct, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

path = sys.argv[1]
data = open(path, "rb").read()
at, records = 0, 0
while at < len(data):
    (length,) = struct.unpack("<Q", data[at:at + 8])
    (length_crc,) = struct.unpack("<I", data[at + 8:at + 12])
    body = data[at + 12:at + 12 + length]
    (body_crc,) = struct.unpack("<I", data[at + 12 + length:at + 16 + length])
    assert length_crc == masked_crc32c(data[at:at + 8]), "length crc of record %d" % records
    assert body_crc == masked_crc32c(body), "data crc of record %d" % records
    at += 16 + length
    records += 1

acc = EventAccumulator(path, size_guidance={"scalars": 0})
acc.Reload()
scalars = {t: [[e.step, e.value, e.wall_time] for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}
print(json.dumps({"records": records, "scalars": scalars}))
"#;

fn python_with_tensorboard() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("RELAB_TENSORBOARD_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tensorboard-venv");
    let python = venv.join("bin/python");
    let imports =
        |p: &Path| Command::new(p).args(["-c", "import tensorboard"]).output().is_ok_and(|o| o.status.success());
    if python.is_file() && imports(&python) {
        return Some(python);
    }
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("SKIPPED: no python3 on this machine, so the event files cannot be read back with tensorboard");
        return None;
    }
    let made = Command::new("python3").arg("-m").arg("venv").arg(&venv).status().is_ok_and(|s| s.success())
        && Command::new(venv.join("bin/pip"))
            .args(["install", "-q", "tensorboard"])
            .status()
            .is_ok_and(|s| s.success());
    assert!(made && imports(&python), "cannot make {} with tensorboard (pip install tensorboard)", venv.display());
    Some(python)
}

#[test]
fn tensorboard_reads_back_the_scalars_of_metrics_jsonl() {
    let Some(python) = python_with_tensorboard() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path();
    let metrics = [
        r#"{"stage":"propagate","propagation_accuracy":0.7825,"cg_iterations":[3,4],"time":1765000000.25}"#,
        r#"{"stage":"train","epoch":1,"loss":2.360347032546997,"lr":0.05,"test_accuracy":0.05,"time":1765000010.5}"#,
        r#"{"stage":"train","epoch":2,"loss":2.099734306335449,"lr":0.05,"test_accuracy":0.2,"time":1765000020.75}"#,
        r#"{"stage":"train","epoch":3,"loss":1e-9,"lr":0.005,"test_accuracy":0.35}"#,
    ];
    fs::write(run.join("metrics.jsonl"), metrics.join("\n") + "\n").unwrap();
    let path = write_event_file(run).unwrap();
    assert_eq!(path, run.join(EVENT_FILE));

    let out = Command::new(&python).arg("-c").arg(READ_BACK).arg(&path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let read: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The file-version record, then one per scalar: 1 + 3 × 3.
    assert_eq!(read["records"], 11);
    let scalars = read["scalars"].as_object().unwrap();

    // What metrics.jsonl says, tag by tag: (step, value, wall time).
    let mut expected: std::collections::BTreeMap<String, Vec<(i64, f32, f64)>> = Default::default();
    for line in metrics {
        let m: serde_json::Value = serde_json::from_str(line).unwrap();
        let stage = m["stage"].as_str().unwrap();
        // The propagate line has no epoch: its step is its place among the stage's lines, the first.
        let step = m.get("epoch").and_then(|e| e.as_i64()).unwrap_or(0);
        let time = m.get("time").and_then(|t| t.as_f64()).unwrap_or(0.0);
        for (k, v) in m.as_object().unwrap() {
            if let (false, Some(x)) = (["stage", "epoch", "time"].contains(&k.as_str()), v.as_f64()) {
                expected.entry(format!("{stage}/{k}")).or_default().push((step, x as f32, time));
            }
        }
    }
    assert_eq!(scalars.len(), expected.len(), "tags: {:?}", scalars.keys().collect::<Vec<_>>());
    for (tag, want) in &expected {
        let got: Vec<(i64, f32, f64)> = scalars[tag]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e[0].as_i64().unwrap(), e[1].as_f64().unwrap() as f32, e[2].as_f64().unwrap()))
            .collect();
        assert_eq!(&got, want, "{tag}");
    }
}
