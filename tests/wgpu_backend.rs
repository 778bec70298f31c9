//! The wgpu backend run for real (on Mesa's lavapipe in CI, on a GPU where there is one) against the CPU backend on
//! the same inputs and seed: the network's training step, every training plugin resumed on wgpu from a checkpoint
//! written on the CPU, the encoders' features, the kNN on the device, diffusion and small-loss selection.
//!
//! Needs `--features wgpu` and a Vulkan adapter: `apt-get install libvulkan1 mesa-vulkan-drivers` (Mesa 25 or later:
//! Debian bookworm's Mesa 22 crashes inside lavapipe; bookworm-backports has 25) and `XDG_RUNTIME_DIR` naming a
//! private folder. Without an adapter every test here fails and says so: a wgpu build that cannot test wgpu is not
//! a pass.
//!
//! Tolerances. Both backends compute in f32 but sum in different orders (cubecl's tiled matmul and convolutions
//! against relab's CPU kernels), so agreement is to rounding, not bits. One f32 reduction over n terms errs by about
//! n·2⁻²⁴ ≈ 1e-7·n relative in the worst case and √n·6e-8 typically; the tiny networks here reduce over at most a
//! few hundred terms per layer through about a dozen layers, which gives some 1e-6 to 1e-5: so losses and gradients
//! are held to 1e-4 relative ([`REL`]), ten times that margin. After training steps the same holds for the
//! *change* of each weight (the gradients times the learning rate), measured against the largest change of its
//! tensor, so that a weight that barely moved cannot hide a wrong gradient and a large weight cannot excuse one.
//! Adam is the exception ([`ADAM_REL`]): it divides each gradient by that element's own running RMS, so an element
//! whose gradients nearly cancel between steps carries its gradient's rounding (bounded by the tensor's largest
//! gradient, not by its own) into a step of full size.
// `wgpu` includes `wgpu-untuned`: this is "built with either wgpu feature".
#![cfg(feature = "wgpu-untuned")]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

use relab_core::artifact::{Features, LabeledSet, Propagation};
use relab_core::burn::module::{Module, ModuleVisitor, Param};
use relab_core::burn::nn::loss::CrossEntropyLossConfig;
use relab_core::burn::tensor::{Device, Int, Tensor, TensorData};
use relab_core::component::{
    FeatureOutput, LearnerInput, MetricsSink, Selector, SelectorInput, SemiSupervisedLearner, SslMethod, StageContext,
    StageKind,
};
use relab_core::device::{self, BackendChoice};
use relab_core::nn::{BackboneConfig, BackboneKind};
use relab_core::testing::{self, TinySpec};
use serde_json::Value;

// Link the binary's plugins into this test.
use relab as _;
use relab_plugin_imagenet_transfer::{ImageNetParams, ImageNetTransfer};

/// torchvision's ResNet-50 state dict with random values, written as safetensors (the plugin's own test support).
#[path = "../plugins/imagenet-transfer/tests/support/mod.rs"]
mod imagenet_support;

/// Relative agreement of losses, gradients and weight changes between the backends (see the file's comment).
const REL: f32 = 1e-4;

/// Relative agreement of the weight changes made by Adam (see the file's comment): the losses that drive them are
/// still held to [`REL`]. Measured on lavapipe: 1.8e-4 for `remixmatch`'s worst weight.
const ADAM_REL: f32 = 1e-3;

const INSTALL: &str = "the wgpu tests need a Vulkan adapter: apt-get install libvulkan1 and, from \
                       bookworm-backports, mesa-vulkan-drivers (Mesa ≥ 25, for lavapipe); see docs/backends.md";

/// burn's random generator is process-global and every stage seeds it, and cubecl tunes each kernel shape once per
/// process: the tests take turns, and share their tuning.
static TURN: Mutex<()> = Mutex::new(());

