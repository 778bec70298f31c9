//! torchvision's ResNet-50 state dict: where to get it, how to read it, and how its key names map onto relab's.
//!
//! torchvision names the parameters of `resnet50()` `conv1.*`, `bn1.*`, `layerN.M.{conv,bn}K.*`,
//! `layerN.0.downsample.{0,1}.*` (the shortcut's conv and batch norm) and `fc.*`; its batch norms hold `weight`,
//! `bias`, `running_mean`, `running_var` and `num_batches_tracked`. relab's ResNet has the same names except
//! `shortcut.{conv,bn}` for `downsample.{0,1}`, burn's `gamma`/`beta` for a batch norm's `weight`/`bias`, and no
//! `num_batches_tracked` (burn keeps no such counter, and evaluation never uses it). `fc.*` is ImageNet's
//! 1000-class classifier, which the encoder does not use: it is dropped, as the original ReLaB dropped it.
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use relab_core::burn::store::burn_pack::Tensor as PackTensor;
use relab_core::burn::store::{ModuleStore, PytorchStore, SafetensorsStore};
use relab_core::nn::{Backbone, BackboneConfig};
use relab_core::{Error, Result};

use crate::network;

/// Where torchvision publishes the weights (`ResNet50_Weights.IMAGENET1K_V1`; the original ReLaB used the same
/// weights under their older name, `resnet50-19c8e357.pth`).
pub const WEIGHTS_URL: &str = "https://download.pytorch.org/models/resnet50-0676ba61.pth";

/// File name extensions of the two formats read.
pub const WEIGHTS_EXTENSIONS: [&str; 3] = ["pth", "pt", "safetensors"];

/// What a weights file is and how to get it, for messages about a missing or absent one.
pub fn missing_weights_help() -> String {
    format!(
        "torchvision's ResNet-50 ImageNet state dict. torchvision publishes it (ResNet50_Weights.IMAGENET1K_V1) at \
         {WEIGHTS_URL}; download it (`curl -L -o resnet50-0676ba61.pth {WEIGHTS_URL}`) and set `weights:` to its \
         path: relab reads the .pth as it is. A .safetensors conversion works too (in Python: \
         `safetensors.torch.save_file(torch.load('resnet50-0676ba61.pth'), 'resnet50.safetensors')`)"
    )
}

/// relab's name for the tensor torchvision calls `key`, or `None` for a tensor the encoder does not use (`fc.*`,
/// `*.num_batches_tracked`). A key that is not torchvision's keeps its name (and is then reported as unexpected).
pub fn to_relab(key: &str) -> Option<String> {
    let mut parts: Vec<&str> = key.split('.').collect();
    if parts.first() == Some(&"fc") || parts.last() == Some(&"num_batches_tracked") {
        return None;
    }
    let param = parts.pop()?;
    let mut module = Vec::with_capacity(parts.len());
    let mut rest = parts.into_iter().peekable();
    while let Some(part) = rest.next() {
        match (part, rest.peek().copied()) {
            ("downsample", Some(index @ ("0" | "1"))) => {
                rest.next();
                module.extend(["shortcut", if index == "0" { "conv" } else { "bn" }]);
            }
            _ => module.push(part),
        }
    }
    let param = match (is_batch_norm(&module), param) {
        (true, "weight") => "gamma",
        (true, "bias") => "beta",
        (_, other) => other,
    };
    module.push(param);
    Some(module.join("."))
}

/// torchvision's name for relab's tensor `key` (the inverse of [`to_relab`]).
pub fn to_torchvision(key: &str) -> String {
    let mut parts: Vec<&str> = key.split('.').collect();
    let Some(param) = parts.pop() else { return key.to_string() };
    let param = match (is_batch_norm(&parts), param) {
        (true, "gamma") => "weight",
        (true, "beta") => "bias",
        (_, other) => other,
    };
    let mut module = Vec::with_capacity(parts.len() + 1);
    let mut rest = parts.into_iter().peekable();
    while let Some(part) = rest.next() {
        match (part, rest.peek().copied()) {
            ("shortcut", Some(which @ ("conv" | "bn"))) => {
                rest.next();
                module.extend(["downsample", if which == "conv" { "0" } else { "1" }]);
            }
            _ => module.push(part),
        }
    }
    module.push(param);
    module.join(".")
}

/// Whether relab's module path (without the parameter) is a batch norm: `bn1`..`bn3` or `shortcut.bn`.
fn is_batch_norm(module: &[&str]) -> bool {
    module.last().is_some_and(|m| m.starts_with("bn"))
}

/// Every tensor of the state dict in `path` (`.pth`/`.pt`: PyTorch's zip or legacy format, a bare state dict;
/// `.safetensors`), by torchvision name. A missing file says where torchvision publishes the weights.
pub fn read_state_dict(path: &Path) -> Result<Vec<PackTensor>> {
    if !path.is_file() {
        return Err(Error::stage(
            "pretrain",
            format!("weights file {} not found. It should be {}", path.display(), missing_weights_help()),
        ));
    }
    let unreadable = |e: &dyn std::fmt::Display| Error::format(path, format!("not a readable state dict: {e}"));
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or_default();
    let tensors = match extension {
        "pth" | "pt" => {
            // torchvision's indices are already contiguous; renumbering them would only hide a gap.
            let mut store = PytorchStore::from_file(path).map_indices_contiguous(false);
            store.get_all_tensors().map_err(|e| unreadable(&e))?.values().cloned().collect()
        }
        "safetensors" => {
            let mut store = SafetensorsStore::from_file(path);
            store.get_all_tensors().map_err(|e| unreadable(&e))?.values().cloned().collect()
        }
        other => {
            return Err(Error::format(
                path,
                format!("unknown weights format `.{other}`; expected .{}", WEIGHTS_EXTENSIONS.join(", .")),
            ));
        }
    };
    Ok(tensors)
}

