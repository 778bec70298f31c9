use std::collections::HashSet;

use relab_core::artifact::{LabeledSet, Propagation, npy};
use relab_core::component::{Selector, SelectorInput, StageContext};
use relab_core::registry::{ParamError, PluginInfo};
use relab_core::{Error, Result};
use serde_json::json;

use crate::params::SmallLossParams;
use crate::ranking::{self, Candidate};
use crate::training::track_losses;

/// Reliable-sample selection by the small-loss trick (`docs/method.md` §4).
#[derive(Debug, Clone)]
pub struct SmallLoss {
    params: SmallLossParams,
}

impl PluginInfo for SmallLoss {
    const NAME: &'static str = "small-loss";
    const SUMMARY: &'static str =
        "train a fresh network on the propagated labels, keep per class the samples with the smallest mean loss";
    type Params = SmallLossParams;

    fn from_params(params: SmallLossParams) -> Result<Self, ParamError> {
        params.check()?;
        Ok(SmallLoss { params })
    }
}

relab_core::submit_plugin!(select, SmallLoss);

impl Selector for SmallLoss {
    fn select(&mut self, ctx: &mut StageContext, input: SelectorInput<'_>) -> Result<LabeledSet> {
        let SelectorInput { data, propagation, seeds, .. } = input;
        let n = data.train.len();
        if propagation.len() != n {
            return Err(Error::stage(
                "select",
                format!("{} propagated labels for {n} training images", propagation.len()),
            ));
        }
        let labels = carried_labels(propagation, seeds);
        let tracked = track_losses(ctx, &self.params, data, &labels, &seeds.indices)?;
        write_scores(ctx, &tracked.pool, &tracked.mean)?;

        let is_seed: HashSet<usize> = seeds.indices.iter().copied().collect();
        let others: Vec<Candidate> = tracked
            .pool
            .iter()
            .zip(&tracked.mean)
            .filter(|(i, _)| !is_seed.contains(i))
            .map(|(&index, &mean_loss)| Candidate { index, label: labels[index], mean_loss })
            .collect();
        let selection = ranking::select(seeds, &others, data.num_classes, self.params.per_class);
        for s in &selection.shortfalls {
            tracing::warn!(
                "small-loss: class {} has {} candidates for a quota of {}; keeping all of them",
                s.class,
                s.kept,
                s.quota
            );
        }
        ctx.set_summary("subset_short_classes", &selection.shortfalls);
        ctx.set_summary("selection_pool", tracked.pool.len());
        ctx.log(json!({ "selection_pool": tracked.pool.len(), "short_classes": selection.shortfalls }))?;
        Ok(selection.subset)
    }
}

/// The label each training image carries: a seed its own (true) label, every other image its propagated one.
fn carried_labels(propagation: &Propagation, seeds: &LabeledSet) -> Vec<u32> {
    let mut labels = propagation.labels.clone();
    for (&i, &l) in seeds.indices.iter().zip(&seeds.labels) {
        labels[i] = l;
    }
    labels
}

/// `pool.npy` (the ranked training indices) and `mean_loss.npy` (their scores), for inspecting the ranking.
fn write_scores(ctx: &StageContext, pool: &[usize], mean: &[f64]) -> Result<()> {
    let indices: Vec<i64> = pool.iter().map(|&i| i as i64).collect();
    npy::write_i64(&ctx.dir().join("pool.npy"), &[indices.len()], &indices)?;
    let scores: Vec<f32> = mean.iter().map(|&m| m as f32).collect();
    npy::write_f32(&ctx.dir().join("mean_loss.npy"), &[scores.len()], &scores)
}

#[cfg(test)]
mod tests {
    use super::*;
    use relab_core::burn::tensor::Device;
    use relab_core::component::{MetricsSink, StageKind};
    use relab_core::data::{Dataset, ImageSet};

    /// 24 tiny grey images of two kinds (bright top half = class 0, bright bottom half = class 1) with a little
    /// per-image texture.
    fn dataset() -> Dataset {
        let (n, side) = (24, 8);
        let mut pixels = Vec::with_capacity(n * side * side);
        for i in 0..n {
            for y in 0..side {
                for x in 0..side {
                    let bright = (y < side / 2) == (i % 2 == 0);
                    pixels.push(if bright { 200 } else { 30 } + ((i * 7 + x * 3 + y) % 13) as u8);
                }
            }
        }
        let labels: Vec<u32> = (0..n as u32).map(|i| i % 2).collect();
        let train = ImageSet { channels: 1, height: side, width: side, pixels, labels: Some(labels) };
        Dataset {
            name: "toy".into(),
            test: train.select(&[0, 1]),
            train,
            num_classes: 2,
            class_names: vec!["top".into(), "bottom".into()],
            mean: vec![0.45],
            std: vec![0.3],
        }
    }