fn take_turn() -> MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The wgpu device, checked; fails the test with what to install when there is none.
fn gpu() -> Device {
    static DEVICE: OnceLock<Device> = OnceLock::new();
    DEVICE
        .get_or_init(|| {
            // Before the first wgpu operation: cubecl reads its configuration once.
            device::quick_autotune();
            let runtime = std::env::var_os("XDG_RUNTIME_DIR");
            assert!(
                runtime.is_some_and(|d| Path::new(&d).is_dir()),
                "XDG_RUNTIME_DIR must name a folder (without it wgpu's Vulkan loader exits the process quietly): \
                 export XDG_RUNTIME_DIR=$(mktemp -d)"
            );
            let adapters = device::wgpu_adapters();
            assert!(!adapters.is_empty(), "wgpu sees no adapter; {INSTALL}");
            device::resolve(BackendChoice::Wgpu, 0).unwrap_or_else(|e| panic!("{e}; {INSTALL}")).device
        })
        .clone()
}

fn cpu() -> Device {
    Device::flex()
}

fn context(dir: &Path, stage: StageKind, device: &Device, resume: bool) -> StageContext {
    fs::create_dir_all(dir).unwrap();
    let metrics = MetricsSink::open(&dir.join("metrics.jsonl")).unwrap();
    let backend = if *device == cpu() { "cpu" } else { "wgpu" };
    StageContext::new(stage, device.clone(), backend, 7, dir.to_path_buf(), metrics, resume)
}

/// `max |a − b| ≤ rel · max |b|` (plus a floor for tensors that are all but zero), or the failure's text.
fn close(a: &[f32], b: &[f32], rel: f32, what: &str) -> Result<(), String> {
    if a.len() != b.len() {
        return Err(format!("{what}: {} values on wgpu, {} on the CPU", a.len(), b.len()));
    }
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
    let (at, worst) = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .enumerate()
        .fold((0, 0f32), |best, (i, d)| if d > best.1 || d.is_nan() { (i, d) } else { best });
    if worst <= rel * scale + 1e-7 && a.iter().all(|v| v.is_finite()) {
        Ok(())
    } else {
        Err(format!(
            "{what}: wgpu and the CPU differ by {worst:e} at [{at}] ({} against {}), over {rel:e} of the largest \
             magnitude {scale:e}",
            a[at], b[at]
        ))
    }
}

fn assert_close(a: &[f32], b: &[f32], rel: f32, what: &str) {
    if let Err(e) = close(a, b, rel, what) {
        panic!("{e}");
    }
}

/// Every float parameter and running statistic of a module, in visiting order.
fn leaves(module: &impl Module) -> Vec<Vec<f32>> {
    struct Collect(Vec<Vec<f32>>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.push(param.val().into_data().try_to_vec::<f32>().unwrap());
        }
    }
    let mut c = Collect(Vec::new());
    module.visit(&mut c);
    c.0
}

/// The images and labels of a small seeded batch of the tiny dataset, `[n, 1, 8, 8]`, normalised as the loaders do.
fn batch(n: usize, device: &Device) -> (Tensor<4>, Tensor<1, Int>) {
    let data = testing::tiny_dataset(&TinySpec::default());
    let set = &data.train;
    let pixels = &set.pixels[..n * 64];
    let x: Vec<f32> = pixels.iter().map(|&p| (p as f32 / 255.0 - 0.3) / 0.3).collect();
    let y: Vec<i64> = set.labels.as_ref().unwrap()[..n].iter().map(|&l| l as i64).collect();
    (Tensor::from_data(TensorData::new(x, [n, 1, 8, 8]), device), Tensor::from_data(TensorData::new(y, [n]), device))
}

