//! The weights a learner starts from (`init`): the fresh network, the pretrain stage's encoder, or a backbone saved
//! in a folder. The original loads RotNet weights after deleting the head (`output.*`, loaded with strict=False), so
//! the head here always stays the freshly initialised one; everything else must match exactly. Shared by every
//! learner so that a supervised baseline and a semi-supervised run can start from the same weights.
use std::path::PathBuf;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::component::Encoder;
use crate::nn::{Backbone, BackboneConfig, MODEL_FILE, WEIGHTS_FILE, copy_backbone, load_backbone};
use crate::{Error, Result};

/// The weights training starts from. In YAML: `none`, `pretrain` (the pretrain stage's encoder), or a folder
/// holding `model.json` and `weights.safetensors` (any relab stage that saved a backbone), relative to the working
/// directory. The classifier head is always re-initialised, as the original deletes `output.*` before loading.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(from = "Option<String>", into = "String")]
pub enum Init {
    #[default]
    None,
    Pretrain,
    Folder(PathBuf),
}

impl From<Option<String>> for Init {
    fn from(text: Option<String>) -> Self {
        match text.as_deref() {
            None | Some("none") => Init::None,
            Some("pretrain") => Init::Pretrain,
            Some(path) => Init::Folder(PathBuf::from(path)),
        }
    }
}

impl From<Init> for String {
    fn from(init: Init) -> Self {
        match init {
            Init::None => "none".into(),
            Init::Pretrain => "pretrain".into(),
            Init::Folder(path) => path.to_string_lossy().into_owned(),
        }
    }
}

impl Init {
    /// A folder must hold a saved backbone; the message is for the `init` key of a plugin's parameters.
    pub fn validate(&self) -> std::result::Result<(), String> {
        match self {
            Init::Folder(dir) if !dir.join(MODEL_FILE).is_file() => Err(format!(
                "{} holds no {MODEL_FILE}: give `none`, `pretrain`, or a folder written by a relab stage \
                 ({MODEL_FILE} + {WEIGHTS_FILE}; relative paths start at the working directory)",
                dir.display()
            )),
            _ => Ok(()),
        }
    }
}

/// `model` (built from `config` on `device`) with the weights `init` names; the pretrain stage's encoder hands
/// over its network ([`Encoder::backbone`]).
pub fn initial_weights(
    init: &Init,
    encoder: Option<&dyn Encoder>,
    model: Backbone,
    config: &BackboneConfig,
    device: &Device,
) -> Result<Backbone> {
    match init {
        Init::None => Ok(model),
        Init::Pretrain => {
            let encoder = encoder.ok_or_else(|| {
                Error::stage(
                    "train",
                    "init: pretrain, but the experiment has no stages.pretrain to take an encoder from; add one, \
                     or set init to none or a weights folder",
                )
            })?;
            let (source, source_config) = encoder.backbone().ok_or_else(|| {
                Error::stage(
                    "train",
                    "init: pretrain needs an encoder whose network is one of relab's backbones, and the pretrain \
                     stage's encoder is another network; set init to none or a weights folder",
                )
            })?;
            let copy = copy_backbone(source, source_config, device)
                .map_err(|m| Error::stage("train", format!("init: pretrain: {m}")))?;
            adopt((copy, source_config.clone()), model, config, "the pretrain stage's encoder")
        }
        Init::Folder(dir) => adopt(load_backbone(dir, device)?, model, config, &dir.display().to_string()),
    }
}

