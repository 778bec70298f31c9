//! The plugin author's test kit: what every plugin's tests check the same way. A tiny synthetic dataset, a
//! [`StageContext`] in a folder of the test's, the parameter round trip, and the two reproducibility checks: the
//! same seed gives the same bits, and a stage killed after a checkpoint (or stopped mid-epoch, as SIGTERM stops it)
//! and resumed ends bit-identical to one that ran through.
//!
//! ```ignore
//! #[test]
//! fn resumes_bit_identically() {
//!     let data = testing::tiny_dataset(&TinySpec::default());
//!     testing::check_resume(StageKind::Train, 1, |ctx| {
//!         let mut learner = testing::build::<MyLearner>("epochs: 2")?;
//!         learner.train(ctx, LearnerInput::new(&data, &labeled))
//!     });
//! }
//! ```
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs;
use std::path::{Path, PathBuf};

use burn::tensor::Device;
use serde_json::{Map, Value};

use crate::component::{MetricsSink, StageContext, StageKind};
use crate::data::{Dataset, ImageSet};
use crate::registry::{PluginInfo, PluginParams, describe_params, parse_params};
use crate::{Error, Result};

/// A synthetic dataset small enough for a unit test: every class draws its own bright square on noise, so that a
/// network can learn it within a few steps.
#[derive(Debug, Clone, PartialEq)]
pub struct TinySpec {
    pub classes: usize,
    pub train_per_class: usize,
    pub test_per_class: usize,
    pub channels: usize,
    /// Height and width.
    pub size: usize,
    pub seed: u64,
}

impl Default for TinySpec {
    fn default() -> Self {
        TinySpec { classes: 3, train_per_class: 8, test_per_class: 4, channels: 1, size: 8, seed: 1 }
    }
}

/// The dataset `spec` describes; the same spec gives the same pixels.
pub fn tiny_dataset(spec: &TinySpec) -> Dataset {
    let mut state = spec.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut noise = move || {
        // xorshift: fixed, dependency-free, and enough for test pixels.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % 96) as u8
    };
    let s = spec.size;
    let side = (s / 2).max(1);
    let mut set = |per_class: usize| {
        let mut pixels = Vec::with_capacity(spec.classes * per_class * spec.channels * s * s);
        let mut labels = Vec::with_capacity(spec.classes * per_class);
        for i in 0..spec.classes * per_class {
            let class = i % spec.classes;
            // Each class puts its square at its own place along the diagonal.
            let at = class * (s - side) / spec.classes.max(2).saturating_sub(1).max(1);
            for _ in 0..spec.channels {
                for y in 0..s {
                    for x in 0..s {
                        let inside = (at..at + side).contains(&y) && (at..at + side).contains(&x);
                        pixels.push(if inside { 160 + noise() } else { noise() });
                    }
                }
            }
            labels.push(class as u32);
        }
        ImageSet { channels: spec.channels, height: s, width: s, pixels, labels: Some(labels) }
    };
    let train = set(spec.train_per_class);
    let test = set(spec.test_per_class);
    Dataset {
        name: "tiny".into(),
        train,
        test,
        num_classes: spec.classes,
        class_names: (0..spec.classes).map(|c| format!("class {c}")).collect(),
        mean: vec![0.3; spec.channels],
        std: vec![0.3; spec.channels],
    }
}

/// A context for `stage` on the CPU backend, writing into `dir` (created), as the pipeline makes one.
pub fn stage_context(dir: &Path, stage: StageKind, seed: u64, resume: bool) -> Result<StageContext> {
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let metrics = MetricsSink::open(&dir.join("metrics.jsonl"))?;
    Ok(StageContext::new(stage, Device::flex(), "cpu", seed, dir.to_path_buf(), metrics, resume))
}

/// A context for `stage` in a fresh temporary folder, removed when the returned folder guard drops.
pub fn scratch_context(stage: StageKind) -> (tempfile::TempDir, StageContext) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let ctx = stage_context(dir.path(), stage, 1, false).expect("a stage context in a fresh folder");
    (dir, ctx)
}