/// One training step of a backbone: the CPU's weights moved to wgpu, the same batch, the loss and every gradient.
/// This is the path relab's CPU kernels (convolution, batch norm) take on the CPU and burn's generic one on wgpu.
fn network_step(kind: BackboneKind) {
    let _turn = take_turn();
    let (gpu, cpu) = (gpu().autodiff(), cpu().autodiff());
    let model = relab_core::nn::seeded(&cpu, 3, || BackboneConfig::new(kind, 1, 3).init(&cpu));
    let on_gpu = model.clone().fork(&gpu);
    assert_close(&leaves(&on_gpu).concat(), &leaves(&model).concat(), 0.0, "weights moved to wgpu");
    let step = |model: &relab_core::nn::Backbone, device: &Device| {
        let (x, y) = batch(6, device);
        let out = model.forward(x);
        let loss = CrossEntropyLossConfig::new().init(device).forward(out.logits.clone(), y);
        let grads = loss.backward();
        let mut values = Vec::new();
        struct Grads<'a>(&'a relab_core::burn::tensor::Gradients, &'a mut Vec<Vec<f32>>);
        impl ModuleVisitor for Grads<'_> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                if let Some(g) = param.val().grad(self.0) {
                    self.1.push(g.into_data().try_to_vec::<f32>().unwrap());
                }
            }
        }
        model.visit(&mut Grads(&grads, &mut values));
        let features = out.features.inner().into_data().try_to_vec::<f32>().unwrap();
        (loss.into_scalar::<f32>(), features, values)
    };
    let (loss_g, features_g, grads_g) = step(&on_gpu, &gpu);
    let (loss_c, features_c, grads_c) = step(&model, &cpu);
    assert_close(&[loss_g], &[loss_c], REL, &format!("{kind} loss"));
    assert_close(&features_g, &features_c, REL, &format!("{kind} features"));
    assert_eq!(grads_g.len(), grads_c.len(), "{kind}: gradients of other parameters");
    assert!(!grads_c.is_empty());
    for (i, (g, c)) in grads_g.iter().zip(&grads_c).enumerate() {
        assert_close(g, c, REL, &format!("{kind} gradient of parameter #{i}"));
    }
}

#[test]
fn wrn_training_step_matches_the_cpu() {
    network_step(BackboneKind::Wrn10_2);
}

#[test]
fn resnet18_training_step_matches_the_cpu() {
    network_step(BackboneKind::ResNet18);
}

// --- plugins: checkpointed on the CPU, resumed on both backends -------------------------------------------------

/// What a stage left: its per-epoch metrics (timings left out), its float tensors by file and name, and its value.
struct Left<T> {
    metrics: Vec<Value>,
    tensors: BTreeMap<String, Vec<f32>>,
    value: T,
}

/// Every F32 tensor of every safetensors file under `dir`, as `path/name`.
fn tensors(dir: &Path) -> BTreeMap<String, Vec<f32>> {
    let mut out = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "safetensors") {
                let bytes = fs::read(&path).unwrap();
                let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
                let header: serde_json::Map<String, Value> = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
                let data = &bytes[8 + n..];
                for (name, entry) in header.into_iter().filter(|(k, e)| k != "__metadata__" && e["dtype"] == "F32") {
                    let at = |i: usize| entry["data_offsets"][i].as_u64().unwrap() as usize;
                    let values =
                        data[at(0)..at(1)].chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
                    let rel = path.strip_prefix(dir).unwrap().display();
                    out.insert(format!("{rel}:{name}"), values);
                }
            }
        }
    }
    out
}

fn metrics(dir: &Path) -> Vec<Value> {
    fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().retain(|k, _| !k.ends_with("seconds"));
            v
        })
        .collect()
}

/// Where the run that writes the checkpoint runs.
#[derive(Clone, Copy, PartialEq)]
enum Checkpointed {
    OnCpu,
    OnWgpu,
}

