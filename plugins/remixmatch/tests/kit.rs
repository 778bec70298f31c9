//! The plugin kit's checks on `remixmatch`: parameters, same seed same bits while learning the tiny dataset, and
//! kill-and-resume bit-identical (the EMA weights, the CTAugment rates and the p_model buffer included).
use relab_core::artifact::{LabeledSet, TestAccuracy};
use relab_core::component::{LearnerInput, SemiSupervisedLearner, StageContext, StageKind};
use relab_core::testing::{self, TinySpec};
use relab_plugin_remixmatch::RemixMatch;
use serde_json::Value;

const QUICK: &str = "{backbone: wrn10_2, epochs: 4, steps_per_epoch: 4, batch_size: 8, strong_views: 2, \
                     schedule: {lr: 0.01}, ema: 0.7, warmup_kimg: 0.0625, eval_batch_size: 12}";

fn train(ctx: &mut StageContext) -> relab_core::Result<Option<TestAccuracy>> {
    let data = testing::tiny_dataset(&TinySpec { train_per_class: 12, ..TinySpec::default() });
    let labeled = LabeledSet::new((0..6).collect(), (0..6).map(|i| (i % 3) as u32).collect());
    let mut learner: RemixMatch = testing::build(QUICK).expect("the quick parameters are valid");
    Ok(learner.train(ctx, LearnerInput::new(&data, &labeled))?.test_accuracy)
}

#[test]
fn parameters_round_trip() {
    testing::check_params::<RemixMatch>();
}

#[test]
fn learns_the_tiny_dataset_with_the_same_bits_every_time() {
    let outcome = testing::check_deterministic(StageKind::Train, train);
    let accuracy = outcome.value.expect("the test split has labels");
    assert!(accuracy.last > 0.5, "3 classes, chance is 1/3: {accuracy:?}");
    assert_eq!(outcome.metrics.len(), 4, "one record per epoch");
    let last = &outcome.metrics[3];
    for key in
        ["loss_x", "loss_u", "loss_kl", "loss_rot", "ramp", "probe_accuracy", "guess_accuracy", "guess_confident"]
    {
        assert!(last[key].is_number(), "{key} is logged: {last}");
    }
    // 32 steps of 8 labelled samples = 256 samples: the ramp (over 64) is 1 from step 8 on.
    assert_eq!(last["ramp"], Value::from(1.0));
    let rates: Vec<f64> = last
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.starts_with("cta/"))
        .map(|(_, v)| v.as_f64().unwrap())
        .collect();
    assert_eq!(rates.len(), 18, "one rate per CTAugment op but identity, which has no parameter: {last}");
    assert!(rates.iter().any(|&r| r < 1.0), "the probes moved the rates away from 1");
}

#[test]
fn resumes_bit_identically() {
    let outcome = testing::check_resume(StageKind::Train, 2, train);
    let state = outcome.files.iter().find(|(p, _)| p.ends_with("state.json")).expect("a checkpoint state").1;
    let state: Value = serde_json::from_slice(state).unwrap();
    // The stage RNG and the loop's record, whose `state` is the recipe's.
    let recipe = &state["state"]["state"];
    assert_eq!(recipe["alignment"]["p_model"].as_array().unwrap().len(), 128, "the p_model buffer is checkpointed");
    assert!(recipe["cta"].is_object(), "the CTAugment rates are checkpointed: {recipe}");
}

/// Stopped after epoch 2's second step: p_model, CTAugment's rates and the EMA carry over mid-epoch.
#[test]
fn resumes_bit_identically_after_a_stop_mid_epoch() {
    testing::check_interrupt_resume(StageKind::Train, 6, train);
}
