//! iMix training does something: on a Fashion-MNIST prefix, a short run gives features whose kNN accuracy on the
//! test images is clearly above that of a randomly initialised encoder of the same architecture (random conv
//! features are already far above chance on Fashion-MNIST, so this is a real bar).

use std::path::Path;

use relab_core::burn::tensor::Device;
use relab_core::component::{MetricsSink, SslMethod, StageContext, StageKind};
use relab_core::data::Dataset;
use relab_core::experiment::DatasetConfig;
use relab_core::nn::BackboneConfig;
use relab_core::registry::PluginInfo;
use relab_plugin_imix::monitor::Monitor;
use relab_plugin_imix::network::NetSpec;
use relab_plugin_imix::{EncoderRecord, Imix, ImixEncoder, ImixParams};

const SEED: u64 = 1;

fn dataset() -> Dataset {
    assert!(
        Path::new("/usr/share/datasets/fashion-mnist").is_dir() || std::env::var_os("RELAB_DATA").is_some(),
        "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"
    );
    let cfg: DatasetConfig =
        serde_yaml::from_str("{ name: fashion-mnist, labels_per_class: 1, train_limit: 2000, test_limit: 500 }")
            .unwrap();
    relab_core::data::load(&cfg).unwrap()
}

fn params() -> ImixParams {
    serde_yaml::from_str(
        "
        backbone: wrn10_2
        epochs: 8
        batch_size: 128
        images_per_epoch: 1024
        schedule: { lr: 0.1 }
        augment: [{resized_crop: {size: 16, scale: [0.2, 1.0]}}, flip, color_jitter]
        monitor_every: 8
        ",
    )
    .unwrap()
}

#[test]
#[ignore = "over a minute on 2 cores; CI runs it with `cargo test --workspace -- --ignored`"]
fn a_short_imix_run_beats_a_random_encoder() {
    let data = dataset();
    let tmp = tempfile::tempdir().unwrap();
    let sink = MetricsSink::open(&tmp.path().join("metrics.jsonl")).unwrap();
    let mut ctx =
        StageContext::new(StageKind::Pretrain, Device::flex(), "cpu", SEED, tmp.path().to_path_buf(), sink, false);
    let p = params();
    let monitor = Monitor::new(1, p.knn_k, p.knn_sigma as f32, &data).unwrap();

    // The same architecture, freshly initialised, seen through the same evaluation path.
    let spec = NetSpec::new(BackboneConfig::new(p.backbone, 1, data.num_classes), None, p.projection_dim);
    let record = EncoderRecord {
        default_output: p.output,
        head_hidden: spec.head_hidden,
        head_output: spec.head_output,
        image_size: [16, 16],
        mean: data.mean.clone(),
        std: data.std.clone(),
        epoch: 0,
        knn_accuracy: None,
    };
    let random = ImixEncoder::new(spec.init(&ctx.device), spec, record, &ctx.device, 500);
    let random_accuracy = monitor.accuracy(&ctx, &random, &data).unwrap();

    let mut method = Imix::from_params(p).unwrap();
    method.pretrain(&mut ctx, &data).unwrap();
    let trained_accuracy = ctx.take_summary()["knn_accuracy"].as_f64().unwrap();
    eprintln!("kNN accuracy: random encoder {random_accuracy:.3}, after iMix {trained_accuracy:.3}");
    assert!(
        trained_accuracy > random_accuracy + 0.05,
        "iMix did not learn: kNN accuracy {trained_accuracy:.3} against {random_accuracy:.3} for a random encoder"
    );
}
