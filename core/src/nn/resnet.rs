//! Post-activation ResNets (He et al. 2016): the CIFAR-style ResNet-18/50 of iMix and ReLaB (`docs/method.md` §2.3;
//! `ReLaB/nets/resnet.py`) and torchvision's ImageNet ResNet-50 for transfer from ImageNet weights (§2.5).
//!
//! * CIFAR stem: conv 3×3, stride 1, pad 1, `in_channels`→64, no bias; BN; ReLU; **no** max-pool. Weight init is
//!   PyTorch's default (U(−1/√fan_in, 1/√fan_in) for convs and the linear head).
//! * ImageNet stem (torchvision `resnet50`): conv 7×7, stride 2, pad 3; BN; ReLU; max-pool 3×3, stride 2, pad 1.
//!   torchvision's init: convs `kaiming_normal_(fan_out, relu)`, BN γ = 1, β = 0, the linear head PyTorch's default.
//! * Four stages of widths 64, 128, 256, 512 (×4 for Bottleneck) with strides 1, 2, 2, 2; BasicBlock [2, 2, 2, 2] for
//!   ResNet-18, Bottleneck [3, 4, 6, 3] for ResNet-50 (the stride sits on the Bottleneck's 3×3 conv, as in both
//!   references). Shortcut: conv 1×1 (stride) + BN when the stride or width changes, otherwise identity.
//! * Global average pool gives the feature: 512-d (ResNet-18) or 2048-d (ResNet-50); then Linear(→ num_classes).
//!
//! Field names follow ReLaB's (`conv1`, `bn1`, `layer1..4`, `shortcut`, `linear`); torchvision's are the same except
//! `downsample.{0,1}` (here `shortcut.{conv,bn}`) and `fc` (here `linear`).
use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::batch_norm::{self as norm, Activation};
use super::conv;
use super::init::{ConvInit, batch_norm, conv2d, pytorch_default};
use super::ops::global_avg_pool;

/// PyTorch's `nn.BatchNorm2d` defaults (all the ResNets use them).
const BN_MOMENTUM: f64 = 0.1;
const BN_EPSILON: f64 = 1e-5;

/// The residual block type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockKind {
    /// Two 3×3 convs, expansion 1 (ResNet-18/34).
    Basic,
    /// 1×1 → 3×3 (stride) → 1×1 (×4) convs, expansion 4 (ResNet-50/101/152).
    Bottleneck,
}

impl BlockKind {
    /// Output width of a block relative to its stage width.
    pub fn expansion(self) -> usize {
        match self {
            BlockKind::Basic => 1,
            BlockKind::Bottleneck => 4,
        }
    }
}

/// The stem in front of the four stages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StemKind {
    /// conv 3×3, stride 1, pad 1; no max-pool (iMix/ReLaB CIFAR ResNets, also used at 84×84).
    Cifar,
    /// conv 7×7, stride 2, pad 3 + max-pool 3×3, stride 2, pad 1 (torchvision's ImageNet ResNets).
    #[serde(rename = "imagenet")]
    ImageNet,
    /// conv 7×7, stride 1, pad 1, no max-pool: the pre-cleanup ReLaB `ResNet50(pretrained=True)` (§2.5), which put
    /// torchvision's weights into this stem and fed it 224×224 upsampled CIFAR images.
    #[serde(rename = "imagenet_relab")]
    ImageNetRelab,
}

/// Configuration of a ResNet; see [`ResNetConfig::resnet18`], [`ResNetConfig::resnet50`] and
/// [`ResNetConfig::resnet50_imagenet`].
#[derive(Config, Debug)]
pub struct ResNetConfig {
    pub block: BlockKind,
    /// Blocks per stage.
    pub layers: [usize; 4],
    /// Number of classes of the linear head.
    pub num_classes: usize,
    /// Input channels (1 for grey images, 3 for RGB).
    #[config(default = 3)]
    pub in_channels: usize,
    #[config(default = "StemKind::Cifar")]
    pub stem: StemKind,
    /// How the convolutions are initialised (the linear head always gets PyTorch's default).
    #[config(default = "ConvInit::PytorchDefault")]
    pub conv_init: ConvInit,
}

impl ResNetConfig {
    /// CIFAR-style ResNet-18 (BasicBlock [2, 2, 2, 2], 3×3 stem, PyTorch default init).
    pub fn resnet18(num_classes: usize) -> Self {
        Self::new(BlockKind::Basic, [2, 2, 2, 2], num_classes)
    }

    /// CIFAR-style ResNet-50 (Bottleneck [3, 4, 6, 3], 3×3 stem, PyTorch default init).
    pub fn resnet50(num_classes: usize) -> Self {
        Self::new(BlockKind::Bottleneck, [3, 4, 6, 3], num_classes)
    }