/// Runs `stage` until its first checkpoint (on the CPU, or on wgpu), then resumes that checkpoint once on the CPU
/// and once on wgpu: both continue from the same weights, optimiser state and data order, so their next steps must
/// agree to rounding. Returns (wgpu, CPU) and the tensors as the checkpoint left them.
fn resumed_on_both<T>(
    kind: StageKind,
    first: Checkpointed,
    stage: impl Fn(&mut StageContext) -> relab_core::Result<T>,
) -> (Left<T>, Left<T>, BTreeMap<String, Vec<f32>>) {
    let _turn = take_turn();
    let gpu = gpu();
    let root = tempfile::tempdir().unwrap();
    let (on_cpu, on_gpu) = (root.path().join("cpu"), root.path().join("wgpu"));
    let (dir, device, side) =
        if first == Checkpointed::OnCpu { (&on_cpu, cpu(), "CPU") } else { (&on_gpu, gpu.clone(), "wgpu") };
    let mut ctx = context(dir, kind, &device, false);
    ctx.stop_after_checkpoints(Some(1));
    match stage(&mut ctx) {
        Err(e) if e.to_string().contains("RELAB_STOP_AFTER_CHECKPOINTS") => {}
        Err(e) => panic!("the {side} run failed before its first checkpoint: {e}"),
        Ok(_) => panic!("the stage finished without a second checkpoint: give it two epochs"),
    }
    drop(ctx);
    if first == Checkpointed::OnCpu {
        copy_dir(&on_cpu, &on_gpu)
    } else {
        copy_dir(&on_gpu, &on_cpu)
    }
    let before = tensors(&on_cpu);
    let run = |dir: &PathBuf, device: &Device| {
        let mut ctx = context(dir, kind, device, true);
        let value = stage(&mut ctx).unwrap_or_else(|e| panic!("resumed in {}: {e}", dir.display()));
        drop(ctx);
        Left { metrics: metrics(dir), tensors: tensors(dir), value }
    };
    let cpu_left = run(&on_cpu, &cpu());
    let gpu_left = run(&on_gpu, &gpu);
    (gpu_left, cpu_left, before)
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() { copy_dir(&path, &target) } else { fs::copy(&path, &target).map(drop).unwrap() }
    }
}

/// The resumed epochs' losses (and every other number they logged) agree to [`REL`], and every tensor's change
/// since the checkpoint agrees to `rel` (a tensor the checkpoint lacked, such as the final weights, is compared
/// whole).
fn assert_same_training<T>(gpu: &Left<T>, cpu: &Left<T>, before: &BTreeMap<String, Vec<f32>>, rel: f32, what: &str) {
    assert_eq!(gpu.metrics.len(), cpu.metrics.len(), "{what}: other epochs logged");
    assert!(!cpu.metrics.is_empty(), "{what}: nothing logged");
    for (g, c) in gpu.metrics.iter().zip(&cpu.metrics) {
        let (g, c) = (g.as_object().unwrap(), c.as_object().unwrap());
        assert_eq!(g.keys().collect::<Vec<_>>(), c.keys().collect::<Vec<_>>(), "{what}: other metrics");
        for (key, cv) in c {
            if let (Some(gv), Some(cv)) = (g[key].as_f64(), cv.as_f64()) {
                assert_close(&[gv as f32], &[cv as f32], REL, &format!("{what}: metric {key} at {c:?}"));
            }
        }
    }
    assert_eq!(gpu.tensors.keys().collect::<Vec<_>>(), cpu.tensors.keys().collect::<Vec<_>>(), "{what}: files");
    let mut moved = 0;
    for (name, c) in &cpu.tensors {
        let g = &gpu.tensors[name];
        match before.get(name) {
            Some(b) if b.len() == c.len() => {
                let dc: Vec<f32> = c.iter().zip(b).map(|(x, y)| x - y).collect();
                let dg: Vec<f32> = g.iter().zip(b).map(|(x, y)| x - y).collect();
                moved += usize::from(dc.iter().any(|d| *d != 0.0));
                assert_close(&dg, &dc, rel, &format!("{what}: change of {name} since the checkpoint"));
            }
            _ => assert_close(g, c, rel, &format!("{what}: {name}")),
        }
    }
    assert!(moved > 0 || before.is_empty(), "{what}: no tensor changed after the checkpoint; the test saw no step");
}

