//! The backbones a stage can ask for by name, behind one module type: `wrn28_2` (§5.3), `resnet18` and `resnet50`
//! (CIFAR-style, §2.3) and `resnet50_imagenet` (torchvision's ImageNet ResNet-50, §2.5), plus `wrn10_2` and
//! `wrn16_2`, the same WRN with one or two blocks per unit instead of four (about 4× and 2× cheaper), for quick CPU
//! configurations.
//!
//! Every backbone ends in a global average pool, so it takes any input size the strides allow (28×28 and up; the
//! ImageNet stem reduces 28×28 to 1×1 at stage 4) with 1 or 3 channels, and returns the pooled feature together with
//! the logits of its linear head.
use std::fmt;
use std::str::FromStr;

use burn::module::Module;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::resnet::{ResNet, ResNetConfig};
use super::wrn::{Wrn, WrnConfig};

/// Which network a [`Backbone`] is. Serialised as `wrn28_2`, `wrn16_2`, `wrn10_2`, `resnet18`, `resnet50`,
/// `resnet50_imagenet`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BackboneKind {
    #[serde(rename = "wrn28_2")]
    Wrn28_2,
    #[serde(rename = "wrn16_2")]
    Wrn16_2,
    #[serde(rename = "wrn10_2")]
    Wrn10_2,
    #[serde(rename = "resnet18")]
    ResNet18,
    #[serde(rename = "resnet50")]
    ResNet50,
    #[serde(rename = "resnet50_imagenet")]
    ResNet50ImageNet,
}

impl BackboneKind {
    pub const ALL: [BackboneKind; 6] = [
        BackboneKind::Wrn28_2,
        BackboneKind::Wrn16_2,
        BackboneKind::Wrn10_2,
        BackboneKind::ResNet18,
        BackboneKind::ResNet50,
        BackboneKind::ResNet50ImageNet,
    ];

    /// The serialised name.
    pub fn name(self) -> &'static str {
        match self {
            BackboneKind::Wrn28_2 => "wrn28_2",
            BackboneKind::Wrn16_2 => "wrn16_2",
            BackboneKind::Wrn10_2 => "wrn10_2",
            BackboneKind::ResNet18 => "resnet18",
            BackboneKind::ResNet50 => "resnet50",
            BackboneKind::ResNet50ImageNet => "resnet50_imagenet",
        }
    }

    /// Width of the pooled feature: 128 for the WRNs, 512 for ResNet-18, 2048 for the ResNet-50s.
    pub fn feature_dim(self) -> usize {
        match self {
            BackboneKind::Wrn28_2 | BackboneKind::Wrn16_2 | BackboneKind::Wrn10_2 => 128,
            BackboneKind::ResNet18 => 512,
            BackboneKind::ResNet50 | BackboneKind::ResNet50ImageNet => 2048,
        }
    }
}

impl fmt::Display for BackboneKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for BackboneKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        BackboneKind::ALL.into_iter().find(|k| k.name() == s).ok_or_else(|| {
            let known: Vec<&str> = BackboneKind::ALL.iter().map(|k| k.name()).collect();
            format!("unknown backbone `{s}`; known: {}", known.join(", "))
        })
    }
}

/// What a run folder's `model.json` holds: enough to rebuild the [`Backbone`] its `weights.safetensors` belong to.
#[derive(Config, Debug, PartialEq)]
pub struct BackboneConfig {
    pub kind: BackboneKind,
    /// Input channels: 1 (grey) or 3 (RGB).
    pub in_channels: usize,
    /// Number of classes of the linear head.
    pub num_classes: usize,
}

impl BackboneConfig {
    /// Checks the values a file could get wrong; [`BackboneConfig::init`] panics on what this rejects.
    pub fn check(&self) -> Result<(), String> {
        if !matches!(self.in_channels, 1 | 3) {
            return Err(format!("in_channels must be 1 or 3, got {}", self.in_channels));
        }
        if self.num_classes == 0 {
            return Err("num_classes must be at least 1".to_string());
        }
        Ok(())
    }

