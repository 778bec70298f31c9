//! The host's services to a component while it runs one stage ([`StageContext`]): device, seeded RNG, its folder,
//! verified checkpoints, metrics ([`MetricsSink`]) and progress bars.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use burn::tensor::Device;
use indicatif::ProgressBar;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::StageKind;
use super::checkpoint_manifest;
use crate::formats::atomic::remove_dir;
use crate::{Error, Result, progress};

/// Appends one JSON object per line to the run's `metrics.jsonl`; shared by all stages of a run.
#[derive(Clone)]
pub struct MetricsSink {
    path: PathBuf,
    file: Arc<Mutex<File>>,
}

impl MetricsSink {
    pub fn open(path: &Path) -> Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path).map_err(|e| Error::io(path, e))?;
        Ok(MetricsSink { path: path.to_path_buf(), file: Arc::new(Mutex::new(file)) })
    }

    pub fn write(&self, record: &Value) -> Result<()> {
        let mut line = serde_json::to_string(record).expect("a JSON value always serialises");
        line.push('\n');
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        file.write_all(line.as_bytes()).and_then(|_| file.flush()).map_err(|e| Error::io(&self.path, e))
    }

    /// Records (lines) written so far.
    pub fn records(&self) -> Result<u64> {
        let text = fs::read(&self.path).map_err(|e| Error::io(&self.path, e))?;
        Ok(text.iter().filter(|&&b| b == b'\n').count() as u64)
    }

    /// Keeps the first `n` records and drops the rest (those logged after a checkpoint that is resumed, which the
    /// resumed stage logs again).
    pub fn keep_records(&self, n: u64) -> Result<()> {
        let file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        let text = fs::read(&self.path).map_err(|e| Error::io(&self.path, e))?;
        let mut ends = text.iter().enumerate().filter(|(_, b)| **b == b'\n').map(|(i, _)| i as u64 + 1);
        let keep = if n == 0 { 0 } else { ends.nth(n as usize - 1).unwrap_or(text.len() as u64) };
        if keep < text.len() as u64 {
            file.set_len(keep).map_err(|e| Error::io(&self.path, e))?;
        }
        Ok(())
    }
}

/// Whether a stage folder's top-level entry `name` is one of its checkpoints (the current one, the previous one, or
/// one being written), which the stage cache and a finished stage's record leave out.
pub fn is_checkpoint_entry(name: &str) -> bool {
    name == CHECKPOINT || name.starts_with(".checkpoint")
}

/// Everything a component gets from the host while it runs one stage: the device, a seeded RNG, its own folder,
/// checkpoints, metrics and progress bars. Components never invent their own.
pub struct StageContext {
    pub stage: StageKind,
    /// A device that has passed its check; call `.autodiff()` on a clone to train.
    pub device: Device,
    /// `cpu`, `wgpu` or `cuda`.
    pub backend: &'static str,
    /// The experiment's seed.
    pub seed: u64,
    /// Seeded from the experiment's seed and the stage, so stages draw independent streams. Saved and restored with
    /// every checkpoint.
    pub rng: ChaCha8Rng,
    /// Modules constructed so far ([`StageContext::init`]).
    inits: u64,
    dir: PathBuf,
    resume: bool,
    metrics: MetricsSink,
    summary: Map<String, Value>,
    checkpoints_saved: u64,
    stop_after_checkpoints: Option<u64>,
    /// Optimiser steps the stage's training loops took in this process.
    steps_taken: u64,
    interrupt_after_steps: Option<u64>,
}

/// The seed of a stage's streams. Mixing the stage into the experiment's seed keeps each stage's streams the same
/// when earlier stages are cached.
fn stage_seed(seed: u64, stage: StageKind) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (stage as u64 + 1)
}

/// What the host keeps beside a component's own checkpoint state.
#[derive(Serialize, serde::Deserialize)]
struct CheckpointState<T> {
    rng: ChaCha8Rng,
    state: T,
}

const CHECKPOINT: &str = "checkpoint";
const CHECKPOINT_NEW: &str = ".checkpoint.new";
/// The checkpoint before the current one, kept to fall back on when the current one fails its check.
const CHECKPOINT_PREVIOUS: &str = ".checkpoint.prev";
const STATE_FILE: &str = "state.json";

impl StageContext {
    pub fn new(
        stage: StageKind,
        device: Device,
        backend: &'static str,
        seed: u64,
        dir: PathBuf,
        metrics: MetricsSink,
        resume: bool,
    ) -> Self {
        let rng = ChaCha8Rng::seed_from_u64(stage_seed(seed, stage));
        StageContext {
            stage,
            device,
            backend,
            seed,
            rng,
            inits: 0,
            dir,
            resume,
            metrics,
            summary: Map::new(),
            checkpoints_saved: 0,
            stop_after_checkpoints: None,
            steps_taken: 0,
            interrupt_after_steps: None,
        }
    }

