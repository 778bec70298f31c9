//! The plugin kit's checks on `fixmatch`: parameters, same seed same bits, kill-and-resume bit-identical (EMA,
//! distribution alignment and CTAugment's rates included), and that it learns the tiny dataset.
use relab_core::artifact::{LabeledSet, TestAccuracy};
use relab_core::component::{LearnerInput, SemiSupervisedLearner, StageContext, StageKind};
use relab_core::testing::{self, TinySpec};
use relab_plugin_fixmatch::FixMatch;

/// A few steps on 8×8 images: 2 labelled per class, B = 3, μ = 2.
const QUICK: &str = "{backbone: wrn10_2, epochs: 3, steps_per_epoch: 2, labeled_batch_size: 3, mu: 2, \
                     threshold: 0.5, ema_decay: 0.9, distribution_alignment: true, eval_batch_size: 12}";

fn train_with(
    yaml: &str,
    spec: &TinySpec,
    per_class: usize,
) -> impl Fn(&mut StageContext) -> relab_core::Result<Option<TestAccuracy>> {
    let data = testing::tiny_dataset(spec);
    let n = spec.classes * per_class;
    // The tiny set cycles through the classes: images 0..n hold per_class of each.
    let labeled = LabeledSet::new((0..n).collect(), (0..n).map(|i| (i % spec.classes) as u32).collect());
    let yaml = yaml.to_string();
    move |ctx| {
        let mut learner: FixMatch = testing::build(&yaml).expect("the test's parameters are valid");
        Ok(learner.train(ctx, LearnerInput::new(&data, &labeled))?.test_accuracy)
    }
}

#[test]
fn parameters_round_trip() {
    testing::check_params::<FixMatch>();
}

#[test]
fn same_seed_same_bits() {
    let outcome = testing::check_deterministic(StageKind::Train, train_with(QUICK, &TinySpec::default(), 2));
    assert_eq!(outcome.metrics.len(), 3, "one record per epoch");
    let first = &outcome.metrics[0];
    for key in ["loss_x", "loss_u", "mask", "pseudo_label_accuracy", "test_accuracy"] {
        assert!(first.get(key).is_some_and(|v| v.is_number()), "{key} missing from {first}");
    }
    // CTAugment's rates, one per op with parameters, start at 1 and move with the probes.
    let last = outcome.metrics.last().unwrap().as_object().unwrap();
    let rates: Vec<f64> =
        last.iter().filter(|(k, _)| k.starts_with("cta/")).map(|(_, v)| v.as_f64().unwrap()).collect();
    assert_eq!(rates.len(), 18, "{last:?}");
    assert!(rates.iter().all(|&r| r > 0.0 && r <= 1.0) && rates.iter().any(|&r| r < 1.0), "{rates:?}");
}

#[test]
fn resumes_bit_identically() {
    testing::check_resume(StageKind::Train, 2, train_with(QUICK, &TinySpec::default(), 2));
}

/// Stopped after epoch 2's first step: the epoch's pseudo-label tally and CTAugment's rates carry over.
#[test]
fn resumes_bit_identically_after_a_stop_mid_epoch() {
    testing::check_interrupt_resume(StageKind::Train, 3, train_with(QUICK, &TinySpec::default(), 2));
}

/// 3 classes, 2 labels each, 60 unlabelled images a class: the EMA model must beat chance (1/3) clearly.
#[test]
fn learns_the_tiny_dataset() {
    let spec = TinySpec { train_per_class: 20, test_per_class: 10, ..TinySpec::default() };
    let yaml = "{backbone: wrn10_2, epochs: 4, steps_per_epoch: 10, labeled_batch_size: 6, mu: 3, lr: 0.05, \
                threshold: 0.8, ema_decay: 0.7, eval_batch_size: 30}";
    let (dir, mut ctx) = testing::scratch_context(StageKind::Train);
    let accuracy = train_with(yaml, &spec, 2)(&mut ctx).unwrap().expect("the test split has labels");
    assert!(accuracy.last > 0.6, "chance is 1/3: {accuracy:?}");
    // The unlabelled term takes part: by the last epoch most pseudo-labels pass τ, and they are mostly right.
    let metrics = std::fs::read_to_string(dir.path().join("metrics.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(metrics.lines().last().unwrap()).unwrap();
    assert!(last["mask"].as_f64().unwrap() > 0.5, "{last}");
    assert!(last["pseudo_label_accuracy"].as_f64().unwrap() > 0.6, "{last}");
}

#[test]
fn randaugment_and_weak_strong_views_run_with_the_same_bits_every_time() {
    for strong in ["randaugment", "weak"] {
        let yaml = QUICK.replace("threshold: 0.5", &format!("threshold: 0.5, strong: {strong}"));
        let outcome = testing::check_deterministic(StageKind::Train, train_with(&yaml, &TinySpec::default(), 2));
        let last = outcome.metrics.last().unwrap().as_object().unwrap();
        assert!(!last.keys().any(|k| k.starts_with("cta/")), "{strong}: no CTAugment, no rates: {last:?}");
        assert!(last["loss_u"].is_number(), "{last:?}");
    }
}
