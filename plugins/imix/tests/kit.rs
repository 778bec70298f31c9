//! The plugin kit's checks on `imix`: parameters and kill-and-resume bit-identical (kNN monitor and best encoder
//! included).
use relab_core::component::{SslMethod, StageKind};
use relab_core::testing::{self, TinySpec};
use relab_plugin_imix::Imix;

const QUICK: &str = "{backbone: wrn10_2, epochs: 3, batch_size: 8, projection_dim: 16, augment: [flip], \
                     monitor_every: 1, knn_k: 3, encoder: best, eval_batch_size: 12}";

#[test]
fn parameters_round_trip() {
    testing::check_params::<Imix>();
}

#[test]
fn resumes_bit_identically() {
    let outcome = testing::check_resume(StageKind::Pretrain, 2, |ctx| {
        let data = testing::tiny_dataset(&TinySpec::default());
        let mut method: Imix = testing::build(QUICK).expect("the quick parameters are valid");
        Ok(method.pretrain(ctx, &data)?.feature_dim())
    });
    assert!(outcome.summary.contains_key("knn_best"), "the monitor ran: {:?}", outcome.summary);
    assert!(outcome.files.keys().any(|p| p.starts_with("best")), "the best encoder was kept");
}

#[test]
fn resumes_bit_identically_after_a_stop_mid_epoch() {
    testing::check_interrupt_resume(StageKind::Pretrain, 2, |ctx| {
        let data = testing::tiny_dataset(&TinySpec::default());
        let mut method: Imix = testing::build(QUICK).expect("the quick parameters are valid");
        Ok(method.pretrain(ctx, &data)?.feature_dim())
    });
}
