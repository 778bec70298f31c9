//! The plugin kit's checks on the example plugin library: parameters and kill-and-resume bit-identical.
use relab_core::component::{SslMethod, StageKind};
use relab_core::testing::{self, TinySpec};
use relab_example_rotation::RotationPrediction;

#[test]
fn parameters_round_trip() {
    testing::check_params::<RotationPrediction>();
}

#[test]
fn resumes_bit_identically() {
    let outcome = testing::check_resume(StageKind::Pretrain, 1, |ctx| {
        let data = testing::tiny_dataset(&TinySpec::default());
        let quick = "{backbone: wrn10_2, epochs: 2, batch_size: 6, augment: [flip], eval_batch_size: 12}";
        let mut method: RotationPrediction = testing::build(quick).expect("the quick parameters are valid");
        Ok(method.pretrain(ctx, &data)?.feature_dim())
    });
    assert!(outcome.summary.contains_key("rotation_accuracy"));
}

#[test]
fn resumes_bit_identically_after_a_stop_mid_epoch() {
    testing::check_interrupt_resume(StageKind::Pretrain, 2, |ctx| {
        let data = testing::tiny_dataset(&TinySpec::default());
        let quick = "{backbone: wrn10_2, epochs: 2, batch_size: 6, augment: [flip], eval_batch_size: 12}";
        let mut method: RotationPrediction = testing::build(quick).expect("the quick parameters are valid");
        Ok(method.pretrain(ctx, &data)?.feature_dim())
    });
}
