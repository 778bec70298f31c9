//! The plugin kit's checks and the propagator contract on small inputs worked by hand.
use relab_core::artifact::{Features, LabeledSet};
use relab_core::component::{Propagator, StageKind};
use relab_core::testing;
use relab_template_propagator::Centroid;

/// Four points on the plane: two near the x axis, two near the y axis; seeds 0 (class 0) and 2 (class 1).
fn plane() -> (Features, LabeledSet) {
    let features = Features::new(4, 2, vec![1.0, 0.0, 2.0, 0.5, 0.0, 1.0, 0.4, 3.0]);
    (features, LabeledSet::new(vec![0, 2], vec![0, 1]))
}

#[test]
fn parameters_round_trip() {
    testing::check_params::<Centroid>();
}

#[test]
fn scores_are_cosines_to_the_seed_centroids_and_seeds_keep_their_labels() {
    let (features, seeds) = plane();
    let outcome = testing::check_deterministic(StageKind::Propagate, |ctx| {
        let mut propagator: Centroid = testing::build("").expect("the defaults are valid");
        propagator.propagate(ctx, &features, &seeds, 3)
    });
    let p = outcome.value;
    assert_eq!(p.labels, [0, 0, 1, 1]);
    // Image 1 is (2, 0.5): cosine to (1, 0) is 2/√4.25, to (0, 1) 0.5/√4.25; class 2 has no seed.
    let row = &p.scores[3..6];
    assert!((row[0] - 2.0 / 4.25f32.sqrt()).abs() < 1e-6 && (row[1] - 0.5 / 4.25f32.sqrt()).abs() < 1e-6);
    assert_eq!(row[2], f32::NEG_INFINITY);
    assert_eq!(&p.scores[0..3], [2.0, -2.0, -2.0], "a seed scores its own class above any cosine");
}

#[test]
fn non_finite_features_are_an_error_not_class_zero() {
    let (mut features, seeds) = plane();
    features.values[5] = f32::NAN;
    let (_dir, mut ctx) = testing::scratch_context(StageKind::Propagate);
    let mut propagator: Centroid = testing::build("").unwrap();
    let err = propagator.propagate(&mut ctx, &features, &seeds, 2).unwrap_err().to_string();
    assert!(err.contains("training image 2 are not finite"), "{err}");
}
