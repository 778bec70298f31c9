use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::cache::{StageCache, remove_dir};
use super::stage_record::StageRecord;
use crate::artifact::{Features, LabeledSet, Propagation, original};
use crate::component::{Encoder, LearnerInput, MetricsSink, PropagateStage, SelectorInput, StageContext, StageKind};
use crate::data::{self, Dataset};
use crate::device::{self, CheckedDevice};
use crate::experiment::{FeatureSource, FeaturesStage, PluginStage, ResolvedRun};
use crate::formats::{atomic, npy};
use crate::linalg::Pca;
use crate::registry::{Factory, PluginEntry, Registry, Slot};
use crate::{Error, Result, report};

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
pub fn run(resolved: &ResolvedRun, registry: &Registry, opts: &RunOptions) -> Result<RunOutcome> {
    let exp = &resolved.experiment;
    let out = &opts.out;
    fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let config = serde_yaml::to_string(&resolved.value).expect("a YAML value always serialises");
    atomic::write_text(&out.join("config.yaml"), &config)?;

    let device = device::resolve(exp.backend, exp.device)?;
    tracing::info!("run {} into {} on {}", exp.name.as_deref().unwrap_or("?"), out.display(), device.backend);
    let dataset = data::load(&exp.dataset)?;
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
    summary: Map<String, Value>,
    seconds: Map<String, Value>,
    reused: Vec<StageKind>,
}

