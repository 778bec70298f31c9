//! The plugin kit's checks on `supervised`: parameters, same seed same bits, kill-and-resume bit-identical.
use relab_core::artifact::{LabeledSet, TestAccuracy};
use relab_core::component::{LearnerInput, SemiSupervisedLearner, StageKind};
use relab_core::testing::{self, TinySpec};
use relab_plugin_supervised::Supervised;

const QUICK: &str = "{backbone: wrn10_2, epochs: 3, batch_size: 6, eval_batch_size: 12, augment: [flip]}";

fn train(ctx: &mut relab_core::component::StageContext) -> relab_core::Result<Option<TestAccuracy>> {
    let data = testing::tiny_dataset(&TinySpec::default());
    let labeled = LabeledSet::new((0..9).collect(), (0..9).map(|i| (i % 3) as u32).collect());
    let mut learner: Supervised = testing::build(QUICK).expect("the quick parameters are valid");
    Ok(learner.train(ctx, LearnerInput::new(&data, &labeled))?.test_accuracy)
}

#[test]
fn parameters_round_trip() {
    testing::check_params::<Supervised>();
}

#[test]
fn same_seed_same_bits() {
    let outcome = testing::check_deterministic(StageKind::Train, train);
    assert!(outcome.value.is_some(), "the test split has labels, so the learner reports its accuracy");
    assert_eq!(outcome.metrics.len(), 3, "one record per epoch");
}

#[test]
fn resumes_bit_identically() {
    testing::check_resume(StageKind::Train, 2, train);
}

#[test]
fn resumes_bit_identically_after_a_stop_mid_epoch() {
    testing::check_interrupt_resume(StageKind::Train, 1, train);
}
