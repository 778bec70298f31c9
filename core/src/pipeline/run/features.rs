//! The features stage: one row per training image from the encoder, the raw pixels or a file, optionally projected
//! on its top principal axes.

use std::time::Instant;

use serde_json::json;

use super::{Hashed, Runner, code, hash_file, hash_json, to_json};
use crate::artifact::Features;
use crate::component::{Encoder, StageContext, StageKind};
use crate::data::Dataset;
use crate::experiment::{FeatureSource, FeaturesStage};
use crate::linalg::Pca;
use crate::{Error, Result};

impl Runner<'_> {
    pub(super) fn features(
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
        let mut key = json!({ "stage": "features", "input": input, "dataset": self.dataset_hash, "code": code(None) });
        if let Some(components) = cfg.pca {
            key["pca"] = json!(components);
        }
        let hash = hash_json(&key);
        let value = self.stage(
            StageKind::Features,
            &key,
            &hash,
            None,
            &to_json(&params),
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
                let source = if cfg.from.is_some() { "the file" } else { "the encoder's output" };
                features.check().map_err(|why| Error::stage("features", format!("{source}: {why}")))?;
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