    /// torchvision's ImageNet ResNet-50 (7×7 stride-2 stem + max-pool, torchvision's init), for ImageNet weights.
    pub fn resnet50_imagenet(num_classes: usize) -> Self {
        Self::resnet50(num_classes).with_stem(StemKind::ImageNet).with_conv_init(ConvInit::KaimingNormalFanOut)
    }

    /// Width of the pooled feature: 512 × expansion.
    pub fn feature_dim(&self) -> usize {
        512 * self.block.expansion()
    }

    pub fn init(&self, device: &Device) -> ResNet {
        assert!(self.in_channels >= 1 && self.num_classes >= 1 && self.layers.iter().all(|&n| n >= 1));
        let init = self.conv_init;
        let bn = |c: usize| batch_norm(c, BN_MOMENTUM, BN_EPSILON, device);
        let (conv1, maxpool) = match self.stem {
            StemKind::Cifar => (conv2d([self.in_channels, 64], 3, 1, 1, init, device), None),
            StemKind::ImageNet => (
                conv2d([self.in_channels, 64], 7, 2, 3, init, device),
                Some(
                    MaxPool2dConfig::new([3, 3])
                        .with_strides([2, 2])
                        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                        .init(),
                ),
            ),
            StemKind::ImageNetRelab => (conv2d([self.in_channels, 64], 7, 1, 1, init, device), None),
        };

        let expansion = self.block.expansion();
        let mut in_planes = 64;
        let mut stages =
            [64, 128, 256, 512].into_iter().zip([1, 2, 2, 2]).zip(self.layers).map(|((planes, stride), n)| {
                (0..n)
                    .map(|i| {
                        let stride = if i == 0 { stride } else { 1 };
                        let out = planes * expansion;
                        let shortcut = (stride != 1 || in_planes != out).then(|| Shortcut {
                            conv: conv2d([in_planes, out], 1, stride, 0, init, device),
                            bn: bn(out),
                        });
                        let block = match self.block {
                            BlockKind::Basic => ResidualBlock::Basic(BasicBlock {
                                conv1: conv2d([in_planes, planes], 3, stride, 1, init, device),
                                bn1: bn(planes),
                                conv2: conv2d([planes, planes], 3, 1, 1, init, device),
                                bn2: bn(planes),
                                shortcut,
                            }),
                            BlockKind::Bottleneck => ResidualBlock::Bottleneck(Bottleneck {
                                conv1: conv2d([in_planes, planes], 1, 1, 0, init, device),
                                bn1: bn(planes),
                                conv2: conv2d([planes, planes], 3, stride, 1, init, device),
                                bn2: bn(planes),
                                conv3: conv2d([planes, out], 1, 1, 0, init, device),
                                bn3: bn(out),
                                shortcut,
                            }),
                        };
                        in_planes = out;
                        block
                    })
                    .collect::<Vec<_>>()
            });
        let mut stage = || stages.next().expect("four stages");
        let (layer1, layer2, layer3, layer4) = (stage(), stage(), stage(), stage());

        ResNet {
            conv1,
            bn1: bn(64),
            maxpool,
            layer1,
            layer2,
            layer3,
            layer4,
            linear: LinearConfig::new(self.feature_dim(), self.num_classes)
                .with_initializer(pytorch_default())
                .init(device),
        }
    }
}

/// conv 1×1 (stride) + BN on the shortcut path.
#[derive(Module, Debug)]
pub struct Shortcut {
    pub conv: Conv2d,
    pub bn: BatchNorm,
}

impl Shortcut {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        norm::forward(&self.bn, conv::forward(&self.conv, x))
    }
}

fn shortcut(shortcut: &Option<Shortcut>, x: Tensor<4>) -> Tensor<4> {
    match shortcut {
        Some(s) => s.forward(x),
        None => x,
    }
}

/// conv3×3(stride)–BN–ReLU–conv3×3–BN, plus the shortcut, then ReLU.
#[derive(Module, Debug)]
pub struct BasicBlock {
    pub conv1: Conv2d,
    pub bn1: BatchNorm,
    pub conv2: Conv2d,
    pub bn2: BatchNorm,
    pub shortcut: Option<Shortcut>,
}

impl BasicBlock {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let out = norm::forward_activated(&self.bn1, conv::forward(&self.conv1, x.clone()), Activation::Relu);
        norm::forward_onto(&self.bn2, conv::forward(&self.conv2, out), shortcut(&self.shortcut, x), Activation::Relu)
    }
}

