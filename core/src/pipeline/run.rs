//! The run orchestrator: claims the run folder, loads the dataset, picks the seeds, runs the stages in order (each
//! in its own file under `run/`), checks, caches and records them, and writes the run folder's summary and report.

mod features;
mod pretrain;
mod propagate;
mod select;
mod train;

use std::borrow::Cow;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::cache::{StageCache, remove_dir};
use super::run_folder::RunFolder;
use super::stage_record::{RECORD_FILE, StageRecord};
use crate::artifact::{Features, LabeledSet};
use crate::component::{Encoder, MetricsSink, StageContext, StageKind, is_checkpoint_entry};
use crate::data::{self, Dataset, DatasetConfig};
use crate::device::{self, CheckedDevice};
use crate::experiment::{FeaturesStage, PluginStage, ResolvedRun};
use crate::formats::{atomic, digest, npy};
use crate::registry::{PluginEntry, Registry, Slot};
use crate::{Error, Result, abi, report};

/// How to run: where, whether to resume, and where finished stages are shared between runs.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub out: PathBuf,
    /// Continue interrupted stages from their checkpoints instead of starting them again.
    pub resume: bool,
    /// The cross-run store of finished stages; `None` reuses only what is already in `out`.
    pub cache: Option<StageCache>,
    /// Test hook: stop each stage with an error after this many checkpoints, as a kill would.
    pub stop_after_checkpoints: Option<u64>,
}

/// What a finished run reports back.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub dir: PathBuf,
    /// The content of `summary.json`.
    pub summary: Map<String, Value>,
    /// Stages taken from an earlier run instead of being computed.
    pub reused: Vec<StageKind>,
}

/// Runs one resolved experiment into `opts.out`, writing the run-folder contract: `config.yaml`, `seeds.npy`, one
/// folder per stage with its artifact and `stage.json`, `metrics.jsonl`, `summary.json` and `report.md`.
///
/// `opts.out` must be new, empty or a run folder relab made, and no other relab may be running into it
/// ([`RunFolder::claim`]); it stays locked until the run ends.
pub fn run(resolved: &ResolvedRun, registry: &Registry, opts: &RunOptions) -> Result<RunOutcome> {
    let exp = &resolved.experiment;
    let out = &opts.out;
    let _folder = RunFolder::claim(out)?;
    let config =
        serde_yaml::to_string(&with_resolved_params(resolved, registry)?).expect("a YAML value always serialises");
    atomic::write_text(&out.join("config.yaml"), &config)?;

    let device = device::resolve(exp.backend, exp.device)?;
    tracing::info!("run {} into {} on {}", exp.name.as_deref().unwrap_or("?"), out.display(), device.backend);
    // A stage with a `resize` of its own starts from the images as read, not from the run's resized ones.
    let as_read = if exp.stages.plugin_stages().any(|(_, stage)| stage.resize.is_some()) {
        Some(data::load(&DatasetConfig { resize: None, ..exp.dataset.clone() })?)
    } else {
        None
    };
    let dataset = match (&as_read, exp.dataset.resize) {
        (Some(read), Some(size)) => data::prepare::resized(read, size),
        (Some(read), None) => read.clone(),
        (None, _) => data::load(&exp.dataset)?,
    };
    tracing::info!(
        "dataset {}: {} train, {} test images of {}×{}×{}, {} classes",
        dataset.name,
        dataset.train.len(),
        dataset.test.len(),
        dataset.train.channels,
        dataset.train.height,
        dataset.train.width,
        dataset.num_classes
    );
    let seeds = data::pick_seeds(&dataset, &exp.dataset, exp.seed)?;
    let seed_indices: Vec<i64> = seeds.indices.iter().map(|&i| i as i64).collect();
    npy::write_i64(&out.join("seeds.npy"), &[seed_indices.len()], &seed_indices)?;

    let mut runner = Runner {
        out: out.clone(),
        opts,
        registry,
        device,
        seed: exp.seed,
        dataset_hash: hash_dataset(&dataset),
        as_read,
        summary: Map::new(),
        seconds: Map::new(),
        reused: Vec::new(),
    };
    runner.execute(resolved, &dataset, &seeds)?;
    let summary = runner.finish()?;
    Ok(RunOutcome { dir: out.clone(), summary, reused: runner.reused })
}