/// The plugin built from parameters written as YAML (`""` for the defaults), as the registry builds it.
pub fn build<T: PluginInfo>(yaml: &str) -> std::result::Result<T, crate::registry::ParamError> {
    let value: serde_yaml::Value = serde_yaml::from_str(yaml).expect("the test's parameters are YAML");
    T::from_params(parse_params::<T::Params>(&value)?)
}

/// Checks a plugin's parameters: the defaults build the plugin, they survive a YAML round trip unchanged, and
/// `relab plugins describe` has a help line for every parameter. Panics with what is wrong.
pub fn check_params<T: PluginInfo>()
where
    T::Params: PartialEq + Debug,
{
    let defaults = T::Params::default();
    let yaml = serde_yaml::to_value(&defaults).expect("the parameters serialise");
    let back: T::Params =
        parse_params(&yaml).unwrap_or_else(|e| panic!("{}: defaults do not parse back: {e}", T::NAME));
    assert_eq!(back, defaults, "{}: the defaults change through YAML", T::NAME);
    if let Err(e) = T::from_params(defaults) {
        panic!("{}: the defaults are refused: {e}", T::NAME);
    }
    for doc in describe_params::<T::Params>() {
        assert!(!doc.help.trim().is_empty(), "{}: parameter `{}` has no help line", T::NAME, doc.name);
    }
    let _ = <T::Params as PluginParams>::help();
}

/// What a stage left behind: every file under its folder, its metrics with timings left out, its summary and what it
/// returned.
#[derive(Debug, PartialEq)]
pub struct StageOutcome<T> {
    pub files: BTreeMap<PathBuf, Vec<u8>>,
    pub metrics: Vec<Value>,
    pub summary: Map<String, Value>,
    pub value: T,
}

/// What a stage returned, with its summary.
type Finished<T> = Result<(T, Map<String, Value>)>;

/// Runs `stage` (a closure over a fresh context) in a new folder of `root`.
fn run_in<T>(
    root: &Path,
    name: &str,
    kind: StageKind,
    resume: bool,
    stop_after: Option<u64>,
    stage: &impl Fn(&mut StageContext) -> Result<T>,
) -> (PathBuf, Finished<T>) {
    run_stopped_in(root, name, kind, resume, stop_after, None, stage)
}

/// [`run_in`], also stopped as by SIGTERM after `interrupt_after` optimiser steps.
fn run_stopped_in<T>(
    root: &Path,
    name: &str,
    kind: StageKind,
    resume: bool,
    stop_after: Option<u64>,
    interrupt_after: Option<u64>,
    stage: &impl Fn(&mut StageContext) -> Result<T>,
) -> (PathBuf, Finished<T>) {
    let dir = root.join(name);
    let result = stage_context(&dir, kind, 7, resume).and_then(|mut ctx| {
        ctx.stop_after_checkpoints(stop_after);
        ctx.interrupt_after_steps(interrupt_after);
        let value = stage(&mut ctx)?;
        Ok((value, ctx.take_summary()))
    });
    (dir, result)
}

fn outcome<T>(dir: &Path, value: T, summary: Map<String, Value>) -> StageOutcome<T> {
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in fs::read_dir(&folder).expect("the stage folder is readable") {
            let path = entry.expect("a folder entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.file_name().is_some_and(|n| n != "metrics.jsonl") {
                let bytes = fs::read(&path).expect("a stage file is readable");
                files.insert(path.strip_prefix(dir).expect("under the stage folder").to_path_buf(), bytes);
            }
        }
    }
    let text = fs::read_to_string(dir.join("metrics.jsonl")).unwrap_or_default();
    let metrics = text
        .lines()
        .map(|line| {
            let mut record: Value = serde_json::from_str(line).expect("metrics.jsonl holds JSON lines");
            if let Value::Object(map) = &mut record {
                map.retain(|key, _| !key.ends_with("seconds"));
            }
            record
        })
        .collect();
    StageOutcome { files, metrics, summary, value }
}