    fn ctx(dir: &std::path::Path) -> StageContext {
        let metrics = MetricsSink::open(&dir.join("metrics.jsonl")).unwrap();
        StageContext::new(StageKind::Select, Device::flex(), "cpu", 3, dir.to_path_buf(), metrics, false)
    }

    /// A two-epoch wrn10_2 run without augmentation, with the keys of `yaml` replaced.
    fn quick(yaml: &str) -> SmallLoss {
        let base = "{backbone: wrn10_2, epochs: 2, track_epochs: 2, batch_size: 8, eval_batch_size: 10, augment: []}";
        let serde_yaml::Value::Mapping(mut params) = serde_yaml::from_str(base).unwrap() else { unreachable!() };
        let serde_yaml::Value::Mapping(changes) = serde_yaml::from_str(yaml).unwrap() else { panic!("{yaml}") };
        params.extend(changes);
        let value = serde_yaml::Value::Mapping(params);
        SmallLoss::from_params(relab_core::registry::parse_params(&value).unwrap()).unwrap()
    }

    #[test]
    fn keeps_the_quota_per_class_seeds_first_and_writes_the_scores() {
        let tmp = tempfile::tempdir().unwrap();
        let data = dataset();
        // Propagated labels: class 1 only for images 1, 3 and 5, so class 1 is short of a quota of 5.
        let labels: Vec<u32> = (0..24).map(|i| u32::from([1, 3, 5].contains(&i))).collect();
        let scores = labels.iter().flat_map(|&l| if l == 0 { [1.0, 0.0] } else { [0.0, 1.0] }).collect();
        let propagation = Propagation::from_scores(2, scores);
        let seeds = LabeledSet::new(vec![5, 4], vec![1, 0]);
        let mut ctx = ctx(tmp.path());
        let subset = quick("per_class: 5").select(&mut ctx, SelectorInput::new(&data, &propagation, &seeds)).unwrap();
        assert_eq!(subset.labels, vec![0, 0, 0, 0, 0, 1, 1, 1]);
        assert_eq!((subset.indices[0], subset.indices[5]), (4, 5), "each seed leads its class");
        let mut short = subset.indices[6..].to_vec();
        short.sort();
        assert_eq!(short, vec![1, 3], "a short class keeps all its candidates, none repeated");
        let summary = ctx.take_summary();
        assert_eq!(summary["selection_pool"], 24);
        assert_eq!(summary["subset_short_classes"], json!([{ "class": 1, "kept": 3, "quota": 5 }]));

        let (_, pool) = npy::read_i64(&tmp.path().join("pool.npy")).unwrap();
        let (_, mean) = npy::read_f32(&tmp.path().join("mean_loss.npy")).unwrap();
        assert_eq!(pool, (0..24).collect::<Vec<i64>>());
        assert!(mean.iter().all(|l| l.is_finite() && *l >= 0.0));
        // Class 0 keeps, after its seed, its four non-seed images of smallest mean loss, in that order.
        let mut class0: Vec<usize> = (0..24).filter(|&i| labels[i] == 0 && i != 4).collect();
        class0.sort_by(|&a, &b| mean[a].total_cmp(&mean[b]).then(a.cmp(&b)));
        assert_eq!(subset.indices[1..5], class0[..4]);
        let epochs = std::fs::read_to_string(tmp.path().join("metrics.jsonl")).unwrap();
        assert_eq!(epochs.lines().filter(|l| l.contains("tracked_loss")).count(), 2);
    }

    #[test]
    fn a_diverging_loss_stops_with_the_non_finite_error() {
        let tmp = tempfile::tempdir().unwrap();
        let data = dataset();
        let propagation = Propagation::from_scores(2, (0..24).flat_map(|i| [(i % 2) as f32, 0.5]).collect());
        let seeds = LabeledSet::new(vec![0], vec![0]);
        let err = quick("epochs: 3\nschedule: {lr: 1.0e30}")
            .select(&mut ctx(tmp.path()), SelectorInput::new(&data, &propagation, &seeds))
            .unwrap_err();
        assert!(matches!(err, Error::NonFinite { .. }), "{err}");
        assert!(err.to_string().contains("select: non-finite value"), "{err}");
    }
}