struct Runner<'a> {
    out: PathBuf,
    opts: &'a RunOptions,
    registry: &'a Registry,
    device: CheckedDevice,
    seed: u64,
    dataset_hash: String,
    /// The dataset before `dataset.resize`, kept only when a stage has a `resize` of its own.
    as_read: Option<Dataset>,
    summary: Map<String, Value>,
    seconds: Map<String, Value>,
    reused: Vec<StageKind>,
}

/// An artifact with the hash that identifies how it was made.
struct Hashed<T> {
    value: T,
    hash: String,
}

/// The images a plugin stage sees, and the hash its key records for them.
struct Images<'d> {
    set: Cow<'d, Dataset>,
    hash: String,
}

/// The pretrain and features stages' outputs, which the select and train stages may read.
#[derive(Clone, Copy)]
struct Upstream<'a> {
    encoder: Option<&'a Hashed<Box<dyn Encoder>>>,
    features: Option<&'a Hashed<Features>>,
}

impl<'a> Upstream<'a> {
    fn encoder(&self) -> Option<&'a dyn Encoder> {
        self.encoder.map(|e| e.value.as_ref())
    }

    fn features(&self) -> Option<&'a Features> {
        self.features.map(|f| &f.value)
    }
}

impl Runner<'_> {
    fn execute(&mut self, resolved: &ResolvedRun, dataset: &Dataset, seeds: &LabeledSet) -> Result<()> {
        let stages = &resolved.experiment.stages;
        let seeds_hash = hash_json(&json!({ "seeds": seeds.indices, "labels": seeds.labels }));
        let encoder = match &stages.pretrain {
            Some(stage) => Some(self.pretrain(stage, &self.images(stage, dataset))?),
            None => None,
        };
        let features_cfg = match (&stages.features, &stages.propagate) {
            (Some(cfg), _) => Some(cfg.clone()),
            // Propagation needs features: take the encoder's when there is one.
            (None, Some(_)) => Some(FeaturesStage::default()),
            (None, None) => None,
        };
        let features = match features_cfg {
            Some(cfg) => Some(self.features(&cfg, dataset, encoder.as_ref())?),
            None => None,
        };
        let propagation = match &stages.propagate {
            Some(stage) => Some(self.propagate(stage, features.as_ref(), dataset, seeds, &seeds_hash)?),
            None => None,
        };
        let labeled = match &stages.select {
            Some(stage) => {
                let upstream = Upstream { encoder: encoder.as_ref(), features: features.as_ref() };
                let images = self.images(stage, dataset);
                Some(self.select(stage, &images, propagation.as_ref(), seeds, &seeds_hash, upstream)?)
            }
            None => None,
        };
        if let Some(stage) = &stages.train {
            let labeled = labeled.unwrap_or_else(|| Hashed { value: seeds.clone(), hash: seeds_hash.clone() });
            let propagation = propagation.as_ref().zip(stages.propagate.as_ref());
            let upstream = Upstream { encoder: encoder.as_ref(), features: features.as_ref() };
            self.train(stage, &self.images(stage, dataset), &labeled, upstream, propagation, seeds)?;
        }
        Ok(())
    }

    /// The run's dataset, or for a stage with a `resize` of its own the dataset as read resized to that size.
    fn images<'d>(&self, stage: &PluginStage, dataset: &'d Dataset) -> Images<'d> {
        match (stage.resize, &self.as_read) {
            (Some(size), Some(read)) => {
                let set = data::prepare::resized(read, size);
                let hash = hash_dataset(&set);
                Images { set: Cow::Owned(set), hash }
            }
            _ => Images { set: Cow::Borrowed(dataset), hash: self.dataset_hash.clone() },
        }
    }

    /// The registry entry and parameters (the stage mapping without `plugin`/`from`) of a plugin stage.
    fn plugin(&self, slot: Slot, stage: &PluginStage) -> Result<(&PluginEntry, serde_yaml::Value)> {
        plugin_of(self.registry, slot, stage)
    }

    /// The parameters of a plugin stage with every default filled in.
    fn resolved(&self, kind: StageKind, entry: &PluginEntry, params: &serde_yaml::Value) -> Result<Value> {
        (entry.resolve)(params).map(|v| to_json(&v)).map_err(|e| plugin_error(kind, entry, e))
    }

    fn context(&self, kind: StageKind, dir: PathBuf, resume: bool) -> Result<StageContext> {
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let metrics_path = dir.join("metrics.jsonl");
        if !resume {
            remove_file(&metrics_path)?;
        }
        let metrics = MetricsSink::open(&metrics_path)?;
        let mut ctx =
            StageContext::new(kind, self.device.device.clone(), self.device.backend, self.seed, dir, metrics, resume);
        ctx.stop_after_checkpoints(self.opts.stop_after_checkpoints);
        Ok(ctx)
    }

    /// Runs one stage, or reuses its folder when an earlier run made it from the same inputs (in this run folder or
    /// in the cache) and its files still match their digests, or resumes it from its checkpoint with `--resume`.
    /// `key` is what the result depends on, and `hash` its hash ([`hash_json`]).
    #[allow(clippy::too_many_arguments)]
    fn stage<T>(
        &mut self,
        kind: StageKind,
        key: &Value,
        hash: &str,
        plugin: Option<&str>,
        params: &Value,
        compute: impl FnOnce(&mut StageContext) -> Result<T>,
        load: impl FnOnce(&mut StageContext) -> Result<T>,
    ) -> Result<T> {
        let dir = self.out.join(kind.name());
        let existing = StageRecord::read(&dir).ok().flatten();
        let done_here = existing.as_ref().is_some_and(|r| r.complete && r.hash == hash && self.intact(kind, r, &dir));
        // The cache entry stays locked until the stage is stored, so two runs never compute it into one entry.
        let _entry = match (&self.opts.cache, done_here) {
            (Some(cache), false) => Some(cache.lock(hash)?),
            _ => None,
        };
        let from_cache = !done_here && self.opts.cache.as_ref().map_or(Ok(false), |c| c.restore(hash, &dir))?;
        if done_here || from_cache {
            let record = StageRecord::read(&dir)?.expect("a reused stage has a record");
            let whence = if done_here { "this run folder" } else { "the stage cache" };
            tracing::info!(
                "{kind}: inputs unchanged, reusing the result in {whence} (computed in {:.1}s)",
                record.seconds
            );
            let mut ctx = self.context(kind, dir, true)?;
            let value = load(&mut ctx)?;
            self.reused.push(kind);
            self.absorb(kind, &record);
            self.write_progress()?;
            return Ok(value);
        }
        // Between stages nothing is lost by stopping: the finished ones are recorded, and this one has not started.
        if let Some(signal) = crate::interrupt::requested() {
            tracing::warn!(
                "{kind}: {} received before this stage started; the finished stages are kept and `relab run ... \
                 --resume` continues from here",
                crate::interrupt::signal_name(signal)
            );
            return Err(Error::Interrupted { signal });
        }
        let existing = if from_cache { None } else { existing };
        let resume = self.opts.resume && existing.as_ref().is_some_and(|r| !r.complete && r.hash == hash);
        if !resume {
            if let Some(old) = existing.as_ref().filter(|r| r.hash != hash) {
                let changed = changed_keys(&old.key, key).join(", ");
                if self.opts.resume && !old.complete && has_checkpoint(&dir) {
                    tracing::warn!(
                        "{kind}: --resume, but the stage's inputs changed since its checkpoint ({changed}): its \
                         checkpoint is discarded and the stage starts again from its first epoch"
                    );
                } else {
                    tracing::info!("{kind}: inputs changed ({changed}), recomputing");
                }
            }
            remove_dir(&dir)?;
        }
        let mut record = StageRecord {
            stage: kind,
            hash: hash.to_string(),
            key: key.clone(),
            plugin: plugin.map(str::to_string),
            params: params.clone(),
            complete: false,
            seconds: existing.filter(|_| resume).map_or(0.0, |r| r.seconds),
            summary: Map::new(),
            files: digest::Digests::new(),
        };
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        record.write(&dir)?;
        let mut ctx = self.context(kind, dir.clone(), resume)?;
        tracing::info!("{kind}: running{}", plugin.map(|p| format!(" `{p}`")).unwrap_or_default());
        let start = Instant::now();
        let value = compute(&mut ctx)?;
        record.seconds += start.elapsed().as_secs_f64();
        record.summary = ctx.take_summary();
        drop(ctx);
        record.files = digest::digest_tree(&dir, |name| name == RECORD_FILE || is_checkpoint_entry(name))?;
        record.complete = true;
        record.write(&dir)?;
        tracing::info!("{kind}: done in {:.1}s", record.seconds);
        if let Some(cache) = &self.opts.cache {
            cache.store(hash, &dir);
        }
        self.absorb(kind, &record);
        self.write_progress()?;
        Ok(value)
    }

    /// Whether a finished stage's files in this run folder still match the digests its record wrote; a warning
    /// says which one does not (the stage is then taken from the cache or computed again).
    fn intact(&self, kind: StageKind, record: &StageRecord, dir: &Path) -> bool {
        if record.files.is_empty() {
            tracing::warn!(
                "{kind}: {} records no file digests (an older relab wrote it); computing again",
                dir.display()
            );
            return false;
        }
        match digest::verify(dir, &record.files) {
            Ok(()) => true,
            Err(mismatch) => {
                tracing::warn!(
                    "{kind}: {mismatch}; this run folder's result no longer matches its record, so it is not used"
                );
                false
            }
        }
    }

    fn absorb(&mut self, kind: StageKind, record: &StageRecord) {
        self.summary.extend(record.summary.clone());
        self.seconds.insert(kind.name().into(), json!(record.seconds));
    }

    /// `summary.json` and `metrics.jsonl` after every stage, so an interrupted run still shows what it reached.
    fn write_progress(&self) -> Result<()> {
        let mut summary = self.summary.clone();
        summary.insert("seconds".into(), Value::Object(self.seconds.clone()));
        atomic::write_json(&self.out.join("summary.json"), &summary)?;
        let mut metrics = String::new();
        for kind in StageKind::ALL {
            let path = self.out.join(kind.name()).join("metrics.jsonl");
            if self.seconds.contains_key(kind.name())
                && let Ok(text) = fs::read_to_string(&path)
            {
                metrics.push_str(&text);
            }
        }
        atomic::write_text(&self.out.join("metrics.jsonl"), &metrics)
    }

    fn finish(&self) -> Result<Map<String, Value>> {
        self.write_progress()?;
        report::write_report(&self.out)?;
        let mut summary = self.summary.clone();
        summary.insert("seconds".into(), Value::Object(self.seconds.clone()));
        Ok(summary)
    }
}

