//! The ResNet-50 the ImageNet weights go into, and putting named tensors into it.
use std::collections::BTreeMap;
use std::path::Path;

use relab_core::burn::store::burn_pack::Tensor as PackTensor;
use relab_core::burn::store::{FloatCastAdapter, ModuleSnapshot};
use relab_core::burn::tensor::{DType, Device};
use relab_core::nn::init::materialise;
use relab_core::nn::resnet::StemKind;
use relab_core::nn::{Backbone, BackboneConfig, BackboneKind, ResNetConfig};
use relab_core::{Error, Result};

/// Prefix of the linear head's tensors, which no ImageNet weight fills (torchvision's `fc` is dropped).
pub const HEAD_PREFIX: &str = "linear.";

/// torchvision's ResNet-50 with `stem`, three input channels and a `num_classes`-way linear head, its
/// parameters drawn now (torchvision's initialisation): build it inside `StageContext::init` or `nn::seeded` so that
/// the head is fixed by the seed.
///
/// The variant is [`Backbone::ResNet50ImageNet`] whatever the stem: the stems differ in stride, padding and
/// max-pool only, so both hold the same tensors.
pub fn resnet50(stem: StemKind, num_classes: usize, device: &Device) -> (Backbone, BackboneConfig) {
    let net = ResNetConfig::resnet50_imagenet(num_classes).with_stem(stem).init(device);
    (materialise(Backbone::ResNet50ImageNet(net)), resnet50_config(num_classes))
}

/// The description [`resnet50`]'s network is saved with.
pub fn resnet50_config(num_classes: usize) -> BackboneConfig {
    BackboneConfig::new(BackboneKind::ResNet50ImageNet, 3, num_classes)
}

/// Every tensor of `net` (parameters and batch-norm running statistics) by name, with its shape.
pub fn tensor_shapes(net: &Backbone) -> BTreeMap<String, Vec<usize>> {
    net.collect(None, None, true).into_iter().map(|t| (t.name, t.shape.to_vec())).collect()
}

/// Puts `tensors` (named as `net`'s, shapes already checked) into `net`, as `f32` whatever their float type.
/// Every tensor must find its parameter; the parameters left as they were are returned, sorted.
pub fn install(net: &mut Backbone, tensors: Vec<PackTensor>, source: &Path) -> Result<Vec<String>> {
    let given = tensors.len();
    let result = net.apply(tensors, None, Some(Box::new(FloatCastAdapter::to(DType::F32))), true);
    if !result.errors.is_empty() || !result.unused.is_empty() || result.applied.len() != given {
        let errors: Vec<String> = result.errors.iter().map(|e| e.to_string()).collect();
        return Err(Error::format(
            source,
            format!(
                "{} of {given} tensors loaded; not loaded: {}; errors: {}",
                result.applied.len(),
                result.unused.join(", "),
                errors.join("; ")
            ),
        ));
    }
    let mut untouched: Vec<String> = result.missing.into_iter().map(|(path, _)| path).collect();
    untouched.sort();
    Ok(untouched)
}