fn labeled(n: usize) -> LabeledSet {
    LabeledSet::new((0..n).collect(), (0..n).map(|i| (i % 3) as u32).collect())
}

fn learner<L: SemiSupervisedLearner + relab_core::registry::PluginInfo>(
    yaml: &'static str,
    n: usize,
) -> impl Fn(&mut StageContext) -> relab_core::Result<Option<f64>> {
    move |ctx| {
        let data = testing::tiny_dataset(&TinySpec::default());
        let mut learner: L = testing::build(yaml).expect("the test's parameters are valid");
        let out = learner.train(ctx, LearnerInput::new(&data, &labeled(n)))?;
        Ok(out.test_accuracy.map(|a| a.last))
    }
}

/// A learner's training resumed on wgpu agrees with the CPU, and so does its evaluation (the test accuracy).
fn check_learner<L: SemiSupervisedLearner + relab_core::registry::PluginInfo>(
    yaml: &'static str,
    n: usize,
    first: Checkpointed,
    rel: f32,
) {
    let name = std::any::type_name::<L>();
    let (gpu, cpu, before) = resumed_on_both(StageKind::Train, first, learner::<L>(yaml, n));
    assert_same_training(&gpu, &cpu, &before, rel, name);
    assert_eq!(gpu.value, cpu.value, "{name}: the evaluation's accuracy");
}

#[test]
fn supervised_resumed_on_wgpu_matches_the_cpu() {
    check_learner::<relab_plugin_supervised::Supervised>(
        "{backbone: wrn10_2, epochs: 2, batch_size: 6, eval_batch_size: 12, min_steps_per_epoch: 1}",
        6,
        Checkpointed::OnCpu,
        REL,
    );
}

/// The other way round: a checkpoint written on wgpu continues on the CPU as on wgpu.
#[test]
fn supervised_checkpointed_on_wgpu_resumes_on_the_cpu() {
    check_learner::<relab_plugin_supervised::Supervised>(
        "{backbone: wrn10_2, epochs: 2, batch_size: 6, eval_batch_size: 12, min_steps_per_epoch: 1}",
        6,
        Checkpointed::OnWgpu,
        REL,
    );
}

#[test]
fn pseudo_label_resumed_on_wgpu_matches_the_cpu() {
    check_learner::<relab_plugin_pseudo_label::PseudoLabel>(
        "{backbone: wrn10_2, warmup: {epochs: 1, batch_size: 6}, epochs: 1, batch_size: 6, labeled_per_batch: 3, eval_batch_size: 12}",
        6,
        Checkpointed::OnCpu,
        REL,
    );
}

#[test]
fn fixmatch_resumed_on_wgpu_matches_the_cpu() {
    check_learner::<relab_plugin_fixmatch::FixMatch>(
        "{backbone: wrn10_2, epochs: 2, steps_per_epoch: 1, labeled_batch_size: 3, mu: 2, threshold: 0.5, \
         ema_decay: 0.9, distribution_alignment: true, eval_batch_size: 12}",
        6,
        Checkpointed::OnCpu,
        REL,
    );
}

#[test]
fn remixmatch_resumed_on_wgpu_matches_the_cpu() {
    check_learner::<relab_plugin_remixmatch::RemixMatch>(
        "{backbone: wrn10_2, epochs: 2, steps_per_epoch: 1, batch_size: 6, strong_views: 1, schedule: {lr: 0.01}, \
         ema: 0.7, warmup_kimg: 0.0625, eval_batch_size: 12}",
        6,
        Checkpointed::OnCpu,
        ADAM_REL,
    );
}

