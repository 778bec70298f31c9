//! WRN-28-2 as ReLaB uses it for Pseudo-Labeling and reliable-sample selection (`docs/method.md` §5.3;
//! `ReLaB/nets/wideresnet.py`, the network of the MixMatch/ReMixMatch papers, 1.47M parameters).
//!
//! * Stem: conv 3×3, `in_channels`→16, no bias. Widths 16, 16k, 32k, 64k (16, 32, 64, 128 for k = 2).
//! * Three units of `(depth − 4)/6` pre-activation blocks (4 for depth 28); the first block of unit 1 has
//!   `activate_before_residual`, the first blocks of units 2 and 3 have stride 2.
//! * Unit 4: BN → LeakyReLU(0.1) → global average pool gives the 64k-d feature; the head is Linear(64k → C).
//! * Init: convs `kaiming_normal_(fan_out, relu)`, BN γ = 1 and β = 0, Linear `xavier_normal_` with a zero bias.
//! * BatchNorm: ReLaB's wrapper accepts momentum 1e-3 and eps 1e-3 but passes neither to `nn.BatchNorm2d`, so the
//!   effective values are PyTorch's defaults, momentum 0.1 and eps 1e-5. Those are [`WrnConfig`]'s defaults; burn's
//!   momentum has PyTorch's meaning (weight of the new batch), so 0.1 is passed unchanged. The TensorFlow
//!   ReMixMatch WRN (§6.2) uses decay 0.999, i.e. `bn_momentum = 0.001`, and TF's eps 1e-3.
use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, Linear};
use burn::prelude::*;

use super::batch_norm::{self as norm, Activation};
use super::conv;
use super::init::{ConvInit, batch_norm, conv2d, linear_zero_bias, xavier_normal};
use super::ops::global_avg_pool;

/// Configuration of a wide ResNet in the ReLaB/MixMatch style; [`WrnConfig::new`]`(num_classes)` is WRN-28-2.
#[derive(Config, Debug)]
pub struct WrnConfig {
    /// Number of classes of the linear head.
    pub num_classes: usize,
    /// Input channels (1 for grey images, 3 for RGB).
    #[config(default = 3)]
    pub in_channels: usize,
    /// Network depth; `(depth − 4)` must be a multiple of 6.
    #[config(default = 28)]
    pub depth: usize,
    /// Width multiplier k: the units are 16k, 32k and 64k channels wide.
    #[config(default = 2)]
    pub widen_factor: usize,
    /// Negative slope of every LeakyReLU.
    #[config(default = 0.1)]
    pub leaky_slope: f64,
    /// Batch-norm momentum in PyTorch's (and burn's) convention: the weight of the new batch statistics.
    #[config(default = 0.1)]
    pub bn_momentum: f64,
    /// Batch-norm epsilon.
    #[config(default = 1e-5)]
    pub bn_epsilon: f64,
}

/// A pre-activation residual block (ReLaB's `residual`).
#[derive(Module, Debug)]
pub struct WideBlock {
    /// Pre-activation batch norm of the input.
    pub bn1: BatchNorm,
    /// conv 3×3 (stride), no bias.
    pub conv1: Conv2d,
    pub bn2: BatchNorm,
    /// conv 3×3, no bias.
    pub conv2: Conv2d,
    /// conv 1×1 (stride), no bias, when the stride is ≥ 2 or the width changes; identity otherwise.
    pub shortcut: Option<Conv2d>,
    /// Negative slope of the LeakyReLU activations.
    pub leaky_slope: f64,
    /// When set, LReLU(BN(x)) feeds both the residual branch and the shortcut; otherwise the shortcut takes raw x.
    pub activate_before_residual: bool,
}

impl WideBlock {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let a = norm::forward_activated(&self.bn1, x.clone(), Activation::LeakyRelu(self.leaky_slope));
        let shortcut_in = if self.activate_before_residual { a.clone() } else { x };
        let out = conv::forward(&self.conv1, a);
        let out = conv::forward(
            &self.conv2,
            norm::forward_activated(&self.bn2, out, Activation::LeakyRelu(self.leaky_slope)),
        );
        let shortcut = match &self.shortcut {
            Some(layer) => conv::forward(layer, shortcut_in),
            None => shortcut_in,
        };
        shortcut + out
    }
}

