use relab_core::Result;
use relab_core::artifact::{Features, LabeledSet, Propagation};
use relab_core::component::{Propagator, StageContext};
use relab_core::registry::{ParamError, PluginInfo};
use serde::{Deserialize, Serialize};

/// How "nearest" is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// Cosine similarity (features L2-normalised first), as the original's normalised features use.
    #[default]
    Cosine,
    /// Euclidean distance on the raw features.
    L2,
}

/// The YAML parameters of `nearest-seed`.
#[relab_core::params]
#[derive(Debug, Clone, PartialEq)]
pub struct NearestSeedParams {
    /// cosine (L2-normalised features) or l2 (Euclidean distance)
    #[param(default = Metric::Cosine)]
    pub metric: Metric,
}

/// Labels every sample with the class of its nearest seed. The score of class `c` is the similarity to the nearest
/// seed of `c` (cosine), or the negated distance to it (l2); a class without seeds scores −∞.
#[derive(Debug, Clone)]
pub struct NearestSeed {
    metric: Metric,
}

impl PluginInfo for NearestSeed {
    const NAME: &'static str = "nearest-seed";
    const SUMMARY: &'static str = "label each sample with its nearest seed's class (1-NN, no graph)";
    type Params = NearestSeedParams;

    fn from_params(params: NearestSeedParams) -> Result<Self, ParamError> {
        Ok(NearestSeed { metric: params.metric })
    }
}

relab_core::submit_plugin!(propagate, NearestSeed);

impl Propagator for NearestSeed {
    fn propagate(
        &mut self,
        ctx: &mut StageContext,
        features: &Features,
        seeds: &LabeledSet,
        num_classes: usize,
    ) -> Result<Propagation> {
        if seeds.is_empty() {
            return Err(relab_core::Error::stage("propagate", "nearest-seed needs at least one seed"));
        }
        features.check().map_err(|why| relab_core::Error::stage("propagate", format!("nearest-seed: {why}")))?;
        let rows: Vec<Vec<f32>> = match self.metric {
            Metric::Cosine => (0..features.rows).map(|i| normalised(features.row(i))).collect(),
            Metric::L2 => (0..features.rows).map(|i| features.row(i).to_vec()).collect(),
        };
        let seed_rows: Vec<(&[f32], usize)> =
            seeds.indices.iter().zip(&seeds.labels).map(|(&i, &l)| (rows[i].as_slice(), l as usize)).collect();
        let bar = ctx.progress(rows.len() as u64, "nearest seed");
        let mut scores = vec![f32::NEG_INFINITY; rows.len() * num_classes];
        for (i, row) in rows.iter().enumerate() {
            let out = &mut scores[i * num_classes..(i + 1) * num_classes];
            for &(seed, class) in &seed_rows {
                let s = match self.metric {
                    Metric::Cosine => dot(row, seed),
                    Metric::L2 => -squared_distance(row, seed).sqrt(),
                };
                out[class] = out[class].max(s);
            }
            if i % 1024 == 0 {
                bar.set_position(i as u64);
            }
        }
        bar.finish_and_clear();
        Ok(Propagation::from_scores(num_classes, scores))
    }
}

fn normalised(v: &[f32]) -> Vec<f32> {
    let norm = dot(v, v).sqrt().max(1e-12);
    v.iter().map(|x| x / norm).collect()
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn squared_distance(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use relab_core::component::{MetricsSink, StageKind};

    fn ctx(dir: &std::path::Path) -> StageContext {
        let metrics = MetricsSink::open(&dir.join("m.jsonl")).unwrap();
        let device = relab_core::burn::tensor::Device::flex();
        StageContext::new(StageKind::Propagate, device, "cpu", 1, dir.to_path_buf(), metrics, false)
    }

    #[test]
    fn each_sample_takes_its_nearest_seeds_class() {
        let tmp = tempfile::tempdir().unwrap();
        // Two seeds: sample 0 (class 1) points along x, sample 3 (class 0) along y.
        let f = Features::new(4, 2, vec![1.0, 0.0, 0.9, 0.2, 0.1, 0.8, 0.0, 2.0]);
        let seeds = LabeledSet::new(vec![0, 3], vec![1, 0]);
        let p = NearestSeed { metric: Metric::Cosine }.propagate(&mut ctx(tmp.path()), &f, &seeds, 3).unwrap();
        assert_eq!(p.labels, vec![1, 1, 0, 0]);
        // Cosine of sample 1 with the x axis.
        let expected = 0.9 / (0.81f32 + 0.04).sqrt();
        assert!((p.scores_of(1)[1] - expected).abs() < 1e-6);
        assert_eq!(p.scores_of(1)[2], f32::NEG_INFINITY, "a class without seeds never wins");

        // Features without columns or with a NaN are refused, not labelled class 0.
        for bad in [Features::new(4, 0, vec![]), Features::new(4, 2, vec![1.0, 0.0, f32::NAN, 0.2, 0.1, 0.8, 0.0, 2.0])]
        {
            let err = NearestSeed { metric: Metric::Cosine }.propagate(&mut ctx(tmp.path()), &bad, &seeds, 3);
            assert!(err.unwrap_err().to_string().starts_with("propagate: nearest-seed: the features "));
        }
    }

    #[test]
    fn l2_uses_distances_not_angles() {
        let tmp = tempfile::tempdir().unwrap();
        // Sample 1 points the same way as seed 0 but lies next to seed 2.
        let f = Features::new(3, 1, vec![1.0, 10.0, 9.0]);
        let seeds = LabeledSet::new(vec![0, 2], vec![0, 1]);
        let p = NearestSeed { metric: Metric::L2 }.propagate(&mut ctx(tmp.path()), &f, &seeds, 2).unwrap();
        assert_eq!(p.labels, vec![0, 1, 1]);
        assert_eq!(p.scores_of(1), &[-9.0, -1.0]);
    }
}