#[test]
fn imix_resumed_on_wgpu_matches_the_cpu_and_its_encoder_gives_the_same_features() {
    let stage = |ctx: &mut StageContext| {
        let data = testing::tiny_dataset(&TinySpec::default());
        let mut method: relab_plugin_imix::Imix = testing::build(
            "{backbone: wrn10_2, epochs: 2, batch_size: 6, projection_dim: 16, monitor_every: 1, knn_k: 3, \
             eval_batch_size: 12}",
        )
        .unwrap();
        let encoder = method.pretrain(ctx, &data)?;
        encoder.extract(ctx, &data.test, FeatureOutput::Pooled)
    };
    let (gpu, cpu, before) = resumed_on_both(StageKind::Pretrain, Checkpointed::OnCpu, stage);
    assert_same_training(&gpu, &cpu, &before, REL, "imix");
    assert_eq!((gpu.value.rows, gpu.value.dim), (cpu.value.rows, cpu.value.dim), "imix: feature shape");
    assert_close(&gpu.value.values, &cpu.value.values, REL, "imix: the encoder's pooled features");
}

/// The `imagenet` encoder (torchvision's ResNet-50, its weights read onto the run's device) gives the CPU's
/// features on wgpu.
#[test]
fn imagenet_encoder_gives_the_cpu_features() {
    let _turn = take_turn();
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("resnet50.safetensors");
    imagenet_support::write_safetensors(&weights, &imagenet_support::resnet50_state_dict(5));
    let data = testing::tiny_dataset(&TinySpec::default());
    let extract = |device: &Device, name: &str| {
        let params = ImageNetParams { weights: Some(weights.clone()), size: 32, ..ImageNetParams::default() };
        let mut method = <ImageNetTransfer as relab_core::registry::PluginInfo>::from_params(params).unwrap();
        let out = dir.path().join(name);
        let encoder = method.pretrain(&mut context(&out.join("pretrain"), StageKind::Pretrain, device, false), &data);
        let mut ctx = context(&out.join("features"), StageKind::Features, device, false);
        encoder.unwrap().extract(&mut ctx, &data.test, FeatureOutput::Default).unwrap()
    };
    let (on_gpu, on_cpu) = (extract(&gpu(), "wgpu"), extract(&cpu(), "cpu"));
    assert_eq!((on_gpu.rows, on_gpu.dim), (on_cpu.rows, on_cpu.dim), "imagenet: feature shape");
    assert_close(&on_gpu.values, &on_cpu.values, REL, "imagenet: the ResNet-50's pooled features");
}

#[test]
fn small_loss_resumed_on_wgpu_selects_what_the_cpu_selects() {
    let stage = |ctx: &mut StageContext| {
        let data = testing::tiny_dataset(&TinySpec::default());
        let truth = data.train.labels.clone().unwrap();
        // Propagated labels right but for every fifth image.
        let scores: Vec<f32> = truth
            .iter()
            .enumerate()
            .flat_map(|(i, &t)| (0..3u32).map(move |c| if c == (t + u32::from(i % 5 == 0)) % 3 { 1.0 } else { 0.0 }))
            .collect();
        let propagation = Propagation::from_scores(3, scores);
        let mut selector: relab_plugin_small_loss::SmallLoss = testing::build(
            "{backbone: wrn10_2, epochs: 2, track_epochs: 2, per_class: 4, batch_size: 6, eval_batch_size: 12}",
        )
        .unwrap();
        selector.select(ctx, SelectorInput::new(&data, &propagation, &labeled(3)))
    };
    let (gpu, cpu, before) = resumed_on_both(StageKind::Select, Checkpointed::OnCpu, stage);
    assert_same_training(&gpu, &cpu, &before, REL, "small-loss");
    assert_eq!(gpu.value, cpu.value, "small-loss: the selection");
}

// --- the host's own device code ------------------------------------------------------------------------------

/// Seeded features with distinct similarities (no ties for the device's top-k to break differently).
fn features(rows: usize, dim: usize) -> Vec<f32> {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    (0..rows * dim)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % 10_000) as f32 / 5_000.0 - 1.0
        })
        .collect()
}

