//! The `imagenet` SSL method end to end on two 28×28 grey images: pooled 2048-d features, the same from either
//! file format, and the same after the encoder is saved and read back.

mod support;

use std::path::{Path, PathBuf};

use relab_core::artifact::Features;
use relab_core::burn::tensor::Device;
use relab_core::component::{Encoder, MetricsSink, SslMethod, StageContext, StageKind};
use relab_core::data::{Dataset, ImageSet};
use relab_core::experiment::FeatureOutput;
use relab_core::nn::resnet::StemKind;
use relab_core::nn::{MODEL_FILE, WEIGHTS_FILE};
use relab_core::registry::PluginInfo;
use relab_plugin_imagenet_transfer::encoder::{ENCODER_FILE, EncoderRecord};
use relab_plugin_imagenet_transfer::{ImageNetParams, ImageNetTransfer, Normalise};
use support::{resnet50_state_dict, write_pth, write_safetensors};

/// Two different 28×28 grey images, as a Fashion-MNIST-shaped dataset.
fn two_images() -> Dataset {
    let pixels = (0..2 * 28 * 28).map(|i| ((i * 37 + i / 784 * 91) % 256) as u8).collect();
    let set = ImageSet { channels: 1, height: 28, width: 28, pixels, labels: Some(vec![0, 1]) };
    Dataset {
        name: "fashion-mnist".into(),
        train: set.clone(),
        test: set,
        num_classes: 10,
        class_names: (0..10).map(|c| c.to_string()).collect(),
        mean: vec![0.286],
        std: vec![0.353],
    }
}

fn context(dir: &Path, stage: StageKind) -> StageContext {
    let metrics = MetricsSink::open(&dir.join("metrics.jsonl")).unwrap();
    StageContext::new(stage, Device::flex(), "cpu", 1, dir.join(stage.name()), metrics, false)
}

fn method(weights: PathBuf, size: usize, stem: StemKind) -> ImageNetTransfer {
    let params = ImageNetParams { weights: Some(weights), size, stem, ..ImageNetParams::default() };
    ImageNetTransfer::from_params(params).unwrap()
}

/// The encoder `method` makes from `data`, and its features of `data`'s training images.
fn pretrain_and_extract(method: &mut ImageNetTransfer, data: &Dataset, dir: &Path) -> (Box<dyn Encoder>, Features) {
    let encoder = method.pretrain(&mut context(dir, StageKind::Pretrain), data).unwrap();
    let features =
        encoder.extract(&mut context(dir, StageKind::Features), &data.train, FeatureOutput::Default).unwrap();
    (encoder, features)
}

#[test]
fn features_are_finite_2048_d_and_the_same_from_pth_and_safetensors() {
    let dir = tempfile::tempdir().unwrap();
    let dict = resnet50_state_dict(11);
    let (pth, safetensors) = (dir.path().join("resnet50.pth"), dir.path().join("resnet50.safetensors"));
    write_pth(&pth, &dict);
    write_safetensors(&safetensors, &dict);
    let data = two_images();

    let (encoder, a) = pretrain_and_extract(&mut method(pth, 64, StemKind::ImageNet), &data, dir.path());
    let (_, b) = pretrain_and_extract(&mut method(safetensors, 64, StemKind::ImageNet), &data, dir.path());
    assert_eq!(encoder.feature_dim(), 2048);
    assert_eq!((a.rows, a.dim), (2, 2048));
    assert!(a.values.iter().all(|v| v.is_finite()), "non-finite features");
    assert!(a.values.iter().all(|&v| v >= 0.0), "pooled after a ReLU");
    assert_ne!(a.row(0), a.row(1), "two different images");
    assert!(a.values.iter().zip(&b.values).all(|(x, y)| x.to_bits() == y.to_bits()), "the formats disagree");

    // Same features through the pooled output by name; the head does not exist.
    let pooled = encoder.extract(&mut context(dir.path(), StageKind::Features), &data.train, FeatureOutput::Pooled);
    assert_eq!(pooled.unwrap().values, a.values);
    let err = encoder.extract(&mut context(dir.path(), StageKind::Features), &data.train, FeatureOutput::Head);
    let err = err.unwrap_err().to_string();
    assert!(err.contains("one output, `pooled`") && err.contains("stages.features.output"), "{err}");
}

#[test]
fn a_saved_encoder_reads_back_to_the_same_features() {
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("resnet50.safetensors");
    write_safetensors(&weights, &resnet50_state_dict(12));
    let data = two_images();
    // The original ReLaB's stem (stride 1, no max-pool) is the one the files cannot tell apart by themselves.
    let mut relab = method(weights.clone(), 32, StemKind::ImageNetRelab);
    let (encoder, features) = pretrain_and_extract(&mut relab, &data, dir.path());
    let saved = dir.path().join("saved");
    encoder.save(&saved).unwrap();
    for file in [WEIGHTS_FILE, MODEL_FILE, ENCODER_FILE] {
        assert!(saved.join(file).is_file(), "{file}");
    }
    let record: EncoderRecord =
        serde_json::from_str(&std::fs::read_to_string(saved.join(ENCODER_FILE)).unwrap()).unwrap();
    assert_eq!((record.stem, record.preprocess.size, record.batch_size), (StemKind::ImageNetRelab, 32, 32));
    assert_eq!((record.preprocess.normalise, record.preprocess.mean), (Normalise::Dataset, [0.286; 3]));
    assert_eq!(record.weights, weights);

    let loaded = relab.load_encoder(&mut context(dir.path(), StageKind::Pretrain), &saved).unwrap();
    let again = loaded.extract(&mut context(dir.path(), StageKind::Features), &data.train, FeatureOutput::Default);
    assert_eq!(again.unwrap().values, features.values);

    // The stem matters: torchvision's gives other features from the same weights.
    let (_, torchvision) = pretrain_and_extract(&mut method(weights, 32, StemKind::ImageNet), &data, dir.path());
    assert_ne!(torchvision.values, features.values);

    // A folder whose weights do not fit says which tensors.
    std::fs::write(saved.join(MODEL_FILE), r#"{"kind": "resnet50_imagenet", "in_channels": 3, "num_classes": 7}"#)
        .unwrap();
    let err = relab.load_encoder(&mut context(dir.path(), StageKind::Pretrain), &saved).err().unwrap().to_string();
    assert!(err.contains(WEIGHTS_FILE) && err.contains("linear.weight [2048, 10]"), "{err}");
}