/// The registry entry and parameters (the stage mapping without `plugin`/`from`) of a plugin stage.
fn plugin_of<'r>(
    registry: &'r Registry,
    slot: Slot,
    stage: &PluginStage,
) -> Result<(&'r PluginEntry, serde_yaml::Value)> {
    let name = stage
        .plugin
        .as_deref()
        .ok_or_else(|| Error::stage(slot.stage(), format!("stages.{} needs `plugin:` (or `from:`)", slot.stage())))?;
    let entry = registry.get(slot, name)?;
    Ok((entry, serde_yaml::Value::Mapping(stage.params.clone())))
}

/// The resolved tree with each plugin stage's parameters completed by its defaults: what `config.yaml` records.
fn with_resolved_params(resolved: &ResolvedRun, registry: &Registry) -> Result<serde_yaml::Value> {
    let mut tree = resolved.value.clone();
    for (slot, stage) in resolved.experiment.stages.plugin_stages() {
        if stage.from.is_some() {
            continue;
        }
        let (entry, params) = plugin_of(registry, slot, stage)?;
        let complete = (entry.resolve)(&params).map_err(|e| plugin_error(slot, entry, e))?;
        let Some(serde_yaml::Value::Mapping(written)) = tree.get_mut("stages").and_then(|s| s.get_mut(slot.name()))
        else {
            continue;
        };
        if let serde_yaml::Value::Mapping(complete) = complete {
            for (k, v) in complete {
                written.insert(k, v);
            }
        }
    }
    Ok(tree)
}