/// Runs `stage` twice in fresh folders and checks that both runs leave the same bits: every file, every metric
/// but timings, the summary and the returned value. Returns the outcome.
pub fn check_deterministic<T: PartialEq + Debug>(
    kind: StageKind,
    stage: impl Fn(&mut StageContext) -> Result<T>,
) -> StageOutcome<T> {
    let root = tempfile::tempdir().expect("a temporary folder");
    let (dir, first) = run_in(root.path(), "first", kind, false, None, &stage);
    let (value, summary) = first.unwrap_or_else(|e| panic!("the stage failed: {e}"));
    let first = outcome(&dir, value, summary);
    let (dir, second) = run_in(root.path(), "second", kind, false, None, &stage);
    let (value, summary) = second.unwrap_or_else(|e| panic!("the stage failed the second time: {e}"));
    let second = outcome(&dir, value, summary);
    assert_same(&first, &second, "a second run with the same seed");
    first
}

/// Runs `stage` through, then again killed right after its `kill_after`-th checkpoint and resumed in the same
/// folder, and checks that the resumed run ends bit-identical to the uninterrupted one (files, metrics but
/// timings, summary, returned value). Panics when the stage never reaches that checkpoint.
pub fn check_resume<T: PartialEq + Debug>(
    kind: StageKind,
    kill_after: u64,
    stage: impl Fn(&mut StageContext) -> Result<T>,
) -> StageOutcome<T> {
    let root = tempfile::tempdir().expect("a temporary folder");
    let (dir, through) = run_in(root.path(), "through", kind, false, None, &stage);
    let (value, summary) = through.unwrap_or_else(|e| panic!("the uninterrupted stage failed: {e}"));
    let through = outcome(&dir, value, summary);
    let (_, killed) = run_in(root.path(), "resumed", kind, false, Some(kill_after), &stage);
    match killed {
        Err(Error::Stage { message, .. }) if message.contains("RELAB_STOP_AFTER_CHECKPOINTS") => {}
        Err(e) => panic!("the stage failed before its checkpoint {kill_after} for another reason: {e}"),
        Ok(_) => panic!("the stage finished before writing checkpoint {kill_after}: kill it earlier"),
    }
    let (dir, resumed) = run_in(root.path(), "resumed", kind, true, None, &stage);
    let (value, summary) = resumed.unwrap_or_else(|e| panic!("the resumed stage failed: {e}"));
    let resumed = outcome(&dir, value, summary);
    assert_same(&through, &resumed, "the run killed after a checkpoint and resumed");
    through
}

/// Runs `stage` through, then again stopped as SIGTERM stops it after its `steps`-th optimiser step (the training
/// loop writes a mid-epoch checkpoint) and resumed in the same folder, and checks that the resumed run ends
/// bit-identical to the uninterrupted one. Panics when the stage finishes before that step or stops without a
/// mid-epoch checkpoint. Pick a step before the last epoch: a stop in the last epoch leaves its mid-epoch checkpoint
/// as `.checkpoint.prev`, where the uninterrupted run keeps the previous epoch's.
pub fn check_interrupt_resume<T: PartialEq + Debug>(
    kind: StageKind,
    steps: u64,
    stage: impl Fn(&mut StageContext) -> Result<T>,
) -> StageOutcome<T> {
    let root = tempfile::tempdir().expect("a temporary folder");
    let (dir, through) = run_in(root.path(), "through", kind, false, None, &stage);
    let (value, summary) = through.unwrap_or_else(|e| panic!("the uninterrupted stage failed: {e}"));
    let through = outcome(&dir, value, summary);
    let (dir, stopped) = run_stopped_in(root.path(), "resumed", kind, false, None, Some(steps), &stage);
    match stopped {
        Err(Error::Interrupted { .. }) => {}
        Err(e) => panic!("the stage failed before step {steps} for another reason: {e}"),
        Ok(_) => panic!("the stage finished before step {steps}: stop it earlier"),
    }
    let state = fs::read_to_string(dir.join("checkpoint").join("state.json")).expect("a checkpoint after the stop");
    let state: Value = serde_json::from_str(&state).expect("state.json is JSON");
    assert!(state["state"]["mid_epoch"].is_object(), "the stop left no mid-epoch checkpoint: {state}");
    let (dir, resumed) = run_in(root.path(), "resumed", kind, true, None, &stage);
    let (value, summary) = resumed.unwrap_or_else(|e| panic!("the resumed stage failed: {e}"));
    let resumed = outcome(&dir, value, summary);
    assert_same(&through, &resumed, "the run stopped mid-epoch and resumed");
    through
}