    /// Width of the pooled feature.
    pub fn feature_dim(&self) -> usize {
        self.kind.feature_dim()
    }

    pub fn init(&self, device: &Device) -> Backbone {
        if let Err(e) = self.check() {
            panic!("invalid backbone config {self}: {e}");
        }
        let (c, n) = (self.in_channels, self.num_classes);
        let backbone = match self.kind {
            BackboneKind::Wrn28_2 => Backbone::Wrn28_2(WrnConfig::new(n).with_in_channels(c).init(device)),
            BackboneKind::Wrn16_2 => {
                Backbone::Wrn16_2(WrnConfig::new(n).with_depth(16).with_in_channels(c).init(device))
            }
            BackboneKind::Wrn10_2 => {
                Backbone::Wrn10_2(WrnConfig::new(n).with_depth(10).with_in_channels(c).init(device))
            }
            BackboneKind::ResNet18 => Backbone::ResNet18(ResNetConfig::resnet18(n).with_in_channels(c).init(device)),
            BackboneKind::ResNet50 => Backbone::ResNet50(ResNetConfig::resnet50(n).with_in_channels(c).init(device)),
            BackboneKind::ResNet50ImageNet => {
                Backbone::ResNet50ImageNet(ResNetConfig::resnet50_imagenet(n).with_in_channels(c).init(device))
            }
        };
        super::init::materialise(backbone)
    }
}

/// What [`Backbone::forward`] returns.
#[derive(Debug, Clone)]
pub struct BackboneOutput {
    /// Globally average-pooled feature, `[B, feature_dim]`.
    pub features: Tensor<2>,
    /// Logits of the linear head, `[B, num_classes]`.
    pub logits: Tensor<2>,
}

/// One of the networks of [`BackboneKind`]. The variant names the kind; weights saved with
/// [`save_backbone`](super::save_backbone) do not include the variant name in their keys.
#[derive(Module, Debug)]
pub enum Backbone {
    Wrn28_2(Wrn),
    Wrn10_2(Wrn),
    ResNet18(ResNet),
    ResNet50(ResNet),
    ResNet50ImageNet(ResNet),
    // Last, so the records of the variants before it keep their places.
    Wrn16_2(Wrn),
}

impl Backbone {
    pub fn kind(&self) -> BackboneKind {
        match self {
            Backbone::Wrn28_2(_) => BackboneKind::Wrn28_2,
            Backbone::Wrn16_2(_) => BackboneKind::Wrn16_2,
            Backbone::Wrn10_2(_) => BackboneKind::Wrn10_2,
            Backbone::ResNet18(_) => BackboneKind::ResNet18,
            Backbone::ResNet50(_) => BackboneKind::ResNet50,
            Backbone::ResNet50ImageNet(_) => BackboneKind::ResNet50ImageNet,
        }
    }

    /// `[B, C, H, W]` images → pooled features and logits.
    pub fn forward(&self, x: Tensor<4>) -> BackboneOutput {
        let features = self.forward_features(x);
        let logits = self.classify(features.clone());
        BackboneOutput { features, logits }
    }

    /// `[B, C, H, W]` images → `[B, feature_dim]` pooled features, without the linear head.
    pub fn forward_features(&self, x: Tensor<4>) -> Tensor<2> {
        match self {
            Backbone::Wrn28_2(n) | Backbone::Wrn16_2(n) | Backbone::Wrn10_2(n) => n.forward_features(x),
            Backbone::ResNet18(n) | Backbone::ResNet50(n) | Backbone::ResNet50ImageNet(n) => n.forward_features(x),
        }
    }

    /// `[B, feature_dim]` features → `[B, num_classes]` logits of the linear head.
    pub fn classify(&self, features: Tensor<2>) -> Tensor<2> {
        match self {
            Backbone::Wrn28_2(n) | Backbone::Wrn16_2(n) | Backbone::Wrn10_2(n) => n.classify(features),
            Backbone::ResNet18(n) | Backbone::ResNet50(n) | Backbone::ResNet50ImageNet(n) => n.classify(features),
        }
    }

