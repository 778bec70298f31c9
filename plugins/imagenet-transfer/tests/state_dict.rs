//! Reading torchvision's ResNet-50 state dict: both file formats, every tensor into its parameter, and one error
//! naming every key that does not fit.

mod support;

use std::collections::HashMap;
use std::path::Path;

use relab_core::burn::store::ModuleSnapshot;
use relab_core::burn::tensor::{Device, Tensor};
use relab_core::nn::Backbone;
use relab_core::nn::resnet::{ResNet, ResidualBlock, StemKind};
use relab_plugin_imagenet_transfer::network;
use relab_plugin_imagenet_transfer::torchvision::{WEIGHTS_URL, load_resnet50, read_state_dict};
use support::{Data, Entry, entry, resnet50_state_dict, write_pth, write_safetensors};

/// The network `load_resnet50` installs into, on the CPU.
fn fresh() -> (Backbone, relab_core::nn::BackboneConfig) {
    network::resnet50(StemKind::ImageNet, 10, &Device::flex())
}

fn resnet(net: &Backbone) -> &ResNet {
    match net {
        Backbone::ResNet50ImageNet(r) => r,
        other => panic!("not the ImageNet ResNet-50: {:?}", other.kind()),
    }
}

fn values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor.into_data().try_to_vec::<f32>().unwrap()
}

fn block(stage: &[ResidualBlock], i: usize) -> &relab_core::nn::resnet::Bottleneck {
    match &stage[i] {
        ResidualBlock::Bottleneck(b) => b,
        ResidualBlock::Basic(_) => panic!("ResNet-50 has bottleneck blocks"),
    }
}

#[test]
fn the_generated_state_dict_is_torchvisions() {
    let dict = resnet50_state_dict(1);
    assert_eq!(dict.len(), 320);
    assert_eq!(dict.iter().filter(|e| e.name.ends_with("num_batches_tracked")).count(), 53);
    // torchvision's parameter count for resnet50(): every tensor but the batch-norm buffers.
    let buffers = ["running_mean", "running_var", "num_batches_tracked"];
    let params: usize = dict
        .iter()
        .filter(|e| !buffers.iter().any(|b| e.name.ends_with(b)))
        .map(|e| e.shape.iter().product::<usize>())
        .sum();
    assert_eq!(params, 25_557_032);
}

#[test]
fn every_tensor_lands_in_its_parameter() {
    let dir = tempfile::tempdir().unwrap();
    let dict = resnet50_state_dict(2);
    let path = dir.path().join("resnet50.safetensors");
    write_safetensors(&path, &dict);
    let (net, config, ignored) = load_resnet50(&path, fresh()).unwrap();
    assert_eq!((config.num_classes, config.in_channels), (10, 3));
    let mut expected_ignored: Vec<&str> =
        dict.iter().map(|e| e.name.as_str()).filter(|n| n.starts_with("fc.") || n.ends_with("tracked")).collect();
    expected_ignored.sort();
    assert_eq!(ignored, expected_ignored);

    // A few by field, the naming differences included: stem, downsample → shortcut, weight/bias → gamma/beta.
    let r = resnet(&net);
    let f = |name: &str| entry(&dict, name).f32s().to_vec();
    assert_eq!(values(r.conv1.weight.val()), f("conv1.weight"));
    assert_eq!(values(r.bn1.gamma.val()), f("bn1.weight"));
    assert_eq!(values(r.bn1.beta.val()), f("bn1.bias"));
    let b = block(&r.layer1, 0);
    let shortcut = b.shortcut.as_ref().expect("layer1.0 has a shortcut");
    assert_eq!(values(shortcut.conv.weight.val()), f("layer1.0.downsample.0.weight"));
    assert_eq!(values(shortcut.bn.gamma.val()), f("layer1.0.downsample.1.weight"));
    assert_eq!(values(shortcut.bn.running_var.value()), f("layer1.0.downsample.1.running_var"));
    let b = block(&r.layer3, 5);
    assert_eq!(values(b.conv2.weight.val()), f("layer3.5.conv2.weight"));
    assert_eq!(values(b.bn2.running_mean.value()), f("layer3.5.bn2.running_mean"));
    let b = block(&r.layer4, 2);
    assert_eq!(values(b.bn3.beta.val()), f("layer4.2.bn3.bias"));
    assert!(block(&r.layer4, 1).shortcut.is_none());

    // All of them: each of the 265 float tensors outside `fc` is in exactly one parameter of the same shape.
    let mut by_values: HashMap<Vec<u32>, &Entry> = HashMap::new();
    for e in dict.iter().filter(|e| matches!(e.data, Data::F32(_)) && !e.name.starts_with("fc.")) {
        assert!(by_values.insert(e.f32s().iter().map(|v| v.to_bits()).collect(), e).is_none());
    }
    assert_eq!(by_values.len(), 265);
    for tensor in net.collect(None, None, true).into_iter().filter(|t| !t.name.starts_with("linear.")) {
        let shape = tensor.shape.to_vec();
        let bytes = tensor.to_bytes().unwrap();
        let bits: Vec<u32> = bytes.chunks(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())).collect();
        let source = by_values.remove(&bits).unwrap_or_else(|| panic!("{} holds no tensor of the file", tensor.name));
        assert_eq!(shape, source.shape, "{} ← {}", tensor.name, source.name);
    }
    assert!(by_values.is_empty(), "not loaded: {:?}", by_values.values().map(|e| &e.name).collect::<Vec<_>>());
}