    /// Builds a module for `device` (`ctx.init(&device, |d| config.init(d))`) whose initial weights depend only on
    /// the experiment's seed, the stage and how many modules the stage built before, whatever other threads of the
    /// process draw meanwhile (see [`crate::nn::seeded`]), and not on the backend: every backend has its own random
    /// generator, so the module is drawn on the CPU and moved to `device`, and a run on a GPU starts from the weights
    /// the same run on the CPU starts from. The first construction of a stage is seeded with the stage's seed itself.
    pub fn init<T: burn::module::Module>(&mut self, device: &Device, build: impl FnOnce(&Device) -> T) -> T {
        let seed = stage_seed(self.seed, self.stage) ^ self.inits.wrapping_mul(0xD1B5_4A32_D192_ED03);
        self.inits += 1;
        let cpu = if device.is_autodiff() { Device::flex().autodiff() } else { Device::flex() };
        // Drawn now, under the lock: burn draws lazily, at first use, which could come after another thread
        // reseeded the generator, and on the device the module was moved to.
        let module = crate::nn::seeded(&cpu, seed, || crate::nn::init::materialise(build(&cpu)));
        if *device == cpu { module } else { module.fork(device) }
    }

    /// Stops the stage with an error right after its `n`-th checkpoint, the way a kill would (a test hook for
    /// resume; the pipeline sets it from `RELAB_STOP_AFTER_CHECKPOINTS`).
    pub fn stop_after_checkpoints(&mut self, n: Option<u64>) {
        self.stop_after_checkpoints = n;
    }

    /// Acts as if SIGTERM came during the stage's `n`-th optimiser step (counted in this process), so that the
    /// training loop stops after it with a mid-epoch checkpoint: a test hook for the interrupt path that, unlike the
    /// process-wide [`crate::interrupt`] flag, touches no other stage running in the same process.
    pub fn interrupt_after_steps(&mut self, n: Option<u64>) {
        self.interrupt_after_steps = n;
    }

    /// Called by a training loop after each optimiser step: the signal that asks the stage to stop, if any (the
    /// process's, or the test hook's SIGTERM).
    pub fn stop_requested_after_step(&mut self) -> Option<i32> {
        self.steps_taken += 1;
        const SIGTERM: i32 = 15;
        crate::interrupt::requested()
            .or_else(|| self.interrupt_after_steps.filter(|&n| self.steps_taken >= n).map(|_| SIGTERM))
    }