    /// Width of the pooled feature.
    pub fn feature_dim(&self) -> usize {
        match self {
            Backbone::Wrn28_2(n) | Backbone::Wrn16_2(n) | Backbone::Wrn10_2(n) => n.feature_dim(),
            Backbone::ResNet18(n) | Backbone::ResNet50(n) | Backbone::ResNet50ImageNet(n) => n.feature_dim(),
        }
    }

    /// Number of classes of the linear head.
    pub fn num_classes(&self) -> usize {
        match self {
            Backbone::Wrn28_2(n) | Backbone::Wrn16_2(n) | Backbone::Wrn10_2(n) => n.num_classes(),
            Backbone::ResNet18(n) | Backbone::ResNet50(n) | Backbone::ResNet50ImageNet(n) => n.num_classes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::params::trainable_params;
    use burn::module::{ModuleVisitor, Param};
    use burn::tensor::Distribution;

    fn input(batch: usize, channels: usize, size: usize, device: &Device) -> Tensor<4> {
        Tensor::random([batch, channels, size, size], Distribution::Normal(0.0, 1.0), device)
    }

    #[test]
    fn kind_names_round_trip() {
        for kind in BackboneKind::ALL {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{kind}\""));
            assert_eq!(serde_json::from_str::<BackboneKind>(&json).unwrap(), kind);
            assert_eq!(kind.name().parse::<BackboneKind>().unwrap(), kind);
        }
        assert_eq!(serde_json::to_string(&BackboneKind::ResNet50ImageNet).unwrap(), "\"resnet50_imagenet\"");
        let err = "resnet".parse::<BackboneKind>().unwrap_err();
        assert!(err.contains("wrn28_2, wrn16_2, wrn10_2, resnet18, resnet50, resnet50_imagenet"), "{err}");

        let config = BackboneConfig::new(BackboneKind::Wrn28_2, 1, 10);
        let json = serde_json::to_value(&config).unwrap();
        assert_eq!(json, serde_json::json!({"kind": "wrn28_2", "in_channels": 1, "num_classes": 10}));
        assert_eq!(serde_json::from_value::<BackboneConfig>(json).unwrap(), config);
        assert!(BackboneConfig::new(BackboneKind::ResNet18, 2, 10).check().is_err());
        assert!(BackboneConfig::new(BackboneKind::ResNet18, 3, 0).check().is_err());
    }

    #[test]
    fn output_shapes_for_28x28x1_and_32x32x3() {
        let device = Device::flex();
        for kind in BackboneKind::ALL {
            // ResNet-50 at batch 1 only: it is by far the slowest.
            let batch = if kind.feature_dim() == 2048 { 1 } else { 2 };
            for (channels, size) in [(1, 28), (3, 32)] {
                let config = BackboneConfig::new(kind, channels, 7);
                let net = config.init(&device);
                assert_eq!((net.kind(), net.feature_dim(), net.num_classes()), (kind, kind.feature_dim(), 7));
                let out = net.forward(input(batch, channels, size, &device));
                assert_eq!(out.features.dims(), [batch, kind.feature_dim()], "{kind} {channels}×{size}²");
                assert_eq!(out.logits.dims(), [batch, 7], "{kind} {channels}×{size}²");
                let values = out.logits.into_data().try_to_vec::<f32>().unwrap();
                assert!(values.iter().all(|v| v.is_finite()), "{kind}: {values:?}");
            }
        }
    }

    #[test]
    fn larger_inputs_pool_to_the_same_shape() {
        let device = Device::flex();
        let net = BackboneConfig::new(BackboneKind::Wrn28_2, 3, 10).init(&device);
        let out = net.forward(input(1, 3, 40, &device));
        assert_eq!((out.features.dims(), out.logits.dims()), ([1, 128], [1, 10]));
    }

