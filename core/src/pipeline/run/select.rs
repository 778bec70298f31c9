//! The select stage: a selector picks the labelled subset the learner trains on (or it is read from `from:`).

use std::path::Path;

use serde_json::json;

use super::{Hashed, Images, Runner, Upstream, code, hash_file, hash_json, plugin_error, to_json};
use crate::artifact::{LabeledSet, Propagation, original};
use crate::component::{SelectorInput, StageContext, StageKind};
use crate::data::Dataset;
use crate::experiment::PluginStage;
use crate::registry::{Factory, Slot};
use crate::{Error, Result};

impl Runner<'_> {
    pub(super) fn select(
        &mut self,
        stage: &PluginStage,
        images: &Images<'_>,
        propagation: Option<&Hashed<Propagation>>,
        seeds: &LabeledSet,
        seeds_hash: &str,
        upstream: Upstream<'_>,
    ) -> Result<Hashed<LabeledSet>> {
        let dataset: &Dataset = &images.set;
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
            let key = json!({
                "stage": "select", "from": hash_file(from)?, "propagation": propagation.map(|p| &p.hash),
                "code": code(None),
            });
            let hash = hash_json(&key);
            let params = to_json(&serde_yaml::to_value(stage).expect("stage serialises"));
            let from = from.clone();
            let prop = propagation.map(|p| &p.value);
            let value = self.stage(
                StageKind::Select,
                &key,
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
        let resolved = self.resolved(StageKind::Select, entry, &params)?;
        let key = json!({
            "stage": "select", "plugin": entry.name, "version": entry.version, "params": resolved,
            "code": code(Some(entry)),
            "propagation": propagation.hash, "seeds": seeds_hash, "dataset": images.hash, "seed": self.seed,
            "encoder": upstream.encoder.map(|e| &e.hash), "features": upstream.features.map(|f| &f.hash),
        });
        let hash = hash_json(&key);
        let value = self.stage(
            StageKind::Select,
            &key,
            &hash,
            Some(entry.name),
            &resolved,
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