    /// The stage's own folder: weights and anything else the component wants to keep go here.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn checkpoint_dir(&self) -> PathBuf {
        self.dir.join(CHECKPOINT)
    }

    /// Saves a checkpoint atomically: `write_files` fills a fresh folder (model, optimiser, EMA/SWA buffers as
    /// safetensors or anything else), `state` (epoch, iteration, schedule position, ...) and the stage RNG go into
    /// its `state.json`, the digest of every file into its `manifest.json`, and only then does the folder replace
    /// the previous checkpoint, which is kept (as `.checkpoint.prev`) until the next one is written.
    pub fn save_checkpoint<T: Serialize>(
        &mut self,
        state: &T,
        write_files: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<()> {
        let new = self.dir.join(CHECKPOINT_NEW);
        let previous = self.dir.join(CHECKPOINT_PREVIOUS);
        let current = self.checkpoint_dir();
        remove_dir(&new)?;
        fs::create_dir_all(&new).map_err(|e| Error::io(&new, e))?;
        write_files(&new)?;
        let record = CheckpointState { rng: self.rng.clone(), state };
        crate::formats::atomic::write_json(&new.join(STATE_FILE), &record)?;
        checkpoint_manifest::write(&new, self.metrics.records()?)?;
        remove_dir(&previous)?;
        if current.exists() {
            fs::rename(&current, &previous).map_err(|e| Error::io(&current, e))?;
        }
        fs::rename(&new, &current).map_err(|e| Error::io(&new, e))?;
        self.checkpoints_saved += 1;
        tracing::debug!(stage = %self.stage, "checkpoint {} saved", self.checkpoints_saved);
        if self.stop_after_checkpoints.is_some_and(|n| self.checkpoints_saved >= n) {
            return Err(Error::stage(
                self.stage.name(),
                format!("stopped after {} checkpoints, as RELAB_STOP_AFTER_CHECKPOINTS asked", self.checkpoints_saved),
            ));
        }
        Ok(())
    }

    /// When the run was started with `--resume` and this stage left a checkpoint, restores the stage RNG and returns
    /// the saved state with the folder holding the checkpoint's files. Otherwise `None`: start from scratch.
    ///
    /// A checkpoint is used only when its files match its manifest; when the latest does not, the previous one is
    /// used (with a warning), and when neither does, the stage stops with an error that says what to delete. The
    /// stage's metrics are cut back to what they held when the checkpoint was written.
    pub fn restore_checkpoint<T: DeserializeOwned>(&mut self) -> Result<Option<(T, PathBuf)>> {
        if !self.resume {
            return Ok(None);
        }
        // A kill between the two renames of `save_checkpoint` leaves only the previous folder: it is still whole.
        let candidates: Vec<PathBuf> =
            [self.checkpoint_dir(), self.dir.join(CHECKPOINT_PREVIOUS)].into_iter().filter(|d| d.is_dir()).collect();
        if candidates.is_empty() {
            tracing::info!(stage = %self.stage, "--resume: no checkpoint in {}, starting this stage from scratch", self.dir.display());
            return Ok(None);
        }
        let mut failures = Vec::new();
        for folder in candidates {
            let manifest = match checkpoint_manifest::verify(&folder) {
                Ok(manifest) => manifest,
                Err(why) => {
                    failures.push(why);
                    continue;
                }
            };
            let path = folder.join(STATE_FILE);
            let text = fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
            let record: CheckpointState<T> = serde_json::from_str(&text)
                .map_err(|e| Error::format(&path, format!("not a checkpoint of this stage: {e}")))?;
            if let Some(why) = failures.first() {
                tracing::warn!(stage = %self.stage, "the latest checkpoint fails its check ({why}); resuming from the previous one, {}", folder.display());
            }
            self.rng = record.rng;
            self.metrics.keep_records(manifest.metrics_records)?;
            tracing::info!(stage = %self.stage, "resuming from {}", folder.display());
            return Ok(Some((record.state, folder)));
        }
        Err(Error::stage(
            self.stage.name(),
            format!(
                "--resume: no checkpoint of this stage passes its check ({}); delete {} and {} to run this stage \
                 from its start, or run without --resume",
                failures.join("; "),
                self.checkpoint_dir().display(),
                self.dir.join(CHECKPOINT_PREVIOUS).display()
            ),
        ))
    }

    /// Appends a metrics record (`stage` is added), e.g. `ctx.log(json!({"epoch": 3, "loss": 0.41}))`.
    pub fn log(&self, record: Value) -> Result<()> {
        let mut object = match record {
            Value::Object(map) => map,
            other => Map::from_iter([("value".to_string(), other)]),
        };
        object.insert("stage".into(), Value::from(self.stage.name()));
        self.metrics.write(&Value::Object(object))
    }

    /// Sets a headline number for `summary.json` (e.g. `knn_accuracy`, `test_accuracy`).
    pub fn set_summary(&mut self, key: &str, value: impl Serialize) {
        let value = serde_json::to_value(value).unwrap_or(Value::Null);
        self.summary.insert(key.to_string(), value);
    }

    pub fn take_summary(&mut self) -> Map<String, Value> {
        std::mem::take(&mut self.summary)
    }

    /// A progress bar for a long loop of this stage.
    pub fn progress(&self, len: u64, what: &str) -> ProgressBar {
        progress::bar(len, format!("{} {what}", self.stage))
    }

    /// Stops the stage with a clear error when `value` is NaN or infinite; `at` says where (e.g. "epoch 3 step 120").
    pub fn check_finite(&self, what: &str, value: f64, at: &str) -> Result<()> {
        if value.is_finite() {
            return Ok(());
        }
        Err(Error::NonFinite {
            stage: self.stage.name().into(),
            what: format!("{what} = {value}"),
            at: at.into(),
            checkpoint: self.checkpoint_dir(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_cut_back_to_a_number_of_records() {
        let dir = tempfile::tempdir().unwrap();
        let sink = MetricsSink::open(&dir.path().join("m.jsonl")).unwrap();
        for epoch in 1..=4 {
            sink.write(&serde_json::json!({ "epoch": epoch })).unwrap();
        }
        assert_eq!(sink.records().unwrap(), 4);
        sink.keep_records(2).unwrap();
        sink.write(&serde_json::json!({ "epoch": 3 })).unwrap();
        let text = fs::read_to_string(dir.path().join("m.jsonl")).unwrap();
        assert_eq!(text, "{\"epoch\":1}\n{\"epoch\":2}\n{\"epoch\":3}\n");
        sink.keep_records(9).unwrap();
        assert_eq!(sink.records().unwrap(), 3);
        sink.keep_records(0).unwrap();
        assert_eq!(sink.records().unwrap(), 0);
    }
}
