//! The train stage: a learner trains the classifier on the labelled subset and reports its test accuracy.

use serde_json::json;

use super::{Hashed, Images, Runner, Upstream, code, hash_json, plugin_error};
use crate::artifact::{LabeledSet, Propagation};
use crate::component::{LearnerInput, PropagateStage, StageKind};
use crate::experiment::PluginStage;
use crate::registry::{Factory, Slot};
use crate::{Error, Result};

impl Runner<'_> {
    pub(super) fn train(
        &mut self,
        stage: &PluginStage,
        images: &Images<'_>,
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
        let resolved = self.resolved(StageKind::Train, entry, &params)?;
        // A learner that propagates again runs the propagate stage's plugin: its code counts too.
        let propagator_code = match propagation {
            Some((_, stage)) if stage.from.is_none() => Some(code(Some(self.plugin(Slot::Propagate, stage)?.0))),
            _ => None,
        };
        let key = json!({
            "stage": "train", "plugin": entry.name, "version": entry.version, "params": resolved,
            "code": code(Some(entry)), "propagator_code": propagator_code,
            "labeled": labeled.hash, "encoder": upstream.encoder.map(|e| &e.hash),
            "features": upstream.features.map(|f| &f.hash),
            "propagation": propagation.map(|(p, _)| &p.hash), "dataset": images.hash,
            "seed": self.seed,
        });
        let hash = hash_json(&key);
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
            &key,
            &hash,
            Some(entry.name),
            &resolved,
            |ctx| {
                let mut propagate_stage = propagation.map(|(output, _)| match propagator {
                    Some(p) => PropagateStage::with_propagator(&output.value, p, seeds),
                    None => PropagateStage::output_only(&output.value),
                });
                let input = LearnerInput {
                    data: &images.set,
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
}