/// What [`map_state_dict`] gives: the tensors renamed for relab, and the torchvision keys it left out.
#[derive(Debug)]
pub struct Mapped {
    pub tensors: Vec<PackTensor>,
    /// `fc.*` and `*.num_batches_tracked`, sorted.
    pub ignored: Vec<String>,
}

/// Renames torchvision's tensors to relab's names and checks them against `expected` (relab name → shape: every
/// tensor the encoder needs). Every expected tensor must be present with its shape and a float type, and every
/// tensor of the file must be expected or ignorable; otherwise one error lists every missing, unexpected and
/// mismatched key, by torchvision name, with `path` as the file at fault.
pub fn map_state_dict(
    path: &Path,
    tensors: Vec<PackTensor>,
    expected: &BTreeMap<String, Vec<usize>>,
) -> Result<Mapped> {
    let mut found = BTreeSet::new();
    let (mut mapped, mut ignored, mut unexpected, mut mismatched) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for mut tensor in tensors {
        let Some(name) = to_relab(&tensor.name) else {
            ignored.push(tensor.name);
            continue;
        };
        let Some(shape) = expected.get(&name) else {
            unexpected.push(tensor.name);
            continue;
        };
        found.insert(name.clone());
        if tensor.shape.as_slice() != shape.as_slice() {
            mismatched.push(format!(
                "{} has shape {:?}, ResNet-50 needs {shape:?}",
                tensor.name,
                tensor.shape.as_slice()
            ));
        } else if !tensor.dtype.is_float() {
            mismatched.push(format!("{} holds {:?} values, ResNet-50 needs floats", tensor.name, tensor.dtype));
        } else {
            tensor.name = name;
            mapped.push(tensor);
        }
    }
    let missing: Vec<String> = expected.keys().filter(|k| !found.contains(*k)).map(|k| to_torchvision(k)).collect();
    unexpected.sort();
    let mut problems = Vec::new();
    for (what, keys) in [("missing", &missing), ("unexpected", &unexpected)] {
        if !keys.is_empty() {
            problems.push(format!("{} {what} tensors: {}", keys.len(), keys.join(", ")));
        }
    }
    if !mismatched.is_empty() {
        problems.push(format!("{} tensors of the wrong shape or type: {}", mismatched.len(), mismatched.join("; ")));
    }
    if !problems.is_empty() {
        return Err(Error::format(
            path,
            format!("not torchvision's ResNet-50 state dict ({} tensors read): {}", found.len(), problems.join(". ")),
        ));
    }
    ignored.sort();
    Ok(Mapped { tensors: mapped, ignored })
}

/// torchvision's ResNet-50 from the state dict in `path`, installed into `fresh` (from [`network::resnet50`], built
/// by the caller so that it alone decides how the head, which the state dict does not set, is seeded); also the
/// torchvision keys left out (`fc.*`, `*.num_batches_tracked`).
pub fn load_resnet50(
    path: &Path,
    fresh: (Backbone, BackboneConfig),
) -> Result<(Backbone, BackboneConfig, Vec<String>)> {
    let tensors = read_state_dict(path)?;
    let (mut net, config) = fresh;
    let mut expected = network::tensor_shapes(&net);
    expected.retain(|name, _| !name.starts_with(network::HEAD_PREFIX));
    let mapped = map_state_dict(path, tensors, &expected)?;
    let untouched = network::install(&mut net, mapped.tensors, path)?;
    if let Some(left) = untouched.iter().find(|name| !name.starts_with(network::HEAD_PREFIX)) {
        return Err(Error::format(path, format!("{} was not loaded", to_torchvision(left))));
    }
    Ok((net, config, mapped.ignored))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torchvision_names_to_relab_and_back() {
        for (torchvision, relab) in [
            ("conv1.weight", "conv1.weight"),
            ("bn1.weight", "bn1.gamma"),
            ("bn1.bias", "bn1.beta"),
            ("bn1.running_mean", "bn1.running_mean"),
            ("layer1.0.conv3.weight", "layer1.0.conv3.weight"),
            ("layer2.3.bn2.running_var", "layer2.3.bn2.running_var"),
            ("layer3.0.downsample.0.weight", "layer3.0.shortcut.conv.weight"),
            ("layer3.0.downsample.1.weight", "layer3.0.shortcut.bn.gamma"),
            ("layer4.0.downsample.1.bias", "layer4.0.shortcut.bn.beta"),
            ("layer4.0.downsample.1.running_var", "layer4.0.shortcut.bn.running_var"),
            ("layer4.2.bn3.bias", "layer4.2.bn3.beta"),
        ] {
            assert_eq!(to_relab(torchvision).as_deref(), Some(relab), "{torchvision}");
            assert_eq!(to_torchvision(relab), torchvision, "{relab}");
        }
        for ignored in ["fc.weight", "fc.bias", "bn1.num_batches_tracked", "layer1.0.downsample.1.num_batches_tracked"]
        {
            assert_eq!(to_relab(ignored), None, "{ignored}");
        }
        // Not torchvision's: kept as they are, so that they are reported under their own names.
        assert_eq!(to_relab("layer1.0.downsample.2.weight").as_deref(), Some("layer1.0.downsample.2.weight"));
        assert_eq!(to_relab("conv1.bias").as_deref(), Some("conv1.bias"));
    }
}
