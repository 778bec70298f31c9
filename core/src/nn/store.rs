//! A backbone on disk: `weights.safetensors` (every parameter and batch-norm running statistic, written with
//! burn-store) next to `model.json` (the [`BackboneConfig`] that rebuilds the module). Both files are written
//! atomically, weights first, so a folder with a `model.json` has complete weights.
//!
//! Tensor names are the module paths without enum variant names, e.g. `layer1.0.conv1.weight` or
//! `unit2.3.bn1.running_var`.
use std::path::Path;

use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::Device;

use super::backbone::{Backbone, BackboneConfig};
use crate::formats::atomic::{write_bytes, write_json};
use crate::{Error, Result};

/// File name of the weights inside a run folder.
pub const WEIGHTS_FILE: &str = "weights.safetensors";
/// File name of the architecture description inside a run folder.
pub const MODEL_FILE: &str = "model.json";

/// Writes `backbone`'s weights and `config` into `dir` (created if needed). `config` must describe `backbone`.
pub fn save_backbone(backbone: &Backbone, config: &BackboneConfig, dir: &Path) -> Result<()> {
    let weights = dir.join(WEIGHTS_FILE);
    if backbone.kind() != config.kind || backbone.num_classes() != config.num_classes {
        return Err(Error::format(
            &weights,
            format!(
                "the backbone ({}, {} classes) does not match its description, {}",
                backbone.kind(),
                backbone.num_classes(),
                describe(config)
            ),
        ));
    }
    let mut store =
        SafetensorsStore::from_bytes(None).skip_enum_variants(true).metadata("backbone", config.kind.name());
    backbone
        .save_into(&mut store)
        .map_err(|e| Error::format(&weights, format!("cannot serialise the weights: {e}")))?;
    let bytes = store.get_bytes().map_err(|e| Error::format(&weights, format!("cannot serialise the weights: {e}")))?;
    write_bytes(&weights, &bytes)?;
    write_json(&dir.join(MODEL_FILE), config)
}

/// A copy of `source` (a backbone of `config`) built on `device`, every float tensor (running statistics
/// included) taken over as it is: how a learner starts from an encoder's network without a file in between.
/// `Err` says which tensors did not fit.
pub fn copy_backbone(
    source: &Backbone,
    config: &BackboneConfig,
    device: &Device,
) -> std::result::Result<Backbone, String> {
    let mut copy = super::seeded::to_overwrite(device, || config.init(device));
    let applied = copy.apply(source.collect(None, None, true), None, None, true);
    let missing: Vec<&str> = applied.missing.iter().map(|(path, _)| path.as_str()).collect();
    if !applied.errors.is_empty() || !missing.is_empty() || !applied.unused.is_empty() {
        return Err(format!(
            "the network does not fit a {}: errors [{}], missing [{}], not in the network [{}]",
            config.kind,
            applied.errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
            missing.join(", "),
            applied.unused.join(", ")
        ));
    }
    Ok(copy)
}

/// Rebuilds the backbone saved by [`save_backbone`] in `dir`, on `device`. Every tensor of the file must match a
/// parameter of the described network in name and shape, and every parameter must be in the file.
pub fn load_backbone(dir: &Path, device: &Device) -> Result<(Backbone, BackboneConfig)> {
    let model = dir.join(MODEL_FILE);
    let text = std::fs::read_to_string(&model).map_err(|e| Error::io(&model, e))?;
    let config: BackboneConfig = serde_json::from_str(&text).map_err(|e| {
        Error::format(
            &model,
            format!("not a backbone description ({{\"kind\", \"in_channels\", \"num_classes\"}}): {e}"),
        )
    })?;
    config.check().map_err(|e| Error::format(&model, e))?;

    let weights = dir.join(WEIGHTS_FILE);
    let bytes = std::fs::read(&weights).map_err(|e| Error::io(&weights, e))?;
    let mut backbone = super::seeded::to_overwrite(device, || config.init(device));
    // Partial loads and shape errors are reported here, in a few lines, rather than by burn-store.
    let mut store =
        SafetensorsStore::from_bytes(Some(bytes)).skip_enum_variants(true).allow_partial(true).validate(false);
    let applied = backbone
        .load_from(&mut store)
        .map_err(|e| Error::format(&weights, format!("not a readable safetensors file: {e}")))?;
    let mut problems: Vec<String> = applied.errors.iter().take(3).map(|e| e.to_string()).collect();
    let missing: Vec<&str> = applied.missing.iter().map(|(path, _)| path.as_str()).collect();
    for (what, paths) in [
        ("missing from the file", missing),
        ("not in the network", applied.unused.iter().map(String::as_str).collect()),
    ] {
        if !paths.is_empty() {
            let shown = paths.iter().take(3).copied().collect::<Vec<_>>().join(", ");
            let more = if paths.len() > 3 { format!(" and {} more", paths.len() - 3) } else { String::new() };
            problems.push(format!("{} tensors {what} ({shown}{more})", paths.len()));
        }
    }
    if !problems.is_empty() {
        return Err(Error::format(
            &weights,
            format!("these weights do not fit {} (from {MODEL_FILE}): {}", describe(&config), problems.join("; ")),
        ));
    }
    Ok((backbone, config))
}

