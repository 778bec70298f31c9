//! Heads on top of a backbone's pooled feature: the iMix projection head (`docs/method.md` §2.3) and the 4-way
//! rotation head of RotNet / ReMixMatch (§5.1, §6.2).
use burn::module::Module;
use burn::nn::{BatchNorm, Linear, LinearConfig};
use burn::prelude::*;

use super::batch_norm::{self as norm, Activation};
use super::init::{batch_norm, linear_zero_bias, pytorch_default, xavier_normal};
use super::ops::l2_normalize;

/// iMix's projection head: Linear(D → 2D, no bias) → BatchNorm1d(2D) → ReLU → Linear(2D → 128, bias) → L2
/// normalisation. PyTorch's default init (BN γ = 1, β = 0, momentum 0.1, eps 1e-5).
#[derive(Config, Debug)]
pub struct ProjectionHeadConfig {
    /// Width D of the backbone feature.
    pub d_input: usize,
    /// Width of the embedding (iMix's `--proj-dim`, 128).
    #[config(default = 128)]
    pub d_output: usize,
    /// Hidden width; `None` means 2D (1024 for ResNet-18, 4096 for ResNet-50, 256 for WRN-28-2).
    #[config(default = "None")]
    pub d_hidden: Option<usize>,
}

#[derive(Module, Debug)]
pub struct ProjectionHead {
    /// Linear(D → hidden), no bias.
    pub linear1: Linear,
    /// BatchNorm1d(hidden).
    pub bn: BatchNorm,
    /// Linear(hidden → d_output), with bias.
    pub linear2: Linear,
}

impl ProjectionHeadConfig {
    pub fn init(&self, device: &Device) -> ProjectionHead {
        let hidden = self.d_hidden.unwrap_or(2 * self.d_input);
        assert!(self.d_input >= 1 && hidden >= 1 && self.d_output >= 1);
        super::init::materialise(ProjectionHead {
            linear1: LinearConfig::new(self.d_input, hidden)
                .with_bias(false)
                .with_initializer(pytorch_default())
                .init(device),
            bn: batch_norm(hidden, 0.1, 1e-5, device),
            linear2: LinearConfig::new(hidden, self.d_output).with_initializer(pytorch_default()).init(device),
        })
    }
}

impl ProjectionHead {
    /// `[B, D]` features → `[B, d_output]` unit-norm embeddings.
    pub fn forward(&self, features: Tensor<2>) -> Tensor<2> {
        let h = norm::forward_activated(&self.bn, self.linear1.forward(features), Activation::Relu);
        l2_normalize(self.linear2.forward(h))
    }
}

/// Rotation head: Linear(D → 4) predicting 0°, 90°, 180° or 270°. Glorot-normal weight and zero bias, as the
/// ReMixMatch dense layers (§6.2) and the WRN head (§5.3).
#[derive(Config, Debug)]
pub struct RotationHeadConfig {
    /// Width D of the backbone feature.
    pub d_input: usize,
}

#[derive(Module, Debug)]
pub struct RotationHead {
    pub linear: Linear,
}

impl RotationHeadConfig {
    /// Number of rotation classes.
    pub const ROTATIONS: usize = 4;

    pub fn init(&self, device: &Device) -> RotationHead {
        super::init::materialise(RotationHead {
            linear: linear_zero_bias(self.d_input, Self::ROTATIONS, xavier_normal(), device),
        })
    }
}

impl RotationHead {
    /// `[B, D]` features → `[B, 4]` rotation logits.
    pub fn forward(&self, features: Tensor<2>) -> Tensor<2> {
        self.linear.forward(features)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::params::trainable_params;
    use burn::tensor::Distribution;

    #[test]
    fn projection_head_shapes_counts_and_unit_norm() {
        let device = Device::flex();
        // iMix ResNet-18 head: 512·1024 + 2·1024 + 1024·128 + 128 = 657 536; ResNet-50: 2048·4096 + 2·4096 +
        // 4096·128 + 128 = 8 921 216.
        assert_eq!(trainable_params(&ProjectionHeadConfig::new(512).init(&device)), 657_536);
        assert_eq!(trainable_params(&ProjectionHeadConfig::new(2048).init(&device)), 8_921_216);

        let head = ProjectionHeadConfig::new(16).init(&device);
        assert!(head.linear1.bias.is_none() && head.linear2.bias.is_some());
        let x = Tensor::<2>::random([5, 16], Distribution::Normal(0.0, 1.0), &device);
        let z = head.forward(x);
        assert_eq!(z.dims(), [5, 128]);
        let norms = z.square().sum_dim(1).sqrt().into_data().try_to_vec::<f32>().unwrap();
        assert!(norms.iter().all(|n| (n - 1.0).abs() < 1e-5), "{norms:?}");
    }

    #[test]
    fn projection_head_trains_through_batch_norm() {
        let device = Device::flex().autodiff();
        let head = ProjectionHeadConfig::new(8).with_d_output(4).init(&device);
        let x = Tensor::<2>::random([6, 8], Distribution::Normal(0.0, 1.0), &device);
        let grads = head.forward(x).slice([0..6, 0..1]).sum().backward();
        assert!(head.linear1.weight.val().grad(&grads).is_some());
        assert!(head.bn.gamma.val().grad(&grads).is_some());
        assert!(head.linear2.bias.as_ref().unwrap().val().grad(&grads).is_some());
    }

    #[test]
    fn rotation_head() {
        let device = Device::flex();
        let head = RotationHeadConfig::new(128).init(&device);
        assert_eq!(trainable_params(&head), 128 * 4 + 4);
        let y = head.forward(Tensor::<2>::ones([3, 128], &device));
        assert_eq!(y.dims(), [3, 4]);
        let bias = head.linear.bias.as_ref().unwrap().val().into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(bias, vec![0.0; 4]);
    }
}