/// Wide ResNet (WRN-28-2 by default). Field names follow `ReLaB/nets/wideresnet.py` (`init_conv`, `unit1..3`,
/// `output`); `bn` is its `unit4` batch norm.
#[derive(Module, Debug)]
pub struct Wrn {
    pub init_conv: Conv2d,
    pub unit1: Vec<WideBlock>,
    pub unit2: Vec<WideBlock>,
    pub unit3: Vec<WideBlock>,
    pub bn: BatchNorm,
    pub leaky_slope: f64,
    /// The classifier, Linear(64k → num_classes).
    pub output: Linear,
}

impl WrnConfig {
    /// Width of the pooled feature: 64·k (128 for WRN-28-2).
    pub fn feature_dim(&self) -> usize {
        64 * self.widen_factor
    }

    pub fn init(&self, device: &Device) -> Wrn {
        assert!(
            self.depth >= 10 && (self.depth - 4).is_multiple_of(6),
            "WRN depth must be 6n + 4 with n ≥ 1, got {}",
            self.depth
        );
        assert!(self.widen_factor >= 1 && self.in_channels >= 1 && self.num_classes >= 1);
        let blocks = (self.depth - 4) / 6;
        let k = self.widen_factor;
        let widths = [16, 16 * k, 32 * k, 64 * k];
        let init = ConvInit::KaimingNormalFanOut;

        let unit = |c_in: usize, c_out: usize, stride: usize, activate_before_residual: bool| -> Vec<WideBlock> {
            (0..blocks)
                .map(|i| {
                    let (c_in, stride, abr) =
                        if i == 0 { (c_in, stride, activate_before_residual) } else { (c_out, 1, false) };
                    WideBlock {
                        bn1: batch_norm(c_in, self.bn_momentum, self.bn_epsilon, device),
                        conv1: conv2d([c_in, c_out], 3, stride, 1, init, device),
                        bn2: batch_norm(c_out, self.bn_momentum, self.bn_epsilon, device),
                        conv2: conv2d([c_out, c_out], 3, 1, 1, init, device),
                        shortcut: (stride >= 2 || c_in != c_out)
                            .then(|| conv2d([c_in, c_out], 1, stride, 0, init, device)),
                        leaky_slope: self.leaky_slope,
                        activate_before_residual: abr,
                    }
                })
                .collect()
        };

        Wrn {
            init_conv: conv2d([self.in_channels, widths[0]], 3, 1, 1, init, device),
            unit1: unit(widths[0], widths[1], 1, true),
            unit2: unit(widths[1], widths[2], 2, false),
            unit3: unit(widths[2], widths[3], 2, false),
            bn: batch_norm(widths[3], self.bn_momentum, self.bn_epsilon, device),
            leaky_slope: self.leaky_slope,
            output: linear_zero_bias(widths[3], self.num_classes, xavier_normal(), device),
        }
    }
}

impl Wrn {
    /// The pooled feature after unit 4 (BN → LeakyReLU → global average pool), `[B, 64k]`.
    pub fn forward_features(&self, x: Tensor<4>) -> Tensor<2> {
        let mut x = conv::forward(&self.init_conv, x);
        for block in self.unit1.iter().chain(&self.unit2).chain(&self.unit3) {
            x = block.forward(x);
        }
        global_avg_pool(norm::forward_activated(&self.bn, x, Activation::LeakyRelu(self.leaky_slope)))
    }

    /// Logits of the linear head for pooled features.
    pub fn classify(&self, features: Tensor<2>) -> Tensor<2> {
        self.output.forward(features)
    }

    /// Width of the pooled feature.
    pub fn feature_dim(&self) -> usize {
        self.bn.gamma.lazy_shape().dims::<1>()[0]
    }