/// `resnet18 (3 input channels, 10 classes)`.
fn describe(config: &BackboneConfig) -> String {
    format!("{} ({} input channels, {} classes)", config.kind, config.in_channels, config.num_classes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::backbone::BackboneKind;
    use burn::module::Module;
    use burn::tensor::{Distribution, Tensor};

    /// A backbone whose batch-norm running statistics have moved away from (0, 1), on the plain device.
    fn trained_a_little(config: &BackboneConfig) -> Backbone {
        let device = Device::flex().autodiff();
        let net = config.init(&device);
        let x = Tensor::<4>::random([2, config.in_channels, 28, 28], Distribution::Normal(0.5, 2.0), &device);
        let _ = net.forward(x);
        net.valid()
    }

    #[test]
    fn round_trip_gives_identical_outputs() {
        let device = Device::flex();
        for config in
            [BackboneConfig::new(BackboneKind::Wrn28_2, 3, 10), BackboneConfig::new(BackboneKind::ResNet18, 1, 4)]
        {
            let dir = tempfile::tempdir().unwrap();
            let net = trained_a_little(&config);
            save_backbone(&net, &config, dir.path()).unwrap();
            let mut files: Vec<String> =
                std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
            files.sort();
            assert_eq!(files, vec![MODEL_FILE, WEIGHTS_FILE]);

            let (loaded, loaded_config) = load_backbone(dir.path(), &device).unwrap();
            assert_eq!(loaded_config, config);
            assert_eq!(loaded.kind(), config.kind);

            let x = Tensor::<4>::random([2, config.in_channels, 32, 32], Distribution::Normal(0.0, 1.0), &device);
            let a = net.forward(x.clone());
            let b = loaded.forward(x);
            a.features.into_data().assert_eq(&b.features.into_data(), true);
            a.logits.into_data().assert_eq(&b.logits.into_data(), true);
        }
    }

    #[test]
    fn loaded_backbone_trains_on_an_autodiff_device() {
        let dir = tempfile::tempdir().unwrap();
        let config = BackboneConfig::new(BackboneKind::Wrn28_2, 1, 3);
        save_backbone(&config.init(&Device::flex()), &config, dir.path()).unwrap();
        let device = Device::flex().autodiff();
        let (net, _) = load_backbone(dir.path(), &device).unwrap();
        let x = Tensor::<4>::random([2, 1, 28, 28], Distribution::Normal(0.0, 1.0), &device);
        let grads = net.forward(x).logits.sum().backward();
        let Backbone::Wrn28_2(wrn) = &net else { panic!("a WRN was saved") };
        assert!(wrn.init_conv.weight.val().grad(&grads).is_some());
        assert!(wrn.output.bias.as_ref().unwrap().val().grad(&grads).is_some());
    }

    #[test]
    fn saved_tensors_are_named_without_enum_variants() {
        let dir = tempfile::tempdir().unwrap();
        let config = BackboneConfig::new(BackboneKind::ResNet18, 3, 10);
        save_backbone(&config.init(&Device::flex()), &config, dir.path()).unwrap();
        let bytes = std::fs::read(dir.path().join(WEIGHTS_FILE)).unwrap();
        let mut store = SafetensorsStore::from_bytes(Some(bytes));
        let keys = burn::store::ModuleStore::keys(&mut store).unwrap();
        for key in ["conv1.weight", "bn1.running_var", "layer2.0.shortcut.conv.weight", "linear.bias"] {
            assert!(keys.iter().any(|k| k == key), "{key} not in {keys:?}");
        }
        // 62 parameters + 2 running statistics for each of the 20 batch norms.
        assert_eq!(keys.len(), 62 + 40);
        let json = std::fs::read_to_string(dir.path().join(MODEL_FILE)).unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&json).unwrap(),
            serde_json::json!({"kind": "resnet18", "in_channels": 3, "num_classes": 10})
        );
    }

    #[test]
    fn mismatches_are_reported() {
        let device = Device::flex();
        let dir = tempfile::tempdir().unwrap();
        let err = load_backbone(dir.path(), &device).unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err}");

        let config = BackboneConfig::new(BackboneKind::Wrn28_2, 3, 10);
        let net = config.init(&device);
        let other = BackboneConfig::new(BackboneKind::Wrn28_2, 3, 5);
        assert!(matches!(save_backbone(&net, &other, dir.path()), Err(Error::Format { .. })));
        save_backbone(&net, &config, dir.path()).unwrap();

        // A description that does not fit the weights: other head size, other network, other channel count.
        for (wrong, expected) in [
            (other, "Shape mismatch for 'output.weight'"),
            (
                BackboneConfig::new(BackboneKind::ResNet18, 3, 10),
                "102 tensors missing from the file (bn1.beta, bn1.gamma",
            ),
            (BackboneConfig::new(BackboneKind::Wrn28_2, 1, 10), "Shape mismatch for 'init_conv.weight'"),
        ] {
            write_json(&dir.path().join(MODEL_FILE), &wrong).unwrap();
            let err = load_backbone(dir.path(), &device).unwrap_err();
            assert!(matches!(err, Error::Format { .. }), "{wrong}: {err}");
            assert!(err.to_string().contains(WEIGHTS_FILE), "{err}");
            assert!(err.to_string().contains(expected), "{err}");
        }

        write_json(&dir.path().join(MODEL_FILE), &config).unwrap();
        std::fs::write(dir.path().join(WEIGHTS_FILE), b"not safetensors").unwrap();
        let err = load_backbone(dir.path(), &device).unwrap_err();
        assert!(err.to_string().contains("not a readable safetensors file"), "{err}");

        std::fs::write(dir.path().join(MODEL_FILE), r#"{"kind": "vgg16", "in_channels": 3, "num_classes": 10}"#)
            .unwrap();
        let err = load_backbone(dir.path(), &device).unwrap_err();
        assert!(matches!(err, Error::Format { .. }) && err.to_string().contains(MODEL_FILE), "{err}");
        std::fs::write(dir.path().join(MODEL_FILE), r#"{"kind": "wrn28_2", "in_channels": 4, "num_classes": 10}"#)
            .unwrap();
        let err = load_backbone(dir.path(), &device).unwrap_err();
        assert!(err.to_string().contains("in_channels"), "{err}");
    }
}