    /// WRN-10-2 has one block per unit. Convs (3×3, no bias): stem 3·16·9; unit 1: 16→32 and 32→32 plus the 1×1
    /// shortcut 16·32; unit 2: 32→64, 64→64, shortcut 32·64; unit 3: 64→128, 128→128, shortcut 64·128. Each BN has
    /// 2·C parameters (before each conv of a block, and the last one); the head is 128·10 + 10.
    const WRN10_2_PARAMS: usize = 3 * 16 * 9
        + (16 * 32 * 9 + 32 * 32 * 9 + 16 * 32)
        + (32 * 64 * 9 + 64 * 64 * 9 + 32 * 64)
        + (64 * 128 * 9 + 128 * 128 * 9 + 64 * 128)
        + 2 * (16 + 32)
        + 2 * (32 + 64)
        + 2 * (64 + 128)
        + 2 * 128
        + 128 * 10
        + 10;

    /// WRN-16-2 adds to each unit one block of width C → C: two 3×3 convs and the two BNs before them.
    const WRN16_2_PARAMS: usize = WRN10_2_PARAMS + extra_block(32) + extra_block(64) + extra_block(128);

    const fn extra_block(c: usize) -> usize {
        2 * c * c * 9 + 2 * 2 * c
    }

    #[test]
    fn backbone_parameter_counts() {
        // The exact PyTorch figures, derived in wrn.rs and resnet.rs (10 classes, 3 channels).
        let device = Device::flex();
        let expected = [
            (BackboneKind::Wrn28_2, 1_467_610),
            (BackboneKind::Wrn16_2, WRN16_2_PARAMS),
            (BackboneKind::Wrn10_2, WRN10_2_PARAMS),
            (BackboneKind::ResNet18, 11_173_962),
            (BackboneKind::ResNet50, 23_520_842),
            (BackboneKind::ResNet50ImageNet, 23_528_522),
        ];
        for (kind, count) in expected {
            assert_eq!(trainable_params(&BackboneConfig::new(kind, 3, 10).init(&device)), count, "{kind}");
        }
    }

    /// Checks that every float parameter, except batch-norm running statistics, has a gradient.
    struct GradCheck<'a> {
        grads: &'a burn::tensor::Gradients,
        field: Vec<(String, String)>,
        checked: usize,
        missing: Vec<String>,
    }

    impl ModuleVisitor for GradCheck<'_> {
        fn enter_module(&mut self, name: &str, container_type: &str) {
            self.field.push((name.to_string(), container_type.to_string()));
        }

        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.field.pop();
        }

        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let path = self.field.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(".");
            if path.ends_with("running_mean") || path.ends_with("running_var") {
                return;
            }
            self.checked += 1;
            match param.val().grad(self.grads) {
                Some(g) if g.clone().abs().sum().into_scalar::<f32>() > 0.0 => {}
                Some(_) => self.missing.push(format!("{path} (all-zero gradient)")),
                None => self.missing.push(path),
            }
        }
    }

    #[test]
    fn backward_reaches_every_parameter() {
        let device = Device::flex().autodiff();
        for (kind, size) in [
            (BackboneKind::Wrn28_2, 32),
            (BackboneKind::ResNet18, 28),
            (BackboneKind::ResNet50, 28),
            (BackboneKind::ResNet50ImageNet, 32),
        ] {
            let net = BackboneConfig::new(kind, 3, 5).init(&device);
            let out = net.forward(input(2, 3, size, &device));
            // A loss that depends on every logit and on the features (not only through the head).
            let weights = Tensor::<2>::random([2, 5], Distribution::Normal(0.0, 1.0), &device);
            let loss = (out.logits * weights).sum() + out.features.square().mean();
            let grads = loss.backward();
            let mut check = GradCheck { grads: &grads, field: Vec::new(), checked: 0, missing: Vec::new() };
            net.visit(&mut check);
            assert!(check.missing.is_empty(), "{kind}: no gradient for {:?}", check.missing);
            assert!(check.checked > 20, "{kind}: visited only {} parameters", check.checked);
        }
    }
}
