//! The plugin kit's checks on `small-loss`: parameters and kill-and-resume bit-identical (the tracked losses
//! included).
use relab_core::artifact::{LabeledSet, Propagation};
use relab_core::component::{Selector, SelectorInput, StageContext, StageKind};
use relab_core::testing::{self, TinySpec};
use relab_plugin_small_loss::SmallLoss;

const QUICK: &str = "{backbone: wrn10_2, epochs: 3, track_epochs: 2, per_class: 4, batch_size: 6, eval_batch_size: 12, \
                     augment: [flip]}";

#[test]
fn parameters_round_trip() {
    testing::check_params::<SmallLoss>();
}

/// The selection on the tiny dataset, its propagated labels right but for every fifth image.
fn select(ctx: &mut StageContext) -> relab_core::Result<LabeledSet> {
    let data = testing::tiny_dataset(&TinySpec::default());
    let truth = data.train.labels.clone().unwrap();
    let scores: Vec<f32> = truth
        .iter()
        .enumerate()
        .flat_map(|(i, &t)| (0..3u32).map(move |c| if c == (t + u32::from(i % 5 == 0)) % 3 { 1.0 } else { 0.0 }))
        .collect();
    let propagation = Propagation::from_scores(3, scores);
    let seeds = LabeledSet::new(vec![0, 1, 2], vec![0, 1, 2]);
    let mut selector: SmallLoss = testing::build(QUICK).expect("the quick parameters are valid");
    selector.select(ctx, SelectorInput::new(&data, &propagation, &seeds))
}

#[test]
fn resumes_bit_identically() {
    let outcome = testing::check_resume(StageKind::Select, 2, select);
    assert_eq!(outcome.value.len(), 12, "four per class");
}

#[test]
fn resumes_bit_identically_after_a_stop_mid_epoch() {
    testing::check_interrupt_resume(StageKind::Select, 3, select);
}
