//! The propagate stage: a propagator spreads the seed labels over every training image (or propagated labels
//! are read from `from:`).

use std::path::Path;

use serde_json::json;

use super::{Hashed, Runner, code, hash_file, hash_json, plugin_error, to_json};
use crate::artifact::{Features, LabeledSet, Propagation, original};
use crate::component::{StageContext, StageKind};
use crate::data::Dataset;
use crate::experiment::PluginStage;
use crate::registry::{Factory, Slot};
use crate::{Error, Result};

impl Runner<'_> {
    pub(super) fn propagate(
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
            let key = json!({ "stage": "propagate", "from": hash_file(from)?, "code": code(None) });
            let hash = hash_json(&key);
            let params = to_json(&serde_yaml::to_value(stage).expect("stage serialises"));
            let from = from.clone();
            let value = self.stage(
                StageKind::Propagate,
                &key,
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
        let resolved = self.resolved(StageKind::Propagate, entry, &params)?;
        let key = json!({
            "stage": "propagate", "plugin": entry.name, "version": entry.version, "params": resolved,
            "code": code(Some(entry)), "features": features.hash, "seeds": seeds_hash, "seed": self.seed,
        });
        let hash = hash_json(&key);
        let value = self.stage(
            StageKind::Propagate,
            &key,
            &hash,
            Some(entry.name),
            &resolved,
            |ctx| {
                let p = propagator.propagate(ctx, &features.value, seeds, classes)?;
                finish(ctx, p)
            },
            load,
        )?;
        Ok(Hashed { value, hash })
    }
}

/// Propagated labels from a file: a propagate stage folder, or the original ReLaB's `labels_*.npz`.
fn read_propagation(from: &Path) -> Result<Propagation> {
    if from.is_dir() { Propagation::load(from) } else { original::read_labels(from) }
}
