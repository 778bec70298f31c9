//! The network ReMixMatch trains: a backbone with its classifier, and the 4-way rotation head on the pooled
//! embedding (`docs/method.md` §6.2: a dense layer 128 → 4 for the WRN).
use relab_core::burn;
use relab_core::burn::module::Module;
use relab_core::burn::tensor::{Device, Tensor};
use relab_core::nn::{Backbone, BackboneConfig, RotationHead, RotationHeadConfig};
use relab_core::train::{AdamSettings, Optimiser};

/// The module path of the rotation head, which the weight decay leaves alone (the original decays the
/// classifier's kernels only).
pub const ROTATION_HEAD: &str = "rotation";

#[derive(Module, Debug)]
pub struct RemixNet {
    pub backbone: Backbone,
    pub rotation: RotationHead,
}

/// One forward pass: the classifier's logits of every image and the pooled features they came from.
pub struct Forward {
    pub logits: Tensor<2>,
    pub features: Tensor<2>,
}

impl RemixNet {
    pub fn new(config: &BackboneConfig, device: &Device) -> Self {
        let backbone = config.init(device);
        let rotation = RotationHeadConfig::new(backbone.feature_dim()).init(device);
        RemixNet { backbone, rotation }
    }

    pub fn forward(&self, x: Tensor<4>) -> Forward {
        let out = self.backbone.forward(x);
        Forward { logits: out.logits, features: out.features }
    }

    /// The rotation logits of pooled features.
    pub fn rotation_logits(&self, features: Tensor<2>) -> Tensor<2> {
        self.rotation.forward(features)
    }
}

/// Adam with decoupled decay of the backbone's kernels; the rotation head is always left out of the decay.
pub fn optimiser(settings: &AdamSettings) -> Optimiser {
    let mut settings = settings.clone();
    if !settings.no_decay.iter().any(|p| p == ROTATION_HEAD) {
        settings.no_decay.push(ROTATION_HEAD.to_string());
    }
    Optimiser::adam(&settings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use relab_core::burn::optim::GradientsParams;
    use relab_core::nn::{BackboneKind, trainable_params};

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_into_vec_as::<f32>().unwrap()
    }

    #[test]
    fn weight_decay_shrinks_backbone_kernels_only() {
        let device = Device::flex().autodiff();
        let net = RemixNet::new(&BackboneConfig::new(BackboneKind::Wrn10_2, 1, 3), &device);
        let x = Tensor::<4>::ones([2, 1, 8, 8], &device);
        let out = net.forward(x);
        // Zero gradients everywhere: Adam moves nothing, so only the decay changes the weights.
        let loss = (out.logits.sum() + net.rotation_logits(out.features).sum()).mul_scalar(0.0);
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        let Backbone::Wrn10_2(wrn) = &net.backbone else { unreachable!() };
        let (stem, fc, fc_bias) = (
            values(wrn.init_conv.weight.val()),
            values(wrn.output.weight.val()),
            values(wrn.output.bias.as_ref().unwrap().val()),
        );
        let rot = values(net.rotation.linear.weight.val());
        let settings = AdamSettings { weight_decay: 0.02, ..AdamSettings::default() };
        let stepped = optimiser(&settings).step(0.5, net, grads);
        let Backbone::Wrn10_2(after) = &stepped.backbone else { unreachable!() };
        // Kernels × (1 − 0.02·0.5) = 0.99.
        let scaled =
            |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x * 0.99 - y).abs() <= 1e-6 * x.abs().max(1.0));
        assert!(scaled(&stem, &values(after.init_conv.weight.val())));
        assert!(scaled(&fc, &values(after.output.weight.val())));
        assert_eq!(values(after.output.bias.as_ref().unwrap().val()), fc_bias);
        assert_eq!(values(stepped.rotation.linear.weight.val()), rot);
    }

    #[test]
    fn wraps_the_backbone_and_a_rotation_head_on_its_embedding() {
        let device = Device::flex();
        let config = BackboneConfig::new(BackboneKind::Wrn10_2, 1, 3);
        let net = RemixNet::new(&config, &device);
        let backbone = trainable_params(&config.init(&device));
        assert_eq!(trainable_params(&net), backbone + 128 * 4 + 4);
        let out = net.forward(Tensor::zeros([2, 1, 8, 8], &device));
        assert_eq!((out.logits.dims(), out.features.dims()), ([2, 3], [2, 128]));
        assert_eq!(net.rotation_logits(out.features).dims(), [2, 4]);
    }
}