#[test]
fn knn_on_the_device_gives_the_cpu_neighbours() {
    let _turn = take_turn();
    let (rows, dim, k) = (96, 12, 5);
    let x = features(rows, dim);
    let on_gpu = relab_core::linalg::nearest_neighbours_on_device(&x, rows, dim, k, &gpu(), &|_| {}).unwrap();
    let on_cpu = relab_core::linalg::nearest_neighbours(&x, rows, dim, k, &|_| {});
    assert_eq!(on_gpu.indices, on_cpu.indices, "the same neighbours in the same order");
    assert_close(&on_gpu.similarities, &on_cpu.similarities, REL, "the neighbours' similarities");
}

#[test]
fn diffusion_with_the_knn_on_wgpu_gives_the_cpu_labels() {
    let _turn = take_turn();
    let (rows, dim) = (90, 8);
    let f = Features::new(rows, dim, features(rows, dim));
    let seeds = LabeledSet::new(vec![0, 1, 2, 3, 4, 5], vec![0, 1, 2, 0, 1, 2]);
    let diffusion: relab_plugin_diffusion::Diffusion = testing::build("{k: 5, knn: device}").unwrap();
    let quiet = |_: u64, _: &str| relab_core::progress::bar(0, "");
    let on_gpu = diffusion.run_on(&f, &seeds, 3, &gpu(), &quiet).unwrap();
    let on_cpu = diffusion.run_on(&f, &seeds, 3, &cpu(), &quiet).unwrap();
    assert!(on_gpu.knn_on_device && on_cpu.knn_on_device);
    assert_eq!(on_gpu.propagation.labels, on_cpu.propagation.labels, "the propagated labels");
    assert_close(&on_gpu.propagation.scores, &on_cpu.propagation.scores, REL, "the class scores");
}

#[test]
fn auto_does_not_take_a_software_adapter() {
    let _turn = take_turn();
    gpu();
    let adapters = device::wgpu_adapters();
    let auto = device::resolve(BackendChoice::Auto, 0).unwrap();
    if adapters.iter().any(|a| a.kind.is_gpu()) {
        assert_eq!(auto.backend, "wgpu", "a real GPU is there: {adapters:?}");
    } else {
        assert_eq!(auto.backend, "cpu", "only software adapters: {adapters:?}");
    }
}

/// `relab bench train --backend wgpu` trains on wgpu and says so in its JSON line, with its images/s.
#[test]
fn bench_train_runs_on_wgpu() {
    let _turn = take_turn();
    gpu();
    let args =
        ["bench", "train", "--backend", "wgpu", "--model", "wrn10_2", "--batch", "2", "--steps", "1", "--warmup", "0"];
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_relab"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("relab runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "relab {}: {text}{}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    let result: Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(result["backend"], "wgpu", "{result}");
    assert_eq!(result["model"], "wrn10_2", "{result}");
    let rate = result["images_per_second"].as_f64().unwrap_or_default();
    assert!(rate > 0.0 && rate.is_finite(), "{result}");
}

// --- the whole pipeline -----------------------------------------------------------------------------------------

/// The main job cut to a few steps per stage on a 300-image prefix (the sizes of `scripts/gpu-check.sh --tiny`).
const TINY_MAIN_JOB: &[&str] = &[
    "dataset.train_limit=300",
    "dataset.test_limit=100",
    "stages.pretrain.epochs=1",
    "stages.pretrain.images_per_epoch=128",
    "stages.pretrain.schedule.milestones=[1]",
    "stages.pretrain.monitor_every=1",
    "stages.propagate.k=10",
    "stages.select.sample=100",
    "stages.select.epochs=1",
    "stages.select.track_epochs=1",
    "stages.select.per_class=2",
    "stages.train.warmup.epochs=1",
    "stages.train.warmup.schedule.milestones=[1]",
    "stages.train.epochs=1",
    "stages.train.repropagate_after=[]",
    "stages.train.unlabeled_per_epoch=100",
    "stages.train.schedule.milestones=[1]",
    "stages.train.swa.start=0",
    "stages.train.eval_every=1",
];

