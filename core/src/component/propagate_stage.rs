use super::{Propagator, StageContext};
use crate::artifact::{Features, LabeledSet, Propagation};
use crate::{Error, Result};

/// The propagate stage as the train stage's learner sees it: what the stage produced and, when a plugin made it,
/// that propagator with the same parameters and seeds, so that a learner can propagate the seeds again over
/// features of its own network as it trains (Iscen et al.'s iterated label propagation, which `pseudo-label`'s
/// `repropagate_after` runs).
pub struct PropagateStage<'a> {
    /// The stage's output.
    pub output: &'a Propagation,
    again: Option<Again<'a>>,
}

struct Again<'a> {
    propagator: Box<dyn Propagator>,
    seeds: &'a LabeledSet,
}

impl<'a> PropagateStage<'a> {
    /// A stage read from a file (`from:`): its output only.
    pub fn output_only(output: &'a Propagation) -> Self {
        PropagateStage { output, again: None }
    }

    /// A stage that `propagator` ran from `seeds`, over as many classes as `output` has.
    pub fn with_propagator(output: &'a Propagation, propagator: Box<dyn Propagator>, seeds: &'a LabeledSet) -> Self {
        PropagateStage { output, again: Some(Again { propagator, seeds }) }
    }

    pub fn can_propagate_again(&self) -> bool {
        self.again.is_some()
    }

    /// The stage's seeds propagated again, by the stage's propagator, over `features`: one row per training image,
    /// in the dataset's order, as the features stage gives them.
    pub fn propagate_again(&mut self, ctx: &mut StageContext, features: &Features) -> Result<Propagation> {
        let (n, classes) = (self.output.len(), self.output.num_classes);
        let stage = ctx.stage.name();
        let Some(again) = &mut self.again else {
            return Err(Error::stage(
                stage,
                "the propagate stage was read from a file (`from:`), so there is no propagator to run again; name a \
                 propagate plugin instead",
            ));
        };
        if features.rows != n {
            return Err(Error::stage(
                stage,
                format!("{} feature rows to propagate over, for {n} images", features.rows),
            ));
        }
        let p = again.propagator.propagate(ctx, features, again.seeds, classes)?;
        if p.len() != n || p.num_classes != classes {
            return Err(Error::stage(
                stage,
                format!(
                    "propagating again gave {} × {} scores, for {n} images of {classes} classes",
                    p.len(),
                    p.num_classes
                ),
            ));
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::component::{MetricsSink, StageKind};
    use burn::tensor::Device;

    /// Each sample takes the label of the seed whose one feature is nearest.
    struct NearestSeed1d;

    impl Propagator for NearestSeed1d {
        fn propagate(
            &mut self,
            _: &mut StageContext,
            f: &Features,
            seeds: &LabeledSet,
            c: usize,
        ) -> Result<Propagation> {
            let mut scores = vec![0.0; f.rows * c];
            for (i, &v) in f.values.iter().enumerate() {
                let nearest = (0..seeds.len())
                    .min_by(|&a, &b| {
                        let d = |s: usize| (f.values[seeds.indices[s]] - v).abs();
                        d(a).total_cmp(&d(b))
                    })
                    .unwrap();
                scores[i * c + seeds.labels[nearest] as usize] = 1.0;
            }
            Ok(Propagation::from_scores(c, scores))
        }
    }

    #[test]
    fn propagating_again_runs_the_stage_s_propagator_with_its_seeds_over_new_features() {
        let dir = tempfile::tempdir().unwrap();
        let sink = MetricsSink::open(&dir.path().join("metrics.jsonl")).unwrap();
        let mut ctx =
            StageContext::new(StageKind::Train, Device::flex(), "cpu", 1, dir.path().to_path_buf(), sink, false);
        let output = Propagation::from_scores(2, vec![1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0]);
        let seeds = LabeledSet::new(vec![0, 3], vec![0, 1]);

        let mut stage = PropagateStage::with_propagator(&output, Box::new(NearestSeed1d), &seeds);
        assert!(stage.can_propagate_again());
        // Seed 0 sits at 0.0 and seed 3 at 1.0: images 1 and 2 now lean the other way.
        let again = stage.propagate_again(&mut ctx, &Features::new(4, 1, vec![0.0, 0.9, 0.2, 1.0])).unwrap();
        assert_eq!(again.labels, vec![0, 1, 0, 1]);
        let e = stage.propagate_again(&mut ctx, &Features::new(3, 1, vec![0.0; 3])).unwrap_err().to_string();
        assert!(e.contains("3 feature rows") && e.contains("for 4 images"), "{e}");

        let mut from_file = PropagateStage::output_only(&output);
        assert!(!from_file.can_propagate_again());
        let e = from_file.propagate_again(&mut ctx, &Features::new(4, 1, vec![0.0; 4])).unwrap_err().to_string();
        assert!(e.contains("read from a file"), "{e}");
    }
}
