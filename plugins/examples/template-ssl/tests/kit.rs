//! The plugin kit's checks, the encoder's save/load round trip, and that its features separate the tiny classes.
use relab_core::component::{FeatureOutput, SslMethod, StageKind};
use relab_core::testing::{self, TinySpec};
use relab_template_ssl::PcaFeatures;

const QUICK: &str = "{components: 4, fit_images: 20}";

#[test]
fn parameters_round_trip() {
    testing::check_params::<PcaFeatures>();
}

#[test]
fn features_are_seeded_saved_exactly_and_separate_the_classes() {
    let data = testing::tiny_dataset(&TinySpec::default());
    let outcome = testing::check_deterministic(StageKind::Pretrain, |ctx| {
        let mut method: PcaFeatures = testing::build(QUICK).expect("valid parameters");
        let encoder = method.pretrain(ctx, &data)?;
        let features = encoder.extract(ctx, &data.train, FeatureOutput::Default)?;
        encoder.save(&ctx.dir().join("encoder"))?;
        let loaded = method.load_encoder(ctx, &ctx.dir().join("encoder"))?;
        assert_eq!(
            loaded.extract(ctx, &data.train, FeatureOutput::Default)?,
            features,
            "the saved encoder is the same"
        );
        assert!(encoder.extract(ctx, &data.train, FeatureOutput::Head).is_err());
        Ok(features)
    });
    let f = outcome.value;
    assert_eq!((f.rows, f.dim), (24, 4));
    // Nearest neighbour (excluding itself) of every training image is of its own class.
    let truth = data.train.labels.as_ref().unwrap();
    let distance = |a: usize, b: usize| f.row(a).iter().zip(f.row(b)).map(|(x, y)| (x - y) * (x - y)).sum::<f32>();
    for i in 0..f.rows {
        let nearest =
            (0..f.rows).filter(|&j| j != i).min_by(|&a, &b| distance(i, a).total_cmp(&distance(i, b))).unwrap();
        assert_eq!(truth[nearest], truth[i], "image {i}");
    }
}