/// The dotted keys whose values differ between two stage keys (`params.k`, `features`, `code.plugin`).
fn changed_keys(old: &Value, new: &Value) -> Vec<String> {
    fn walk(prefix: &str, old: Option<&Value>, new: Option<&Value>, out: &mut Vec<String>) {
        match (old, new) {
            (Some(Value::Object(a)), Some(Value::Object(b))) => {
                let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
                for k in keys {
                    let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    walk(&path, a.get(k), b.get(k), out);
                }
            }
            (a, b) if a != b => out.push(if prefix.is_empty() { "everything".into() } else { prefix.into() }),
            _ => {}
        }
    }
    if old.is_null() {
        return vec!["the earlier record names no inputs".into()];
    }
    let mut out = Vec::new();
    walk("", Some(old), Some(new), &mut out);
    out
}

/// Whether the stage folder holds a checkpoint that a restart would discard.
fn has_checkpoint(dir: &Path) -> bool {
    fs::read_dir(dir)
        .is_ok_and(|entries| entries.flatten().any(|e| is_checkpoint_entry(&e.file_name().to_string_lossy())))
}

/// The code that computes a stage: the plugin's source hash (empty for the host's own stages) and relab-core's ABI
/// stamp, which carries a hash of relab-core's source.
fn code(entry: Option<&PluginEntry>) -> Value {
    json!({ "plugin": entry.map(|e| e.source), "core": abi::STAMP })
}