    /// Number of classes of the head.
    pub fn num_classes(&self) -> usize {
        self.output.weight.lazy_shape().dims::<2>()[1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::params::trainable_params;

    #[test]
    fn wrn28_2_matches_the_reference_parameter_count() {
        // PyTorch (`train_throughput_reference.py::WRN28_2`, identical to `ReLaB/nets/wideresnet.py`), 10 classes:
        //   stem 3·16·9                                                       =       432
        //   block(a→b) = 2a (bn1) + 9ab (conv1) + 2b (bn2) + 9b² (conv2) [+ ab (1×1 shortcut)]
        //   unit1: block(16→32)+sc = 14 432,  3 × block(32→32) = 3 × 18 560  =    70 112
        //   unit2: block(32→64)+sc = 57 536,  3 × block(64→64) = 3 × 73 984  =   279 488
        //   unit3: block(64→128)+sc = 229 760, 3 × block(128→128) = 3 × 295 424 = 1 116 032
        //   unit4 BN 2·128 = 256; head 128·10 + 10 = 1 290
        //   total                                                             = 1 467 610
        // With one input channel the stem is 1·16·9 = 144: 1 467 322.
        let device = Device::flex();
        let wrn = WrnConfig::new(10).init(&device);
        assert_eq!(trainable_params(&wrn), 1_467_610);
        assert_eq!(wrn.feature_dim(), 128);
        assert_eq!(wrn.num_classes(), 10);
        assert_eq!(trainable_params(&WrnConfig::new(10).with_in_channels(1).init(&device)), 1_467_322);
    }

    #[test]
    fn structure_follows_the_method() {
        let wrn = WrnConfig::new(10).init(&Device::flex());
        assert_eq!((wrn.unit1.len(), wrn.unit2.len(), wrn.unit3.len()), (4, 4, 4));
        let abr: Vec<bool> =
            wrn.unit1.iter().chain(&wrn.unit2).chain(&wrn.unit3).map(|b| b.activate_before_residual).collect();
        assert_eq!(abr.iter().filter(|&&b| b).count(), 1);
        assert!(abr[0]);
        for unit in [&wrn.unit1, &wrn.unit2, &wrn.unit3] {
            assert!(unit[0].shortcut.is_some());
            assert!(unit[1..].iter().all(|b| b.shortcut.is_none()));
        }
        assert_eq!(wrn.unit1[0].conv1.stride, [1, 1]);
        assert_eq!(wrn.unit2[0].conv1.stride, [2, 2]);
        assert_eq!(wrn.unit3[0].shortcut.as_ref().unwrap().stride, [2, 2]);
        assert_eq!(wrn.bn.momentum, 0.1);
        assert_eq!(wrn.bn.epsilon, 1e-5);
        assert_eq!(wrn.leaky_slope, 0.1);
    }

    #[test]
    fn initialisation_follows_the_method() {
        let device = Device::flex();
        device.seed(7);
        let wrn = WrnConfig::new(10).init(&device);
        // kaiming_normal_(fan_out): std² = 2 / (c_out·9); unit3's conv2 has 128·128·9 = 147 456 samples.
        let w = wrn.unit3[3].conv2.weight.val();
        let var = w.clone().square().mean().into_scalar::<f32>() as f64;
        let expected = 2.0 / (128.0 * 9.0);
        assert!((var / expected - 1.0).abs() < 0.02, "conv variance {var} vs {expected}");
        // xavier_normal_: std² = 2 / (128 + 10); zero bias.
        let fc = wrn.output.weight.val();
        let var = fc.square().mean().into_scalar::<f32>() as f64;
        assert!((var / (2.0 / 138.0) - 1.0).abs() < 0.15, "linear variance {var}");
        let bias = wrn.output.bias.as_ref().unwrap().val().into_data().try_to_vec::<f32>().unwrap();
        assert!(bias.iter().all(|&b| b == 0.0));
        let gamma = wrn.unit2[1].bn2.gamma.val().into_data().try_to_vec::<f32>().unwrap();
        assert!(gamma.iter().all(|&g| g == 1.0));
    }
}
