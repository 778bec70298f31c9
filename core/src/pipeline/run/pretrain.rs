//! The pretrain stage: an SSL method trains an encoder on the dataset (or one is read from `from:`).

use serde_json::json;

use super::{Hashed, Images, Runner, code, hash_json, plugin_error};
use crate::component::{Encoder, StageKind};
use crate::experiment::PluginStage;
use crate::pipeline::stage_record::StageRecord;
use crate::registry::{Factory, Slot};
use crate::{Error, Result};

impl Runner<'_> {
    pub(super) fn pretrain(&mut self, stage: &PluginStage, images: &Images<'_>) -> Result<Hashed<Box<dyn Encoder>>> {
        if let Some(from) = &stage.from {
            // Another run's pretrain folder: its record names the plugin that can load it.
            let record = StageRecord::read(from)?.filter(|r| r.complete).ok_or_else(|| {
                Error::format(from, "stages.pretrain.from must be a finished pretrain stage folder (with stage.json)")
            })?;
            if let Err(mismatch) = crate::formats::digest::verify(from, &record.files) {
                return Err(Error::format(
                    from,
                    format!("stages.pretrain.from: {mismatch}; this folder no longer holds what its stage wrote"),
                ));
            }
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
        let resolved = self.resolved(StageKind::Pretrain, entry, &params)?;
        let key = json!({
            "stage": "pretrain", "plugin": entry.name, "version": entry.version, "params": resolved,
            "code": code(Some(entry)), "dataset": images.hash, "seed": self.seed,
        });
        let hash = hash_json(&key);
        let value = self.stage(
            StageKind::Pretrain,
            &key,
            &hash,
            Some(entry.name),
            &resolved,
            |ctx| {
                let encoder = method.borrow_mut().pretrain(ctx, &images.set)?;
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
}