/// conv1×1–BN–ReLU–conv3×3(stride)–BN–ReLU–conv1×1(×4)–BN, plus the shortcut, then ReLU.
#[derive(Module, Debug)]
pub struct Bottleneck {
    pub conv1: Conv2d,
    pub bn1: BatchNorm,
    pub conv2: Conv2d,
    pub bn2: BatchNorm,
    pub conv3: Conv2d,
    pub bn3: BatchNorm,
    pub shortcut: Option<Shortcut>,
}

impl Bottleneck {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let out = norm::forward_activated(&self.bn1, conv::forward(&self.conv1, x.clone()), Activation::Relu);
        let out = norm::forward_activated(&self.bn2, conv::forward(&self.conv2, out), Activation::Relu);
        norm::forward_onto(&self.bn3, conv::forward(&self.conv3, out), shortcut(&self.shortcut, x), Activation::Relu)
    }
}

/// One residual block of either kind.
// Both variants are a few kilobytes of handles and a network holds one kind only, so boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum ResidualBlock {
    Basic(BasicBlock),
    Bottleneck(Bottleneck),
}

impl ResidualBlock {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            ResidualBlock::Basic(b) => b.forward(x),
            ResidualBlock::Bottleneck(b) => b.forward(x),
        }
    }
}

/// A post-activation ResNet with a linear head.
#[derive(Module, Debug)]
pub struct ResNet {
    pub conv1: Conv2d,
    pub bn1: BatchNorm,
    /// Only with the ImageNet stem.
    pub maxpool: Option<MaxPool2d>,
    pub layer1: Vec<ResidualBlock>,
    pub layer2: Vec<ResidualBlock>,
    pub layer3: Vec<ResidualBlock>,
    pub layer4: Vec<ResidualBlock>,
    /// The classifier, Linear(feature_dim → num_classes).
    pub linear: Linear,
}

impl ResNet {
    /// The globally average-pooled output of stage 4, `[B, 512·expansion]`.
    pub fn forward_features(&self, x: Tensor<4>) -> Tensor<2> {
        let mut x = norm::forward_activated(&self.bn1, conv::forward(&self.conv1, x), Activation::Relu);
        if let Some(pool) = &self.maxpool {
            x = pool.forward(x);
        }
        for block in self.layer1.iter().chain(&self.layer2).chain(&self.layer3).chain(&self.layer4) {
            x = block.forward(x);
        }
        global_avg_pool(x)
    }

    /// Logits of the linear head for pooled features.
    pub fn classify(&self, features: Tensor<2>) -> Tensor<2> {
        self.linear.forward(features)
    }

    /// Width of the pooled feature.
    pub fn feature_dim(&self) -> usize {
        self.linear.weight.lazy_shape().dims::<2>()[0]
    }

