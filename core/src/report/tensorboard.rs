//! A run's `metrics.jsonl` as a TensorBoard event file in its run folder, so `tensorboard --logdir SWEEP_DIR` shows
//! every point of a sweep as a run: each numeric field of a line is the scalar `<stage>/<field>`.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::series::{NOT_METRICS, X_KEYS, read_metrics};
use crate::Result;
use crate::formats::tfevents::{self, Scalar};

/// The event file's name inside the run folder: fixed, so writing it again replaces it.
pub const EVENT_FILE: &str = "events.out.tfevents.0.relab";

/// The scalars of the parsed `metrics.jsonl` lines. The step is the line's first integer x key (`step`, `epoch`,
/// `iteration`, …), else the line's position among its stage's lines; the wall time is its `time` (or
/// `timestamp`) when numeric, else 0.
pub fn scalars(records: &[Map<String, Value>]) -> Vec<Scalar> {
    let mut per_stage: std::collections::BTreeMap<String, i64> = Default::default();
    let mut out = Vec::new();
    for r in records {
        let stage = r["stage"].as_str().unwrap_or_default();
        let index = per_stage.entry(stage.to_string()).or_default();
        let step = X_KEYS
            .iter()
            .find_map(|k| r.get(*k).and_then(Value::as_f64).filter(|x| x.fract() == 0.0).map(|x| x as i64))
            .unwrap_or(*index);
        *index += 1;
        let wall_time = ["time", "timestamp"].iter().find_map(|k| r.get(*k).and_then(Value::as_f64)).unwrap_or(0.0);
        for (k, v) in r {
            if X_KEYS.contains(&k.as_str()) || NOT_METRICS.contains(&k.as_str()) {
                continue;
            }
            if let Some(x) = v.as_f64() {
                out.push(Scalar { tag: format!("{stage}/{k}"), step, value: x as f32, wall_time });
            }
        }
    }
    out
}

/// Writes `run_dir/events.out.tfevents.0.relab` from `run_dir/metrics.jsonl`; returns its path.
pub fn write_event_file(run_dir: &Path) -> Result<PathBuf> {
    let (records, _) = read_metrics(&run_dir.join("metrics.jsonl"))?;
    let path = run_dir.join(EVENT_FILE);
    tfevents::write(&path, &scalars(&records))?;
    Ok(path)
}