/// `source`'s weights with `model`'s head, once the architectures agree.
fn adopt(
    (source, source_config): (Backbone, BackboneConfig),
    model: Backbone,
    config: &BackboneConfig,
    whence: &str,
) -> Result<Backbone> {
    if source_config.kind != config.kind || source_config.in_channels != config.in_channels {
        return Err(Error::stage(
            "train",
            format!(
                "init: {whence} holds a {} for {}-channel images, but this learner trains a {} on {}-channel \
                 images; set `backbone: {}` (and the dataset's `channels`) to match, or init: none",
                source_config.kind, source_config.in_channels, config.kind, config.in_channels, source_config.kind
            ),
        ));
    }
    Ok(match (source, model) {
        (Backbone::Wrn28_2(mut s), Backbone::Wrn28_2(m)) => {
            s.output = m.output;
            Backbone::Wrn28_2(s)
        }
        (Backbone::Wrn16_2(mut s), Backbone::Wrn16_2(m)) => {
            s.output = m.output;
            Backbone::Wrn16_2(s)
        }
        (Backbone::Wrn10_2(mut s), Backbone::Wrn10_2(m)) => {
            s.output = m.output;
            Backbone::Wrn10_2(s)
        }
        (Backbone::ResNet18(mut s), Backbone::ResNet18(m)) => {
            s.linear = m.linear;
            Backbone::ResNet18(s)
        }
        (Backbone::ResNet50(mut s), Backbone::ResNet50(m)) => {
            s.linear = m.linear;
            Backbone::ResNet50(s)
        }
        (Backbone::ResNet50ImageNet(mut s), Backbone::ResNet50ImageNet(m)) => {
            s.linear = m.linear;
            Backbone::ResNet50ImageNet(s)
        }
        (s, m) => unreachable!("kinds were checked: {} vs {}", s.kind(), m.kind()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact::Features;
    use crate::component::{FeatureOutput, StageContext};
    use crate::data::ImageSet;
    use crate::nn::{BackboneKind, save_backbone};
    use crate::train::leaf_bytes;
    use std::path::Path;

    /// A rotation-net-like source: the same network with a 4-way head.
    fn saved(kind: BackboneKind, channels: usize, dir: &Path) {
        let config = BackboneConfig::new(kind, channels, 4);
        save_backbone(&config.init(&Device::flex()), &config, dir).unwrap();
    }

    #[test]
    fn yaml_spellings_and_folder_checks() {
        let parse = |s: &str| serde_yaml::from_str::<Init>(s).unwrap();
        assert_eq!(parse("~"), Init::None);
        assert_eq!(parse("none"), Init::None);
        assert_eq!(parse("pretrain"), Init::Pretrain);
        assert_eq!(parse("runs/x/train"), Init::Folder("runs/x/train".into()));
        assert_eq!(serde_yaml::to_string(&Init::Pretrain).unwrap().trim(), "pretrain");
        let dir = tempfile::tempdir().unwrap();
        let err = Init::Folder(dir.path().into()).validate().unwrap_err();
        assert!(err.contains("holds no model.json"), "{err}");
        saved(BackboneKind::Wrn10_2, 1, dir.path());
        assert_eq!(Init::Folder(dir.path().into()).validate(), Ok(()));
        assert_eq!(Init::Pretrain.validate(), Ok(()));
    }

    #[test]
    fn a_saved_backbone_gives_everything_but_the_head() {
        let device = Device::flex().autodiff();
        let dir = tempfile::tempdir().unwrap();
        saved(BackboneKind::Wrn10_2, 1, dir.path());
        let source = leaf_bytes(&load_backbone(dir.path(), &device).unwrap().0);
        let config = BackboneConfig::new(BackboneKind::Wrn10_2, 1, 3);
        let fresh = config.init(&device);
        let head_before = leaf_bytes(&fresh).into_iter().filter(|(p, _)| p.contains("output")).collect::<Vec<_>>();
        let init = Init::Folder(dir.path().to_path_buf());
        let model = initial_weights(&init, None, fresh, &config, &device).unwrap();
        let got = leaf_bytes(&model);
        let (head, body): (Vec<_>, Vec<_>) = got.into_iter().partition(|(p, _)| p.contains("output"));
        assert_eq!(head, head_before, "the head stays the fresh one");
        let source_body: Vec<_> = source.into_iter().filter(|(p, _)| !p.contains("output")).collect();
        assert_eq!(body, source_body);
        assert!(body.len() > 20);
        let Backbone::Wrn10_2(wrn) = &model else { panic!("kind changed") };
        assert!(wrn.unit1[0].conv1.weight.val().is_require_grad(), "loaded weights train");
    }

    #[test]
    fn another_architecture_is_refused_by_name() {
        let device = Device::flex().autodiff();
        let dir = tempfile::tempdir().unwrap();
        saved(BackboneKind::Wrn10_2, 3, dir.path());
        let config = BackboneConfig::new(BackboneKind::Wrn10_2, 1, 3);
        let init = Init::Folder(dir.path().to_path_buf());
        let err = initial_weights(&init, None, config.init(&device), &config, &device).unwrap_err();
        assert!(
            err.to_string()
                .contains("holds a wrn10_2 for 3-channel images, but this learner trains a wrn10_2 on 1-channel"),
            "{err}"
        );
        let config = BackboneConfig::new(BackboneKind::Wrn28_2, 3, 3);
        let err = initial_weights(&init, None, config.init(&device), &config, &device).unwrap_err();
        assert!(err.to_string().contains("set `backbone: wrn10_2`"), "{err}");
    }

    /// An encoder whose network is a backbone, as every network-based SSL method's is, or something else.
    struct TestEncoder(Option<(Backbone, BackboneConfig)>);

    impl TestEncoder {
        fn of(kind: BackboneKind) -> Self {
            let config = BackboneConfig::new(kind, 1, 4);
            TestEncoder(Some((config.init(&Device::flex()), config)))
        }
    }

    impl Encoder for TestEncoder {
        fn feature_dim(&self) -> usize {
            128
        }
        fn extract(&self, _: &mut StageContext, _: &ImageSet, _: FeatureOutput) -> Result<Features> {
            Err(Error::stage("features", "this test encoder never extracts features"))
        }
        fn save(&self, _: &Path) -> Result<()> {
            Err(Error::stage("pretrain", "init must not save the encoder"))
        }
        fn backbone(&self) -> Option<(&Backbone, &BackboneConfig)> {
            self.0.as_ref().map(|(b, c)| (b, c))
        }
    }

    #[test]
    fn the_pretrain_encoder_hands_over_its_network() {
        let device = Device::flex().autodiff();
        let config = BackboneConfig::new(BackboneKind::Wrn10_2, 1, 3);
        let init = |encoder: Option<&dyn Encoder>| {
            initial_weights(&Init::Pretrain, encoder, config.init(&device), &config, &device)
        };
        let encoder = TestEncoder::of(BackboneKind::Wrn10_2);
        let model = init(Some(&encoder)).unwrap();
        let body = |m: &Backbone| leaf_bytes(m).into_iter().filter(|(p, _)| !p.contains("output")).collect::<Vec<_>>();
        assert_eq!(body(&model), body(&encoder.0.as_ref().unwrap().0), "every tensor but the head is the encoder's");
        let Backbone::Wrn10_2(wrn) = &model else { panic!("kind changed") };
        assert!(wrn.unit1[0].conv1.weight.val().is_require_grad(), "the handed-over weights train");
        let err = init(Some(&TestEncoder(None))).unwrap_err().to_string();
        assert!(err.contains("needs an encoder whose network is one of relab's backbones"), "{err}");
        let err = init(None).unwrap_err().to_string();
        assert!(err.contains("no stages.pretrain"), "{err}");
        let err = init(Some(&TestEncoder::of(BackboneKind::ResNet18))).unwrap_err().to_string();
        assert!(err.contains("the pretrain stage's encoder holds a resnet18"), "{err}");
    }
}