fn plugin_error(kind: StageKind, entry: &PluginEntry, e: crate::registry::ParamError) -> Error {
    Error::stage(kind.name(), format!("plugin `{}`: {e}", entry.name))
}

fn to_json(value: &serde_yaml::Value) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// SHA-256 of a JSON value's canonical text (keys sorted), as hex.
fn hash_json(value: &Value) -> String {
    hex(&Sha256::digest(value.to_string().as_bytes()))
}

fn hash_file(path: &Path) -> Result<String> {
    let mut hasher = Sha256::new();
    if path.is_dir() {
        let mut names: Vec<_> = fs::read_dir(path)
            .map_err(|e| Error::io(path, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        names.sort();
        for file in names {
            hasher.update(file.file_name().unwrap_or_default().as_encoded_bytes());
            hasher.update(fs::read(&file).map_err(|e| Error::io(&file, e))?);
        }
    } else {
        hasher.update(fs::read(path).map_err(|e| Error::io(path, e))?);
    }
    Ok(hex(&hasher.finalize()))
}

fn hash_dataset(dataset: &Dataset) -> String {
    let mut hasher = Sha256::new();
    hasher.update(dataset.name.as_bytes());
    for set in [&dataset.train, &dataset.test] {
        hasher.update([set.channels as u8, set.height as u8, set.width as u8]);
        hasher.update(&set.pixels);
        for &l in set.labels.iter().flatten() {
            hasher.update(l.to_le_bytes());
        }
    }
    hex(&hasher.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn remove_file(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_keys_name_each_differing_leaf() {
        let old = json!({ "params": { "k": 50, "alpha": 0.99 }, "features": "aa", "code": { "plugin": "1" } });
        let new =
            json!({ "params": { "k": 30, "alpha": 0.99, "gamma": 3 }, "features": "bb", "code": { "plugin": "1" } });
        assert_eq!(changed_keys(&old, &new), ["features", "params.gamma", "params.k"]);
        assert_eq!(changed_keys(&Value::Null, &new), ["the earlier record names no inputs"]);
        assert!(changed_keys(&new, &new).is_empty());
    }
}
