//! The plugin kit's checks on `pseudo-label`: parameters and kill-and-resume bit-identical, killed in the warm-up
//! and in the semi-supervised run (soft labels and SWA included).
use relab_core::artifact::{LabeledSet, TestAccuracy};
use relab_core::component::{LearnerInput, SemiSupervisedLearner, StageContext, StageKind};
use relab_core::testing::{self, TinySpec};
use relab_plugin_pseudo_label::PseudoLabel;

const QUICK: &str = "{backbone: wrn10_2, warmup: {epochs: 2, batch_size: 6}, epochs: 3, batch_size: 8, \
                     labeled_per_batch: 2, swa: {start: 1, every: 1}, augment: [flip], eval_batch_size: 12}";

fn train(ctx: &mut StageContext) -> relab_core::Result<Option<TestAccuracy>> {
    let data = testing::tiny_dataset(&TinySpec::default());
    let labeled = LabeledSet::new((0..6).collect(), (0..6).map(|i| (i % 3) as u32).collect());
    let mut learner: PseudoLabel = testing::build(QUICK).expect("the quick parameters are valid");
    Ok(learner.train(ctx, LearnerInput::new(&data, &labeled))?.test_accuracy)
}

#[test]
fn parameters_round_trip() {
    testing::check_params::<PseudoLabel>();
}

#[test]
fn resumes_bit_identically_from_the_warmup() {
    testing::check_resume(StageKind::Train, 1, train);
}

#[test]
fn resumes_bit_identically_from_the_semi_supervised_run() {
    let outcome = testing::check_resume(StageKind::Train, 4, train);
    let swa = outcome.value.expect("the test split has labels").swa;
    assert!(swa.is_some(), "the SWA model was evaluated");
}

/// Stopped inside the first semi-supervised epoch, after 2 warm-up steps and 2 of its own: the predictions it
/// recorded wait in the checkpoint for the epoch's swap.
#[test]
fn resumes_bit_identically_after_a_stop_mid_epoch() {
    testing::check_interrupt_resume(StageKind::Train, 4, train);
}
