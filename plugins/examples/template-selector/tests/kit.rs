//! The plugin kit's checks and the selector contract on a small input worked by hand.
use relab_core::artifact::{LabeledSet, Propagation};
use relab_core::component::{Selector, SelectorInput, StageKind};
use relab_core::testing::{self, TinySpec};
use relab_template_selector::MostConfident;

#[test]
fn parameters_round_trip() {
    testing::check_params::<MostConfident>();
}

#[test]
fn keeps_the_seeds_then_the_highest_scores_of_each_class() {
    let data = testing::tiny_dataset(&TinySpec { classes: 2, train_per_class: 3, ..TinySpec::default() });
    // Six images, two classes: scores chosen so that the order within each class is known.
    let scores = vec![0.9, 0.1, 0.2, 0.8, 0.7, 0.3, 0.4, 0.6, 0.95, 0.05, 0.1, 0.9];
    let propagation = Propagation::from_scores(2, scores);
    assert_eq!(propagation.labels, [0, 1, 0, 1, 0, 1]);
    let seeds = LabeledSet::new(vec![2], vec![1]);
    let outcome = testing::check_deterministic(StageKind::Select, |ctx| {
        let mut selector: MostConfident = testing::build("per_class: 2").expect("valid parameters");
        selector.select(ctx, SelectorInput::new(&data, &propagation, &seeds))
    });
    // Class 0: images 4 (0.95) and 0 (0.9); class 1: the seed 2 first (with its true label), then 5 (0.9).
    assert_eq!(outcome.value, LabeledSet::new(vec![4, 0, 2, 5], vec![0, 0, 1, 1]));
}