/// `experiments/fashion-mnist-40.yaml`, shortened, run with `relab run` on the CPU and on wgpu from the same seed:
/// iMix, features, diffusion with its kNN on the device, small-loss and pseudo-label, each handing its artifacts to
/// the next on the run's backend. Both start from the same weights (every module is drawn on the CPU), so they
/// differ only by rounding, which grows over the stages' steps and can flip a near tie of the diffusion: measured
/// on lavapipe, features within 6e-4 of their largest magnitude, 299 of 300 propagated labels the same, the same
/// 20 selected samples, every accuracy the same. Held here: features within 1e-2, 98 % of the labels, every
/// accuracy within 2 points (2 of the 100 test images). Before the weights were drawn on the CPU the two runs
/// started from different random weights and their features differed by 1.9 (of 1.1).
#[test]
#[ignore = "about a minute on lavapipe (two with a cold shader cache); CI runs it with `-- --ignored`"]
fn the_main_job_on_wgpu_agrees_with_the_cpu() {
    assert!(
        Path::new("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").exists()
            || std::env::var_os("RELAB_DATA").is_some(),
        "this test needs Fashion-MNIST: apt-get install dataset-fashion-mnist (or set RELAB_DATA)"
    );
    let _turn = take_turn();
    gpu();
    let tmp = tempfile::tempdir().unwrap();
    let experiment = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/fashion-mnist-40.yaml");
    let run = |backend: &str| {
        let out = tmp.path().join(backend);
        let backend = format!("backend={backend}");
        let mut args = vec!["relab", "run", experiment.to_str().unwrap(), "--out", out.to_str().unwrap(), "--no-cache"];
        for set in TINY_MAIN_JOB.iter().copied().chain([backend.as_str()]) {
            args.extend(["--set", set]);
        }
        let code = relab::cli::main(args.iter().copied());
        assert_eq!(code, std::process::ExitCode::SUCCESS, "{}", args.join(" "));
        out
    };
    let (on_cpu, on_gpu) = (run("cpu"), run("wgpu"));
    let npy = relab_core::artifact::npy::read_i64;
    let (cpu_labels, gpu_labels) =
        (npy(&on_cpu.join("propagate/labels.npy")).unwrap().1, npy(&on_gpu.join("propagate/labels.npy")).unwrap().1);
    assert_eq!(cpu_labels.len(), gpu_labels.len());
    let same = cpu_labels.iter().zip(&gpu_labels).filter(|(a, b)| a == b).count();
    assert!(same * 100 >= cpu_labels.len() * 98, "{same} of {} propagated labels agree", cpu_labels.len());
    let features = |dir: &Path| relab_core::artifact::npy::read_f32(&dir.join("features/features.npy")).unwrap();
    let ((cpu_shape, cpu_features), (gpu_shape, gpu_features)) = (features(&on_cpu), features(&on_gpu));
    assert_eq!(cpu_shape, gpu_shape, "feature shape");
    assert_close(&gpu_features, &cpu_features, 1e-2, "the main job's features");
    let summary =
        |dir: &Path| -> Value { serde_json::from_str(&fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap() };
    let (cpu_summary, gpu_summary) = (summary(&on_cpu), summary(&on_gpu));
    for key in
        ["/knn_accuracy", "/propagation_accuracy", "/subset_precision", "/test_accuracy/last", "/test_accuracy/best"]
    {
        let (c, g) =
            (cpu_summary.pointer(key).and_then(Value::as_f64), gpu_summary.pointer(key).and_then(Value::as_f64));
        let (Some(c), Some(g)) = (c, g) else { panic!("summary.json{key}: {c:?} on the CPU, {g:?} on wgpu") };
        assert!((c - g).abs() <= 0.02 + 1e-9, "summary.json{key}: {g} on wgpu against {c} on the CPU");
    }
}