#[test]
fn pth_and_safetensors_files_read_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let dict = resnet50_state_dict(3);
    let (pth, safetensors) = (dir.path().join("resnet50.pth"), dir.path().join("resnet50.safetensors"));
    write_pth(&pth, &dict);
    write_safetensors(&safetensors, &dict);
    let read = |path: &Path| {
        let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = read_state_dict(path)
            .unwrap()
            .into_iter()
            .map(|t| (t.name.clone(), t.shape.to_vec(), t.to_bytes().unwrap().to_vec()))
            .collect();
        tensors.sort();
        tensors
    };
    let (a, b) = (read(&pth), read(&safetensors));
    assert_eq!(a.len(), 320, "{:?}", a.iter().map(|t| &t.0).collect::<Vec<_>>());
    assert!(a == b, "the two formats differ");
    let nbt = a.iter().find(|t| t.0 == "bn1.num_batches_tracked").unwrap();
    assert_eq!((nbt.1.as_slice(), nbt.2.as_slice()), (&[][..], &4242i64.to_le_bytes()[..]));
}

/// The error of loading `dict` written as safetensors.
fn load_error(dict: &[Entry]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("resnet50.safetensors");
    write_safetensors(&path, dict);
    let err = load_resnet50(&path, fresh()).unwrap_err().to_string();
    assert!(err.contains(&path.display().to_string()), "names the file: {err}");
    err
}

#[test]
fn missing_and_unexpected_keys_are_all_named_in_one_error() {
    let mut dict = resnet50_state_dict(4);
    dict.retain(|e| e.name != "layer2.1.bn2.running_var" && e.name != "layer3.0.downsample.0.weight");
    let extra = |name: &str| Entry { name: name.into(), shape: vec![4], data: Data::F32(vec![0.0; 4]) };
    dict.push(extra("layer5.0.conv1.weight"));
    dict.push(extra("head.bias"));
    let err = load_error(&dict);
    assert!(err.contains("2 missing tensors: layer2.1.bn2.running_var, layer3.0.downsample.0.weight"), "{err}");
    assert!(err.contains("2 unexpected tensors: head.bias, layer5.0.conv1.weight"), "{err}");
}

#[test]
fn a_wrong_shape_names_the_key_and_both_shapes() {
    let mut dict = resnet50_state_dict(5);
    let e = dict.iter_mut().find(|e| e.name == "layer1.0.conv2.weight").unwrap();
    e.shape = vec![64, 64, 1, 1];
    e.data = Data::F32(vec![0.5; 64 * 64]);
    let err = load_error(&dict);
    assert!(err.contains("layer1.0.conv2.weight has shape [64, 64, 1, 1], ResNet-50 needs [64, 64, 3, 3]"), "{err}");
    assert!(!err.contains("missing") && !err.contains("unexpected"), "{err}");
}

#[test]
fn a_missing_file_says_where_torchvision_publishes_the_weights() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("resnet50-0676ba61.pth");
    let err = load_resnet50(&path, fresh()).unwrap_err().to_string();
    assert!(err.contains(&path.display().to_string()) && err.contains("not found"), "{err}");
    assert!(err.contains(WEIGHTS_URL) && err.contains("ResNet50_Weights.IMAGENET1K_V1"), "{err}");
    assert_eq!(WEIGHTS_URL, "https://download.pytorch.org/models/resnet50-0676ba61.pth");

    let npz = dir.path().join("resnet50.npz");
    std::fs::write(&npz, b"PK").unwrap();
    let err = load_resnet50(&npz, fresh()).unwrap_err().to_string();
    assert!(err.contains("unknown weights format `.npz`"), "{err}");
    let garbage = dir.path().join("resnet50.pth");
    std::fs::write(&garbage, b"not a zip").unwrap();
    let err = load_resnet50(&garbage, fresh()).unwrap_err().to_string();
    assert!(err.contains("not a readable state dict"), "{err}");
}