    /// Number of classes of the head.
    pub fn num_classes(&self) -> usize {
        self.linear.weight.lazy_shape().dims::<2>()[1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::params::trainable_params;

    // Expected counts, from the PyTorch definitions (`ReLaB/nets/resnet.py`, torchvision `resnet50`), 10 classes
    // unless said otherwise. conv(i,o,k) = i·o·k², bn(c) = 2c.
    //
    // ResNet-18 (CIFAR): stem conv(3,64,3) + bn(64) = 1 856
    //   layer1: 2 × [conv(64,64,3) + bn + conv(64,64,3) + bn] = 2 × 73 984             =   147 968
    //   layer2: [conv(64,128,3) + bn + conv(128,128,3) + bn + conv(64,128,1) + bn]
    //           + [2·conv(128,128,3) + 2·bn] = 230 144 + 295 424                       =   525 568
    //   layer3: 919 040 + 1 180 672                                                    = 2 099 712
    //   layer4: 3 673 088 + 4 720 640                                                  = 8 393 728
    //   linear 512·10 + 10 = 5 130                                   total             = 11 173 962
    // ResNet-50 (CIFAR): stem 1 856; layer1 215 808; layer2 1 219 584; layer3 7 098 368; layer4 14 964 736;
    //   linear 2048·10 + 10 = 20 490                                 total             = 23 520 842
    // ResNet-50 (ImageNet stem): conv(3,64,7) = 9 408 instead of 1 728             → 23 528 522
    //   with torchvision's 1000-class head (2048·1000 + 1000)                      → 25 557 032 (torchvision's figure)
    // One input channel instead of three: the stem conv loses 2·64·k² (1 152 for 3×3, 6 272 for 7×7).
    #[test]
    fn parameter_counts_match_pytorch() {
        let device = Device::flex();
        let cases = [
            (ResNetConfig::resnet18(10), 11_173_962),
            (ResNetConfig::resnet18(10).with_in_channels(1), 11_173_962 - 1_152),
            (ResNetConfig::resnet50(10), 23_520_842),
            (ResNetConfig::resnet50_imagenet(10), 23_528_522),
            (ResNetConfig::resnet50_imagenet(1000), 25_557_032),
            (ResNetConfig::resnet50_imagenet(10).with_in_channels(1), 23_528_522 - 6_272),
        ];
        for (config, expected) in cases {
            let net = config.init(&device);
            assert_eq!(trainable_params(&net), expected, "{config}");
            assert_eq!(net.feature_dim(), config.feature_dim());
            assert_eq!(net.num_classes(), config.num_classes);
        }
    }

    #[test]
    fn structure_follows_the_references() {
        let device = Device::flex();
        let r18 = ResNetConfig::resnet18(10).init(&device);
        assert!(r18.maxpool.is_none());
        assert_eq!(r18.conv1.kernel_size, [3, 3]);
        assert_eq!(r18.conv1.stride, [1, 1]);
        let lens = [r18.layer1.len(), r18.layer2.len(), r18.layer3.len(), r18.layer4.len()];
        assert_eq!(lens, [2, 2, 2, 2]);
        let ResidualBlock::Basic(b) = &r18.layer1[0] else { panic!("ResNet-18 has basic blocks") };
        assert!(b.shortcut.is_none(), "layer1 keeps the width and the stride");
        let ResidualBlock::Basic(b) = &r18.layer2[0] else { panic!() };
        assert_eq!(b.conv1.stride, [2, 2]);
        assert!(b.shortcut.is_some());

        let r50 = ResNetConfig::resnet50_imagenet(10).init(&device);
        assert_eq!(r50.conv1.kernel_size, [7, 7]);
        assert_eq!(r50.conv1.stride, [2, 2]);
        assert!(r50.maxpool.is_some());
        let lens = [r50.layer1.len(), r50.layer2.len(), r50.layer3.len(), r50.layer4.len()];
        assert_eq!(lens, [3, 4, 6, 3]);
        let ResidualBlock::Bottleneck(b) = &r50.layer1[0] else { panic!("ResNet-50 has bottlenecks") };
        assert!(b.shortcut.is_some(), "64 → 256 channels");
        let ResidualBlock::Bottleneck(b) = &r50.layer3[0] else { panic!() };
        assert_eq!((b.conv1.stride, b.conv2.stride), ([1, 1], [2, 2]), "stride on the 3×3 conv");
        assert_eq!(b.shortcut.as_ref().unwrap().conv.stride, [2, 2]);
    }

    #[test]
    fn every_stem_pools_to_the_feature() {
        let device = Device::flex();
        for stem in [StemKind::Cifar, StemKind::ImageNet, StemKind::ImageNetRelab] {
            let net = ResNetConfig::resnet18(3).with_stem(stem).init(&device);
            let x = Tensor::<4>::ones([1, 3, 32, 32], &device);
            let features = net.forward_features(x);
            assert_eq!(features.dims(), [1, 512], "{stem:?}");
            assert_eq!(net.classify(features).dims(), [1, 3]);
        }
        let json = serde_json::to_string(&ResNetConfig::resnet50_imagenet(10)).unwrap();
        assert!(
            json.contains(r#""stem":"imagenet""#) && json.contains(r#""conv_init":"kaiming_normal_fan_out""#),
            "{json}"
        );
    }

    #[test]
    fn initialisation_follows_the_references() {
        let device = Device::flex();
        // CIFAR: PyTorch's default, U(−b, b) with b = 1/√fan_in; variance b²/3. layer4's 3×3 conv: fan_in 512·9.
        let r18 = ResNetConfig::resnet18(10).init(&device);
        let ResidualBlock::Basic(b) = &r18.layer4[1] else { panic!() };
        let w = b.conv2.weight.val().into_data().try_to_vec::<f32>().unwrap();
        let bound = 1.0 / (512.0f32 * 9.0).sqrt();
        assert!(w.iter().all(|v| v.abs() <= bound));
        let var = w.iter().map(|v| (v * v) as f64).sum::<f64>() / w.len() as f64;
        let expected = (bound as f64).powi(2) / 3.0;
        assert!((var / expected - 1.0).abs() < 0.02, "{var} vs {expected}");

        // torchvision: kaiming_normal_(fan_out): variance 2/fan_out; layer4's 3×3 conv: fan_out 512·9.
        let r50 = ResNetConfig::resnet50_imagenet(10).init(&device);
        let ResidualBlock::Bottleneck(b) = &r50.layer4[2] else { panic!() };
        let var = b.conv2.weight.val().square().mean().into_scalar::<f32>() as f64;
        let expected = 2.0 / (512.0 * 9.0);
        assert!((var / expected - 1.0).abs() < 0.02, "{var} vs {expected}");
    }
}