/// The tensors of a safetensors file by name: dtype, shape and raw bytes.
fn safetensors(bytes: &[u8]) -> BTreeMap<String, (String, Vec<usize>, Vec<u8>)> {
    let len = u64::from_le_bytes(bytes[..8].try_into().expect("a safetensors header length")) as usize;
    let header: Map<String, Value> = serde_json::from_slice(&bytes[8..8 + len]).expect("a safetensors header");
    let data = &bytes[8 + len..];
    header
        .into_iter()
        .filter(|(name, _)| name != "__metadata__")
        .map(|(name, entry)| {
            let offsets = |i: usize| entry["data_offsets"][i].as_u64().expect("data offsets") as usize;
            let shape = entry["shape"].as_array().expect("a shape").iter().map(|d| d.as_u64().unwrap() as usize);
            let dtype = entry["dtype"].as_str().expect("a dtype").to_string();
            (name, (dtype, shape.collect(), data[offsets(0)..offsets(1)].to_vec()))
        })
        .collect()
}

fn assert_same<T: PartialEq + Debug>(expected: &StageOutcome<T>, found: &StageOutcome<T>, what: &str) {
    let names = |o: &StageOutcome<T>| o.files.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(expected), names(found), "{what} wrote other files");
    for (path, bytes) in &expected.files {
        let name = path.to_string_lossy();
        let same = if name.ends_with(".safetensors") {
            // The header's order and metadata may differ; the tensors, by name, may not.
            safetensors(bytes) == safetensors(&found.files[path])
        } else {
            // Parameter ids (and the optimiser state, keyed by them) are drawn afresh by every process: the weights
            // trained after a resume show whether that state came back.
            // A checkpoint's manifest.json holds the digests of those files, so it varies with them.
            name.ends_with(".ids.json")
                || name.ends_with(".bpk")
                || path.file_name().is_some_and(|n| n == "manifest.json")
                || found.files[path] == *bytes
        };
        assert!(same, "{what} wrote other values into {name}");
    }
    assert_eq!(expected.metrics, found.metrics, "{what} logged other metrics");
    assert_eq!(expected.summary, found.summary, "{what} summarised other numbers");
    assert_eq!(expected.value, found.value, "{what} returned another value");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiny_dataset_is_seeded_and_labelled() {
        let spec = TinySpec::default();
        let a = tiny_dataset(&spec);
        assert_eq!((a.train.len(), a.test.len(), a.train.height), (24, 12, 8));
        assert_eq!(a.train.labels.as_ref().unwrap()[..4], [0, 1, 2, 0]);
        assert_eq!(tiny_dataset(&spec).train.pixels, a.train.pixels);
        let other = tiny_dataset(&TinySpec { seed: 2, ..spec });
        assert_ne!(other.train.pixels, a.train.pixels);
    }

    #[test]
    fn resume_check_catches_a_stage_that_forgets_its_state() {
        // A running sum checkpointed each step; the forgetful stage restores its counter one short.
        let stage = |short: u64| {
            move |ctx: &mut StageContext| -> Result<u64> {
                let (mut count, mut total) = ctx.restore_checkpoint::<(u64, u64)>()?.map_or((0, 0), |(s, _)| s);
                count = count.saturating_sub(short);
                while count < 3 {
                    count += 1;
                    total += count;
                    ctx.save_checkpoint(&(count, total), |_| Ok(()))?;
                }
                Ok(total)
            }
        };
        let caught = std::panic::catch_unwind(|| check_resume(StageKind::Train, 2, stage(1)));
        assert!(caught.is_err());
        let faithful = stage(0);
        assert_eq!(check_resume(StageKind::Train, 2, faithful).value, 6);
    }
}