/// An artifact with the hash that identifies how it was made.
struct Hashed<T> {
    value: T,
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
            Some(stage) => Some(self.pretrain(stage, dataset)?),
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
                Some(self.select(stage, dataset, propagation.as_ref(), seeds, &seeds_hash, upstream)?)
            }
            None => None,
        };
        if let Some(stage) = &stages.train {
            let labeled = labeled.unwrap_or_else(|| Hashed { value: seeds.clone(), hash: seeds_hash.clone() });
            let propagation = propagation.as_ref().zip(stages.propagate.as_ref());
            let upstream = Upstream { encoder: encoder.as_ref(), features: features.as_ref() };
            self.train(stage, dataset, &labeled, upstream, propagation, seeds)?;
        }
        Ok(())
    }

    fn pretrain(&mut self, stage: &PluginStage, dataset: &Dataset) -> Result<Hashed<Box<dyn Encoder>>> {
        if let Some(from) = &stage.from {
            // Another run's pretrain folder: its record names the plugin that can load it.
            let record = StageRecord::read(from)?.filter(|r| r.complete).ok_or_else(|| {
                Error::format(from, "stages.pretrain.from must be a finished pretrain stage folder (with stage.json)")
            })?;
            let name = record.plugin.clone().unwrap_or_default();
            let entry = self.registry.get(Slot::Pretrain, &name)?;
            let Factory::Pretrain(build) = entry.factory else { unreachable!("slot checked by get") };
            let params: serde_yaml::Value =
                serde_json::from_value(record.params.clone()).unwrap_or(serde_yaml::Value::Null);
            let method = build(&params).map_err(|e| plugin_error(StageKind::Pretrain, entry, e))?;
            let mut ctx = self.context(StageKind::Pretrain, self.out.join("pretrain"), false)?;
            let value = method.load_encoder(&mut ctx, from)?;
            return Ok(Hashed { value, hash: record.hash });
        }
        let (entry, params) = self.plugin(Slot::Pretrain, stage)?;
        let Factory::Pretrain(build) = entry.factory else { unreachable!("slot checked by get") };
        // Only one of the two closures below runs; the cell lets both name the method.
        let method = std::cell::RefCell::new(build(&params).map_err(|e| plugin_error(StageKind::Pretrain, entry, e))?);
        let hash = hash_json(&json!({
            "stage": "pretrain", "plugin": entry.name, "version": entry.version, "params": to_json(&params),
            "dataset": self.dataset_hash, "seed": self.seed,
        }));
        let value = self.stage(
            StageKind::Pretrain,
            &hash,
            Some(entry.name),
            &params,
            |ctx| {
                let encoder = method.borrow_mut().pretrain(ctx, dataset)?;
                encoder.save(ctx.dir())?;
                Ok(encoder)
            },
            |ctx| {
                let dir = ctx.dir().to_path_buf();
                method.borrow().load_encoder(ctx, &dir)
            },
        )?;
        Ok(Hashed { value, hash })
    }

    fn features(
        &mut self,
        cfg: &FeaturesStage,
        dataset: &Dataset,
        encoder: Option<&Hashed<Box<dyn Encoder>>>,
    ) -> Result<Hashed<Features>> {
        let params = serde_yaml::to_value(cfg).expect("features config serialises");
        let n = dataset.train.len();
        let input = if let Some(from) = &cfg.from {
            json!({ "from": hash_file(from)? })
        } else {
            match cfg.source {
                FeatureSource::Pixels => json!({ "pixels": self.dataset_hash }),
                FeatureSource::Encoder => match encoder {
                    Some(e) => json!({ "encoder": e.hash, "output": cfg.output.name() }),
                    None => {
                        return Err(Error::stage(
                            "features",
                            "features come from the pretrain stage's encoder, but the experiment has no \
                             stages.pretrain; add one, or set stages.features.source: pixels, or \
                             stages.features.from: FILE.npy",
                        ));
                    }
                },
            }
        };
        let mut key = json!({ "stage": "features", "input": input, "dataset": self.dataset_hash });
        if let Some(components) = cfg.pca {
            key["pca"] = json!(components);
        }
        let hash = hash_json(&key);
        let value = self.stage(
            StageKind::Features,
            &hash,
            None,
            &params,
            |ctx| {
                let features = match (&cfg.from, cfg.source, encoder) {
                    (Some(from), _, _) => Features::load(from)?,
                    (None, FeatureSource::Pixels, _) => pixel_features(dataset),
                    (None, FeatureSource::Encoder, Some(e)) => e.value.extract(ctx, &dataset.train, cfg.output)?,
                    (None, FeatureSource::Encoder, None) => unreachable!("checked above"),
                };
                if features.rows != n {
                    return Err(Error::stage(
                        "features",
                        format!("{} feature rows for {n} training images", features.rows),
                    ));
                }
                let features = match cfg.pca {
                    Some(components) => project_on_principal_axes(ctx, features, components)?,
                    None => features,
                };
                features.save(&ctx.dir().join("features.npy"))?;
                Ok(features)
            },
            |ctx| Features::load(&ctx.dir().join("features.npy")),
        )?;
        Ok(Hashed { value, hash })
    }

    fn propagate(
        &mut self,
        stage: &PluginStage,
        features: Option<&Hashed<Features>>,
        dataset: &Dataset,
        seeds: &LabeledSet,
        seeds_hash: &str,
    ) -> Result<Hashed<Propagation>> {
        let n = dataset.train.len();
        let classes = dataset.num_classes;
        let truth = dataset.train.labels.clone();
        let finish = move |ctx: &mut StageContext, p: Propagation| -> Result<Propagation> {
            if p.len() != n || p.num_classes != classes {
                return Err(Error::stage(
                    "propagate",
                    format!("{} × {} scores for {n} training images of {classes} classes", p.len(), p.num_classes),
                ));
            }
            p.save(ctx.dir())?;
            original::write_labels(&ctx.dir().join("labels_relab.npz"), &p)?;
            if let Some(truth) = &truth {
                let accuracy = p.accuracy(truth);
                tracing::info!("propagation accuracy {:.2}%", 100.0 * accuracy);
                ctx.set_summary("propagation_accuracy", accuracy);
            }
            Ok(p)
        };
        let load = |ctx: &mut StageContext| Propagation::load(ctx.dir());
        if let Some(from) = &stage.from {
            let hash = hash_json(&json!({ "stage": "propagate", "from": hash_file(from)? }));
            let params = serde_yaml::to_value(stage).expect("stage serialises");
            let from = from.clone();
            let value = self.stage(
                StageKind::Propagate,
                &hash,
                None,
                &params,
                |ctx| finish(ctx, read_propagation(&from)?),
                load,
            )?;
            return Ok(Hashed { value, hash });
        }
        let features = features.expect("the features stage runs whenever propagate does");
        let (entry, params) = self.plugin(Slot::Propagate, stage)?;
        let Factory::Propagate(build) = entry.factory else { unreachable!("slot checked by get") };
        let mut propagator = build(&params).map_err(|e| plugin_error(StageKind::Propagate, entry, e))?;
        let hash = hash_json(&json!({
            "stage": "propagate", "plugin": entry.name, "version": entry.version, "params": to_json(&params),
            "features": features.hash, "seeds": seeds_hash, "seed": self.seed,
        }));
        let value = self.stage(
            StageKind::Propagate,
            &hash,
            Some(entry.name),
            &params,
            |ctx| {
                let p = propagator.propagate(ctx, &features.value, seeds, classes)?;
                finish(ctx, p)
            },
            load,
        )?;
        Ok(Hashed { value, hash })
    }

    fn select(
        &mut self,
        stage: &PluginStage,
        dataset: &Dataset,
        propagation: Option<&Hashed<Propagation>>,
        seeds: &LabeledSet,
        seeds_hash: &str,
        upstream: Upstream<'_>,
    ) -> Result<Hashed<LabeledSet>> {
        let n = dataset.train.len();
        let classes = dataset.num_classes;
        let truth = dataset.train.labels.clone();
        let finish = move |ctx: &mut StageContext, subset: LabeledSet| -> Result<LabeledSet> {
            if let Some(bad) = subset.indices.iter().find(|&&i| i >= n) {
                return Err(Error::stage("select", format!("index {bad} outside the training set (0..{n})")));
            }
            if let Some(bad) = subset.labels.iter().find(|&&l| l as usize >= classes) {
                return Err(Error::stage("select", format!("label {bad} outside 0..{classes}")));
            }
            subset.save(&ctx.dir().join("subset.npy"), &ctx.dir().join("subset_labels.npy"))?;
            original::write_subset(&ctx.dir().join("subset_relab.npz"), &subset)?;
            if let Some(truth) = &truth {
                let precision = subset.precision(truth);
                let per_class = subset.precision_per_class(truth, classes);
                tracing::info!("selected {} samples, precision {:.2}%", subset.len(), 100.0 * precision);
                ctx.set_summary("subset_precision", precision);
                ctx.set_summary("subset_size", subset.len());
                let precisions: Vec<f64> = per_class.iter().map(|p| p.0).collect();
                let counts: Vec<usize> = per_class.iter().map(|p| p.1).collect();
                ctx.set_summary("subset_precision_per_class", &precisions);
                ctx.log(json!({ "per_class_precision": precisions, "per_class_count": counts }))?;
            }
            Ok(subset)
        };
        let load = move |ctx: &mut StageContext| {
            let dir = ctx.dir().to_path_buf();
            LabeledSet::load(&dir.join("subset.npy"), Some(&dir.join("subset_labels.npy")), n, classes, None)
        };
        if let Some(from) = &stage.from {
            let hash = hash_json(&json!({
                "stage": "select", "from": hash_file(from)?, "propagation": propagation.map(|p| &p.hash),
            }));
            let params = serde_yaml::to_value(stage).expect("stage serialises");
            let from = from.clone();
            let prop = propagation.map(|p| &p.value);
            let value = self.stage(
                StageKind::Select,
                &hash,
                None,
                &params,
                |ctx| finish(ctx, read_subset(&from, prop, n, classes)?),
                load,
            )?;
            return Ok(Hashed { value, hash });
        }
        let Some(propagation) = propagation else {
            return Err(Error::stage(
                "select",
                "a selector needs propagated labels: add stages.propagate (or stages.propagate.from)",
            ));
        };
        let (entry, params) = self.plugin(Slot::Select, stage)?;
        let Factory::Select(build) = entry.factory else { unreachable!("slot checked by get") };
        let mut selector = build(&params).map_err(|e| plugin_error(StageKind::Select, entry, e))?;
        let hash = hash_json(&json!({
            "stage": "select", "plugin": entry.name, "version": entry.version, "params": to_json(&params),
            "propagation": propagation.hash, "seeds": seeds_hash, "dataset": self.dataset_hash, "seed": self.seed,
            "encoder": upstream.encoder.map(|e| &e.hash), "features": upstream.features.map(|f| &f.hash),
        }));
        let value = self.stage(
            StageKind::Select,
            &hash,
            Some(entry.name),
            &params,
            |ctx| {
                let input = SelectorInput {
                    data: dataset,
                    propagation: &propagation.value,
                    seeds,
                    features: upstream.features(),
                    encoder: upstream.encoder(),
                };
                let subset = selector.select(ctx, input)?;
                finish(ctx, subset)
            },
            load,
        )?;
        Ok(Hashed { value, hash })
    }

    fn train(
        &mut self,
        stage: &PluginStage,
        dataset: &Dataset,
        labeled: &Hashed<LabeledSet>,
        upstream: Upstream<'_>,
        propagation: Option<(&Hashed<Propagation>, &PluginStage)>,
        seeds: &LabeledSet,
    ) -> Result<()> {
        if stage.from.is_some() {
            return Err(Error::stage("train", "the train stage cannot be supplied with `from:`; name a plugin"));
        }
        let (entry, params) = self.plugin(Slot::Train, stage)?;
        let Factory::Train(build) = entry.factory else { unreachable!("slot checked by get") };
        let mut learner = build(&params).map_err(|e| plugin_error(StageKind::Train, entry, e))?;
        let hash = hash_json(&json!({
            "stage": "train", "plugin": entry.name, "version": entry.version, "params": to_json(&params),
            "labeled": labeled.hash, "encoder": upstream.encoder.map(|e| &e.hash),
            "features": upstream.features.map(|f| &f.hash),
            "propagation": propagation.map(|(p, _)| &p.hash), "dataset": self.dataset_hash,
            "seed": self.seed,
        }));
        // The propagate stage's plugin again, for a learner that propagates over its own features.
        let propagator = match propagation {
            Some((_, stage)) if stage.from.is_none() => {
                let (entry, params) = self.plugin(Slot::Propagate, stage)?;
                let Factory::Propagate(build) = entry.factory else { unreachable!("slot checked by get") };
                Some(build(&params).map_err(|e| plugin_error(StageKind::Propagate, entry, e))?)
            }
            _ => None,
        };
        self.stage(
            StageKind::Train,
            &hash,
            Some(entry.name),
            &params,
            |ctx| {
                let mut propagate_stage = propagation.map(|(output, _)| match propagator {
                    Some(p) => PropagateStage::with_propagator(&output.value, p, seeds),
                    None => PropagateStage::output_only(&output.value),
                });
                let input = LearnerInput {
                    data: dataset,
                    labeled: &labeled.value,
                    encoder: upstream.encoder(),
                    propagation: propagate_stage.as_mut(),
                    features: upstream.features(),
                };
                let classifier = learner.train(ctx, input)?;
                if let Some(accuracy) = &classifier.test_accuracy {
                    tracing::info!(
                        "test accuracy: last {:.2}%, best {:.2}%",
                        100.0 * accuracy.last,
                        100.0 * accuracy.best
                    );
                    ctx.set_summary("test_accuracy", accuracy);
                }
                Ok(())
            },
            |_| Ok(()),
        )
    }

    /// The registry entry and parameters (the stage mapping without `plugin`/`from`) of a plugin stage.
    fn plugin(&self, slot: Slot, stage: &PluginStage) -> Result<(&PluginEntry, serde_yaml::Value)> {
        let name = stage.plugin.as_deref().ok_or_else(|| {
            Error::stage(slot.stage(), format!("stages.{} needs `plugin:` (or `from:`)", slot.stage()))
        })?;
        let entry = self.registry.get(slot, name)?;
        Ok((entry, serde_yaml::Value::Mapping(stage.params.clone())))
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
    /// in the cache), or resumes it from its checkpoint with `--resume`.
    fn stage<T>(
        &mut self,
        kind: StageKind,
        hash: &str,
        plugin: Option<&str>,
        params: &serde_yaml::Value,
        compute: impl FnOnce(&mut StageContext) -> Result<T>,
        load: impl FnOnce(&mut StageContext) -> Result<T>,
    ) -> Result<T> {
        let dir = self.out.join(kind.name());
        let existing = StageRecord::read(&dir).ok().flatten();
        let done_here = existing.as_ref().is_some_and(|r| r.complete && r.hash == hash);
        let from_cache = !done_here && self.opts.cache.as_ref().is_some_and(|c| c.restore(hash, &dir).unwrap_or(false));
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
        let resume = self.opts.resume && existing.as_ref().is_some_and(|r| !r.complete && r.hash == hash);
        if !resume {
            if existing.is_some() {
                tracing::info!("{kind}: inputs changed, recomputing");
            }
            remove_dir(&dir)?;
        }
        let mut record = StageRecord {
            stage: kind,
            hash: hash.to_string(),
            plugin: plugin.map(str::to_string),
            params: to_json(params),
            complete: false,
            seconds: existing.filter(|_| resume).map_or(0.0, |r| r.seconds),
            summary: Map::new(),
        };
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        record.write(&dir)?;
        let mut ctx = self.context(kind, dir.clone(), resume)?;
        tracing::info!("{kind}: running{}", plugin.map(|p| format!(" `{p}`")).unwrap_or_default());
        let start = Instant::now();
        let value = compute(&mut ctx)?;
        record.seconds += start.elapsed().as_secs_f64();
        record.summary = ctx.take_summary();
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

fn plugin_error(kind: StageKind, entry: &PluginEntry, e: crate::registry::ParamError) -> Error {
    Error::stage(kind.name(), format!("plugin `{}`: {e}", entry.name))
}

/// The features' coordinates on their top `components` principal axes (`stages.features.pca`).
fn project_on_principal_axes(ctx: &StageContext, features: Features, components: usize) -> Result<Features> {
    let start = Instant::now();
    let pca = Pca::fit(&features.values, features.rows, features.dim, components)
        .map_err(|e| Error::stage("features", format!("stages.features.pca: {e}")))?;
    let values = pca.project(&features.values, features.rows);
    let seconds = start.elapsed().as_secs_f64();
    let explained = pca.explained_variance_ratio();
    tracing::info!(
        "features: PCA {} → {components} dimensions keeps {:.1}% of the variance ({seconds:.1}s)",
        features.dim,
        100.0 * explained
    );
    ctx.log(json!({ "pca_components": components, "pca_explained_variance": explained, "pca_seconds": seconds }))?;
    Ok(Features::new(features.rows, components, values))
}

/// Raw pixels scaled to `[0, 1]`, normalised per channel with the dataset's statistics, one row per image.
fn pixel_features(dataset: &Dataset) -> Features {
    let images = &dataset.train;
    let plane = images.height * images.width;
    let dim = images.image_len();
    let mut values = Vec::with_capacity(images.len() * dim);
    for i in 0..images.len() {
        for (j, &p) in images.image(i).iter().enumerate() {
            let c = j / plane;
            values.push((p as f32 / 255.0 - dataset.mean[c]) / dataset.std[c]);
        }
    }
    Features::new(images.len(), dim, values)
}

/// Propagated labels from a file: a propagate stage folder, or the original ReLaB's `labels_*.npz`.
fn read_propagation(from: &Path) -> Result<Propagation> {
    if from.is_dir() { Propagation::load(from) } else { original::read_labels(from) }
}

/// A labelled subset from a file: a select stage folder, a `subset.npy` beside its `subset_labels.npy`, or the
/// original ReLaB's `subset_*.npz` whose labels come from the propagation.
fn read_subset(from: &Path, propagation: Option<&Propagation>, n: usize, classes: usize) -> Result<LabeledSet> {
    if from.is_dir() {
        return LabeledSet::load(&from.join("subset.npy"), Some(&from.join("subset_labels.npy")), n, classes, None);
    }
    let indices = if from.extension().is_some_and(|e| e == "npz") {
        original::read_subset(from)?
    } else {
        crate::artifact::read_indices(from, n)?
    };
    if let Some(bad) = indices.iter().find(|&&i| i >= n) {
        return Err(Error::format(from, format!("index {bad} outside the training set (0..{n})")));
    }
    let Some(p) = propagation else {
        return Err(Error::format(
            from,
            "a subset file carries indices only; its labels come from stages.propagate, which this experiment lacks",
        ));
    };
    let labels = indices.iter().map(|&i| p.labels[i]).collect();
    Ok(LabeledSet::new(indices, labels))
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
