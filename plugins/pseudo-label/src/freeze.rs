//! The original's `--freeze` (`docs/method.md` §5.1): `requires_grad = False` on every child module of the network
//! but the last three — for its WRN `[init_conv, unit1, unit2, unit3, unit4, linear]` that is `init_conv`, `unit1`
//! and `unit2`. Only gradients stop: the model stays in training mode, so the frozen blocks' batch norms still
//! normalise with batch statistics and update their running statistics, as in PyTorch. That is burn's
//! [`Module::no_grad`], not [`Module::freeze`] (which also switches batch norms to their running statistics).
use relab_core::burn::module::Module;
use relab_core::nn::{Backbone, ResNet, Wrn};

/// `model` with its leading blocks frozen (WRN: `init_conv`, `unit1`, `unit2`; ResNet, whose children are
/// `[conv1, bn1, layer1, layer2, layer3, layer4, linear]`: `conv1`, `bn1`, `layer1`, `layer2`).
pub fn freeze_leading_blocks(model: Backbone) -> Backbone {
    match model {
        Backbone::Wrn28_2(n) => Backbone::Wrn28_2(freeze_wrn(n)),
        Backbone::Wrn16_2(n) => Backbone::Wrn16_2(freeze_wrn(n)),
        Backbone::Wrn10_2(n) => Backbone::Wrn10_2(freeze_wrn(n)),
        Backbone::ResNet18(n) => Backbone::ResNet18(freeze_resnet(n)),
        Backbone::ResNet50(n) => Backbone::ResNet50(freeze_resnet(n)),
        Backbone::ResNet50ImageNet(n) => Backbone::ResNet50ImageNet(freeze_resnet(n)),
    }
}

fn freeze_wrn(mut n: Wrn) -> Wrn {
    n.init_conv = n.init_conv.no_grad();
    n.unit1 = n.unit1.no_grad();
    n.unit2 = n.unit2.no_grad();
    n
}

fn freeze_resnet(mut n: ResNet) -> ResNet {
    n.conv1 = n.conv1.no_grad();
    n.bn1 = n.bn1.no_grad();
    n.layer1 = n.layer1.no_grad();
    n.layer2 = n.layer2.no_grad();
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use relab_core::burn::optim::GradientsParams;
    use relab_core::burn::tensor::{Device, Distribution, Tensor};
    use relab_core::nn::{BackboneConfig, BackboneKind};
    use relab_core::train::leaf_bytes;
    use relab_core::train::losses::labels_tensor;
    use relab_core::train::{Optimiser, SgdSettings, cross_entropy};

    #[test]
    fn frozen_blocks_keep_their_weights_bit_identical_while_their_statistics_move() {
        let device = Device::flex().autodiff();
        let mut model = freeze_leading_blocks(BackboneConfig::new(BackboneKind::Wrn10_2, 1, 3).init(&device));
        let before = leaf_bytes(&model);
        // Momentum and weight decay: a frozen parameter must not even decay.
        let mut optimiser = Optimiser::sgd(&SgdSettings::default());
        for step in 0..2 {
            let x = Tensor::<4>::random([4, 1, 12, 12], Distribution::Normal(0.0, 1.0), &device);
            let loss = cross_entropy(model.forward(x).logits, labels_tensor(&[0, 1, 2, step], &device));
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optimiser.step(0.1, model, grads);
        }
        let after = leaf_bytes(&model);
        assert_eq!(before.len(), after.len());
        let (mut frozen, mut trained) = (0, 0);
        for ((path, a), (_, b)) in before.iter().zip(&after) {
            let in_frozen_block = path.split('.').any(|s| ["init_conv", "unit1", "unit2"].contains(&s));
            let statistic = path.ends_with("running_mean") || path.ends_with("running_var");
            if statistic {
                assert_ne!(a, b, "{path}: batch norms stay in training mode, their statistics move");
            } else if in_frozen_block {
                assert_eq!(a, b, "{path} is frozen");
                frozen += 1;
            } else {
                assert_ne!(a, b, "{path} trains");
                trained += 1;
            }
        }
        // WRN-10-2: the stem and unit 1–2 (2 convs + 2 BNs each, and a shortcut) are frozen; unit 3, the last
        // batch norm and the head train.
        assert_eq!((frozen, trained), (1 + 2 * 7, 7 + 2 + 2));
    }
}
