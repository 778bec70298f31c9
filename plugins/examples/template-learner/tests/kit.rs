//! The plugin kit's checks, as every learner's tests run them: parameters, same seed same bits, kill-and-resume
//! bit-identical, and that it learns the tiny dataset.
use relab_core::artifact::{LabeledSet, TestAccuracy};
use relab_core::component::{LearnerInput, SemiSupervisedLearner, StageContext, StageKind};
use relab_core::testing::{self, TinySpec};
use relab_template_learner::EntropyMin;

const QUICK: &str = "{backbone: wrn10_2, epochs: 4, labeled_per_batch: 3, unlabeled_per_batch: 6, eval_batch_size: 12}";

fn train(ctx: &mut StageContext) -> relab_core::Result<Option<TestAccuracy>> {
    let data = testing::tiny_dataset(&TinySpec { train_per_class: 12, ..TinySpec::default() });
    let labeled = LabeledSet::new((0..6).collect(), (0..6).map(|i| (i % 3) as u32).collect());
    let mut learner: EntropyMin = testing::build(QUICK).expect("the quick parameters are valid");
    Ok(learner.train(ctx, LearnerInput::new(&data, &labeled))?.test_accuracy)
}

#[test]
fn parameters_round_trip() {
    testing::check_params::<EntropyMin>();
}

#[test]
fn learns_the_tiny_dataset_with_the_same_bits_every_time() {
    let outcome = testing::check_deterministic(StageKind::Train, train);
    let accuracy = outcome.value.expect("the test split has labels").last;
    assert!(accuracy > 0.5, "3 classes, chance is 1/3: {accuracy}");
    assert_eq!(outcome.metrics.len(), 4, "one record per epoch");
}

#[test]
fn resumes_bit_identically() {
    testing::check_resume(StageKind::Train, 2, train);
}

#[test]
fn resumes_bit_identically_after_a_stop_mid_epoch() {
    testing::check_interrupt_resume(StageKind::Train, 3, train);
}
