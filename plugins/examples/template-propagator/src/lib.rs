//! `centroid`: every training sample scored by the cosine similarity of its features to each class's centroid, the
//! mean of that class's L2-normalised seed features; the label is the best-scoring class. Seeds keep their labels.
//!
//! The template for a propagator: parameters (declared once), registration, and the component, which honours the
//! contract of [`Propagator`]. `relab new propagate NAME` copies this file with the names replaced.

use relab_core::artifact::{Features, LabeledSet, Propagation};
use relab_core::component::{Propagator, StageContext};
use relab_core::linalg::l2_normalise_rows;
use relab_core::registry::{ParamError, PluginInfo};
use relab_core::{Error, Result};

/// The YAML parameters; each field's first doc paragraph is its help line in `relab plugins describe`.
#[relab_core::params]
#[derive(Debug, Clone, PartialEq)]
pub struct CentroidParams {
    /// the score a seed gives its own class (and minus it to the others), above any cosine similarity
    #[param(default = 2.0, above = 1.0)]
    pub seed_score: f32,
}

/// The propagator, built from its parameters by the registry.
#[derive(Debug, Clone)]
pub struct Centroid {
    params: CentroidParams,
}

impl PluginInfo for Centroid {
    const NAME: &'static str = "centroid";
    const SUMMARY: &'static str =
        "label each sample by its nearest class centroid of the seeds, cosine (propagator template)";
    type Params = CentroidParams;

    fn from_params(params: CentroidParams) -> Result<Self, ParamError> {
        Ok(Centroid { params })
    }
}

relab_core::submit_plugin!(propagate, Centroid);

impl Propagator for Centroid {
    fn propagate(
        &mut self,
        _ctx: &mut StageContext,
        features: &Features,
        seeds: &LabeledSet,
        num_classes: usize,
    ) -> Result<Propagation> {
        if let Some(bad) = features.values.iter().position(|v| !v.is_finite()) {
            let row = bad / features.dim.max(1);
            return Err(Error::stage(
                "propagate",
                format!("centroid: the features of training image {row} are not finite"),
            ));
        }
        let (n, d) = (features.rows, features.dim);
        if d == 0 {
            return Err(Error::stage("propagate", "centroid: the features have no columns"));
        }
        let mut x = features.values.clone();
        l2_normalise_rows(&mut x, d);
        let mut centroids = vec![0.0f32; num_classes * d];
        let mut counts = vec![0usize; num_classes];
        for (&i, &c) in seeds.indices.iter().zip(&seeds.labels) {
            let c = c as usize;
            if i >= n || c >= num_classes {
                return Err(Error::stage(
                    "propagate",
                    format!("centroid: seed {i} of class {c} is outside {n} images × {num_classes} classes"),
                ));
            }
            counts[c] += 1;
            for (m, v) in centroids[c * d..(c + 1) * d].iter_mut().zip(&x[i * d..(i + 1) * d]) {
                *m += v;
            }
        }
        l2_normalise_rows(&mut centroids, d);
        let mut scores = vec![0.0f32; n * num_classes];
        for (row, out) in x.chunks(d).zip(scores.chunks_mut(num_classes)) {
            for (c, score) in out.iter_mut().enumerate() {
                // A class without seeds cannot be chosen.
                *score = if counts[c] == 0 {
                    f32::NEG_INFINITY
                } else {
                    row.iter().zip(&centroids[c * d..(c + 1) * d]).map(|(a, b)| a * b).sum()
                };
            }
        }
        let s = self.params.seed_score;
        for (&i, &c) in seeds.indices.iter().zip(&seeds.labels) {
            for (k, score) in scores[i * num_classes..(i + 1) * num_classes].iter_mut().enumerate() {
                *score = if k == c as usize { s } else { -s };
            }
        }
        Ok(Propagation::from_scores(num_classes, scores))
    }
}
